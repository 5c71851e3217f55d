"""Simulated grasp stability in MuJoCo, as DexGraspNet-style evaluations judge grasps.

Set-up (one simulation per gravity direction, :func:`simulate_grasp`):

- **Hand**: the HALO mesh of the grasp, split by its per-vertex part labels
  (``mesh.vertex_attributes["part"]``, the 16 HALO parts: palm, three bones per finger) into
  one convex hull per part, all fixed to the world. A part's hull is close to the part
  itself (a finger bone is nearly convex); the palm's hull fills the hollow of a cupped palm.
- **Object**: a free body made of convex parts (:func:`convex_parts`: the object's hull
  when the object is nearly convex, otherwise CoACD's approximate convex decomposition),
  with the mass and inertia of the real closed mesh at :data:`DENSITY` (kg/m^3).
- **Contact**: friction :data:`FRICTION` (skin on wood, plastic or glass, dry: ~0.5-1),
  torsional friction (soft finger pads), elliptic friction cones. The hand's geoms carry a
  margin of ``skin_mm`` (2 mm): the contact pushes the object out to that distance, which
  stands in for the skin's compliance; a finger within 2 mm of the surface therefore
  presses on it, as the per-finger contact rule of :mod:`halohand.grasp.metrics` counts it.
- **Test**: gravity (9.81 m/s^2) along each of ``+x, -x, +y, -y, +z, -z`` in turn, from rest,
  for :data:`SIM_SECONDS` of simulated time at a :data:`TIMESTEP` step; the grasp holds in a
  direction when the object's centre of mass ends less than :data:`MAX_SHIFT_M` (2 cm) from
  where it started. Stable = holds in all six. Deterministic (MuJoCo's CPU solver on the
  same model and state gives the same trajectory).

What it cannot model: the fingers are rigid and fixed, they neither squeeze (no joint
torques) nor comply beyond the 2 mm skin, so a grasp that a hand would secure by closing
is judged as it is; hulls round off the webs between fingers and the palm's hollow.
Initial penetration: MuJoCo pushes overlapping bodies apart with its soft constraint; a
grasp that starts deeply inside the object is simulated as it is (the push usually throws
the object out, or jams it in the hull, which then looks stable), and it fails the
penetration rule of the human-plausible test anyway (``max_penetration_mm`` > 5 mm), so
stability is only read together with penetration. The deepest starting overlap of the
hulls is reported with each result (``start_overlap_mm``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from halohand.core.errors import HalohandInputError

if TYPE_CHECKING:
    import trimesh

    from halohand.objects.registry import GraspObject

__all__ = [
    "DIRECTIONS",
    "StabilityResult",
    "convex_parts",
    "grasp_stability",
    "hand_parts",
    "simulate_grasp",
    "simulate_hulls",
]

#: Gravity directions, in this order: +x, -x, +y, -y, +z, -z (object frame).
DIRECTIONS = np.array(
    [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64
)
DIRECTION_NAMES = ("+x", "-x", "+y", "-y", "+z", "-z")

#: Object density (kg/m^3): between wood and water, a household object's usual range.
DENSITY = 500.0
#: Sliding, torsional and rolling friction of skin on an object (MuJoCo's ``friction``).
FRICTION = (0.7, 0.005, 0.0001)
#: Simulated seconds per direction, and the step (seconds).
SIM_SECONDS = 1.0
TIMESTEP = 0.002
#: Largest displacement (metres) of the object's centre of mass for a grasp that holds.
MAX_SHIFT_M = 0.02
#: Gravity (m/s^2).
GRAVITY = 9.81
#: Hull volume fraction above which an object is simulated as its own convex hull.
CONVEX_ENOUGH = 0.97


@dataclass
class StabilityResult:
    """Outcome of :func:`simulate_grasp` for one grasp.

    Attributes:
        shift_m: ``[6]`` final displacement (metres) of the object's centre of mass per
            direction of :data:`DIRECTIONS`.
        holds: ``[6]`` bool, ``shift_m < MAX_SHIFT_M``.
        stable: holds in all six directions.
        start_overlap_mm: deepest overlap (mm) between the hand's hulls and the object's
            parts before the first step (0 when none).
    """

    shift_m: np.ndarray
    holds: np.ndarray = field(init=False)
    stable: bool = field(init=False)
    start_overlap_mm: float = 0.0

    def __post_init__(self) -> None:
        self.holds = np.asarray(self.shift_m) < MAX_SHIFT_M
        self.stable = bool(self.holds.all())


def hand_parts(hand: trimesh.Trimesh, min_vertices: int = 8) -> list[np.ndarray]:
    """Vertices ``[k, 3]`` of each HALO part of ``hand`` (metres), one array per part.

    Uses the per-vertex part labels HALO meshes carry (``vertex_attributes["part"]``, from
    ``colors=True``); a part with fewer than ``min_vertices`` vertices is left out (too small
    to make a hull that matters).

    Raises:
        HalohandInputError: the mesh has no part labels.
    """
    labels = hand.vertex_attributes.get("part") if hasattr(hand, "vertex_attributes") else None
    if labels is None or len(labels) != len(hand.vertices):
        raise HalohandInputError("the hand mesh has no part labels (mesh it with colors=True)")
    v = np.asarray(hand.vertices, dtype=np.float64)
    labels = np.asarray(labels)
    return [v[labels == p] for p in np.unique(labels) if (labels == p).sum() >= min_vertices]


def convex_parts(
    obj: GraspObject, threshold: float = 0.05, max_parts: int = 24
) -> list[np.ndarray]:
    """Vertices ``[k, 3]`` (metres) of convex parts that make up ``obj``, cached on it.

    An object whose volume is at least :data:`CONVEX_ENOUGH` of its hull's is its hull; any
    other goes through CoACD (approximate convex decomposition: ``threshold`` is its
    concavity tolerance relative to the object's size, ``max_parts`` caps the hulls; seed 0,
    so the parts are deterministic). CoACD's search is cut down from its defaults
    (``mcts_iterations`` 150 -> 30, depth 3 -> 2, 2,000 -> 500 samples) and the mesh is
    remeshed on its 50^3 voxel lattice first: with the defaults a 4 mm-walled mug took about
    3x as long on this 2-core machine (127 s in a trial), now 28-41 s, and no part reaches
    into its cavity or its handle's hole (``benchmarks/studies/grasp_decomposition_check.py``).
    """
    key = ("convex_parts", threshold, max_parts)
    if key not in obj._cache:
        mesh = obj.mesh
        hull = mesh.convex_hull
        if mesh.volume >= CONVEX_ENOUGH * hull.volume:
            parts = [np.asarray(hull.vertices, dtype=np.float64)]
        else:
            import coacd

            coacd.set_log_level("error")
            pieces = coacd.run_coacd(
                coacd.Mesh(np.asarray(mesh.vertices), np.asarray(mesh.faces)),
                threshold=threshold, max_convex_hull=max_parts, seed=0,
                preprocess_mode="on", preprocess_resolution=50, resolution=500,
                mcts_iterations=30, mcts_nodes=10, mcts_max_depth=2,
            )  # fmt: skip
            parts = [np.asarray(p[0], dtype=np.float64) for p in pieces]
        obj._cache[key] = parts
    return obj._cache[key]


def _mesh_xml(name: str, points: np.ndarray) -> str:
    coords = " ".join(f"{x:.6f}" for x in np.asarray(points).reshape(-1))
    return f'<mesh name="{name}" vertex="{coords}"/>'


def _hull_points(points: np.ndarray) -> np.ndarray | None:
    """Vertices of the hull of ``points`` (MuJoCo would hull them too, but fewer vertices
    keep the XML small); ``None`` when the points span no volume."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(points)
    except (QhullError, ValueError):
        return None
    if hull.volume < 1e-9:  # < 1 mm^3
        return None
    return points[hull.vertices]


def build_model(
    hand_parts_m: list[np.ndarray],
    object_parts_m: list[np.ndarray],
    object_mesh: trimesh.Trimesh,
    skin_mm: float = 2.0,
    density: float = DENSITY,
) -> str:
    """MJCF of the fixed hand hulls and the free object (object frame, metres)."""
    hand = [h for h in (_hull_points(p) for p in hand_parts_m) if h is not None]
    obj = [h for h in (_hull_points(p) for p in object_parts_m) if h is not None]
    if not obj:
        raise HalohandInputError("the object has no convex part with volume")
    mass = float(density * object_mesh.volume)
    com = np.asarray(object_mesh.center_mass, dtype=np.float64)
    # trimesh's moment of inertia is per unit density, about the centre of mass.
    inertia = np.asarray(object_mesh.moment_inertia, dtype=np.float64) * density
    full = " ".join(f"{x:.9g}" for x in inertia[[0, 1, 2, 0, 0, 1], [0, 1, 2, 1, 2, 2]])
    fr = " ".join(f"{f:g}" for f in FRICTION)
    meshes = [_mesh_xml(f"h{i}", p) for i, p in enumerate(hand)]
    meshes += [_mesh_xml(f"o{i}", p) for i, p in enumerate(obj)]
    hand_geoms = "".join(
        f'<geom type="mesh" mesh="h{i}" margin="{skin_mm * 1e-3:g}" contype="1" conaffinity="2"/>'
        for i in range(len(hand))
    )
    obj_geoms = "".join(
        f'<geom type="mesh" mesh="o{i}" contype="2" conaffinity="1" mass="0"/>'
        for i in range(len(obj))
    )
    return (
        '<mujoco model="grasp">'
        f'<option timestep="{TIMESTEP:g}" gravity="0 0 0" cone="elliptic" impratio="10"/>'
        f'<default><geom condim="4" friction="{fr}"/></default>'
        f"<asset>{''.join(meshes)}</asset>"
        f"<worldbody>{hand_geoms}"
        f'<body name="object"><freejoint/>'
        f'<inertial pos="{com[0]:.9g} {com[1]:.9g} {com[2]:.9g}" mass="{mass:.9g}" '
        f'fullinertia="{full}"/>{obj_geoms}</body>'
        "</worldbody></mujoco>"
    )


def simulate_grasp(
    hand: trimesh.Trimesh,
    obj: GraspObject,
    skin_mm: float = 2.0,
    seconds: float = SIM_SECONDS,
    density: float = DENSITY,
) -> StabilityResult:
    """Six-direction gravity test of one grasp (``hand``: a part-labelled HALO mesh in the
    object's frame, metres). See the module docstring for the set-up."""
    return simulate_hulls(hand_parts(hand), obj, skin_mm, seconds, density)


def simulate_hulls(
    hand_parts_m: list[np.ndarray],
    obj: GraspObject,
    skin_mm: float = 2.0,
    seconds: float = SIM_SECONDS,
    density: float = DENSITY,
) -> StabilityResult:
    """:func:`simulate_grasp` with the hand given as point sets (``[k, 3]`` metres), each
    fixed to the world as its convex hull."""
    import mujoco

    xml = build_model(hand_parts_m, convex_parts(obj), obj.mesh, skin_mm, density)
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    steps = int(round(seconds / model.opt.timestep))
    body = model.body("object").id
    mujoco.mj_forward(model, data)
    # MuJoCo's contact distance is the signed gap between two hulls (negative: overlap).
    dist = [data.contact[i].dist for i in range(data.ncon)]
    overlap = max(0.0, -min(dist, default=0.0)) * 1000.0
    start = data.xipos[body].copy()
    shifts = np.zeros(len(DIRECTIONS))
    for k, direction in enumerate(DIRECTIONS):
        mujoco.mj_resetData(model, data)
        model.opt.gravity[:] = GRAVITY * direction
        for _ in range(steps):
            mujoco.mj_step(model, data)
        shift = float(np.linalg.norm(data.xipos[body] - start))
        shifts[k] = shift if np.isfinite(shift) else np.inf
    return StabilityResult(shift_m=shifts, start_overlap_mm=overlap)


def grasp_stability(
    hands: list[trimesh.Trimesh], obj: GraspObject, skin_mm: float = 2.0
) -> list[StabilityResult]:
    """:func:`simulate_grasp` for each hand; an empty hand mesh (no HALO surface) holds
    nothing (infinite shift in every direction)."""
    out = []
    for hand in hands:
        if len(hand.vertices) == 0:
            out.append(StabilityResult(shift_m=np.full(len(DIRECTIONS), np.inf)))
        else:
            out.append(simulate_grasp(hand, obj, skin_mm))
    return out
