"""Optimisation-based grasp synthesis with the differentiable hand model (grasp data engine).

In the spirit of DexGraspNet's energy (the ideas, not its code): many random initial hands
are placed around an object, palm toward it, and a weighted sum of energy terms is
minimised by Adam over the joint angles (hard-clamped to the joint limits, as the template
fitting does), a residual global rotation and the translation. The identity (size, bone
lengths, palm width) is drawn from :class:`~halohand.handmodel.IdentityPrior` per start and
kept fixed. Terms (per hand; lengths in cm so the weights are comparable):

==================== ======================================================================
``contact``          sum over the 5 fingertip pads (and the palm centre for the half of the
                     starts that are "power" grasps) of the distance to the object surface
``penetration``      sum over the 1159 hand vertices of their depth inside the object
``object_in_hand``   sum over 600 object surface points of their depth inside the hand's
                     sphere proxy (finger-bone and palm spheres; ``finger_capsules``: a
                     capsule per finger bone instead of its spheres)
``self_penetration`` sum of overlaps of sphere proxies of different fingers (and of the thumb
                     and the palm) that are apart in the rest pose
``force_closure``    ``|sum n_i|^2 + |sum (c_i - c) x n_i|^2 / L^2`` for the unit inward
                     normals at the fingertip contacts ``c_i`` (L = 5 cm): a net wrench of
                     equal unit contact forces near zero, i.e. opposing contacts
``prior``            mean squared standardised deviation from the pose prior's mean
``anchor``           the same from each start's own angles
                     (:attr:`GraspStarts.anchor_angles`; refinement only, weight 0 by
                     default)
==================== ======================================================================

The object's signed distance during the optimisation is a trilinear grid
(:meth:`~halohand.objects.registry.GraspObject.sdf_grid`); the acceptance filters use exact
queries on the meshes: max penetration depth of the hand vertices, fingertip pads within
``contact_mm`` of the surface, the proxy self-penetration and the voxel intersection volume
of :func:`~halohand.grasp.metrics.intersection_volume`.

Output (:func:`synthesize`): per object a folder of shards ``batch_00000.npz``, one per batch
of starts, each written atomically and deterministic in (seed, object, batch index), so an
interrupted run resumes by skipping the finished shards. See ``docs/grasp.md``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from halohand.core.atomic import atomic_path, write_text_atomic
from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.rotations import align, axis_angle_to_matrix, rodrigues
from halohand.core.schedule import cosine
from halohand.fitting.template_fit import pose_prior_stats
from halohand.grasp import taxonomy as tx
from halohand.grasp.metrics import intersection_volume
from halohand.grasp.stability import DIRECTIONS, simulate_hulls
from halohand.handmodel.collision import load_sphere_proxy
from halohand.handmodel.pose import JOINT_LIMITS
from halohand.handmodel.prior import GESTURES, IdentityPrior
from halohand.handmodel.torch_model import TorchHandModel
from halohand.objects.registry import GraspObject, load_object
from halohand.skeleton import PART_NAMES

__all__ = [
    "ENERGY_TERMS", "EnergyWeights", "GraspStarts", "SynthesisConfig", "optimise_starts",
    "synthesize", "synthesize_batch",
]  # fmt: skip

ENERGY_TERMS: Final[tuple[str, ...]] = (
    "contact", "penetration", "object_in_hand", "self_penetration", "force_closure", "prior",
)  # fmt: skip

#: Fingers' (first, last) keypoint of their three bones in the project's order.
_FINGER_KP: Final = ((1, 4), (5, 8), (9, 12), (13, 16), (17, 20))
#: Tip keypoints (thumb..pinky) and the WebXR joint of each distal phalanx.
_TIPS: Final = (4, 8, 12, 16, 20)
_DISTAL_WEBXR: Final = (3, 8, 13, 18, 23)
_DISTAL_PART: Final = tuple(PART_NAMES.index(f"{f}3") for f in ("thumb", "index", "middle",
                                                                   "ring", "pinky"))  # fmt: skip
#: Pre-grasp gestures the starts open up from.
_PREGRASPS: Final = ("relaxed", "cylinder", "sphere", "tripod", "pinch")
#: Positions along each finger bone of its proxy spheres.
_SPHERE_T: Final = (0.2, 0.5, 0.8)
_CM: Final = 100.0


@dataclass(frozen=True)
class EnergyWeights:
    """Multipliers of the energy terms (see the module docstring)."""

    contact: float = 1.0
    penetration: float = 10.0
    object_in_hand: float = 1.0
    self_penetration: float = 5.0
    force_closure: float = 1.0
    prior: float = 0.02
    anchor: float = 0.0


#: Settings added after grasp runs had been made: stored only when changed from the default.
_LATER_SETTINGS: Final = (
    "sdf_cell_fraction",
    "object_points",
    "finger_capsules",
    "separate_cm",
    "fill_enclosed",
)
#: Energy weights added likewise (:class:`EnergyWeights`), stored only when changed.
_LATER_WEIGHTS: Final = ("anchor",)


@dataclass(frozen=True)
class SynthesisConfig:
    """Settings of :func:`synthesize` / :func:`synthesize_batch`.

    Attributes:
        batch_size: starts optimised together (one shard).
        steps: Adam steps; lr: peak step (radians, and cm for the translation), cosine decay.
        max_batches: batches per object at most (stops earlier at ``n_per_object``).
        sides: ``"right"``, ``"left"`` or ``"both"`` (alternating per batch).
        palm_gap_m: range of the initial distance of the palm from the object (metres).
        max_penetration_mm / min_tip_contacts / contact_mm / max_intersection_cm3 /
            max_self_penetration_mm: acceptance filters.
        sdf_resolution: grid points per axis of the optimisation's signed distance.
        taxonomy: start from grasp types of :mod:`halohand.grasp.taxonomy` (chosen and placed
            from the object's geometry, contact asked on the type's pads) instead of random
            gestures and directions; acceptance then also asks all the type's contact
            points within ``contact_mm``, the object's surface within ``max_penetration_mm``
            of the hand's, and (``stability_filter``) the MuJoCo six-direction test.
        types: with ``taxonomy``, only these types (empty: chosen from the geometry).
        contact_scale: with ``taxonomy``, the contact weight's multiplier (fewer points than
            the plain engine's five tips, which must close in on the surface).
        hard_penetration: with ``taxonomy``, weight of the squared depth (cm) beyond
            ``hinge_mm`` of hand vertices inside the object and of object points inside the
            hand's spheres: a near-hard limit on top of the linear penetration terms.
        press_mm: with ``taxonomy``, depth the pads are asked to press into the surface.
        sdf_cell_fraction: with ``taxonomy``, the optimisation's signed-distance grid gets
            cells of at most this fraction of the object's thin parts (the 5th percentile of
            its local thickness, :func:`~halohand.grasp.taxonomy.analyse`), down to 1 mm
            and up to 256 points per axis (:func:`sdf_resolution`; a 3 mm cup wall lies in
            3.5 mm cells at 64 points over a 22 cm box). 0 (the default) keeps
            ``sdf_resolution``: 0.4 changed neither the engine's acceptance nor the
            plausible share on the wide registry's cups and plates (``docs/grasp.md``).
        object_points: object surface points of the ``object_in_hand`` term (600: about
            one per cm^2 of a cup, so a 4 mm wall through a finger is seen by one or two).
            Each step reads only the points within :data:`NEAR_MARGIN_M` of a start's hand
            at the last full pass, which a hand must move that far to leave (the same sums
            to rounding, 2.5-3x faster refinement: ``benchmarks/speed/bench_pose_refine.py``).
        finger_capsules: the ``object_in_hand`` term measures depth inside a capsule per
            finger bone (the bone's segment, its inscribed radius) instead of 3 spheres
            along it, which leave gaps between them where a thin wall passes.
        separate_cm: before the descent, each start is moved rigidly out of the object: of
            the translations up to this far (cm) along 26 directions, the shortest whose
            overlap (the ``penetration`` and ``object_in_hand`` terms) is within 10 % of the
            least overlap's gain. A start whose hand a thin wall runs through (a cup's rim
            through the palm) is otherwise pushed from both faces of the wall and stays. 0
            (the default) keeps the starts.
        fill_enclosed: the ``penetration`` term reads the signed distance of the object with
            the space it encloses filled (a cup's inside, :mod:`halohand.objects.enclosed`):
            the hand keeps out of it and wraps the cup as a solid. Contact and the acceptance
            filters keep the object's own surface. No change for objects that enclose
            nothing.
    """

    batch_size: int = 32
    steps: int = 250
    lr: float = 0.02
    max_batches: int = 50
    sides: str = "both"
    palm_gap_m: tuple[float, float] = (0.01, 0.04)
    max_penetration_mm: float = 3.0
    min_tip_contacts: int = 3
    contact_mm: float = 5.0
    max_intersection_cm3: float = 2.0
    max_self_penetration_mm: float = 2.0
    sdf_resolution: int = 64
    weights: EnergyWeights = field(default_factory=EnergyWeights)
    taxonomy: bool = False
    types: tuple[str, ...] = ()
    stability_filter: bool = True
    contact_scale: float = 9.0
    hard_penetration: float = 10.0
    hinge_mm: float = 2.0
    press_mm: float = 3.0
    sdf_cell_fraction: float = 0.0
    object_points: int = 600
    finger_capsules: bool = False
    separate_cm: float = 0.0
    fill_enclosed: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.steps < 1 or self.max_batches < 1:
            raise HalohandInputError("batch_size, steps and max_batches must be >= 1")
        if not self.lr > 0:
            raise HalohandInputError(f"lr must be positive, got {self.lr}")
        if self.sides not in ("right", "left", "both"):
            raise HalohandInputError(f"sides must be right, left or both, got {self.sides!r}")
        if not 1 <= self.min_tip_contacts <= 5:
            raise HalohandInputError("min_tip_contacts must be in 1..5")
        if not 0 <= self.sdf_cell_fraction <= 1:
            raise HalohandInputError(
                f"sdf_cell_fraction must be in [0, 1], got {self.sdf_cell_fraction}"
            )
        if self.object_points < 1:
            raise HalohandInputError(f"object_points must be >= 1, got {self.object_points}")
        if not 0 <= self.separate_cm <= 20:
            raise HalohandInputError(f"separate_cm must be in [0, 20], got {self.separate_cm}")
        if self.types:
            tx.check_types(tuple(self.types))
            if not self.taxonomy:
                raise HalohandInputError("grasp types need taxonomy=True")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings (stored in every shard and in ``config.json``); the taxonomy
        settings only when it is on, and the settings added later (:data:`_LATER_SETTINGS`)
        only when they differ from their defaults, so earlier runs keep their settings
        (resume)."""
        out = asdict(self)
        if not self.taxonomy:
            for k in (
                "taxonomy", "types", "stability_filter", "contact_scale", "hard_penetration",
                "hinge_mm", "press_mm", "sdf_cell_fraction",
            ):  # fmt: skip
                out.pop(k)
        defaults = {f.name: f.default for f in fields(self)}
        for k in _LATER_SETTINGS:
            if k in out and out[k] == defaults[k]:
                out.pop(k)
        default_weights = EnergyWeights()
        for k in _LATER_WEIGHTS:
            if out["weights"][k] == getattr(default_weights, k):
                out["weights"].pop(k)
        return out


# -- hand geometry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _HandGeometry:
    """Contact points and sphere proxies of the template at unit size (model metres).

    Attributes:
        tip_vertex: ``[5]`` vertex at the centre of each fingertip pad (thumb..pinky).
        palm_vertex: vertex at the centre of the palmar surface.
        bone_kp: ``[15, 2]`` keypoints (start, end) of the finger bones.
        bone_radius: ``[15]`` inscribed radius of each finger bone (template metres).
        palm_centres: ``[P, 3]`` palm sphere centres (rigid with the wrist), radii ``[P]``.
        self_pairs: ``[Q, 2]`` pairs of spheres (indexing finger spheres then palm spheres)
            tested for self-penetration.
    """

    tip_vertex: np.ndarray
    palm_vertex: int
    bone_kp: np.ndarray
    bone_radius: np.ndarray
    palm_centres: np.ndarray
    palm_radii: np.ndarray
    self_pairs: np.ndarray


@lru_cache(maxsize=1)
def _hand_geometry() -> _HandGeometry:
    model = _model()
    tpl = model.template
    kp, verts = model.rest_pose()
    labels = tpl.part_labels

    # Fingertip pads: the distal-part vertex nearest to a point 2 cm out of the palmar side
    # (-Y of the distal joint frame, WebXR) at 65 % of the distal bone.
    tips = []
    for (_, last), j, part in zip(_FINGER_KP, _DISTAL_WEBXR, _DISTAL_PART, strict=True):
        palmar = -tpl.rest_frames[j, :3, 1]
        q = kp[last - 1] + 0.65 * (kp[last] - kp[last - 1]) + 0.02 * palmar
        cand = np.flatnonzero(labels == part)
        tips.append(int(cand[np.argmin(np.linalg.norm(verts[cand] - q, axis=1))]))
    # Palm centre: the palm vertex nearest to a point 5 cm in front of the palm (-Z).
    palm = tx.palm_vertex(model)

    bones = np.array([(a + i, a + i + 1) for a, _ in _FINGER_KP for i in range(3)])
    # Inscribed radius of a bone: a low percentile of its part's vertex distances to the
    # bone segment (the minimum picks up the skin folds at the joints).
    radii = []
    for b, (i, j) in enumerate(bones):
        # Bones run thumb..pinky; the parts are in MANO order, so look them up by name.
        part = PART_NAMES.index(
            ("thumb", "index", "middle", "ring", "pinky")[b // 3] + str(b % 3 + 1)
        )
        v = verts[labels == part]
        radii.append(float(np.percentile(_segment_distance(v, kp[i], kp[j]), 10)) * 0.9)

    # Palm spheres: the collision proxy's wrist spheres (rigid with the palm), largest first
    # and thinned so no two centres are within 1.2 cm.
    proxy = load_sphere_proxy()
    sel = np.flatnonzero(proxy.joint == 0)
    frame = tpl.rest_frames[0]
    centres = proxy.local_centers[sel] @ frame[:3, :3].T + frame[:3, 3]
    r = proxy.radii[sel]
    keep: list[int] = []
    for i in np.argsort(-r):
        if r[i] < 0.006:
            break
        if all(np.linalg.norm(centres[i] - centres[k]) > 0.012 for k in keep):
            keep.append(int(i))
    palm_c, palm_r = centres[keep], r[keep]

    # Self-penetration pairs: spheres of different fingers, and thumb spheres (beyond the
    # metacarpal) against the palm, unless they already come within 1 mm in the rest pose.
    fc, fr, finger = _finger_spheres(kp[None], bones, np.array(radii))
    fc = fc[0]
    allc = np.vstack([fc, palm_c])
    allr = np.concatenate([fr, palm_r])
    owner = np.concatenate([finger, np.full(len(palm_c), -1)])
    bone_of = np.concatenate([np.repeat(np.arange(15), len(_SPHERE_T)), np.full(len(palm_c), -1)])
    pairs = []
    for a in range(len(allc)):
        for b in range(a + 1, len(allc)):
            if owner[a] == owner[b]:
                continue
            if -1 in (owner[a], owner[b]):
                other = a if owner[b] == -1 else b
                if owner[other] != 0 or bone_of[other] == 0:
                    continue
            if np.linalg.norm(allc[a] - allc[b]) - allr[a] - allr[b] < 0.001:
                continue
            pairs.append((a, b))
    return _HandGeometry(
        np.array(tips), palm, bones, np.array(radii), palm_c, palm_r, np.array(pairs)
    )


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip((p - a) @ ab / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def _capsule_distance(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distances ``[n, P, K]`` of points ``p [P, 3]`` or ``[n, P, 3]`` to segments
    ``a, b [n, K, 3]``.

    Expanded into products (``|p - a - t ab|^2`` from ``p.a``, ``p.ab`` and the norms) so no
    ``[n, P, K, 3]`` array is formed: the grasp engine's 3,000 object points against 15
    bones cost as much as a ``cdist``."""
    ab = b - a  # [n, K, 3]
    ab2 = ab.square().sum(-1).clamp_min(1e-12)[:, None]  # [n, 1, K]
    pa = p @ a.transpose(-1, -2)  # [n, P, K]
    pab = p @ ab.transpose(-1, -2)
    ap_ab = pab - (a * ab).sum(-1)[:, None]  # (p - a).ab
    ap2 = p.square().sum(-1)[..., None] - 2 * pa + a.square().sum(-1)[:, None]
    t = (ap_ab / ab2).clamp(0.0, 1.0)
    return (ap2 - 2 * t * ap_ab + t.square() * ab2).clamp_min(1e-12).sqrt()


#: Object points farther than this (metres) outside every capsule and sphere of a start's
#: hand are left out of its ``object_in_hand`` term until the hand has moved this far.
NEAR_MARGIN_M: Final = 0.005


class _NearPoints:
    """Per start, the object points that can lie inside its hand (``object_in_hand``).

    A point's depth inside a capsule, sphere or palm sphere changes by at most the distance
    its segment's ends or its centre move. A point ``margin`` or more outside all of them
    at the last :meth:`update` therefore stays outside, and adds exactly zero to the term and
    its gradient, until some end or centre (``movers``: the keypoints and the palm centres)
    of that start has moved ``margin``; :meth:`stale` then asks for a full update. The
    hand's 3,000-point term costs most of a refinement step; a grasp has a few hundred
    points near it.
    """

    def __init__(self, points: torch.Tensor, margin: float) -> None:
        self.margin = margin
        # Padding rows read a point far outside every hand (depth about -10 m).
        far = points.mean(0, keepdim=True) + 10.0
        self._points = torch.cat([points, far])
        self._index: torch.Tensor | None = None
        self._movers: torch.Tensor | None = None

    def stale(self, movers: torch.Tensor) -> bool:
        """Whether any start's ``movers [n, M, 3]`` moved ``margin`` since the update."""
        if self._movers is None or self._movers.shape != movers.shape:
            return True
        moved = torch.linalg.vector_norm(movers - self._movers, dim=-1).amax()
        return bool(moved >= self.margin)

    def update(self, depth: torch.Tensor, movers: torch.Tensor) -> None:
        """Keep, per start, the points of deepest depth ``[n, P]`` above ``-margin``."""
        keep = depth > -self.margin
        width = max(int(keep.sum(-1).max()), 1)
        # Kept points first (stable order), then the far point.
        order = torch.argsort((~keep).to(torch.int8), dim=-1, stable=True)[:, :width]
        pad = len(self._points) - 1
        self._index = torch.where(keep.gather(1, order), order, pad)
        self._movers = movers.clone()

    def points(self) -> torch.Tensor:
        """``[n, Q, 3]`` each start's kept points (padded with the far point)."""
        assert self._index is not None
        return self._points[self._index]


def _finger_spheres(
    kp: Any, bones: np.ndarray, radii: np.ndarray
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Sphere centres ``[B, 45, 3]`` along the finger bones of keypoints ``[B, 21, 3]``
    (numpy or torch), their radii ``[45]`` and finger index ``[45]``."""
    t = np.array(_SPHERE_T)
    a, b = kp[:, bones[:, 0]], kp[:, bones[:, 1]]  # [B, 15, 3]
    if isinstance(kp, torch.Tensor):
        tt = torch.tensor(t, dtype=kp.dtype)[None, None, :, None]
    else:
        tt = t[None, None, :, None]
    centres = a[:, :, None] + tt * (b - a)[:, :, None]  # [B, 15, 3, 3]
    return (
        centres.reshape(len(kp), -1, 3),
        np.repeat(radii, len(t)),
        np.repeat(np.arange(15) // 3, len(t)),
    )


@lru_cache(maxsize=1)
def _model() -> TorchHandModel:
    return TorchHandModel()


# -- one batch --------------------------------------------------------------------------------


#: Margin (metres) of the optimisation's signed-distance grid around the object.
SDF_MARGIN_M: Final = 0.05


def sdf_resolution(obj: GraspObject, cfg: SynthesisConfig) -> int:
    """Grid points per axis of the taxonomy engine's signed distance for ``obj``: at least
    ``cfg.sdf_resolution``, more where cells of ``cfg.sdf_cell_fraction`` of the object's
    thin parts (5th percentile of the local thickness, not below 1 mm) need them; at most
    256."""
    if cfg.sdf_cell_fraction <= 0:
        return cfg.sdf_resolution
    thin = float(np.percentile(tx.analyse(obj).thickness, 5))
    cell = max(cfg.sdf_cell_fraction * thin, 1e-3)
    span = float(np.max(obj.mesh.extents)) + 2 * SDF_MARGIN_M
    return int(min(max(cfg.sdf_resolution, np.ceil(span / cell) + 1), 256))


@dataclass(frozen=True)
class GraspStarts:
    """Initial hands of one optimisation batch (float64, model metres, object frame).

    Attributes:
        angles: ``[n, 15, 3]`` joint angles (radians, within the joint limits).
        rotation / translation: ``[n, 3, 3]`` / ``[n, 3]`` global placement.
        length_factors / palm_width / hand_length: ``[n, 16]`` / ``[n]`` / ``[n]`` identity
            (kept fixed).
        power: ``[n]`` bool: the palm centre is a contact (plain engine).
        types: ``[n]`` indices into :data:`~halohand.grasp.taxonomy.TYPE_NAMES` (taxonomy
            engine: the type's contact points), ``None`` for the plain engine.
        object_points: ``[P, 3]`` object surface points of the ``object_in_hand`` term.
        anchor_angles: ``[n, 15, 3]`` joint angles (radians) of each start's own articulation
            prior (energy term ``anchor``: mean squared deviation from them in the pose
            prior's standard deviations, weight :attr:`EnergyWeights.anchor`), e.g. the
            fitted sample a refinement starts from; ``None``: no such term.
    """

    angles: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    length_factors: np.ndarray
    palm_width: np.ndarray
    hand_length: np.ndarray
    power: np.ndarray
    types: np.ndarray | None
    object_points: np.ndarray
    anchor_angles: np.ndarray | None = None


def synthesize_batch(
    obj: GraspObject, n: int, seed: int, side: str = "right", config: SynthesisConfig | None = None
) -> dict[str, np.ndarray]:
    """Optimise ``n`` starts around ``obj`` and evaluate them.

    Returns:
        Arrays over the ``n`` starts (accepted or not): ``keypoints`` ``[n, 21, 3]`` float32
        metres in the object frame (project order); ``angles`` ``[n, 15, 3]`` radians;
        ``global_rot`` ``[n, 3, 3]``; ``translation`` ``[n, 3]`` m; ``hand_length`` ``[n]`` m;
        ``length_factors`` ``[n, 16]``; ``palm_width`` ``[n]``; ``power`` ``[n]`` bool (palm
        contact asked); ``energy_<term>`` ``[n]`` (weighted, final step) and ``energy``;
        ``penetration_mm``, ``tip_contacts``, ``self_penetration_mm``,
        ``intersection_cm3`` (NaN where not computed: failed an earlier filter) and
        ``accepted`` ``[n]``.
    """
    cfg = SynthesisConfig() if config is None else config
    model, geo = _model(), _hand_geometry()
    dt = torch.float64
    rng = np.random.default_rng(seed)
    # All randomness comes from this one numpy generator, so a batch is reproducible.

    # Identities.
    ids = [IdentityPrior().sample(rng) for _ in range(n)]
    factors = torch.tensor(np.stack([i.length_factors for i in ids]), dtype=dt)
    width = torch.tensor([i.palm_width for i in ids], dtype=dt)
    length = torch.tensor([i.hand_length for i in ids], dtype=dt)
    scale = model.scale_for_hand_length(length, factors, width)

    if cfg.taxonomy:
        share = (
            {k: 1.0 / len(cfg.types) for k in cfg.types}
            if cfg.types
            else tx.choose_types(tx.analyse(obj))
        )
        types = tx.type_of_start(share, n, rng)
        pts, _ = obj.surface_points(cfg.object_points, seed=int(rng.integers(2**31)))
        a0, r0, t0_ = tx.place_starts(obj, types, rng, model, factors, width, scale, side,
                                      length.numpy())  # fmt: skip
        angles = torch.tensor(a0, dtype=dt)
        power = np.array([tx.GRASP_TYPES[tx.TYPE_NAMES[t]].power for t in types])
    else:
        # Pre-grasp poses: a random gesture opened to 20-60 % plus 5 degrees of noise.
        lo = torch.tensor(JOINT_LIMITS[..., 0], dtype=dt)
        hi = torch.tensor(JOINT_LIMITS[..., 1], dtype=dt)
        g = np.stack([GESTURES[_PREGRASPS[k]] for k in rng.integers(len(_PREGRASPS), size=n)])
        a0 = g * rng.uniform(0.2, 0.6, size=(n, 1, 1)) + rng.normal(0, np.deg2rad(5), g.shape)
        angles = torch.minimum(torch.maximum(torch.tensor(a0, dtype=dt), lo), hi)

        # Placement: the palm centre a gap away from the object's support point in a random
        # direction u, palm normal toward -u within 20 degrees, random roll about it.
        pts, _ = obj.surface_points(cfg.object_points, seed=int(rng.integers(2**31)))
        with torch.no_grad():
            local = model(angles, factors, width, scale, side=side, with_vertices=True).vertices
        palm_local = local[:, geo.palm_vertex].numpy()  # [n, 3] after scale and mirror
        rots, trans = [], []
        for b in range(n):
            u = rng.normal(size=3)
            u /= np.linalg.norm(u)
            support = pts[np.argmax(pts @ u)]
            tilt = rng.normal(size=3)
            tilt -= (tilt @ u) * u
            tilt /= np.linalg.norm(tilt)
            facing = rodrigues(tilt, np.deg2rad(rng.uniform(0, 20))) @ -u
            r = align(np.array([0.0, 0.0, -1.0]), facing)
            r = rodrigues(facing, rng.uniform(0, 2 * np.pi)) @ r
            target = support + u * rng.uniform(*cfg.palm_gap_m)
            rots.append(r)
            trans.append(target - r @ palm_local[b])
        r0, t0_ = np.stack(rots), np.stack(trans)
        power = rng.random(n) < 0.5
        types = None

    starts = GraspStarts(
        angles=angles.numpy(), rotation=np.asarray(r0, dtype=np.float64),
        translation=np.asarray(t0_, dtype=np.float64), length_factors=factors.numpy(),
        palm_width=width.numpy(), hand_length=length.numpy(), power=np.asarray(power),
        types=types, object_points=pts,
    )  # fmt: skip
    return optimise_starts(obj, starts, side, cfg)


def optimise_starts(
    obj: GraspObject,
    starts: GraspStarts,
    side: str = "right",
    config: SynthesisConfig | None = None,
) -> dict[str, np.ndarray]:
    """Minimise the engine's energy from ``starts`` and evaluate the results (the second half
    of :func:`synthesize_batch`, which documents the returned arrays; also the refinement of
    :mod:`~halohand.grasp.pose_refine`)."""
    cfg = SynthesisConfig() if config is None else config
    if cfg.taxonomy and starts.types is None:
        raise HalohandInputError("taxonomy starts need grasp types")
    w = cfg.weights
    model, geo = _model(), _hand_geometry()
    dt = torch.float64
    n = len(starts.angles)
    mirror = np.array([-1.0 if side == "left" else 1.0, 1.0, 1.0])
    factors = torch.tensor(starts.length_factors, dtype=dt)
    width = torch.tensor(starts.palm_width, dtype=dt)
    length = torch.tensor(starts.hand_length, dtype=dt)
    scale = model.scale_for_hand_length(length, factors, width)
    lo = torch.tensor(JOINT_LIMITS[..., 0], dtype=dt)
    hi = torch.tensor(JOINT_LIMITS[..., 1], dtype=dt)
    angles = torch.tensor(starts.angles, dtype=dt)
    rot0 = torch.tensor(starts.rotation, dtype=dt)
    trans0 = torch.tensor(starts.translation, dtype=dt)
    power = torch.tensor(starts.power)
    pts = starts.object_points
    types = starts.types
    if cfg.taxonomy:
        cverts = tx.contact_vertices()
        names = list(cverts)
        contact_idx = torch.tensor([cverts[k] for k in names])
        contact_mask = torch.tensor(
            [[k in tx.GRASP_TYPES[tx.TYPE_NAMES[t]].contacts for k in names] for t in types],
            dtype=dt,
        )
        # The palm's centre is asked to stay PALM_GAP_M off the surface: the simulator holds
        # the hand by the convex hull of each part, and the palm's hull fills the hollow of a
        # curled hand, so a palm centre on the surface puts its hull inside the object.
        # The pads are asked ``press_mm`` into the surface (a fingertip pad pressed flat).
        contact_gap = torch.tensor(
            [tx.PALM_GAP_M if k == "palm" else -cfg.press_mm * 1e-3 for k in names], dtype=dt
        )

    resolution = sdf_resolution(obj, cfg) if cfg.taxonomy else cfg.sdf_resolution
    sdf = obj.sdf_grid(resolution, SDF_MARGIN_M)
    sdf_pen = (
        obj.sdf_grid(resolution, SDF_MARGIN_M, fill_enclosed=True) if cfg.fill_enclosed else sdf
    )
    obj_pts = torch.tensor(pts, dtype=dt)
    near = _NearPoints(obj_pts, NEAR_MARGIN_M)
    mean, std = pose_prior_stats()
    mu, inv_std = torch.tensor(mean, dtype=dt), torch.tensor(1.0 / std, dtype=dt)
    anchor = None
    if starts.anchor_angles is not None and w.anchor > 0:
        anchor = torch.tensor(starts.anchor_angles, dtype=dt)
    palm_c = torch.tensor(geo.palm_centres * mirror, dtype=dt)
    palm_r = torch.tensor(geo.palm_radii, dtype=dt)
    pair_a = torch.tensor(geo.self_pairs[:, 0])
    pair_b = torch.tensor(geo.self_pairs[:, 1])
    tip_idx = torch.tensor(geo.tip_vertex)
    bone_a, bone_b = torch.tensor(geo.bone_kp[:, 0]), torch.tensor(geo.bone_kp[:, 1])
    fr_bone = torch.tensor(geo.bone_radius, dtype=dt)

    rvec = torch.zeros(n, 3, dtype=dt)
    dtrans = torch.zeros(n, 3, dtype=dt)  # centimetres
    params = [angles, rvec, dtrans]
    for p in params:
        p.requires_grad_(True)

    def energies() -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
        """Weighted terms ``{name: [n]}``, keypoints, vertices and sphere data."""
        rot = rot0 @ axis_angle_to_matrix(rvec)
        tr = trans0 + dtrans / _CM
        out = model(
            angles, factors, width, scale, side=side, global_rot=rot, translation=tr,
            with_vertices=True,
        )  # fmt: skip
        kp, verts = out.keypoints, out.vertices
        assert verts is not None
        d_vert = sdf(verts)  # [n, V]
        if cfg.taxonomy:
            # The type's contact points only (pads, palm); force closure over them.
            tips = verts[:, contact_idx]  # [n, K, 3]
            contact = ((d_vert[:, contact_idx] - contact_gap).abs() * contact_mask).sum(-1)
        else:
            tips = verts[:, tip_idx]  # [n, 5, 3]
            d_tip = d_vert[:, tip_idx]
            d_palm = d_vert[:, geo.palm_vertex]
            contact = d_tip.abs().sum(-1) + power * d_palm.abs()
        d_pen = d_vert if sdf_pen is sdf else sdf_pen(verts)
        pen = torch.relu(-d_pen).sum(-1)
        if cfg.taxonomy:
            deep = _CM * torch.relu(-d_pen - cfg.hinge_mm * 1e-3)
            pen = pen + cfg.hard_penetration / _CM * deep.square().sum(-1)
        # Spheres: finger spheres from the keypoints, palm spheres rigid with the hand.
        fc, fr, _ = _finger_spheres(kp, geo.bone_kp, geo.bone_radius)
        fr_t = torch.tensor(fr, dtype=dt)[None] * (scale[:, None] / 1.0)
        pc = (palm_c[None] * scale[:, None, None]) @ rot.transpose(-1, -2) + tr[:, None]
        pr = palm_r[None] * scale[:, None]
        centres = torch.cat([fc, pc], 1)  # [n, S, 3]
        radii = torch.cat([fr_t, pr], 1)  # [n, S]

        def depth_of(p: torch.Tensor) -> torch.Tensor:
            """``[n, Q, S]`` depth of points ``p [n, Q, 3]`` inside each bone's capsule
            (or sphere) and each palm sphere (negative outside)."""
            if cfg.finger_capsules:
                return torch.cat(
                    [
                        fr_bone[None] * scale[:, None, None]
                        - _capsule_distance(p, kp[:, bone_a], kp[:, bone_b]),
                        pr[:, None] - torch.cdist(p, pc),
                    ],
                    -1,
                )  # [n, Q, 15 + palm spheres]
            return radii[:, None] - torch.cdist(p, centres)

        # Only the object points that can be inside the hand: the terms below are zero
        # for the others (exact; :class:`_NearPoints`).
        movers = torch.cat([kp, pc], 1).detach()
        if near.stale(movers):
            depth = depth_of(obj_pts[None].expand(n, -1, -1))  # [n, P, S]
            near.update(depth.detach().amax(-1), movers)
        else:
            depth = depth_of(near.points())
        oih = torch.relu(depth).sum((-1, -2))
        if cfg.taxonomy:
            deep = _CM * torch.relu(depth - cfg.hinge_mm * 1e-3)
            oih = oih + cfg.hard_penetration / _CM * deep.square().sum((-1, -2))
        gap = torch.linalg.vector_norm(centres[:, pair_a] - centres[:, pair_b], dim=-1)
        spen = torch.relu(radii[:, pair_a] + radii[:, pair_b] - gap).sum(-1)
        normals = -sdf.normals(tips)  # inward
        if cfg.taxonomy:
            m = contact_mask[..., None]
            normals = normals * m
            centre = (tips * m).sum(1, keepdim=True) / m.sum(1, keepdim=True)
            arm = (tips - centre) * m
        else:
            arm = tips - tips.mean(1, keepdim=True)
        net_f = normals.sum(1)
        net_t = torch.linalg.cross(arm, normals, dim=-1).sum(1) / 0.05
        fc_e = net_f.square().sum(-1) + net_t.square().sum(-1)
        prior = ((angles - mu) * inv_std).square().mean((-1, -2))
        terms = {
            "contact": w.contact * (cfg.contact_scale if cfg.taxonomy else 1.0) * _CM * contact,
            "penetration": w.penetration * _CM * pen,
            "object_in_hand": w.object_in_hand * _CM * oih,
            "self_penetration": w.self_penetration * _CM * spen,
            "force_closure": w.force_closure * fc_e,
            "prior": w.prior * prior,
        }
        if anchor is not None:
            terms["anchor"] = w.anchor * ((angles - anchor) * inv_std).square().mean((-1, -2))
        return terms, kp, verts, rot

    t0 = time.perf_counter()
    if cfg.separate_cm > 0:
        with torch.no_grad():
            dtrans.copy_(_separation(energies, dtrans, cfg.separate_cm))
    opt = torch.optim.Adam(params, lr=cfg.lr)
    for it in range(cfg.steps):
        for grp in opt.param_groups:  # cosine decay to 5 % of lr at the last step
            grp["lr"] = cfg.lr * cosine(it, cfg.steps - 1, 1.0, 0.05)
        opt.zero_grad(set_to_none=True)
        terms, *_ = energies()
        sum(terms.values()).sum().backward()  # rows are independent
        opt.step()
        with torch.no_grad():
            angles.copy_(torch.minimum(torch.maximum(angles, lo), hi))

    with torch.no_grad():
        terms, kp, verts, rot = energies()
    result: dict[str, np.ndarray] = {
        "keypoints": kp.numpy().astype(np.float32),
        "angles": angles.detach().numpy().copy(),
        "global_rot": rot.numpy(),
        "translation": (trans0 + dtrans.detach() / _CM).numpy(),
        "hand_length": length.numpy(),
        "length_factors": factors.numpy(),
        "palm_width": width.numpy(),
        "power": power.numpy(),
    }
    for k, v in terms.items():
        result[f"energy_{k}"] = v.numpy()
    result["energy"] = sum(terms.values()).numpy()
    result.update(_evaluate(obj, verts.numpy(), kp.numpy(), side, scale.numpy(), cfg))
    if cfg.taxonomy:
        result.update(_evaluate_types(obj, verts.numpy(), types, result, side, cfg))
    result["optimise_seconds"] = np.array(time.perf_counter() - t0)
    return result


#: Distances (cm) of the rigid moves tried by ``separate_cm``.
_SEPARATION_STEPS_CM: Final = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def _separation(
    energies: Callable[[], tuple[dict[str, torch.Tensor], Any, Any, Any]],
    dtrans: torch.Tensor,
    limit_cm: float,
) -> torch.Tensor:
    """``[n, 3]`` rigid moves (cm) of the starts out of the object (``separate_cm``): per
    start, the shortest candidate whose overlap is within 10 % of the best gain.
    ``energies`` reads ``dtrans``, which this sets to each candidate in turn."""
    axes = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    axes = axes[np.abs(axes).sum(1) > 0].astype(np.float64)
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)  # 26 directions
    steps = [s for s in _SEPARATION_STEPS_CM if s <= limit_cm]
    moves = np.concatenate([np.zeros((1, 3))] + [axes * s for s in steps])  # [K, 3]
    cost = []
    for m in moves:
        dtrans.copy_(torch.as_tensor(m).expand_as(dtrans))
        terms = energies()[0]
        cost.append(terms["penetration"] + terms["object_in_hand"])
    c = torch.stack(cost).numpy()  # [K, n]
    ok = c <= c.min(0) + 0.1 * (c[0] - c.min(0))  # row 0 (no move) always qualifies if best
    length = np.linalg.norm(moves, axis=1)
    pick = np.argmin(np.where(ok, length[:, None], np.inf), axis=0)
    return torch.as_tensor(moves[pick], dtype=dtrans.dtype)


def _evaluate(
    obj: GraspObject,
    verts: np.ndarray,
    kp: np.ndarray,
    side: str,
    scale: np.ndarray,
    cfg: SynthesisConfig,
) -> dict[str, np.ndarray]:
    """Exact acceptance measures of posed hands ``[n, V, 3]`` / ``[n, 21, 3]``."""
    geo = _hand_geometry()
    faces = _model().mesh_faces(side)
    n = len(verts)
    d = obj.signed_distance(verts.reshape(-1, 3)).reshape(n, -1)
    pen_mm = np.maximum(-d.min(1), 0.0) * 1e3
    tips = (d[:, geo.tip_vertex] < cfg.contact_mm * 1e-3).sum(1)
    fc, fr, _ = _finger_spheres(kp, geo.bone_kp, geo.bone_radius)
    spen = np.zeros(n)
    a, b = geo.self_pairs[:, 0], geo.self_pairs[:, 1]
    nf = fc.shape[1]
    for i in range(n):
        # Finger spheres only (the palm spheres' overlap is dominated by the thumb base).
        m = (a < nf) & (b < nf)
        gap = np.linalg.norm(fc[i, a[m]] - fc[i, b[m]], axis=1)
        spen[i] = max(0.0, float(np.max(scale[i] * (fr[a[m]] + fr[b[m]]) - gap))) * 1e3
    vol = np.full(n, np.nan)
    # The taxonomy's types ask for their own contact points instead (``_evaluate_types``).
    ok = (pen_mm <= cfg.max_penetration_mm) & ((tips >= cfg.min_tip_contacts) | cfg.taxonomy)
    ok &= spen <= cfg.max_self_penetration_mm
    for i in np.flatnonzero(ok):
        vol[i] = intersection_volume(verts[i], faces, obj.vertices, obj.faces)
    accepted = ok & (np.nan_to_num(vol, nan=np.inf) <= cfg.max_intersection_cm3)
    return {
        "penetration_mm": pen_mm,
        "tip_contacts": tips,
        "self_penetration_mm": spen,
        "intersection_cm3": vol,
        "accepted": accepted,
    }


def _evaluate_types(
    obj: GraspObject,
    verts: np.ndarray,
    types: np.ndarray,
    plain: dict[str, np.ndarray],
    side: str,
    cfg: SynthesisConfig,
) -> dict[str, np.ndarray]:
    """Taxonomy acceptance of posed hands ``[n, V, 3]`` (the plain filters' results in
    ``plain``): the type's contact points within ``contact_mm`` of the surface, the object's
    surface at most ``max_penetration_mm`` inside the hand (a finger through a plate puts
    no hand vertex deeper than half its thickness), then the simulator."""
    import igl

    cverts = tx.contact_vertices()
    faces = np.ascontiguousarray(_model().mesh_faces(side), dtype=np.int64)
    labels = _model().template.part_labels
    n = len(verts)
    surface = np.ascontiguousarray(np.concatenate([obj.surface_points(2000, 0)[0], obj.vertices]))
    pads = np.zeros(n, dtype=np.int64)
    pads_ok = np.zeros(n, dtype=bool)
    into_hand = np.zeros(n)
    stable = np.zeros(n, dtype=bool)
    overlap = np.full(n, np.nan)
    shift = np.full((n, len(DIRECTIONS)), np.nan)
    names = list(cverts)
    dist = obj.signed_distance(verts[:, [cverts[c] for c in names]].reshape(-1, 3))
    dist = dist.reshape(n, len(names)) * 1e3
    for i in range(n):
        want = [names.index(c) for c in tx.GRASP_TYPES[tx.TYPE_NAMES[types[i]]].contacts]
        # The palm's centre lies in its hollow when the fingers curl round a body (6-10 mm
        # off a 4 cm capsule in a trial wrap): it gets twice the pads' distance.
        limit = np.array([2.0 if names[k] == "palm" else 1.0 for k in want]) * cfg.contact_mm
        pads[i] = int((dist[i, want] < limit).sum())
        pads_ok[i] = pads[i] == len(want)
        hand = np.ascontiguousarray(verts[i], dtype=np.float64)
        sd = igl.signed_distance(
            surface, hand, faces, sign_type=igl.SIGNED_DISTANCE_TYPE_PSEUDONORMAL
        )[0]
        into_hand[i] = max(0.0, -float(np.min(sd))) * 1e3
    ok = plain["accepted"] & pads_ok & (into_hand <= cfg.max_penetration_mm)
    for i in np.flatnonzero(ok if cfg.stability_filter else np.zeros(n, bool)):
        parts = [verts[i, labels == p] for p in np.unique(labels)]
        res = simulate_hulls([p for p in parts if len(p) >= 8], obj)
        stable[i] = res.stable
        overlap[i] = res.start_overlap_mm
        shift[i] = res.shift_m * 1e3
    return {
        "grasp_type": np.array([tx.TYPE_NAMES[t] for t in types]),
        "pad_contacts": pads,
        "contact_distance_mm": dist.astype(np.float32),
        "object_in_hand_mm": into_hand,
        "stable": stable,
        "shift_mm": shift,
        "start_overlap_mm": overlap,
        "accepted": ok & stable if cfg.stability_filter else ok,
    }


# -- the engine -------------------------------------------------------------------------------


def _batch_seed(seed: int, object_id: str, index: int) -> int:
    digest = hashlib.sha256(f"{seed}:{object_id}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _read_accepted(path: Path) -> int:
    try:
        with np.load(path) as z:
            return int(z["accepted"].sum())
    except Exception as exc:  # a shard is written atomically, so this is outside damage
        raise CorruptFileError(f"cannot read grasp shard {path}: {exc}") from exc


def _rates(attempts: int, accepted: int, seconds: float) -> dict[str, Any]:
    """Counts and per-attempt / per-accepted costs of a run (an object's or all)."""
    return {
        "attempts": attempts,
        "accepted": accepted,
        "acceptance_rate": accepted / max(attempts, 1),
        "seconds_per_attempt": seconds / max(attempts, 1),
        "seconds_per_accepted": seconds / accepted if accepted else None,
    }


def _synthesize_object(
    object_id: str,
    n_per_object: int,
    out_dir: str,
    seed: int,
    config: SynthesisConfig,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run batches for one object until ``n_per_object`` grasps are accepted (or
    ``max_batches``); finished shards are counted, not recomputed."""
    torch.set_num_threads(1)
    obj = load_object(object_id)
    folder = Path(out_dir) / object_id
    accepted = attempts = 0
    seconds = 0.0
    done_before = 0
    for index in range(config.max_batches):
        if accepted >= n_per_object:
            break
        path = folder / f"batch_{index:05d}.npz"
        if path.exists():
            got = _read_accepted(path)
            with np.load(path) as z:
                seconds += float(z["seconds"])
                attempts += len(z["accepted"])
            accepted += got
            done_before += 1
            if progress:
                progress(got)
            continue
        side = config.sides if config.sides != "both" else ("right", "left")[index % 2]
        t0 = time.perf_counter()
        res = synthesize_batch(obj, config.batch_size, _batch_seed(seed, object_id, index),
                               side, config)  # fmt: skip
        dt = time.perf_counter() - t0
        n = len(res["accepted"])
        res.update(
            side=np.array([side] * n),
            object_id=np.array(object_id),
            object_pose=np.repeat(np.eye(4)[None], n, axis=0),  # object -> grasp frame
            seconds=np.array(dt),
            seed=np.array(seed),
            batch_index=np.array(index),
            config=np.array(json.dumps(config.to_dict(), sort_keys=True)),
        )
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **res)
        got = int(res["accepted"].sum())
        accepted += got
        attempts += n
        seconds += dt
        if progress:
            progress(got)
    return {
        "object_id": object_id,
        **_rates(attempts, accepted, seconds),
        "seconds": seconds,
        "shards_reused": done_before,
    }


def synthesize(
    objects: list[str],
    n_per_object: int,
    out_dir: str | Path,
    seed: int = 0,
    config: SynthesisConfig | None = None,
    workers: int = 1,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Synthesise ``n_per_object`` accepted grasps for each registry object.

    Writes ``out_dir/<object_id>/batch_XXXXX.npz`` shards, ``config.json`` (a resumed run
    must use the same settings and seed) and ``summary.json``; returns the summary.
    """
    cfg = SynthesisConfig() if config is None else config
    if n_per_object < 1:
        raise HalohandInputError(f"n_per_object must be >= 1, got {n_per_object}")
    if workers < 1:
        raise HalohandInputError(f"workers must be >= 1, got {workers}")
    if not objects:
        raise HalohandInputError("no objects to synthesise grasps for")
    for oid in objects:
        load_object(oid)  # validate names before any work
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    settings = {"seed": seed, "config": cfg.to_dict()}
    cfg_path = out / "config.json"
    if cfg_path.exists():
        try:
            old = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as exc:
            raise CorruptFileError(f"cannot read {cfg_path}: {exc}") from exc
        if old != json.loads(json.dumps(settings)):
            raise HalohandInputError(
                f"{out} holds grasps made with other settings or seed; use a new --out"
            )
    else:
        write_text_atomic(cfg_path, json.dumps(settings, indent=2, sort_keys=True) + "\n")

    from tqdm import tqdm

    t0 = time.perf_counter()
    bar = tqdm(total=n_per_object * len(objects), unit="grasp", disable=not show_progress)

    def advance(k: int) -> None:
        bar.update(max(0, min(k, bar.total - bar.n)))

    per_object: list[dict[str, Any]] = []
    if workers == 1:
        for oid in objects:
            per_object.append(_synthesize_object(oid, n_per_object, str(out), seed, cfg, advance))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futs = [
                pool.submit(_synthesize_object, oid, n_per_object, str(out), seed, cfg)
                for oid in objects
            ]
            for f in as_completed(futs):
                res = f.result()
                advance(min(res["accepted"], n_per_object))
                per_object.append(res)
        per_object.sort(key=lambda r: objects.index(r["object_id"]))
    bar.close()
    attempts = sum(r["attempts"] for r in per_object)
    accepted = sum(r["accepted"] for r in per_object)
    compute = sum(r["seconds"] for r in per_object)
    summary = {
        "objects": per_object,
        **_rates(attempts, accepted, compute),
        "compute_seconds": compute,
        "wall_seconds": time.perf_counter() - t0,
        "workers": workers,
        "seed": seed,
        "torch_threads": torch.get_num_threads(),
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def load_grasps(out_dir: str | Path, accepted_only: bool = True) -> dict[str, np.ndarray]:
    """Concatenate the shards under ``out_dir`` (sorted by object and batch).

    Returns the per-grasp arrays of :func:`synthesize_batch` plus ``side`` and
    ``object_id`` per grasp; only accepted grasps unless ``accepted_only`` is off.
    """
    paths = sorted(Path(out_dir).glob("*/batch_*.npz"))
    if not paths:
        raise FileNotFoundError(f"no grasp shards under {out_dir}")
    parts: dict[str, list[np.ndarray]] = {}
    for p in paths:
        try:
            z = dict(np.load(p))
        except Exception as exc:
            raise CorruptFileError(f"cannot read grasp shard {p}: {exc}") from exc
        n = len(z["accepted"])
        keep = z["accepted"] if accepted_only else np.ones(n, bool)
        z["object_id"] = np.array([str(z["object_id"])] * n)
        for k, v in z.items():
            if np.ndim(v) >= 1 and len(v) == n:
                parts.setdefault(k, []).append(v[keep])
    return {k: np.concatenate(v) for k, v in parts.items()}
