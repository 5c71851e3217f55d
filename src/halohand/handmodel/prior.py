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
from typing import Final

import numpy as np

from halohand.errors import HalohandInputError
from halohand.handmodel.pose import (
    JOINT_LIMITS,
    NUM_POSE_JOINTS,
    POSE_JOINTS,
    HandIdentity,
    HandPose,
)
from halohand.skeleton import NUM_PARTS, PART_NAMES

# Shorthands for the gesture table: (MCP, PIP, DIP) flexion of a long finger.
_FIST = (85.0, 100.0, 60.0)
_STRAIGHT = (0.0, 0.0, 0.0)


def _finger(name: str, flex: tuple[float, float, float], abd: float = 0.0) -> dict:
    return {
        f"{name}_mcp": (flex[0], abd),
        f"{name}_pip": flex[1],
        f"{name}_dip": flex[2],
    }


def _hand(thumb: dict, **fingers: tuple) -> dict:
    table = dict(thumb)
    for name, spec in fingers.items():
        flex, abd = (spec[0], spec[1]) if isinstance(spec[0], tuple) else (spec, 0.0)
        table.update(_finger(name, flex, abd))
    return table


#: The gesture and grasp library in degrees: name -> {joint: flexion | (flexion, abduction
#: [, twist])}. Joints not named stay at rest (a flat open hand).
GESTURE_DEGREES: Final[dict[str, dict]] = {
    "flat": {},
    "relaxed": _hand(
        {"thumb_cmc": (10, 10, 5), "thumb_mcp": 10, "thumb_ip": 10},
        index=(15, 20, 10),
        middle=(20, 25, 12),
        ring=(25, 30, 15),
        pinky=(30, 35, 15),
    ),
    "spread": _hand(
        {"thumb_cmc": (-15, 15), "thumb_mcp": 0, "thumb_ip": 0},
        index=((0, 0, 0), 20),
        middle=((0, 0, 0), 5),
        ring=((0, 0, 0), 15),
        pinky=((0, 0, 0), 25),
    ),
    "fist": _hand(
        {"thumb_cmc": (30, 20, 10), "thumb_mcp": 45, "thumb_ip": 30},
        index=_FIST,
        middle=_FIST,
        ring=_FIST,
        pinky=_FIST,
    ),
    "point": _hand(
        {"thumb_cmc": (30, 20, 10), "thumb_mcp": 45, "thumb_ip": 30},
        index=(5, 5, 0),
        middle=_FIST,
        ring=_FIST,
        pinky=_FIST,
    ),
    "pinch": _hand(
        {"thumb_cmc": (15, 35, 20), "thumb_mcp": 20, "thumb_ip": 15},
        index=(35, 45, 25),
        middle=(30, 40, 20),
        ring=(35, 45, 20),
        pinky=(40, 50, 25),
    ),
    "ok": _hand(
        {"thumb_cmc": (15, 35, 20), "thumb_mcp": 20, "thumb_ip": 20},
        index=(45, 60, 40),
        middle=((10, 10, 5), -5),
        ring=((10, 10, 5), 5),
        pinky=((10, 10, 5), 15),
    ),
    "tripod": _hand(
        {"thumb_cmc": (20, 40, 20), "thumb_mcp": 20, "thumb_ip": 15},
        index=(40, 45, 25),
        middle=(45, 50, 25),
        ring=(60, 70, 40),
        pinky=(65, 75, 40),
    ),
    "cylinder": _hand(
        {"thumb_cmc": (20, 40, 20), "thumb_mcp": 20, "thumb_ip": 20},
        index=(50, 65, 35),
        middle=(55, 70, 35),
        ring=(60, 70, 35),
        pinky=(65, 70, 35),
    ),
    "sphere": _hand(
        {"thumb_cmc": (10, 45, 20), "thumb_mcp": 15, "thumb_ip": 15},
        index=((35, 40, 25), 15),
        middle=((35, 40, 25), 0),
        ring=((40, 40, 25), 10),
        pinky=((45, 40, 25), 20),
    ),
    "lateral_pinch": _hand(
        {"thumb_cmc": (15, 0, 0), "thumb_mcp": 20, "thumb_ip": 10},
        index=(60, 80, 40),
        middle=(70, 85, 45),
        ring=(75, 90, 50),
        pinky=(80, 90, 50),
    ),
    "victory": _hand(
        {"thumb_cmc": (30, 20, 10), "thumb_mcp": 45, "thumb_ip": 30},
        index=((0, 0, 0), 15),
        middle=((0, 0, 0), -10),
        ring=_FIST,
        pinky=_FIST,
    ),
    "thumbs_up": _hand(
        {"thumb_cmc": (-10, 10, 0), "thumb_mcp": 0, "thumb_ip": 0},
        index=_FIST,
        middle=_FIST,
        ring=_FIST,
        pinky=_FIST,
    ),
    "hook": _hand(
        {"thumb_cmc": (5, 10, 0), "thumb_mcp": 10, "thumb_ip": 10},
        index=(5, 90, 60),
        middle=(5, 90, 60),
        ring=(5, 90, 60),
        pinky=(5, 90, 60),
    ),
    "claw": _hand(
        {"thumb_cmc": (10, 30, 10), "thumb_mcp": 20, "thumb_ip": 30},
        index=((-10, 70, 60), 10),
        middle=((-10, 70, 60), 0),
        ring=((-10, 70, 60), 5),
        pinky=((-10, 70, 60), 15),
    ),
    "horns": _hand(
        {"thumb_cmc": (30, 20, 10), "thumb_mcp": 45, "thumb_ip": 30},
        index=((0, 0, 0), 10),
        middle=_FIST,
        ring=_FIST,
        pinky=((0, 0, 0), 15),
    ),
    "call": _hand(
        {"thumb_cmc": (-15, 15, 0), "thumb_mcp": 0, "thumb_ip": 0},
        index=_FIST,
        middle=_FIST,
        ring=_FIST,
        pinky=((0, 0, 0), 20),
    ),
    "table_top": _hand(
        {"thumb_cmc": (0, 10, 0), "thumb_mcp": 5, "thumb_ip": 5},
        index=(70, 5, 0),
        middle=(70, 5, 0),
        ring=(70, 5, 0),
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
        max_tries: draws before giving up and returning the least-penetrating one.
    """

    gestures: tuple[str, ...] = tuple(GESTURES)
    blend_probability: float = 0.5
    max_blend: float = 0.5
    curl_noise_deg: float = 8.0
    flexion_noise_deg: float = 5.0
    abduction_noise_deg: float = 3.0
    twist_noise_deg: float = 2.0
    max_penetration: float = 0.0015
    max_tries: int = 30

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

    def sample_angles(self, rng: np.random.Generator) -> np.ndarray:
        """One unchecked draw: ``[15, 3]`` radians within the joint limits."""
        names = self.gestures
        angles = GESTURES[names[rng.integers(len(names))]].copy()
        if rng.random() < self.blend_probability:
            other = GESTURES[names[rng.integers(len(names))]]
            w = rng.uniform(0.0, self.max_blend)
            angles = (1.0 - w) * angles + w * other
        curl = np.deg2rad(self.curl_noise_deg) * rng.standard_normal(len(_CHAINS))
        angles[_CHAINS, 0] += curl[:, None] * np.array([1.0, 1.0, 0.7])
        noise_std = np.deg2rad(
            [self.flexion_noise_deg, self.abduction_noise_deg, self.twist_noise_deg]
        )
        angles += noise_std * rng.standard_normal((NUM_POSE_JOINTS, 3))
        # A flexed MCP cannot spread: abduction fades to 40 % at 90 degrees of flexion.
        fade = 1.0 - 0.6 * np.clip(angles[_MCP, 0] / np.deg2rad(90.0), 0.0, 1.0)
        angles[_MCP, 1] *= fade
        return np.clip(angles, JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1])

    def sample(
        self,
        rng: np.random.Generator,
        identity: HandIdentity | None = None,
        model: object | None = None,
    ) -> HandPose:
        """Draw a natural pose; deterministic for the generator state.

        The collision check uses ``model`` (default: the shipped WebXR model) at ``identity``
        (default: the template's shape).
        """
        from halohand.handmodel.webxr import WebXRHandModel, default_model

        checker = default_model() if model is None else model
        if not isinstance(checker, WebXRHandModel):
            raise HalohandInputError("the pose prior's collision check needs a WebXRHandModel")
        identity = HandIdentity() if identity is None else identity
        best, best_pen = None, np.inf
        for _ in range(self.max_tries):
            pose = HandPose.from_array(self.sample_angles(rng))
            pen = checker.self_penetration(pose, identity)
            if pen <= self.max_penetration:
                return pose
            if pen < best_pen:
                best, best_pen = pose, pen
        assert best is not None
        return best


#: Identity prior defaults (documented in docs/hand_model.md).
HAND_LENGTH_SAMPLE_RANGE: Final = (0.15, 0.22)


@dataclass(frozen=True)
class IdentityPrior:
    """Samples hand shapes.

    Attributes:
        hand_length_range: wrist-to-middle-tip length, uniform (metres).
        palm_length_std / palm_width_std: log-normal std of the palm factors.
        finger_std: log std of a per-finger length factor (shared by its three bones).
        bone_std: log std of the independent per-bone length factor.
        thickness_shared_std / thickness_part_std: std of the shared and per-part relative
            thickness offsets (the part keypoints cannot see); clipped at 2.5 std.
    """

    hand_length_range: tuple[float, float] = HAND_LENGTH_SAMPLE_RANGE
    palm_length_std: float = 0.04
    palm_width_std: float = 0.04
    finger_std: float = 0.035
    bone_std: float = 0.025
    thickness_shared_std: float = 0.02
    thickness_part_std: float = 0.015

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
        return HandIdentity(
            hand_length=float(length),
            length_factors=factors,
            palm_width=float(palm_w),
            thickness_offsets=shared + part,
        )
