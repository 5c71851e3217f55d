"""Pose and identity parameters of the embedded hand model, with their limits.

Pose: three angles (radians) at each of the 15 finger joints, relative to the template's rest
pose (a flat open hand whose joints are within about 11 degrees of straight):

- **flexion**: positive curls the bone toward the palm (WebXR: a rotation about the joint's
  local +X by the negative angle); negative is hyperextension.
- **abduction**: rotation about the joint's dorsal axis (local +Y). Positive spreads the
  finger away from the middle finger (index and middle move toward the thumb, ring and
  pinky toward the little-finger side). Thumb CMC: positive is palmar abduction (the thumb
  comes forward, out of the palm plane); thumb flexion carries it across the palm and
  negative flexion is radial abduction (away from the index in the palm plane).
- **twist**: rotation about the bone's own axis, right-hand rule about the distal direction
  on the right hand. Small (+-5-10 degrees) except at the thumb CMC, where opposition needs
  the metacarpal to roll (negative twist turns the thumb pad toward the finger pads).

The palm is rigid (the four long-finger metacarpals follow the wrist), as HALO's palm part is.
A left hand is the mirror image of the right hand with the same parameters, so the
parameters keep their anatomical meaning on both sides.

Identity: overall size (wrist-to-middle-tip length), a length factor per HALO part, palm
width, and a small per-part thickness offset that keypoints cannot see (see
:class:`HandIdentity`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.handmodel.shape import NUM_SHAPES, SHAPE_LIMIT_MM, SHAPE_NAMES
from halohand.skeleton import NUM_PARTS, PART_NAMES

#: The 15 posable joints (project names of the joint the bone rotates about).
POSE_JOINTS: Final[tuple[str, ...]] = (
    "thumb_cmc", "thumb_mcp", "thumb_ip",
    "index_mcp", "index_pip", "index_dip",
    "middle_mcp", "middle_pip", "middle_dip",
    "ring_mcp", "ring_pip", "ring_dip",
    "pinky_mcp", "pinky_pip", "pinky_dip",
)  # fmt: skip
NUM_POSE_JOINTS: Final = 15

#: WebXR joint index each pose joint rotates (thumb_cmc -> thumb-metacarpal, index_mcp ->
#: index-finger-phalanx-proximal, ...).
POSE_WEBXR_JOINT: Final = np.array([1, 2, 3, 6, 7, 8, 11, 12, 13, 16, 17, 18, 21, 22, 23])

#: HALO part each pose joint moves (thumb_cmc -> thumb1, index_mcp -> index1, ...).
POSE_PART: Final = np.array(
    [PART_NAMES.index(n) for n in (
        "thumb1", "thumb2", "thumb3", "index1", "index2", "index3",
        "middle1", "middle2", "middle3", "ring1", "ring2", "ring3",
        "pinky1", "pinky2", "pinky3",
    )]
)  # fmt: skip

#: Sign turning the documented abduction into a rotation about local +Y. In the rig's finger
#: frames +Y rotation moves the tip toward the thumb (so ring and pinky need -1); in the
#: thumb's frames it moves the thumb out in front of the palm.
ABDUCTION_SIGN: Final = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1], float)

#: Joint limits in degrees: name -> ((flex lo, hi), (abduction lo, hi), (twist lo, hi)).
#: Ranges relative to the template's rest pose, from the usual clinical ranges of motion
#: (MCP flexion ~90 with ~20 hyperextension, PIP ~110, DIP ~80, MCP abduction ~20; thumb
#: CMC about 70 flexion/extension and 75 palmar abduction). Hinge joints (PIP, DIP, IP)
#: get +-5 degrees of abduction and twist for the play real joints have.
JOINT_LIMITS_DEG: Final[dict[str, tuple[tuple[float, float], ...]]] = {
    "thumb_cmc": ((-20.0, 50.0), (-15.0, 60.0), (-30.0, 10.0)),
    "thumb_mcp": ((-10.0, 60.0), (-10.0, 10.0), (-10.0, 10.0)),
    "thumb_ip": ((-15.0, 80.0), (-5.0, 5.0), (-5.0, 5.0)),
    "index_mcp": ((-20.0, 90.0), (-15.0, 25.0), (-10.0, 10.0)),
    "index_pip": ((-5.0, 110.0), (-5.0, 5.0), (-5.0, 5.0)),
    "index_dip": ((-10.0, 80.0), (-5.0, 5.0), (-5.0, 5.0)),
    "middle_mcp": ((-20.0, 90.0), (-15.0, 20.0), (-10.0, 10.0)),
    "middle_pip": ((-5.0, 110.0), (-5.0, 5.0), (-5.0, 5.0)),
    "middle_dip": ((-10.0, 80.0), (-5.0, 5.0), (-5.0, 5.0)),
    "ring_mcp": ((-20.0, 90.0), (-15.0, 20.0), (-10.0, 10.0)),
    "ring_pip": ((-5.0, 110.0), (-5.0, 5.0), (-5.0, 5.0)),
    "ring_dip": ((-10.0, 80.0), (-5.0, 5.0), (-5.0, 5.0)),
    "pinky_mcp": ((-20.0, 90.0), (-15.0, 30.0), (-10.0, 10.0)),
    "pinky_pip": ((-5.0, 110.0), (-5.0, 5.0), (-5.0, 5.0)),
    "pinky_dip": ((-10.0, 80.0), (-5.0, 5.0), (-5.0, 5.0)),
}

_ANGLE_NAMES: Final = ("flexion", "abduction", "twist")

#: ``[15, 3, 2]`` limits in radians (joint, angle kind, lo/hi).
JOINT_LIMITS: Final = np.deg2rad(np.array([JOINT_LIMITS_DEG[n] for n in POSE_JOINTS]))

# Small slack so that values clipped to a limit and round-tripped through degrees pass.
_LIMIT_SLACK = 1e-9


def _as_vector(name: str, value: object, size: int) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HalohandInputError(f"{name} must be numeric, got {type(value).__name__}") from exc
    if arr.ndim == 0:
        arr = np.full(size, float(arr))
    if arr.shape != (size,):
        raise HalohandInputError(f"{name} must have shape [{size}], got {list(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise HalohandInputError(f"{name}[{bad}] is not finite")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True)
class HandPose:
    """Joint angles (radians) at the 15 joints of :data:`POSE_JOINTS`, relative to rest.

    Construction checks shapes, finiteness and the limits of :data:`JOINT_LIMITS_DEG` and
    raises :class:`~halohand.core.errors.HalohandInputError` (a ``ValueError``) naming the joint.

    Attributes:
        flexion: ``[15]`` radians, positive toward the palm.
        abduction: ``[15]`` radians, positive away from the middle finger (thumb: away from
            the index finger).
        twist: ``[15]`` radians about the bone axis.
    """

    flexion: np.ndarray = field(default_factory=lambda: np.zeros(NUM_POSE_JOINTS))
    abduction: np.ndarray = field(default_factory=lambda: np.zeros(NUM_POSE_JOINTS))
    twist: np.ndarray = field(default_factory=lambda: np.zeros(NUM_POSE_JOINTS))

    def __post_init__(self) -> None:
        for kind in _ANGLE_NAMES:
            object.__setattr__(
                self, kind, _as_vector(f"pose {kind}", getattr(self, kind), NUM_POSE_JOINTS)
            )
        angles = self.as_array()
        lo, hi = JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1]
        bad = (angles < lo - _LIMIT_SLACK) | (angles > hi + _LIMIT_SLACK)
        if bad.any():
            j, k = (int(i) for i in np.argwhere(bad)[0])
            lo_d, hi_d = JOINT_LIMITS_DEG[POSE_JOINTS[j]][k]
            raise HalohandInputError(
                f"{POSE_JOINTS[j]} {_ANGLE_NAMES[k]} {np.rad2deg(angles[j, k]):.1f} deg is "
                f"outside its limit [{lo_d:g}, {hi_d:g}] deg"
            )

    def as_array(self) -> np.ndarray:
        """``[15, 3]`` radians: columns flexion, abduction, twist."""
        return np.stack([self.flexion, self.abduction, self.twist], axis=-1)

    @classmethod
    def from_array(cls, angles: np.ndarray) -> HandPose:
        """From a ``[15, 3]`` radian array (flexion, abduction, twist columns)."""
        arr = np.asarray(angles, dtype=np.float64)
        if arr.shape != (NUM_POSE_JOINTS, 3):
            raise HalohandInputError(f"pose angles must have shape [15, 3], got {list(arr.shape)}")
        return cls(arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy())

    @classmethod
    def from_degrees(
        cls, angles: Mapping[str, float | tuple[float, ...]] | None = None, **kwargs: float
    ) -> HandPose:
        """Build a pose from degrees by joint name; unnamed joints stay at rest.

        Each value is a flexion angle or a ``(flexion, abduction[, twist])`` tuple, e.g.
        ``HandPose.from_degrees({"index_mcp": (45, 10), "index_pip": 60})``.
        """
        table = dict(angles or {}, **kwargs)
        arr = np.zeros((NUM_POSE_JOINTS, 3))
        for name, value in table.items():
            if name not in POSE_JOINTS:
                raise HalohandInputError(
                    f"unknown pose joint {name!r}; expected one of {', '.join(POSE_JOINTS)}"
                )
            vals = np.atleast_1d(np.asarray(value, dtype=np.float64))
            if vals.ndim != 1 or not 1 <= len(vals) <= 3:
                raise HalohandInputError(
                    f"{name}: expected flexion or (flexion, abduction[, twist]) in degrees"
                )
            arr[POSE_JOINTS.index(name), : len(vals)] = vals
        return cls.from_array(np.deg2rad(arr))

    def to_degrees(self) -> dict[str, tuple[float, float, float]]:
        """``{joint: (flexion, abduction, twist)}`` in degrees."""
        deg = np.rad2deg(self.as_array())
        return {
            n: (float(a), float(b), float(c)) for n, (a, b, c) in zip(POSE_JOINTS, deg, strict=True)
        }


#: Validation ranges of the identity parameters (wider than what the prior samples).
HAND_LENGTH_RANGE: Final = (0.12, 0.26)
LENGTH_FACTOR_RANGE: Final = (0.7, 1.4)
PALM_WIDTH_RANGE: Final = (0.75, 1.3)
THICKNESS_OFFSET_RANGE: Final = (-0.25, 0.25)

#: Thickness follows bone length with this exponent (girth grows slower than length).
THICKNESS_LENGTH_EXPONENT: Final = 0.5


@dataclass(frozen=True)
class HandIdentity:
    """Shape of one hand.

    Attributes:
        hand_length: wrist-to-middle-fingertip length along the middle-finger chain, metres
            (:func:`halohand.skeleton.hand_length` of the keypoints); ``None`` keeps the
            template's 0.178 m. Validated in [0.12, 0.26].
        length_factors: ``[16]`` bone-length factors per HALO part (palm = palm length, wrist to
            knuckles), applied before the overall scaling. Validated in [0.7, 1.4].
        palm_width: factor on the knuckle spread and palm width. Validated in [0.75, 1.3].
        thickness_offsets: ``[16]`` relative radial thickness change per part on top of the
            thickness implied by size and bone lengths; invisible to keypoints, so keep it
            small. Validated in [-0.25, 0.25].
        shape: ``[5]`` soft-tissue correctives :data:`~halohand.handmodel.shape.SHAPE_NAMES`
            (thenar, palm hollow, thumb web, finger pads, knuckles): peak displacement in mm
            at the template's size (:mod:`halohand.handmodel.shape`); invisible to keypoints.
            Validated within +-(5, 4, 5, 2, 2) mm; zero is the template's own shape.
    """

    hand_length: float | None = None
    length_factors: np.ndarray = field(default_factory=lambda: np.ones(NUM_PARTS))
    palm_width: float = 1.0
    thickness_offsets: np.ndarray = field(default_factory=lambda: np.zeros(NUM_PARTS))
    shape: np.ndarray = field(default_factory=lambda: np.zeros(NUM_SHAPES))

    def __post_init__(self) -> None:
        if self.hand_length is not None:
            length = _as_vector("identity hand_length", self.hand_length, 1)[0]
            lo, hi = HAND_LENGTH_RANGE
            if not lo <= length <= hi:
                raise HalohandInputError(
                    f"hand_length {length:.4g} m is outside [{lo}, {hi}] m "
                    "(wrist to middle fingertip, in metres)"
                )
            object.__setattr__(self, "hand_length", float(length))
        width = _as_vector("identity palm_width", self.palm_width, 1)[0]
        if not PALM_WIDTH_RANGE[0] <= width <= PALM_WIDTH_RANGE[1]:
            raise HalohandInputError(
                f"palm_width {width:.4g} is outside [{PALM_WIDTH_RANGE[0]}, {PALM_WIDTH_RANGE[1]}]"
            )
        object.__setattr__(self, "palm_width", float(width))
        for name, rng in (("length_factors", LENGTH_FACTOR_RANGE),
                          ("thickness_offsets", THICKNESS_OFFSET_RANGE)):  # fmt: skip
            arr = _as_vector(f"identity {name}", getattr(self, name), NUM_PARTS)
            bad = np.flatnonzero((arr < rng[0]) | (arr > rng[1]))
            if len(bad):
                k = int(bad[0])
                raise HalohandInputError(
                    f"{name} of {PART_NAMES[k]} is {arr[k]:.4g}, outside [{rng[0]}, {rng[1]}]"
                )
            object.__setattr__(self, name, arr)
        shape = _as_vector("identity shape", self.shape, NUM_SHAPES)
        bad = np.flatnonzero(np.abs(shape) > SHAPE_LIMIT_MM)
        if len(bad):
            k = int(bad[0])
            raise HalohandInputError(
                f"shape corrective {SHAPE_NAMES[k]} is {shape[k]:.4g} mm, outside "
                f"+-{SHAPE_LIMIT_MM[k]} mm"
            )
        object.__setattr__(self, "shape", shape)

    def thickness_factors(self) -> np.ndarray:
        """``[16]`` radial scale per part implied by bone lengths, palm width and the offsets.

        Finger parts: ``(length_factor * palm_width) ** 0.5 * (1 + offset)``; palm (its
        dorsal-palmar thickness): ``(palm_length * palm_width) ** 0.5 * (1 + offset)``.
        The overall size scales everything on top of this.
        """
        base = (self.length_factors * self.palm_width) ** THICKNESS_LENGTH_EXPONENT
        return base * (1.0 + self.thickness_offsets)
