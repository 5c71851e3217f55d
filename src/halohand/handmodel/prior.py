"""Natural pose prior (a gesture and grasp library, blended and perturbed) and identity prior.

Pose sampling (:class:`PosePrior`):

1. pick a gesture uniformly from :data:`GESTURES`; with probability ``blend_probability``
   blend it with a second one (weight of the second uniform in [0, ``max_blend``]);
2. perturb: per finger a shared curl (added to MCP, PIP and DIP flexion), per joint small
   independent flexion, abduction and twist noise;
3. couple MCP abduction to MCP flexion (the collateral ligaments tighten in flexion, so a
   flexed finger cannot spread) and clip every angle to the joint limits;
4. reject the pose when inscribed-sphere proxies of two non-adjacent bones overlap by more
   than ``max_penetration`` (fingers through each other or into the palm) and try again.

Identity sampling (:class:`IdentityPrior`): hand length uniform in 15-22 cm (adolescent to
large adult), log-normal bone-length factors correlated within a finger, palm width, and a
small thickness offset (shared + per part) that the keypoints cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.handmodel.pose import (
    JOINT_LIMITS,
    NUM_POSE_JOINTS,
    POSE_JOINTS,
    HandIdentity,
    HandPose,
)
from halohand.handmodel.shape import NUM_SHAPES
from halohand.handmodel.webxr_model import WebXRHandModel, default_model
from halohand.skeleton import NUM_PARTS, PART_NAMES

# Shorthands for the gesture table: (MCP, PIP, DIP) flexion of a long finger. The fist is
# loose enough that the fingertips stop at the palm instead of sinking into it (the template
# is rigid: no soft-tissue compression).
_FIST = (78.0, 90.0, 40.0)
# In a fist the flexed middle, ring and little fingers roll apart slightly (MCP twist), so
# their proximal phalanges lie side by side instead of converging into each other.
_FIST_M, _FIST_R, _FIST_P = (_FIST, 0, 5), (_FIST, 0, -10), (_FIST, 0, -5)
_STRAIGHT = (0.0, 0.0, 0.0)
# The thumb resting along the side of the curled index finger.
_THUMB_FIST = {"thumb_cmc": (0, 5, -10), "thumb_mcp": 45, "thumb_ip": 30}


def _hand(thumb: dict, **fingers: tuple) -> dict:
    """Gesture table from thumb joints and ``finger=(mcp, pip, dip)`` or
    ``finger=((mcp, pip, dip), mcp abduction[, mcp twist])`` in degrees."""
    table = dict(thumb)
    for name, spec in fingers.items():
        flex, *rest = spec if isinstance(spec[0], tuple) else (spec,)
        abd, twist = (list(rest) + [0.0, 0.0])[:2]
        table[f"{name}_mcp"] = (flex[0], abd, twist)
        table[f"{name}_pip"] = flex[1]
        table[f"{name}_dip"] = flex[2]
    return table


#: The gesture and grasp library in degrees: name -> {joint: flexion | (flexion, abduction
#: [, twist])}. Joints not named stay at rest (a flat open hand). Contact poses (pinch, ok,
#: tripod) were solved for pad-to-pad contact on the template, then rounded.
GESTURE_DEGREES: Final[dict[str, dict]] = {
    "flat": {},
    "relaxed": _hand(
        {"thumb_cmc": (10, 15, -5), "thumb_mcp": 10, "thumb_ip": 10},
        index=(15, 20, 10),
        middle=(20, 25, 12),
        ring=(25, 30, 15),
        pinky=(30, 35, 15),
    ),
    "spread": _hand(
        {"thumb_cmc": (-15, 5, 0)},
        index=(_STRAIGHT, 20),
        middle=(_STRAIGHT, 5),
        ring=(_STRAIGHT, 15),
        pinky=(_STRAIGHT, 25),
    ),
    "fist": _hand(
        _THUMB_FIST,
        index=_FIST,
        middle=_FIST_M,
        ring=_FIST_R,
        pinky=_FIST_P,
    ),
    "point": _hand(
        _THUMB_FIST,
        index=(5, 5, 0),
        middle=_FIST_M,
        ring=_FIST_R,
        pinky=_FIST_P,
    ),
    "pinch": _hand(
        {"thumb_cmc": (30, 26, -24), "thumb_mcp": 5, "thumb_ip": 5},
        index=(58, 45, 15),
        middle=(30, 40, 20),
        ring=(35, 45, 20),
        pinky=(40, 50, 25),
    ),
    "ok": _hand(
        {"thumb_cmc": (18, 23, -22), "thumb_mcp": 15, "thumb_ip": 20},
        index=(55, 60, 35),
        middle=((10, 10, 5), -5),
        ring=((12, 12, 5), 5),
        pinky=((15, 15, 8), 15),
    ),
    "tripod": _hand(
        {"thumb_cmc": (28, 48, -25), "thumb_mcp": 12, "thumb_ip": 23},
        index=(80, 15, 15),
        middle=((78, 22, 20), 0, 8),
        ring=((55, 65, 35), 0, -10),
        pinky=((60, 65, 35), 0, -5),
    ),
    "cylinder": _hand(
        {"thumb_cmc": (30, 45, -20), "thumb_mcp": 15, "thumb_ip": 15},
        index=(50, 65, 35),
        middle=(55, 70, 35),
        ring=(60, 70, 35),
        pinky=(65, 70, 35),
    ),
    "sphere": _hand(
        {"thumb_cmc": (15, 50, -25), "thumb_mcp": 10, "thumb_ip": 10},
        index=((35, 40, 25), 15),
        middle=((35, 40, 25), 0),
        ring=((40, 40, 25), 10),
        pinky=((45, 40, 25), 20),
    ),
    "lateral_pinch": _hand(
        {"thumb_cmc": (15, 0, 0), "thumb_mcp": 20, "thumb_ip": 10},
        index=(60, 80, 40),
        middle=(70, 85, 40),
        ring=(75, 85, 40),
        pinky=(78, 85, 40),
    ),
    "victory": _hand(
        {"thumb_cmc": (30, 30, -20), "thumb_mcp": 40, "thumb_ip": 30},
        index=(_STRAIGHT, 12),
        middle=(_STRAIGHT, -8),
        ring=_FIST_R,
        pinky=_FIST_P,
    ),
    "thumbs_up": _hand(
        {"thumb_cmc": (-10, 10, 0)},
        index=_FIST,
        middle=_FIST_M,
        ring=_FIST_R,
        pinky=_FIST_P,
    ),
    "hook": _hand(
        {"thumb_cmc": (5, 10, 0), "thumb_mcp": 10, "thumb_ip": 10},
        index=(5, 90, 60),
        middle=(5, 90, 60),
        ring=(5, 90, 60),
        pinky=(5, 90, 60),
    ),
    "claw": _hand(
        {"thumb_cmc": (10, 30, -10), "thumb_mcp": 20, "thumb_ip": 30},
        index=((-10, 70, 60), 10),
        middle=((-10, 70, 60), 0),
        ring=((-10, 70, 60), 5),
        pinky=((-10, 70, 60), 15),
    ),
    "horns": _hand(
        _THUMB_FIST,
        index=(_STRAIGHT, 10),
        middle=_FIST_M,
        ring=_FIST_R,
        pinky=(_STRAIGHT, 15),
    ),
    "call": _hand(
        {"thumb_cmc": (-15, 15, 0)},
        index=_FIST,
        middle=_FIST_M,
        ring=_FIST_R,
        pinky=(_STRAIGHT, 20),
    ),
    "table_top": _hand(
        {"thumb_cmc": (0, 10, 0), "thumb_mcp": 5, "thumb_ip": 5},
        index=(70, 5, 0),
        middle=(70, 5, 0),
        ring=((70, 5, 0), 0, -5),
        pinky=(70, 5, 0),
    ),
}


def _gesture_array(table: dict) -> np.ndarray:
    return HandPose.from_degrees(table).as_array()


#: The library as ``[15, 3]`` radian arrays (validated against the joint limits on import).
GESTURES: Final[dict[str, np.ndarray]] = {k: _gesture_array(v) for k, v in GESTURE_DEGREES.items()}

_LONG_FINGERS: Final = ("index", "middle", "ring", "pinky")
_MCP: Final = np.array([POSE_JOINTS.index(f"{f}_mcp") for f in _LONG_FINGERS])
_CHAINS: Final = np.array(
    [[POSE_JOINTS.index(f"{f}_{j}") for j in ("mcp", "pip", "dip")] for f in _LONG_FINGERS]
    + [[POSE_JOINTS.index(f"thumb_{j}") for j in ("cmc", "mcp", "ip")]]
)


@dataclass(frozen=True)
class PosePrior:
    """Samples natural hand poses (see the module docstring for the procedure).

    Attributes:
        gestures: gesture names to draw from (default: all of :data:`GESTURES`).
        blend_probability: chance of blending two gestures.
        max_blend: largest weight of the second gesture.
        curl_noise_deg: std of the per-finger curl added to its three flexions.
        flexion_noise_deg / abduction_noise_deg / twist_noise_deg: per-joint noise std.
        max_penetration: sphere-proxy overlap (metres) above which a pose is rejected.
        max_tries: noise draws per base pose before falling back (see :meth:`sample`).
    """

    gestures: tuple[str, ...] = tuple(GESTURES)
    blend_probability: float = 0.5
    max_blend: float = 0.5
    curl_noise_deg: float = 8.0
    flexion_noise_deg: float = 5.0
    abduction_noise_deg: float = 3.0
    twist_noise_deg: float = 2.0
    max_penetration: float = 0.0005
    max_tries: int = 10

    def __post_init__(self) -> None:
        unknown = [g for g in self.gestures if g not in GESTURES]
        if unknown or not self.gestures:
            raise HalohandInputError(
                f"unknown gesture {unknown[0]!r}; expected names from {', '.join(GESTURES)}"
                if unknown
                else "the pose prior needs at least one gesture"
            )
        if not 0.0 <= self.blend_probability <= 1.0 or not 0.0 <= self.max_blend <= 1.0:
            raise HalohandInputError("blend_probability and max_blend must lie in [0, 1]")
        if self.max_tries < 1:
            raise HalohandInputError("max_tries must be at least 1")

    def gesture(self, name: str) -> HandPose:
        """The named gesture of the library as a :class:`HandPose`."""
        if name not in GESTURES:
            raise HalohandInputError(
                f"unknown gesture {name!r}; expected one of {', '.join(GESTURES)}"
            )
        return HandPose.from_array(GESTURES[name])

    def sample_gesture(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """The noiseless part of a draw: a gesture or a blend of two, ``([15, 3], label)``."""
        names = self.gestures
        first = names[rng.integers(len(names))]
        angles = GESTURES[first].copy()
        label = first
        if rng.random() < self.blend_probability:
            second = names[rng.integers(len(names))]
            w = rng.uniform(0.0, self.max_blend)
            angles = (1.0 - w) * angles + w * GESTURES[second]
            label = f"{first}+{w:.2f}*{second}"
        return angles, label

    def perturb(
        self, angles: np.ndarray, rng: np.random.Generator, scale: float = 1.0
    ) -> np.ndarray:
        """Add the curl and joint noise (times ``scale``), couple MCP abduction to flexion
        and clip to the joint limits: ``[15, 3] -> [15, 3]`` radians."""
        out = angles.copy()
        curl = np.deg2rad(self.curl_noise_deg) * rng.standard_normal(len(_CHAINS))
        out[_CHAINS, 0] += scale * curl[:, None] * np.array([1.0, 1.0, 0.7])
        noise_std = np.deg2rad(
            [self.flexion_noise_deg, self.abduction_noise_deg, self.twist_noise_deg]
        )
        out += scale * noise_std * rng.standard_normal((NUM_POSE_JOINTS, 3))
        # A flexed MCP cannot spread: abduction fades to 40 % at 90 degrees of flexion.
        fade = 1.0 - 0.6 * np.clip(out[_MCP, 0] / np.deg2rad(90.0), 0.0, 1.0)
        out[_MCP, 1] *= fade
        return np.clip(out, JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1])

    def sample_angles(self, rng: np.random.Generator) -> np.ndarray:
        """One unchecked draw: ``[15, 3]`` radians within the joint limits."""
        return self.perturb(self.sample_gesture(rng)[0], rng)

    def sample(
        self,
        rng: np.random.Generator,
        identity: HandIdentity | None = None,
        model: object | None = None,
    ) -> HandPose:
        """Draw a natural pose; deterministic for the generator state.

        The gesture (or blend) is drawn once, so rejections do not change the mix of
        gestures; the noise is redrawn on a collision, shrinking linearly to zero over
        ``max_tries`` draws; if even the noiseless blend collides, the blend is dropped and
        the first gesture is used (every library gesture is collision-free). The collision
        check uses ``model`` (default: the shipped WebXR model) at ``identity`` (default: the
        template's shape).
        """
        checker = default_model() if model is None else model
        if not isinstance(checker, WebXRHandModel):
            raise HalohandInputError("the pose prior's collision check needs a WebXRHandModel")
        identity = HandIdentity() if identity is None else identity
        names = self.gestures
        base, _ = self.sample_gesture(rng)
        best, best_pen = None, np.inf
        for attempt in range(2 * self.max_tries):
            if attempt == self.max_tries:
                # The blend itself collides: fall back to the nearest library gesture.
                base = min(
                    (GESTURES[n] for n in names), key=lambda g: float(np.abs(g - base).sum())
                )
            scale = 1.0 - (attempt % self.max_tries) / self.max_tries
            pose = HandPose.from_array(self.perturb(base, rng, scale))
            pen = checker.self_penetration(pose, identity)
            if pen <= self.max_penetration:
                return pose
            if pen < best_pen:
                best, best_pen = pose, pen
        assert best is not None
        return best


#: Identity prior defaults (documented in docs/hand_model.md).
HAND_LENGTH_SAMPLE_RANGE: Final = (0.15, 0.22)
#: The relative thickness offset at which the template's parts have the girth of real hands:
#: with it, a model's volumes on the 85 real HO3D-derived frames match the original HALO
#: checkpoint's (MANO fits of many people) region by region, 0.96-1.04. The shipped HALO's
#: data is drawn around it (``halohand data generate --thickness-mean 0.15``).
REAL_GIRTH_THICKNESS_MEAN: Final = 0.15


@dataclass(frozen=True)
class IdentityPrior:
    """Samples hand shapes.

    Attributes:
        hand_length_range: wrist-to-middle-tip length, uniform (metres).
        palm_length_std / palm_width_std: log-normal std of the palm factors.
        finger_std: log std of a per-finger length factor (shared by its three bones).
        bone_std: log std of the independent per-bone length factor.
        thickness_mean: the relative thickness offset every part starts from (0: the
            template's girth). A constant, so keypoint-driven models learn it at no cost to
            their ceiling; ``data generate --thickness-mean`` sets it.
        thickness_shared_std / thickness_part_std: std of the shared and per-part relative
            thickness offsets (the part keypoints cannot see); clipped at 2.5 std.
        shape_std_mm: ``[5]`` std (mm at the template's size) of the independent soft-tissue
            correctives (:mod:`halohand.handmodel.shape`), clipped at 2.5 std. All zero (the
            default) draws none, and the generator's stream is the one without them;
            :data:`~halohand.handmodel.shape.SHAPE_PRIOR_STD_MM` is the wide-shape data's spread.
    """

    hand_length_range: tuple[float, float] = HAND_LENGTH_SAMPLE_RANGE
    palm_length_std: float = 0.04
    palm_width_std: float = 0.04
    finger_std: float = 0.035
    bone_std: float = 0.025
    thickness_mean: float = 0.0
    thickness_shared_std: float = 0.02
    thickness_part_std: float = 0.015
    shape_std_mm: tuple[float, ...] = (0.0,) * NUM_SHAPES

    def sample(self, rng: np.random.Generator) -> HandIdentity:
        """Draw one identity; deterministic for the generator state."""
        length = rng.uniform(*self.hand_length_range)
        palm_len, palm_w = np.exp(
            np.clip(rng.standard_normal(2), -2.5, 2.5) * [self.palm_length_std, self.palm_width_std]
        )
        finger = np.clip(rng.standard_normal(5), -2.5, 2.5) * self.finger_std
        bone = np.clip(rng.standard_normal(15), -2.5, 2.5) * self.bone_std
        factors = np.ones(NUM_PARTS)
        factors[0] = palm_len
        for k, name in enumerate(PART_NAMES[1:], start=1):
            f = ("thumb", "index", "middle", "ring", "pinky").index(name[:-1])
            factors[k] = np.exp(finger[f] + bone[k - 1])
        shared = np.clip(rng.standard_normal(), -2.5, 2.5) * self.thickness_shared_std
        part = np.clip(rng.standard_normal(NUM_PARTS), -2.5, 2.5) * self.thickness_part_std
        shape = np.zeros(NUM_SHAPES)
        if any(self.shape_std_mm):
            shape = np.clip(rng.standard_normal(NUM_SHAPES), -2.5, 2.5) * self.shape_std_mm
        return HandIdentity(
            hand_length=float(length),
            length_factors=factors,
            palm_width=float(palm_w),
            thickness_offsets=self.thickness_mean + shared + part,
            shape=shape,
        )


@lru_cache(maxsize=1)
def pose_prior_stats(draws: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std ``([15, 3], [15, 3])`` radians of :class:`PosePrior` draws (no collision
    check: it barely changes the marginals and costs 10x). Std floored at 1 degree."""
    rng = np.random.default_rng(seed)
    prior = PosePrior()
    angles = np.stack([prior.sample_angles(rng) for _ in range(draws)])
    return angles.mean(0), np.maximum(angles.std(0), np.deg2rad(1.0))


@lru_cache(maxsize=1)
def identity_precision() -> np.ndarray:
    """``[17, 17]`` inverse covariance of (log length factors [16], log palm width) under
    :class:`IdentityPrior`: fingers share a per-finger term, bones add their own."""
    p = IdentityPrior()
    cov = np.zeros((NUM_PARTS + 1, NUM_PARTS + 1))
    cov[0, 0] = p.palm_length_std**2
    finger = [name[:-1] for name in PART_NAMES]
    for a in range(1, NUM_PARTS):
        for b in range(1, NUM_PARTS):
            if finger[a] == finger[b]:
                cov[a, b] = p.finger_std**2
        cov[a, a] += p.bone_std**2
    cov[NUM_PARTS, NUM_PARTS] = p.palm_width_std**2
    return np.linalg.inv(cov)
