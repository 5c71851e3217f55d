"""Two interacting hands: a sampler of placed left/right pairs that touch without penetrating.

Each pair draws two independent identities (:class:`~halohand.handmodel.IdentityPrior`) and
two poses from the pose prior restricted to gestures that suit the interaction, places the
hands relative to each other by the interaction's rule (target palm frames, below), and then
resolves contact with the ground-truth template meshes: the moved hand slides along the
interaction's separating direction until the deepest vertex of either hand inside the other
(exact signed distance, libigl, winding-number sign) is at most ``tolerance_m`` (0.25 mm) while
the hands still touch. ``near`` pairs then move apart by a drawn gap.

Interactions (:data:`INTERACTIONS`), with the fixed hand ``a`` and the moved hand ``b``:

* ``palm_to_palm``: palms facing, fingers roughly parallel (open gestures); ``b`` approaches
  along the palm normal of ``a`` from afar until first contact.
* ``interlaced``: as palm to palm with spread fingers, ``b`` shifted sideways by about half
  a finger spacing, so its fingers come to rest between those of ``a``.
* ``clasped``: palms facing, both hands curled (cylinder, hook, sphere), fingers crossing at
  70-110 degrees so each hand's fingers wrap the other's edge.
* ``hold_finger``: ``a`` grips (cylinder, hook) around the index finger of a pointing ``b``
  laid along the grip axis; ``b`` then slides toward ``a``'s palm until it touches.
* ``hold_wrist``: as ``hold_finger`` around ``b``'s wrist (the forearm axis along the grip).
* ``fingertip_palm``: ``b`` points its index tip at ``a``'s palm (tilted up to 30 degrees)
  and approaches along the palm normal until the tip touches.
* ``crossed``: both palms down, ``b`` under ``a``, crossing at 50-110 degrees, touching.
* ``near``: any of the above, then moved apart by 3-20 mm (not touching).

Which side is ``a`` is drawn per pair for the asymmetric interactions. Frames: a pair comes
in metres in a world frame whose origin is the centre of the box around both hands'
vertices (axes are those of the construction; HALO is rotation invariant). Determinism: a
pair depends on the generator state only.

Penetration measures (:func:`penetration`, :func:`penetration_volume`) use libigl directly;
they are the ground-truth checks of this sampler, not the project's evaluation metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import igl
import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.core.rotations import rodrigues
from halohand.data import constants as C
from halohand.handmodel.hand import PosedHand
from halohand.handmodel.pose import HandIdentity
from halohand.handmodel.prior import IdentityPrior, PosePrior
from halohand.handmodel.webxr_model import WebXRHandModel, default_model
from halohand.objects.inside import winding_number

#: Interaction types, in the order of their ids (stored as ``interaction`` in pair shards).
INTERACTIONS: Final[tuple[str, ...]] = C.PAIR_INTERACTIONS

#: Gestures of the pose prior per interaction: (fixed hand ``a``, moved hand ``b``).
_GESTURES: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "palm_to_palm": (("flat", "relaxed", "spread"), ("flat", "relaxed", "spread")),
    "interlaced": (("spread",), ("spread",)),
    "clasped": (("cylinder", "hook", "sphere"), ("cylinder", "hook", "sphere")),
    "hold_finger": (("cylinder", "hook"), ("point",)),
    "hold_wrist": (("cylinder", "hook"), ("flat", "relaxed", "fist", "spread", "point")),
    "fingertip_palm": (("flat", "relaxed", "spread"), ("point",)),
    "crossed": (("flat", "relaxed", "spread", "fist"), ("flat", "relaxed", "spread", "fist")),
}

#: Largest penetration depth left by contact resolution (metres): 0.25 mm gives a mean
#: depth of the penetrating vertices near InterHand2.6M's own (~0.17 mm); see
#: docs/two_hands.md for 1 mm.
DEFAULT_TOLERANCE_M: Final = 0.00025
#: Where an approach from afar starts (metres along the separating direction).
_FAR_M: Final = 0.25
#: Bisection steps of the contact resolution (step 0.25 m / 2^k; 12 -> 0.06 mm).
_BISECT: Final = 12
#: Draws per pair before giving up (a failed contact resolution is redrawn).
_MAX_TRIES: Final = 8
#: Gap of ``near`` pairs (metres), uniform.
NEAR_GAP_RANGE_M: Final = (0.003, 0.020)

_X, _Y, _Z = np.eye(3)


# --------------------------------------------------------------------------- geometry


def palm_frame(keypoints: np.ndarray, side: str) -> np.ndarray:
    """``[4, 4]`` palm frame of a hand in its keypoints' frame: columns lateral, finger
    direction (wrist -> middle MCP), palm normal (out of the palm), origin the palm centre
    (mean of the wrist and the four finger MCPs). Right-handed for both sides.

    Args:
        keypoints: ``[21, 3]`` project order (metres).
        side: ``"right"`` or ``"left"`` (a left hand is a mirror image: its normal flips).
    """
    k = np.asarray(keypoints, dtype=np.float64)
    normal = np.cross(k[5] - k[0], k[17] - k[0])
    if side == "left":
        normal = -normal
    return _frame(k[9] - k[0], normal, k[[0, 5, 9, 13, 17]].mean(0))


def _frame(forward: np.ndarray, normal: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """``[4, 4]`` with columns (forward x normal, forward, normal', origin), orthonormal."""
    f = forward / np.linalg.norm(forward)
    n = normal - (normal @ f) * f
    n /= np.linalg.norm(n)
    out = np.eye(4)
    out[:3, 0], out[:3, 1], out[:3, 2], out[:3, 3] = np.cross(f, n), f, n, origin
    return out


def transform_hand(hand: PosedHand, pose: np.ndarray) -> PosedHand:
    """``hand`` moved rigidly by ``pose`` ``[4, 4]`` (its frame -> world), everything that
    lives in the posed frame with it (part transforms stay posed -> canonical)."""
    r, t = pose[:3, :3], pose[:3, 3]
    return PosedHand(
        vertices=hand.vertices @ r.T + t,
        faces=hand.faces,
        keypoints=hand.keypoints @ r.T + t,
        part_transforms=hand.part_transforms @ np.linalg.inv(pose),
        canonical_vertices=hand.canonical_vertices,
        bone_lengths=hand.bone_lengths,
        skin_weights=hand.skin_weights,
        part_labels=hand.part_labels,
        side=hand.side,
        rest_keypoints=hand.rest_keypoints,
    )


@dataclass(frozen=True)
class Penetration:
    """Vertex penetration between two closed meshes (metres).

    Attributes:
        max_depth: deepest vertex of either mesh inside the other (0 when none).
        mean_depth: mean depth over the penetrating vertices of both meshes (0 when none).
        count: penetrating vertices, both meshes.
        min_distance: smallest signed vertex distance to the other mesh (negative inside).
    """

    max_depth: float
    mean_depth: float
    count: int
    min_distance: float


def penetration(va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray) -> Penetration:
    """Exact signed distance of each mesh's vertices to the other (libigl, winding-number
    sign, robust where a posed hand overlaps itself a little)."""
    sign = igl.SIGNED_DISTANCE_TYPE_FAST_WINDING_NUMBER
    da = igl.signed_distance(va, vb, fb, sign_type=sign)[0]
    db = igl.signed_distance(vb, va, fa, sign_type=sign)[0]
    d = np.concatenate([da, db])
    inside = d < 0
    depth = -d[inside]
    return Penetration(
        max_depth=float(depth.max()) if len(depth) else 0.0,
        mean_depth=float(depth.mean()) if len(depth) else 0.0,
        count=int(inside.sum()),
        min_distance=float(d.min()),
    )


def penetration_volume(
    va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray, voxel_m: float = 0.001
) -> float:
    """Volume (m^3) inside both meshes: the voxel centres of a ``voxel_m`` lattice over the
    intersection of their bounding boxes that are inside both (winding number >= 0.5)."""
    lo = np.maximum(va.min(0), vb.min(0))
    hi = np.minimum(va.max(0), vb.max(0))
    if np.any(hi <= lo):
        return 0.0
    axes = [np.arange(a + 0.5 * voxel_m, b, voxel_m) for a, b in zip(lo, hi, strict=True)]
    if any(len(a) == 0 for a in axes):
        return 0.0
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    in_a = winding_number(va, fa, pts) >= 0.5
    pts = pts[in_a]
    if not len(pts):
        return 0.0
    in_b = winding_number(vb, fb, pts) >= 0.5
    return float(in_b.sum()) * voxel_m**3


# --------------------------------------------------------------------------- placement


@dataclass(frozen=True)
class _Placement:
    """Where hand ``a`` and ``b`` go, and how ``b`` resolves contact.

    ``pose_a`` / ``pose_b``: hand frame -> world. ``b`` moves by ``t * separate`` (metres);
    ``start``: the ``t`` it starts from (``_FAR_M``: approach from afar until first contact;
    0: start in place, move out if penetrating, else in until touching).
    """

    pose_a: np.ndarray
    pose_b: np.ndarray
    separate: np.ndarray
    start: float


def _target(hand_frame: np.ndarray, forward: np.ndarray, normal: np.ndarray,
            origin: np.ndarray) -> np.ndarray:  # fmt: skip
    """Pose taking ``hand_frame`` (in hand coordinates) onto the world frame (forward,
    normal, origin)."""
    return _frame(forward, normal, origin) @ np.linalg.inv(hand_frame)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _grip_centre(a: PosedHand) -> np.ndarray:
    """Centre of a curled hand's grip: the mean of the long fingers' joints (they surround
    it), in the hand's frame."""
    return a.keypoints[5:].mean(0)


def _place(kind: str, a: PosedHand, b: PosedHand, rng: np.random.Generator) -> _Placement:
    fa, fb = palm_frame(a.keypoints, a.side), palm_frame(b.keypoints, b.side)
    # Hand a: palm facing -x, fingers up (+z), palm centre at the origin.
    pose_a = _target(fa, _Z, -_X, np.zeros(3))
    if kind in ("palm_to_palm", "interlaced", "clasped"):
        if kind == "clasped":
            angle = np.deg2rad(rng.uniform(70.0, 110.0)) * rng.choice([-1.0, 1.0])
        else:
            angle = np.deg2rad(rng.uniform(-25.0, 25.0) if kind == "palm_to_palm" else
                               rng.uniform(-10.0, 10.0))  # fmt: skip
        forward = rodrigues(_X, angle) @ _Z
        if kind == "interlaced":
            # half the spacing of adjacent MCPs, to either side: fingers between fingers
            spacing = np.linalg.norm(a.keypoints[9] - a.keypoints[5])
            lateral = rng.choice([-0.5, 0.5]) * spacing * rng.uniform(0.8, 1.2)
            offset = np.array([0.0, lateral, rng.uniform(0.0, 0.02)])
        else:
            offset = np.array([0.0, rng.uniform(-0.01, 0.01), rng.uniform(-0.015, 0.015)])
        pose_b = _target(fb, forward, _X, offset)
        return _Placement(pose_a, pose_b, -_X, _FAR_M)
    if kind in ("hold_finger", "hold_wrist"):
        # b's held part (index finger / wrist) along a's grip axis (the palm's lateral axis).
        grip = pose_a[:3, :3] @ _grip_centre(a) + pose_a[:3, 3]
        axis = rng.choice([-1.0, 1.0]) * (pose_a[:3, :3] @ fa[:3, 0])
        kb = b.keypoints
        if kind == "hold_finger":
            held_axis = kb[8] - kb[5]
            held_point = kb[6]
        else:
            held_axis = kb[9] - kb[0]
            held_point = kb[0] + 0.15 * (kb[9] - kb[0])
        # b's frame about the held part: forward along it, normal its palm normal.
        local = _frame(held_axis, fb[:3, 2], held_point)
        roll = rodrigues(axis, rng.uniform(0.0, 2.0 * np.pi))
        normal = roll @ (pose_a[:3, :3] @ fa[:3, 2])
        pose_b = _target(local, axis, normal, grip)
        # b slides toward a's palm until it touches (out first if it starts inside a).
        return _Placement(pose_a, pose_b, pose_a[:3, :3] @ fa[:3, 2], 0.0)
    if kind == "fingertip_palm":
        kb = b.keypoints
        tip_frame = _frame(kb[8] - kb[7], fb[:3, 2], kb[8])
        tilt_axis = rodrigues(_X, rng.uniform(0.0, 2.0 * np.pi)) @ _Y
        pointing = rodrigues(tilt_axis, np.deg2rad(rng.uniform(0.0, 30.0))) @ _X
        normal = _unit(np.cross(pointing, rng.standard_normal(3)))
        spot = np.array([0.0, rng.uniform(-0.015, 0.015), rng.uniform(-0.015, 0.015)])
        pose_b = _target(tip_frame, pointing, normal, spot)
        return _Placement(pose_a, pose_b, -_X, _FAR_M)
    if kind == "crossed":
        # Both palms down (-z), a on top; b below, crossing at 50-110 degrees.
        pose_a = _target(fa, _Y, -_Z, np.zeros(3))
        angle = np.deg2rad(rng.uniform(50.0, 110.0)) * rng.choice([-1.0, 1.0])
        where = np.array([rng.uniform(-0.02, 0.02), rng.uniform(-0.04, 0.0), 0.0])
        pose_b = _target(fb, rodrigues(_Z, angle) @ _Y, -_Z, where)
        return _Placement(pose_a, pose_b, -_Z, _FAR_M)
    raise HalohandInputError(f"unknown interaction {kind!r}; expected one of {INTERACTIONS}")


def _moved(b: PosedHand, pose_b: np.ndarray, separate: np.ndarray, t: float) -> np.ndarray:
    return b.vertices @ pose_b[:3, :3].T + pose_b[:3, 3] + t * separate


def resolve_contact(
    va: np.ndarray,
    fa: np.ndarray,
    vb: np.ndarray,
    fb: np.ndarray,
    separate: np.ndarray,
    start: float,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
) -> tuple[float, Penetration]:
    """Move mesh ``b`` by ``t * separate`` to touching contact: the ``t`` where the deepest
    vertex penetration first stays within ``tolerance_m``.

    From a free start it closes in (conservative advancement by the smallest vertex
    distance, then bisection on "deeper than the tolerance"); from a penetrating start it
    moves out in steps of 1 cm, then bisects. Returns ``t`` and the penetration there.
    """

    def pen(t: float) -> Penetration:
        return penetration(va, fa, vb + t * separate, fb)

    t, p = start, pen(start)
    if p.max_depth > tolerance_m:  # out: first free step, then bisect back in
        lo = t
        while p.max_depth > tolerance_m:
            t += 0.01
            if t > start + 2 * _FAR_M:
                break
            p = pen(t)
        hi = t
        free_t, bad_t = hi, lo
    else:  # in: advance by the vertex gap until the hands overlap deeper than allowed
        free_t, bad_t = t, None
        for _ in range(200):
            step = max(0.8 * p.min_distance, 0.5 * tolerance_m)
            t_next = t - step
            p_next = pen(t_next)
            if p_next.max_depth > tolerance_m:
                bad_t = t_next
                break
            t, p, free_t = t_next, p_next, t_next
            if t < start - 2 * _FAR_M:
                break
        if bad_t is None:
            return free_t, pen(free_t)
    for _ in range(_BISECT):
        mid = 0.5 * (free_t + bad_t)
        if pen(mid).max_depth > tolerance_m:
            bad_t = mid
        else:
            free_t = mid
    return free_t, pen(free_t)


# --------------------------------------------------------------------------- sampler


@dataclass(frozen=True)
class HandPair:
    """Two placed hands in one world frame (metres).

    Attributes:
        right / left: the hands (meshes, keypoints [21, 3] project order, part transforms
            posed -> canonical, all in the pair's frame).
        interaction: one of :data:`INTERACTIONS`.
        penetration: vertex penetration of the ground-truth meshes after placement.
        gap_m: the extra separation of ``near`` pairs (0 otherwise).
    """

    right: PosedHand
    left: PosedHand
    interaction: str
    penetration: Penetration
    gap_m: float = 0.0

    @property
    def hands(self) -> tuple[PosedHand, PosedHand]:
        return (self.right, self.left)

    @property
    def keypoints(self) -> np.ndarray:
        """``[2, 21, 3]`` (right, left), metres."""
        return np.stack([self.right.keypoints, self.left.keypoints])


class PairSampler:
    """Samples interacting pairs; the same generator state gives the same pair.

    Args:
        model: the rigged hand (default: the shipped WebXR hand).
        identity_prior: shapes, drawn independently per hand.
        interactions: the interactions drawn from, uniformly.
        tolerance_m: the largest penetration depth contact resolution leaves.
    """

    name = "webxr-pairs"

    def __init__(
        self,
        model: WebXRHandModel | None = None,
        identity_prior: IdentityPrior | None = None,
        interactions: tuple[str, ...] = INTERACTIONS,
        tolerance_m: float = DEFAULT_TOLERANCE_M,
    ) -> None:
        unknown = [k for k in interactions if k not in INTERACTIONS]
        if unknown or not interactions:
            raise HalohandInputError(
                f"unknown interaction {unknown[0]!r}; expected names from {', '.join(INTERACTIONS)}"
                if unknown
                else "the pair sampler needs at least one interaction"
            )
        self.model = default_model() if model is None else model
        self.identity_prior = IdentityPrior() if identity_prior is None else identity_prior
        self.interactions = tuple(interactions)
        self.tolerance_m = float(tolerance_m)
        self._priors = {
            g: PosePrior(gestures=g, blend_probability=0.3, max_blend=0.3)
            for pair in _GESTURES.values()
            for g in pair
        }

    def _pose(self, gestures: tuple[str, ...], identity: HandIdentity, side: str,
              rng: np.random.Generator) -> PosedHand:  # fmt: skip
        pose = self._priors[gestures].sample(rng, identity, self.model)
        return self.model.pose(pose, identity, side)

    def _draw(self, rng: np.random.Generator, interaction: str, near: bool) -> tuple | None:
        """One attempt: identities, poses, placement and contact; ``None`` if it failed."""
        base = INTERACTIONS[rng.integers(len(INTERACTIONS) - 1)] if near else interaction
        ids = {s: self.identity_prior.sample(rng) for s in ("right", "left")}
        # the fixed hand: right for the symmetric interactions, else either side
        symmetric = base in ("palm_to_palm", "interlaced", "clasped")
        a_side = "right" if symmetric or rng.random() < 0.5 else "left"
        b_side = "left" if a_side == "right" else "right"
        ga, gb = _GESTURES[base]
        a = self._pose(ga, ids[a_side], a_side, rng)
        b = self._pose(gb, ids[b_side], b_side, rng)
        place = _place(base, a, b, rng)
        va = a.vertices @ place.pose_a[:3, :3].T + place.pose_a[:3, 3]
        vb = _moved(b, place.pose_b, place.separate, 0.0)
        fa64, fb64 = a.faces.astype(np.int64), b.faces.astype(np.int64)
        t, pen = resolve_contact(va, fa64, vb, fb64, place.separate, place.start, self.tolerance_m)
        if pen.max_depth > self.tolerance_m * (1.0 + 1e-6) or pen.count == 0:
            return None  # still too deep, or never touched
        gap = 0.0
        if near:
            gap = float(rng.uniform(*NEAR_GAP_RANGE_M))
            t += gap
            pen = penetration(va, fa64, vb + t * place.separate, fb64)
        return a, b, a_side, b_side, place, t, pen, gap

    def sample(self, rng: np.random.Generator, interaction: str | None = None) -> HandPair:
        """Draw one pair (``interaction``: fixed, or drawn uniformly)."""
        if not isinstance(rng, np.random.Generator):
            raise HalohandInputError(
                f"rng must be a numpy.random.Generator, got {type(rng).__name__}"
            )
        if interaction is None:
            interaction = self.interactions[rng.integers(len(self.interactions))]
        if interaction not in INTERACTIONS:
            raise HalohandInputError(
                f"unknown interaction {interaction!r}; expected one of {', '.join(INTERACTIONS)}"
            )
        near = interaction == "near"
        drawn = None
        for _ in range(_MAX_TRIES):
            # a draw whose contact resolution fails (the hands miss each other on the way
            # in, or cannot get apart) is redrawn from the same generator: deterministic
            drawn = self._draw(rng, interaction, near)
            if drawn is not None:
                break
        if drawn is None:
            raise HalohandInputError(
                f"no {interaction} pair in contact within {self.tolerance_m * 1e3:g} mm after "
                f"{_MAX_TRIES} draws; raise tolerance_m"
            )
        a, b, a_side, b_side, place, t, pen, gap = drawn
        pose_b = place.pose_b.copy()
        pose_b[:3, 3] += t * place.separate
        placed = {a_side: transform_hand(a, place.pose_a), b_side: transform_hand(b, pose_b)}
        # World frame: the origin at the centre of the box around both meshes.
        both = np.concatenate([placed["right"].vertices, placed["left"].vertices])
        shift = np.eye(4)
        shift[:3, 3] = -0.5 * (both.min(0) + both.max(0))
        return HandPair(
            right=transform_hand(placed["right"], shift),
            left=transform_hand(placed["left"], shift),
            interaction=interaction,
            penetration=pen,
            gap_m=gap,
        )
