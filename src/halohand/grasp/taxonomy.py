"""Grasp types from a taxonomy, chosen and placed from the object's geometry (engine starts).

The plain engine (:mod:`halohand.grasp.synthesis`) starts every hand from a random direction
with a random gesture and asks all five fingertips to touch; most of what comes out is a
half-open claw. Here each start is one *grasp type* of a human grasp taxonomy (after Feix et
al.'s GRASP taxonomy and Cutkosky's; the ideas, not their tables):

=================== ============= =========================================== ============
type                gesture       contact points (pads: palmar side)          free fingers
=================== ============= =========================================== ============
``power_wrap``      cylinder      five distal pads + palm                     none
``precision_pinch`` pinch         thumb and index distal pads                 M, R, L
``tripod``          tripod        thumb, index and middle distal pads         R, L
``lateral``         lateral_pinch thumb pad + radial side of the index        M, R, L
                                  middle phalanx
``hook``            hook, thumb   palmar side of the index and middle         R, L
                    of the pinch  middle phalanges + thumb pad
``spherical``       sphere        five distal pads + palm                     none
``disk_pinch``      pinch         thumb pad on one face, index and middle     R, L
                                  pads on the other (a thin part)
=================== ============= =========================================== ============

A *pad* is a template vertex on the palmar side (-Y of the joint frame) of a phalanx, at
60 % of the distal bone (50 % of the middle one), not the tip and not the nail; the free
fingers get no contact term (they may rest on the object or not).

**Type choice** (:func:`choose_types`, from :func:`analyse`, lengths in metres, ``L`` the
hand length, 0.185 m for the prior's mean hand): extents ``e1 >= e2 >= e3`` along the
axes of the minimum-volume oriented bounding box (principal axes of the inertia tilt
toward a handle's mass; the box stands on a mug's axis):

- *flat* (``e3 <= FLAT_M``, 4 cm, and ``e3 <= 0.35 e2``): disk/edge pinch (0.7) and lateral (0.3);
- *round* (``e1 <= 1.25 e3``): spherical with spread fingers when ``e1 >= 7 cm``; smaller
  ones spherical 0.3, tripod 0.35, pinch 0.35; below 3.5 cm pinch and tripod only;
- *small* (``e1 <= 7 cm``): pinch, tripod, lateral (the last when ``e3 <= 3 cm``);
- *long* (``e1 >= 1.5 e2``) or any other object with a section that fits the hand
  (``min`` of two extents ``<= 0.45 L``): power wrap about that axis (0.6), tripod and pinch
  across its section (0.2 each) when the section is at most 8 cm;
- *larger than the hand* with no section to wrap: tripod / pinch at a thin part or an edge,
  never a wrap;
- a *through-hole* with room for a finger (:func:`find_handle`: a point of the object's
  hull, outside it, enclosed in a plane by the object within 4 cm in every direction while
  free along the plane's normal both ways; the hook goes round a part of the ring with free
space beyond it, not the cup's wall) adds a hook (0.4 of the starts), and a thin part
  (local thickness <= 1.2 cm along the inward normal: rims, walls, handles, plates) adds a
  disk/edge pinch (0.15) to a non-flat object.

**Placement** (:func:`place_starts`): the type's contact points in the opened gesture (the
gesture's angles scaled toward the flat hand until the aperture between the thumb pad and
the opposing pads is the object's width there plus 2 cm) are turned so that the thumb -> finger
axis lies along the opposition axis (precision types), the index -> little axis along the
wrap axis or the handle bar (wrap, hook), and the palm faces the object (power types) or the
wrist points away from it along the approach direction (precision types); then moved so that
their centre sits at the target: near an edge (1-1.5 cm in, precision), 1-2 cm off the
surface (the palm, power), on the handle's bar (hook).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Final

import numpy as np
import torch

from halohand.core.errors import HalohandInputError
from halohand.core.rotations import rodrigues
from halohand.handmodel.pose import JOINT_LIMITS
from halohand.handmodel.prior import GESTURES
from halohand.handmodel.torch_model import TorchHandModel
from halohand.skeleton import PART_NAMES

if TYPE_CHECKING:
    from halohand.objects.registry import GraspObject

__all__ = [
    "CONTACT_POINTS", "GRASP_TYPES", "GraspType", "ObjectGeometry", "analyse",
    "choose_types", "contact_vertices", "find_handle", "place_starts",
]  # fmt: skip

_FINGER_NAMES: Final = ("thumb", "index", "middle", "ring", "pinky")
#: Keypoints (project order) of each finger's (MCP / CMC, PIP, DIP, tip).
_FINGER_KP: Final = {f: tuple(range(1 + 4 * i, 5 + 4 * i)) for i, f in enumerate(_FINGER_NAMES)}
#: WebXR joint (``rest_frames`` row) of each finger's proximal phalanx; +1 intermediate,
#: +2 distal (the thumb has no intermediate: its "proximal" row is its metacarpal).
_WEBXR_PROXIMAL: Final = {"thumb": 1, "index": 6, "middle": 11, "ring": 16, "pinky": 21}

#: Rows of the ``[15, 3]`` joint angles of each finger (POSE_JOINTS: thumb_cmc, ... pinky_dip).
_FINGER_JOINTS: Final = {f: [3 * i, 3 * i + 1, 3 * i + 2] for i, f in enumerate(_FINGER_NAMES)}

#: Contact points: name -> (finger, bone 3 = distal / 2 = middle, position along the bone,
#: side "palmar" or "radial"); ``palm`` is the palm centre (:func:`contact_vertices`).
CONTACT_POINTS: Final[dict[str, tuple[str, int, float, str]]] = {
    **{f"{f}_pad": (f, 3, 0.6, "palmar") for f in _FINGER_NAMES},
    "index_middle": ("index", 2, 0.5, "palmar"),
    "middle_middle": ("middle", 2, 0.5, "palmar"),
    "index_radial": ("index", 2, 0.5, "radial"),
}
_ALL_POINTS: Final = (*CONTACT_POINTS, "palm")


@dataclass(frozen=True)
class GraspType:
    """One grasp type: its initial gesture (:data:`~halohand.handmodel.prior.GESTURES`), the
    contact points that must touch (names of :data:`CONTACT_POINTS` or ``palm``), the fingers
    left free (no contact term) and whether it is a power grasp (palm facing the object)."""

    name: str
    gesture: str
    contacts: tuple[str, ...]
    free: tuple[str, ...]
    power: bool


GRASP_TYPES: Final[dict[str, GraspType]] = {
    t.name: t
    for t in (
        GraspType("power_wrap", "cylinder",
                  ("thumb_pad", "index_pad", "middle_pad", "ring_pad", "pinky_pad", "palm"),
                  (), True),
        GraspType("precision_pinch", "pinch", ("thumb_pad", "index_pad"),
                  ("middle", "ring", "pinky"), False),
        GraspType("tripod", "tripod", ("thumb_pad", "index_pad", "middle_pad"),
                  ("ring", "pinky"), False),
        GraspType("lateral", "lateral_pinch", ("thumb_pad", "index_radial"),
                  ("middle", "ring", "pinky"), False),
        GraspType("hook", "hook", ("index_middle", "middle_middle", "thumb_pad"),
                  ("ring", "pinky"), False),
        GraspType("spherical", "sphere",
                  ("thumb_pad", "index_pad", "middle_pad", "ring_pad", "pinky_pad", "palm"),
                  (), True),
        GraspType("disk_pinch", "pinch", ("thumb_pad", "index_pad", "middle_pad"),
                  ("ring", "pinky"), False),
    )
}  # fmt: skip
TYPE_NAMES: Final[tuple[str, ...]] = tuple(GRASP_TYPES)

#: Mean hand length of the identity prior (metres): the default for type choice.
MEAN_HAND_LENGTH: Final = 0.185
#: Widest section a power wrap closes around, as a fraction of the hand length.
WRAP_FRACTION: Final = 0.45
#: Distance (m) the palm centre is asked to keep from the surface in power grasps.
PALM_GAP_M: Final = 0.006
#: Local thickness (metres) below which a surface point belongs to a thin part.
THIN_M: Final = 0.012
#: Thickness (metres) up to which a slab (also at most 0.35 of its middle extent) is flat,
#: held by an edge with the thumb on one face: a 3-4 cm book too, which a wrap does not close
#: round (3 cm until the wide registry's books showed it).
FLAT_M: Final = 0.04


# -- contact points on the template ------------------------------------------------------------


@lru_cache(maxsize=1)
def contact_vertices() -> dict[str, int]:
    """Template vertex of each contact point (:data:`CONTACT_POINTS` and ``palm``).

    The vertex of the phalanx's part nearest a point 2 cm out of the bone, at the given
    position along it, on the palmar side (-Y of the phalanx's rest joint frame) or the
    radial side (toward the thumb: index MCP minus middle MCP, made normal to the bone).
    """
    model = _template_model()
    tpl = model.template
    kp, verts = model.rest_pose()
    out: dict[str, int] = {}
    for name, (finger, bone, t, side) in CONTACT_POINTS.items():
        k = _FINGER_KP[finger]
        a, b = kp[k[bone - 1]], kp[k[bone]]
        axis = (b - a) / np.linalg.norm(b - a)
        if side == "palmar":
            row = _WEBXR_PROXIMAL[finger] + bone - 1
            out_dir = -tpl.rest_frames[row, :3, 1]
        else:
            out_dir = kp[5] - kp[9]
        out_dir = out_dir - (out_dir @ axis) * axis
        out_dir /= np.linalg.norm(out_dir)
        q = a + t * (b - a) + 0.02 * out_dir
        cand = np.flatnonzero(tpl.part_labels == PART_NAMES.index(f"{finger}{bone}"))
        out[name] = int(cand[np.argmin(np.linalg.norm(verts[cand] - q, axis=1))])
    out["palm"] = palm_vertex(model)
    return out


@lru_cache(maxsize=1)
def _template_model() -> TorchHandModel:
    return TorchHandModel()


def palm_vertex(model: TorchHandModel) -> int:
    """The template vertex at the centre of the palmar surface: the palm vertex nearest a
    point 5 cm in front of the palm (-Z), the engine's palm contact point."""
    kp, verts = model.rest_pose()
    centre = kp[[0, 5, 9, 13, 17]].mean(0) * 0.4 + kp[[5, 9, 13, 17]].mean(0) * 0.6
    cand = np.flatnonzero(model.template.part_labels == 0)
    return int(cand[np.argmin(np.linalg.norm(verts[cand] - (centre - [0, 0, 0.05]), axis=1))])


# -- object geometry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Handle:
    """A through-hole (:func:`find_handle`): ``centre`` ``[3]`` m, unit ``axis`` ``[3]`` (free
    both ways), ``bars`` ``[k, 3]`` points on the middle of the material around it and the
    unit ``radial`` ``[k, 3]`` directions from the centre to them, ``radius`` the smallest
    distance (m) from the centre to the material in the plane."""

    centre: np.ndarray
    axis: np.ndarray
    bars: np.ndarray
    radial: np.ndarray
    radius: float


@dataclass(frozen=True)
class ObjectGeometry:
    """What the type choice and placement read from an object (:func:`analyse`).

    Attributes:
        axes: ``[3, 3]`` unit principal axes (rows), ordered by extent, largest first.
        extents: ``[3]`` extents (m) along them; centre ``[3]`` the bounding-box centre
            in those axes, in the object frame.
        points / normals: ``[P, 3]`` surface samples and outward normals.
        thickness: ``[P]`` distance (m) along the inward normal to the far side (capped
            at 0.1).
        handle: the through-hole found, or ``None``.
    """

    axes: np.ndarray
    extents: np.ndarray
    centre: np.ndarray
    points: np.ndarray
    normals: np.ndarray
    thickness: np.ndarray
    handle: Handle | None
    wrap_axis: np.ndarray | None = None
    wrap_origin: np.ndarray | None = None
    wrap_width: float = 0.0


def _march(obj: GraspObject, start: np.ndarray, dirs: np.ndarray, reach: float,
           step: float) -> np.ndarray:  # fmt: skip
    """``[N]`` distance along unit ``dirs`` ``[N, 3]`` from ``start`` ``[N, 3]`` at which the
    signed distance first changes sign from its value at the start (``inf``: not within
    ``reach``), on a ``step`` lattice of distances (exact signed distances, vectorised)."""
    ts = np.arange(step, reach + 1e-9, step)
    pts = start[:, None] + ts[None, :, None] * dirs[:, None]
    d = obj.signed_distance(pts.reshape(-1, 3)).reshape(len(start), len(ts))
    s0 = np.sign(obj.signed_distance(start))
    crossed = np.sign(d) != s0[:, None]
    first = np.where(crossed.any(1), crossed.argmax(1), -1)
    return np.where(first >= 0, ts[np.maximum(first, 0)], np.inf)


def _box_axes(obj: GraspObject) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Axes ``[3, 3]`` (rows, largest extent first), extents ``[3]`` (m) and centre ``[3]`` of
    the object's minimum-volume oriented bounding box (trimesh). Unlike the axes of inertia it
    is not tilted by a handle's mass: a mug's box stands on the cup's axis."""
    box = obj.mesh.bounding_box_oriented.primitive
    rot = np.asarray(box.transform)[:3, :3].T
    ext = np.asarray(box.extents, dtype=np.float64)
    order = np.argsort(-ext, kind="stable")
    return rot[order], ext[order], np.asarray(box.transform)[:3, 3].astype(np.float64)


def find_handle(obj: GraspObject, seed: int = 0, reach: float = 0.04) -> Handle | None:
    """A through-hole of ``obj`` with room for a finger, or ``None``.

    Only for an object of genus >= 1 (Euler characteristic of its closed mesh below 2: a
    ring, a handle). Candidates: 600 points of the bounding box outside the object by at
    least 8 mm (a finger's half-thickness) and inside its convex hull; directions: the
    box's axes and the 6 diagonals between pairs of them. A candidate is a hole centre
    along a direction when rays along both signs of it leave the object's box without
    meeting material, and 12 rays in the normal plane all meet material within ``reach``.
    Of those, the one with the largest smallest in-plane distance wins (the roomiest).
    """
    mesh = obj.mesh
    if mesh.euler_number >= 2:
        return None
    rng = np.random.default_rng(seed)
    lo, hi = mesh.bounds
    cand = rng.uniform(lo, hi, size=(600, 3))
    cand = cand[obj.signed_distance(cand) > 0.008]
    cand = cand[mesh.convex_hull.contains(cand)]
    if len(cand) == 0:
        return None
    dirs: list[np.ndarray] = []
    for e in (_box_axes(obj)[0], np.eye(3)):
        dirs += [e[0], e[1], e[2]]
        for i in range(3):
            for j in range(i + 1, 3):
                dirs += [(e[i] + e[j]) / np.sqrt(2), (e[i] - e[j]) / np.sqrt(2)]
    diag = float(np.linalg.norm(hi - lo))
    best: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None
    angles = np.linspace(0.0, 2 * np.pi, 12, endpoint=False)
    for d in dirs:
        d = np.asarray(d, dtype=np.float64)
        both = np.concatenate([np.repeat(d[None], len(cand), 0), np.repeat(-d[None], len(cand), 0)])
        free = _march(obj, np.concatenate([cand, cand]), both, diag, 0.003)
        through = np.isinf(free[: len(cand)]) & np.isinf(free[len(cand) :])
        if not through.any():
            continue
        c = cand[through]
        u = np.cross(d, [1.0, 0.0, 0.0] if abs(d[0]) < 0.9 else [0.0, 1.0, 0.0])
        u /= np.linalg.norm(u)
        v = np.cross(d, u)
        radial = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v  # [12, 3]
        starts = np.repeat(c, len(angles), 0)
        rdirs = np.tile(radial, (len(c), 1))
        hit = _march(obj, starts, rdirs, reach, 0.002).reshape(len(c), len(angles))
        enclosed = np.isfinite(hit).all(1)
        if not enclosed.any():
            continue
        k = int(np.argmax(np.where(enclosed, hit.min(1), -1.0)))
        room = float(hit[k].min())
        if best is None or room > best[0]:
            best = (room, c[k], d, hit[k])
    if best is None:
        return None
    room, centre, axis, hit = best
    u = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    radial = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v
    entry = centre + hit[:, None] * radial
    # The bar's middle: halfway through the material along the same ray.
    width = _march(obj, entry + 1e-4 * radial, radial, 0.03, 0.001)
    ok = np.isfinite(width)
    # Only bars a hand can reach round: free space beyond them (not the cup's wall).
    beyond = entry + (np.where(ok, width, 0.0)[:, None] + 0.015) * radial
    ok &= obj.signed_distance(beyond) > 0.008
    if not ok.any():
        return None
    bars = entry[ok] + 0.5 * width[ok, None] * radial[ok]
    return Handle(centre, axis, bars, radial[ok], room)


def _round_axis(
    obj: GraspObject, axes: np.ndarray, pts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """An axis of (near) rotational symmetry among the box axes, or ``None``: the one about
    which the most surface samples, turned by 60, 90 and 120 degrees about the line through
    the samples' median, stay within 3 mm of the surface: at least 45 % and 1.3 times the
    next axis' share (the registry's mugs, whose solid handles hold a large part of the
    surface, score 0.5-0.76 about their axis and at most 0.37 about the others; a box
    without a square section does not pass; a ball, equal about all three, has none); the
    line is placed on a 5 mm grid around the surface centroid. Returns the axis, a point on
    it and the width of the body across it (twice the median distance of the samples from
    the axis)."""
    scores: list[float] = []
    best: tuple[float, int, np.ndarray] | None = None
    centroid = np.asarray(obj.mesh.centroid, dtype=np.float64)
    grid = np.arange(-0.02, 0.0201, 0.005)
    for k in range(3):
        a = axes[k]
        u, v = axes[(k + 1) % 3], axes[(k + 2) % 3]
        # The axis' position: the best of a 5 mm grid of lines within 2 cm of the centroid
        # (a handle pulls the centroid off a cup's axis), by 90 degree turns of 150 samples.
        origins = centroid + grid[:, None, None] * u + grid[None, :, None] * v
        origins = origins.reshape(-1, 3)
        r90 = rodrigues(a, np.pi / 2)
        few = pts[:150]
        q = (few[None] - origins[:, None]) @ r90.T + origins[:, None]
        d = np.abs(obj.signed_distance(q.reshape(-1, 3))).reshape(len(origins), -1)
        med = origins[int(np.argmax((d < 0.003).mean(1)))]
        share = []
        for ang in (60.0, 90.0, 120.0):
            r = rodrigues(a, np.deg2rad(ang))
            q2 = (pts - med) @ r.T + med
            share.append(np.mean(np.abs(obj.signed_distance(q2)) < 0.003))
        score = float(np.mean(share))
        scores.append(score)
        if best is None or score > best[0]:
            best = (score, k, med)
    assert best is not None
    score, k, med = best
    if score < 0.45 or score < 1.3 * sorted(scores)[-2]:
        return None
    rel = pts - med
    radial = rel - np.outer(rel @ axes[k], axes[k])
    return axes[k], med, 2.0 * float(np.median(np.linalg.norm(radial, axis=1)))


def analyse(obj: GraspObject, seed: int = 0) -> ObjectGeometry:
    """The geometry of ``obj`` the types are chosen and placed from (cached on it)."""
    key = ("taxonomy_geometry", seed)
    if key in obj._cache:
        return obj._cache[key]
    axes, ext, centre = _box_axes(obj)
    pts, nrm = obj.surface_points(400, seed=seed)
    thick = _march(obj, pts - 1e-4 * nrm, -nrm, 0.1, 0.002)
    rnd = _round_axis(obj, axes, pts)
    geo = ObjectGeometry(
        axes,
        ext,
        centre,
        pts,
        nrm,
        np.minimum(thick, 0.1),
        find_handle(obj, seed),
        *(rnd if rnd is not None else (None, None, 0.0)),
    )
    obj._cache[key] = geo
    return geo


def choose_types(geo: ObjectGeometry, hand_length: float = MEAN_HAND_LENGTH) -> dict[str, float]:
    """Share of the starts per grasp type for an object (module docstring); sums to 1."""
    e1, e2, e3 = (float(x) for x in geo.extents)
    wrap_max = WRAP_FRACTION * hand_length
    thin_share = float(np.mean(geo.thickness <= THIN_M))
    out: dict[str, float] = {}
    if e3 <= FLAT_M and e3 <= 0.35 * e2:
        out = {"disk_pinch": 0.7, "lateral": 0.3}
    elif e1 <= 1.25 * e3:
        if e1 >= 0.07:
            out = {"spherical": 1.0}
        elif e1 >= 0.035:
            out = {"spherical": 0.3, "tripod": 0.35, "precision_pinch": 0.35}
        else:
            out = {"tripod": 0.5, "precision_pinch": 0.5}
    elif e1 <= 0.07:
        out = {"precision_pinch": 0.35, "tripod": 0.35}
        if e3 <= 0.03:
            out["lateral"] = 0.3
    elif e1 >= 1.5 * e2 or e3 <= wrap_max or 0 < geo.wrap_width <= wrap_max:
        out = {"power_wrap": 0.6 if e2 <= 0.08 else 1.0}
        if e2 <= 0.08:
            out.update(tripod=0.2, precision_pinch=0.2)
    else:
        # Larger than the hand, no section to wrap: precision at an edge or a thin part.
        out = {"tripod": 0.5, "precision_pinch": 0.5}
    if "disk_pinch" not in out and thin_share >= 0.1:
        out = {k: 0.85 * w for k, w in out.items()}
        out["disk_pinch"] = 0.15
    if geo.handle is not None:
        out = {k: 0.6 * w for k, w in out.items()}
        out["hook"] = 0.4
    total = sum(out.values())
    return {k: w / total for k, w in out.items()}


def type_of_start(shares: dict[str, float], n: int, rng: np.random.Generator) -> np.ndarray:
    """``[n]`` type indices (into :data:`TYPE_NAMES`): the counts follow ``shares`` (largest
    remainder), the order is shuffled."""
    names = list(shares)
    raw = np.array([shares[k] for k in names]) * n
    count = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - count), kind="stable")[: n - count.sum()]:
        count[i] += 1
    idx = np.concatenate(
        [np.full(c, TYPE_NAMES.index(k)) for k, c in zip(names, count, strict=True)]
    )
    return rng.permutation(idx)


# -- placement ----------------------------------------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    return x / max(float(np.linalg.norm(x)), 1e-12)


def _frame_map(u_l: np.ndarray, v_l: np.ndarray, u_w: np.ndarray, v_w: np.ndarray) -> np.ndarray:
    """Rotation taking ``u_l`` onto ``u_w`` exactly and ``v_l`` (its part normal to ``u_l``)
    onto the part of ``v_w`` normal to ``u_w``."""

    def basis(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        u = _unit(u)
        v = v - (v @ u) * u
        if np.linalg.norm(v) < 1e-9:
            v = np.cross(u, [1.0, 0.0, 0.0] if abs(u[0]) < 0.9 else [0.0, 1.0, 0.0])
        v = _unit(v)
        return np.stack([u, v, np.cross(u, v)], 1)

    return basis(u_w, v_w) @ basis(u_l, v_l).T


def _random_perp(d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = rng.normal(size=3)
    return _unit(x - (x @ d) * d)


def _support(points: np.ndarray, origin: np.ndarray, a: np.ndarray, axis: np.ndarray | None,
             slab: float) -> float:  # fmt: skip
    """Largest extent of ``points`` from ``origin`` along ``a`` (within ``slab`` of the plane
    through ``origin`` normal to ``axis`` when given)."""
    rel = points - origin
    if axis is not None:
        near = np.abs(rel @ axis) < slab
        rel = rel[near] if near.sum() >= 3 else rel
    return float(np.max(rel @ a))


@dataclass(frozen=True)
class Targets:
    """Per start: the hand-local vectors and world vectors of :func:`_frame_map` and the
    world point the local centre goes to (built by :func:`place_starts`)."""

    kind: str
    opposition: float  # wanted aperture (m) between the opposing pads, 0: not a pinch
    u_w: np.ndarray
    v_w: np.ndarray
    point: np.ndarray


def _precision_target(
    obj: GraspObject, geo: ObjectGeometry, rng: np.random.Generator, thin: bool
) -> Targets:
    """Opposition axis, approach and contact centre of a precision start: across a thin part
    at its nearest edge (``thin``) or across a principal axis narrow enough to pinch."""
    if thin and np.any(geo.thickness <= THIN_M):
        cand = np.flatnonzero(geo.thickness <= THIN_M)
        i = int(rng.choice(cand))
        s = -geo.normals[i]
        width = float(geo.thickness[i])
        mid = geo.points[i] + 0.5 * width * s
        # Approach from the nearest free edge of the thin part: the in-plane direction along
        # which the mid-plane leaves the material soonest.
        ring = [_unit(rodrigues(s, ang) @ _random_perp(s, rng)) for ang in
                np.linspace(0, 2 * np.pi, 12, endpoint=False)]  # fmt: skip
        dirs = np.array(ring)
        edge = _march(obj, np.repeat(mid[None], len(dirs), 0), dirs, 0.12, 0.003)
        k = int(np.argmin(edge))
        a = dirs[k]
        depth = float(min(edge[k], 0.1)) - rng.uniform(0.008, 0.015)
        return Targets("precision", width + 0.02, s * rng.choice([-1.0, 1.0]), a,
                       mid + max(depth, 0.0) * a)  # fmt: skip
    # Opposition across a principal axis a hand can span (<= 9 cm), narrower ones likelier.
    ok = np.flatnonzero(geo.extents <= 0.09)
    if len(ok) == 0:
        ok = np.array([2])
    w = 1.0 / geo.extents[ok]
    k = int(rng.choice(ok, p=w / w.sum()))
    s = geo.axes[k]
    others = [j for j in range(3) if j != k]
    j = int(rng.choice(others))
    a = geo.axes[j] * rng.choice([-1.0, 1.0])
    m = others[1] if j == others[0] else others[0]
    half = 0.5 * float(geo.extents[j])
    centre = geo.centre + rng.uniform(-0.25, 0.25) * geo.extents[m] * geo.axes[m]
    depth = half - min(rng.uniform(0.008, 0.015), half)
    return Targets("precision", float(geo.extents[k]) + 0.02, s * rng.choice([-1.0, 1.0]), a,
                   centre + depth * a)  # fmt: skip


def _wrap_target(geo: ObjectGeometry, rng: np.random.Generator, hand_length: float) -> Targets:
    """Wrap axis (a principal axis whose section fits), approach normal to it, palm point."""
    wrap_max = WRAP_FRACTION * hand_length
    fits = [k for k in range(3) if min(np.delete(geo.extents, k)) <= wrap_max]
    k = fits[0] if fits else 0  # the longest axis whose section fits
    axis, base = geo.axes[k], geo.centre
    if geo.wrap_axis is not None and geo.wrap_width <= wrap_max:
        # A round body (a cup, a bottle, a cylinder): about its axis of symmetry.
        k = int(np.argmax(np.abs(geo.axes @ geo.wrap_axis)))
        axis = geo.wrap_axis
        base = geo.wrap_origin + ((geo.centre - geo.wrap_origin) @ axis) * axis
    others = [j for j in range(3) if j != k]
    # Along the axis, 20-80 % of its extent; the section's centre from the surface samples.
    t = rng.uniform(-0.3, 0.3) * geo.extents[k]
    origin = base + t * axis
    slab = max(0.01, 0.05 * float(geo.extents[k]))
    near = np.abs((geo.points - origin) @ axis) < slab
    if near.sum() >= 3:
        c = geo.points[near].mean(0)
        origin = c - ((c - origin) @ axis) * axis + 0.0
    # Approach along the wider other axis (the fingers span the narrower one), any side of a
    # round body, from the side the section reaches out to less (away from a handle).
    j = others[int(np.argmax(geo.extents[others]))]
    if min(geo.extents[others]) > wrap_max:
        j = others[int(np.argmin(geo.extents[others]))]
    a = geo.axes[j] - (geo.axes[j] @ axis) * axis
    spread = 180.0 if geo.wrap_axis is not None else 20.0
    a = _unit(rodrigues(axis, np.deg2rad(rng.uniform(-spread, spread))) @ a)
    sup = [_support(geo.points, origin, sgn * a, axis, slab) for sgn in (1.0, -1.0)]
    if max(sup) > 1.2 * min(sup):
        a = a if sup[0] < sup[1] else -a
    else:
        a = a * float(rng.choice([-1.0, 1.0]))
    reach = _support(geo.points, origin, a, axis, slab)
    return Targets("power", 0.0, axis * rng.choice([-1.0, 1.0]), a,
                   origin + (reach + rng.uniform(0.005, 0.015)) * a)  # fmt: skip


def _sphere_target(geo: ObjectGeometry, rng: np.random.Generator) -> Targets:
    a = _unit(rng.normal(size=3))
    reach = _support(geo.points, geo.centre, a, None, 0.0)
    return Targets("power", 0.0, _random_perp(a, rng), a,
                   geo.centre + (reach + rng.uniform(0.005, 0.015)) * a)  # fmt: skip


def _hook_target(geo: ObjectGeometry, rng: np.random.Generator) -> Targets:
    h = geo.handle
    assert h is not None
    i = int(rng.integers(len(h.bars)))
    bar_dir = _unit(np.cross(h.axis, h.radial[i]))  # the bar runs along the ring
    # u: index -> little along the bar; v: the palm faces along the hole's axis.
    return Targets("hook", 0.0, bar_dir * rng.choice([-1.0, 1.0]),
                   h.axis * rng.choice([-1.0, 1.0]), h.bars[i])  # fmt: skip


def place_starts(
    obj: GraspObject,
    types: np.ndarray,
    rng: np.random.Generator,
    model: TorchHandModel,
    factors: object,
    width: object,
    scale: object,
    side: str,
    hand_length: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial joint angles ``[n, 15, 3]``, rotations ``[n, 3, 3]`` and translations
    ``[n, 3]`` (m) of starts of the given ``types`` (indices into :data:`TYPE_NAMES`) on
    ``obj``, for hands of the given identities (torch tensors of the engine); see the module
    docstring. All randomness from ``rng``."""
    geo = analyse(obj)
    n = len(types)
    verts_idx = contact_vertices()
    dt = torch.float64
    lo, hi = JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1]
    targets, gestures = [], []
    for b in range(n):
        t = GRASP_TYPES[TYPE_NAMES[types[b]]]
        if t.name == "power_wrap":
            tg = _wrap_target(geo, rng, float(hand_length[b]))
        elif t.name == "spherical":
            tg = _sphere_target(geo, rng)
        elif t.name == "hook":
            tg = _hook_target(geo, rng)
        else:
            tg = _precision_target(obj, geo, rng, thin=t.name == "disk_pinch")
        targets.append(tg)
        g = GESTURES[t.gesture].copy()
        if t.name == "hook":
            # The thumb of a pinch (toward the index's side), to press on the handle from
            # above while the fingers hook through it; the hook gesture's thumb points away.
            g[_FINGER_JOINTS["thumb"]] = GESTURES["pinch"][_FINGER_JOINTS["thumb"]]
        gestures.append(g)
    g = np.stack(gestures)
    # Openings: the gesture scaled toward the flat hand by factors 0.05..1 (11 steps).
    fs = np.linspace(0.05, 1.0, 11)
    # Only the joints of the type's working fingers open; the free fingers keep the
    # gesture's curl (a pinch with the other fingers straight out is not a human pinch).
    scaled = np.ones((n, 1, 15, 1)) * fs[None, :, None, None]
    for b in range(n):
        for finger in GRASP_TYPES[TYPE_NAMES[types[b]]].free:
            scaled[b, :, _FINGER_JOINTS[finger]] = 1.0
    trial = g[:, None] * scaled + rng.normal(0, np.deg2rad(3), (n, 1, 15, 3))
    trial = np.clip(trial, lo, hi).reshape(-1, 15, 3)
    rep = lambda x: torch.repeat_interleave(x, len(fs), 0)  # noqa: E731
    with torch.no_grad():
        out = model(torch.tensor(trial, dtype=dt), rep(factors), rep(width), rep(scale),
                    side=side, with_vertices=True)  # fmt: skip
    kp = out.keypoints.numpy().reshape(n, len(fs), 21, 3)
    vv = out.vertices.numpy().reshape(n, len(fs), -1, 3)
    angles = np.zeros((n, 15, 3))
    rots = np.zeros((n, 3, 3))
    trans = np.zeros((n, 3))
    for b in range(n):
        t = GRASP_TYPES[TYPE_NAMES[types[b]]]
        tg = targets[b]
        pads = {c: vv[b, :, verts_idx[c]] for c in t.contacts}  # [F, 3] per point
        if tg.kind == "precision":
            thumb = pads["thumb_pad"]
            rest = np.mean([pads[c] for c in t.contacts if c != "thumb_pad"], axis=0)
            gap = np.linalg.norm(rest - thumb, axis=1)
            wide = np.flatnonzero(gap >= tg.opposition)
            f = int(wide.max()) if len(wide) else 0
        elif tg.kind == "power":
            f = int(rng.integers(3, 7))  # 0.3-0.6 of the gesture
        else:
            f = int(rng.integers(8, 11))  # hook: 0.8-1.0
        k, v = kp[b, f], vv[b, f]
        angles[b] = trial.reshape(n, len(fs), 15, 3)[b, f]
        lateral = k[17] - k[5]  # index -> little
        palm_out = np.array([0.0, 0.0, -1.0])
        if tg.kind == "precision":
            thumb = v[verts_idx["thumb_pad"]]
            rest = np.mean([v[verts_idx[c]] for c in t.contacts if c != "thumb_pad"], 0)
            centre = 0.5 * (thumb + rest)
            r = _frame_map(rest - thumb, k[0] - centre, tg.u_w, tg.v_w)
        elif tg.kind == "power":
            centre = v[verts_idx["palm"]]
            r = _frame_map(lateral, palm_out, tg.u_w, -tg.v_w)
        else:
            finger = _unit(k[9] - k[0])
            pip = 0.5 * (k[6] + k[10])
            # Inside the hook: a finger's half-thickness and a bar's off the proximal and
            # middle phalanges.
            centre = pip + 0.015 * (palm_out - finger)
            r = _frame_map(lateral, palm_out, tg.u_w, tg.v_w)
        rots[b] = r
        trans[b] = tg.point - r @ centre
    return angles, rots, trans


def check_types(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` if all are grasp types of :data:`GRASP_TYPES`."""
    bad = [x for x in names if x not in GRASP_TYPES]
    if bad:
        raise HalohandInputError(f"unknown grasp type {bad[0]!r}; use {', '.join(TYPE_NAMES)}")
    return names
