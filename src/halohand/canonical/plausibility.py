"""Is this skeleton a plausible human hand? Joint angles, bone proportions, units, side.

:func:`check_skeleton` measures every hand of a batch ``[..., 21, 3]`` (project order, any
unit) and returns a :class:`PlausibilityReport` with per-hand arrays and a flat list of
:class:`Finding` s (joint or bone, measured value, allowed range, severity).
:func:`fix_skeleton` projects hands onto the nearest skeleton that passes: joint angles
clamped into their ranges and bone lengths into their proportions, with the wrist, the
root-bone directions (the palm frame) and the finger angles that were already fine kept.

What is checked (``docs/check.md`` has the tables, sources and measured numbers):

* **Joint angles.** Flexion and abduction of the 15 finger bones as measured by the
  canonicalization layer (:func:`halohand.canonical.canonicalize`: flexion + toward the palm,
  relative to the straight canonical finger; thumb CMC relative to the palm-normalized thumb
  root bone). Two bands per joint, :data:`ANGLE_LIMITS_DEG`: ``warning`` outside the active
  range of motion of healthy adults plus a margin for keypoint noise, ``error`` outside
  anything a human joint reaches. Ranges: clinical ranges of motion as tabulated by the AAOS
  (*Joint Motion: Method of Measuring and Recording*, 1965) and Hume et al. (J Hand Surg
  1990): long-finger MCP about -30 (hyperextension) to 90, PIP 0 to 110, DIP -10 to 90 (up to
  -30 passive), thumb MCP 0 to 55 (some 90), thumb IP -15 to 80 (hyperextension up to -35 is
  common), MCP abduction about +-20 to 30. Keypoints cannot see twist, and a twisted
  proximal bone turns part of the next joint's flexion into apparent abduction, so hinge
  joints (PIP, DIP, IP) get wide abduction bands; the thumb, whose CMC saddle joint is
  measured against a keypoint-defined root bone, gets wide bands everywhere. Every band
  contains all angles the project's hand model produces at its own joint limits
  (:data:`halohand.handmodel.pose.JOINT_LIMITS_DEG`), so only the error band is a hard
  statement.
* **Bone proportions.** Each of the 20 bone lengths divided by a robust hand length ``H``
  (the median over bones of ``length / nominal ratio``, so one wrong bone cannot move the
  reference), against :data:`BONE_RATIO_RANGES`. Ranges span both radiographic adult
  proportions and the project's hand model (whose fingertip keypoints sit inside the finger
  pad, so its distal segments are shorter): ``warning`` beyond 0.75x the smaller / 1.33x the
  larger reference, ``error`` beyond 0.4x / 1.6x.
* **Units.** The hand length (wrist to middle tip along the finger) must fit m, cm or mm as in
  :func:`halohand.inference.halo.detect_units`; with explicit units the size must lie in 0.05-0.45 m
  (``error`` otherwise, with the unit it looks like) and in 0.10-0.30 m (``warning``).
* **Degenerate skeletons** (``error``): a bone shorter than 1e-3 of the mean bone, or two
  neighbouring root bones (wrist to CMC / MCP) within 1 deg of parallel (a collinear palm).
  Angles and side are not measured on such hands.
* **Mirrored hands** (``--side`` likely wrong). Handedness is a sign: a mirror image flips
  (a) the side of the palm plane ``(index MCP - wrist) x (pinky MCP - wrist)`` the thumb CMC
  lies on (palmar in a right hand checked as right: 20-24 deg of elevation on the hand model
  in every pose) and (b) the sign of finger flexion (fingers curl toward the palm). The score
  ``thumb elevation / 15 deg + mean curl / 60 deg`` (curl = MCP + PIP flexion of a long
  finger) is >= 1.1 on the project's right and left hands of all natural poses and <= -1.1
  on their mirror images; below -0.5 is an ``error``, below 0 a ``warning``. A flat hand is
  its own mirror image except for the thumb, which is why the thumb cue carries the weight
  there.

Everything is batched over leading dimensions and runs in float64 on the CPU; inputs may be
numpy arrays or torch tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import torch
from torch import Tensor

from halohand.canonical.canonicalize import FINGER_BONE_CHILDREN, canonical_frames, canonicalize
from halohand.core.errors import HalohandInputError
from halohand.core.rotations import swing
from halohand.core.units import HAND_LENGTH_RANGE_M, UNIT_SCALE, check_unit, units_fitting
from halohand.skeleton.bones import BONES
from halohand.skeleton.orders import JOINT_NAMES, to_openpose
from halohand.skeleton.sides import parse_side
from halohand.skeleton.validation import MAX_COORDINATE

__all__ = [
    "ANGLE_JOINTS",
    "ANGLE_LIMITS_DEG",
    "BONE_NAMES",
    "BONE_RATIO_RANGES",
    "SEVERITIES",
    "Finding",
    "FixedSkeleton",
    "PlausibilityReport",
    "check_skeleton",
    "fix_skeleton",
    "repose_skeleton",
    "summary_line",
]

SEVERITIES: Final = ("info", "warning", "error")

#: The joint each of the 15 measured finger bones rotates about, in the layer's order
#: (:data:`~halohand.canonical.FINGER_BONE_CHILDREN`): thumb CMC, MCP, IP, index MCP, ...
ANGLE_JOINTS: Final[tuple[str, ...]] = tuple(JOINT_NAMES[c - 1] for c in FINGER_BONE_CHILDREN)

#: Bone names ``parent->child``, indexed like :func:`halohand.skeleton.bone_lengths`.
BONE_NAMES: Final[tuple[str, ...]] = tuple(f"{JOINT_NAMES[a]}->{JOINT_NAMES[b]}" for a, b in BONES)

_Band = tuple[float, float]
_LONG_FINGER_LIMITS: Final[dict[str, tuple[_Band, _Band, _Band, _Band]]] = {
    "mcp": ((-35.0, 100.0), (-60.0, 130.0), (-40.0, 40.0), (-65.0, 65.0)),
    "pip": ((-15.0, 120.0), (-30.0, 150.0), (-45.0, 45.0), (-75.0, 75.0)),
    "dip": ((-25.0, 95.0), (-45.0, 130.0), (-45.0, 45.0), (-75.0, 75.0)),
}

#: Degrees, per joint of :data:`ANGLE_JOINTS`: (flexion warning band, flexion error band,
#: abduction warning band, abduction error band); a value outside a band is a finding of
#: that severity. Sources and reasoning in the module docstring and ``docs/check.md``.
ANGLE_LIMITS_DEG: Final[dict[str, tuple[_Band, _Band, _Band, _Band]]] = {
    "thumb_cmc": ((-35.0, 85.0), (-60.0, 115.0), (-70.0, 50.0), (-85.0, 75.0)),
    "thumb_mcp": ((-30.0, 80.0), (-50.0, 110.0), (-55.0, 55.0), (-80.0, 80.0)),
    "thumb_ip": ((-45.0, 90.0), (-60.0, 120.0), (-45.0, 75.0), (-80.0, 85.0)),
    **{
        f"{finger}_{joint}": limits
        for finger in ("index", "middle", "ring", "pinky")
        for joint, limits in _LONG_FINGER_LIMITS.items()
    },
}

# Bone length / hand length (wrist to middle fingertip along the finger), two references:
# radiographic adult bone lengths (metacarpals, phalanges; e.g. Hamilton & Dunsmuir 2002,
# Buryanov & Kotiuk 2010: index P1 ~40, P2 ~23, P3 ~17 mm; middle 45/27/19; ring 42/26/19;
# little 33/18/17; thumb MC 46, P1 32, P2 23) turned into joint-centre keypoint segments
# (carpus added to the wrist -> MCP bones, finger pad to the tip segment; hand 187 mm), and
# the medians of the project's hand model (300 prior samples). The literature values are
# approximate and were recalled, not re-read; the bands are wide enough not to depend on them
# to a few percent.
_RATIO_LITERATURE: Final = np.array([
    0.19, 0.246, 0.171, 0.139,
    0.497, 0.214, 0.123, 0.107,
    0.497, 0.241, 0.144, 0.118,
    0.471, 0.225, 0.139, 0.112,
    0.439, 0.176, 0.096, 0.102,
])  # fmt: skip
_RATIO_MODEL: Final = np.array([
    0.277, 0.183, 0.189, 0.083,
    0.516, 0.254, 0.137, 0.065,
    0.514, 0.263, 0.155, 0.068,
    0.486, 0.239, 0.149, 0.067,
    0.464, 0.194, 0.114, 0.067,
])  # fmt: skip
#: Nominal ratio per bone (geometric mean of the two references); ``H`` is estimated with it.
BONE_RATIO_NOMINAL: Final = np.sqrt(_RATIO_LITERATURE * _RATIO_MODEL)
_LO: Final = np.minimum(_RATIO_LITERATURE, _RATIO_MODEL)
_HI: Final = np.maximum(_RATIO_LITERATURE, _RATIO_MODEL)
#: ``[20, 2, 2]`` bone length / ``H``: (warning band, error band) per bone.
BONE_RATIO_RANGES: Final = np.stack(
    [np.stack([_LO * 0.75, _HI * 1.33], -1), np.stack([_LO * 0.4, _HI * 1.6], -1)], axis=1
)

#: Hand lengths (m) of plausible humans (children to large adults); outside is a warning.
HAND_SIZE_RANGE_M: Final = (0.10, 0.30)
#: Relative bone length below which a bone counts as zero (as in the canonicalization).
MIN_BONE_RATIO: Final = 1e-3
#: Neighbouring root bones closer than this to (anti)parallel make the palm collinear.
MIN_ROOT_ANGLE_DEG: Final = 1.0
#: Mirror score thresholds (see the module docstring).
MIRROR_ERROR: Final = -0.5
MIRROR_WARNING: Final = 0.0
_THUMB_SCALE_DEG: Final = 15.0
_CURL_SCALE_DEG: Final = 60.0

_ROOT_JOINTS: Final = np.array([1, 5, 9, 13, 17])  # thumb CMC, index .. pinky MCP
_ROOT_BONES: Final = _ROOT_JOINTS - 1
_FINGERS: Final = ("thumb", "index", "middle", "ring", "pinky")
_SEVERITY_RANK: Final = {s: i for i, s in enumerate(SEVERITIES)}
# Causes before their symptoms: a wrong side or unit makes many angles or bones look wrong.
_KIND_RANK: Final = {"degenerate": 0, "units": 1, "mirrored": 2}


def _worst_first(f: Finding) -> tuple[int, int]:
    return (-_SEVERITY_RANK[f.severity], _KIND_RANK.get(f.kind, 3))


@dataclass(frozen=True)
class Finding:
    """One implausibility.

    Attributes:
        hand: index of the hand in the batch (``()`` for a single ``[21, 3]`` hand).
        kind: ``flexion``, ``abduction``, ``bone_length``, ``units``, ``hand_size``,
            ``degenerate`` or ``mirrored``.
        name: joint (``index_pip``), bone (``index_pip->index_dip``) or ``hand``.
        value: the measurement (degrees, ratio to ``H``, metres or mirror score), NaN if none.
        low / high: the allowed range of the measurement (NaN where one side is open).
        unit: ``deg``, ``ratio``, ``m``, ``score`` or ``""``.
        severity: ``warning`` (unusual: outside the published range plus margin) or
            ``error`` (not a human hand, or wrong input: side, units, degenerate).
        message: one readable line.
    """

    hand: tuple[int, ...]
    kind: str
    name: str
    value: float
    low: float
    high: float
    unit: str
    severity: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes ``None``)."""

        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else round(float(x), 6)

        return {
            "hand": list(self.hand),
            "kind": self.kind,
            "name": self.name,
            "value": num(self.value),
            "low": num(self.low),
            "high": num(self.high),
            "unit": self.unit,
            "severity": self.severity,
            "message": self.message,
        }


@dataclass(frozen=True)
class PlausibilityReport:
    """Result of :func:`check_skeleton`; ``...`` is the batch shape of the input.

    Attributes:
        batch_shape: ``...``.
        is_left: ``[...]`` bool, the side the hands were checked as.
        units: the unit used (given, or detected from the median hand length); ``None`` when
            ``auto`` found none.
        hand_length: ``[...]`` wrist to middle tip along the finger, input units.
        flexion_deg / abduction_deg: ``[..., 15]`` degrees, joints :data:`ANGLE_JOINTS`
            (NaN on degenerate hands).
        bone_ratios: ``[..., 20]`` bone length / robust hand length ``H`` (bones
            :data:`BONE_NAMES`).
        mirror_score: ``[...]`` > 0 looks like the given side, < 0 like its mirror image
            (NaN on degenerate hands).
        degenerate: ``[...]`` bool.
        findings: every finding, ordered by hand.
    """

    batch_shape: tuple[int, ...]
    is_left: np.ndarray
    units: str | None
    hand_length: np.ndarray
    flexion_deg: np.ndarray
    abduction_deg: np.ndarray
    bone_ratios: np.ndarray
    mirror_score: np.ndarray
    degenerate: np.ndarray
    findings: tuple[Finding, ...] = field(default=())

    @property
    def num_hands(self) -> int:
        return int(np.prod(self.batch_shape, dtype=np.int64))

    def hands(self) -> list[tuple[int, ...]]:
        """Hand indices in order (``[()]`` for one hand)."""
        return [tuple(int(i) for i in ix) for ix in np.ndindex(*self.batch_shape)]

    def for_hand(self, hand: tuple[int, ...]) -> list[Finding]:
        """Findings of one hand, worst first."""
        found = [f for f in self.findings if f.hand == tuple(hand)]
        return sorted(found, key=_worst_first)

    def count(self, severity: str = "error") -> int:
        """Number of findings of ``severity``."""
        return sum(f.severity == severity for f in self.findings)

    @property
    def plausible(self) -> bool:
        """No ``error`` finding in any hand."""
        return self.count("error") == 0

    @property
    def looks_mirrored(self) -> np.ndarray:
        """``[...]`` bool: the hand looks like the mirror image of the given side."""
        return np.nan_to_num(self.mirror_score, nan=1.0) < MIRROR_ERROR

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: per-hand measurements and all findings."""

        def arr(x: np.ndarray, nd: int = 3) -> Any:
            return np.where(np.isfinite(x), np.round(x, nd), np.nan).tolist()

        return {
            "batch_shape": list(self.batch_shape),
            "units": self.units,
            "side": ["left" if v else "right" for v in self.is_left.reshape(-1)],
            "plausible": self.plausible,
            "errors": self.count("error"),
            "warnings": self.count("warning"),
            "joints": list(ANGLE_JOINTS),
            "bones": list(BONE_NAMES),
            "hand_length": arr(self.hand_length.reshape(-1), 6),
            "flexion_deg": arr(self.flexion_deg.reshape(-1, 15), 2),
            "abduction_deg": arr(self.abduction_deg.reshape(-1, 15), 2),
            "bone_ratios": arr(self.bone_ratios.reshape(-1, 20), 4),
            "mirror_score": arr(self.mirror_score.reshape(-1), 3),
            "degenerate": self.degenerate.reshape(-1).tolist(),
            "findings": [f.to_dict() for f in self.findings],
        }


# ---- input handling ---------------------------------------------------------------------


def _as_array(keypoints: Any) -> np.ndarray:
    if isinstance(keypoints, Tensor):
        keypoints = keypoints.detach().cpu().numpy()
    try:
        kp = np.asarray(keypoints, dtype=np.float64)
    except (TypeError, ValueError):
        raise HalohandInputError("keypoints must be numbers in a [..., 21, 3] array") from None
    if kp.ndim < 2 or kp.shape[-2:] != (21, 3):
        raise HalohandInputError(f"keypoints must have shape [..., 21, 3], got {list(kp.shape)}")
    if not np.isfinite(kp).all():
        raise HalohandInputError("keypoints contain NaN or inf; fill in or drop missing joints")
    if kp.size and np.abs(kp).max() > MAX_COORDINATE:
        raise HalohandInputError(
            f"keypoint coordinates up to {np.abs(kp).max():.3g}: no hand is that large in m, cm "
            f"or mm (limit {MAX_COORDINATE:g}); check the file and its units"
        )
    return kp


def _left_mask(side: Any, batch_shape: tuple[int, ...]) -> np.ndarray:
    arr = parse_side(side)
    if isinstance(arr, str):
        return np.full(batch_shape, arr == "left")
    if arr.dtype != bool:
        raise HalohandInputError("side must be 'right', 'left', names or booleans (True = left)")
    try:
        return np.broadcast_to(arr, batch_shape).copy()
    except ValueError:
        raise HalohandInputError(
            f"side of shape {list(arr.shape)} does not match the batch shape {list(batch_shape)}"
        ) from None


def _fits(length_m: float) -> bool:
    return HAND_LENGTH_RANGE_M[0] <= length_m <= HAND_LENGTH_RANGE_M[1]


def _detect(length: float) -> str | None:
    """The unit in which ``length`` is a human hand length (as ``halohand.detect_units``)."""
    fits = units_fitting(length, HAND_LENGTH_RANGE_M)
    return fits[0] if fits else None


# ---- measurements -----------------------------------------------------------------------


def _degeneracy(lengths: np.ndarray, kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[B, 20]`` zero-length bones and ``[B, 4]`` (anti)parallel neighbouring root bones."""
    zero = lengths <= MIN_BONE_RATIO * lengths.mean(-1, keepdims=True)
    roots = kp[:, _ROOT_JOINTS] - kp[:, :1]
    roots = roots / np.maximum(np.linalg.norm(roots, axis=-1, keepdims=True), 1e-300)
    sine = np.linalg.norm(np.cross(roots[:, :-1], roots[:, 1:]), axis=-1)
    collinear = sine < np.sin(np.deg2rad(MIN_ROOT_ANGLE_DEG))
    return zero, collinear


def _robust_scale(lengths: np.ndarray) -> np.ndarray:
    """``[B, 20] -> [B]`` robust hand length ``H``: median of ``length / nominal ratio``."""
    return np.median(lengths / BONE_RATIO_NOMINAL, axis=-1)


def _angle_bands() -> np.ndarray:
    """``[15, 2 kinds, 2 severities, 2]`` degrees (kind: flexion, abduction)."""
    rows = [ANGLE_LIMITS_DEG[j] for j in ANGLE_JOINTS]
    return np.array([[[fw, fe], [aw, ae]] for fw, fe, aw, ae in rows], dtype=np.float64)


def _measure(kp: np.ndarray, is_left: np.ndarray):
    """Canonicalization of ``[B, 21, 3]`` float64 hands (degenerate ones give garbage)."""
    return canonicalize(torch.as_tensor(kp), torch.as_tensor(is_left), check=False)


def _thumb_elevation(kp: np.ndarray, is_left: np.ndarray) -> np.ndarray:
    """``[B]`` degrees: wrist -> thumb CMC above the (index MCP, pinky MCP) palm plane,
    positive on the side a right hand (or a mirrored left one) flexes toward."""
    # The index-pinky pair spans the palm widely (about 40 deg), so this normal is far less
    # noise-sensitive than one from the nearly parallel index and middle root bones.
    flip = np.ones((len(kp), 1, 3))
    flip[is_left, 0, 0] = -1.0
    right = kp * flip
    normal = np.cross(right[:, 5] - right[:, 0], right[:, 17] - right[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-300)
    thumb = right[:, 1] - right[:, 0]
    sine = (thumb * normal).sum(-1) / np.maximum(np.linalg.norm(thumb, axis=-1), 1e-300)
    return np.rad2deg(np.arcsin(np.clip(sine, -1.0, 1.0)))


def _mirror_score(thumb_deg: np.ndarray, flexion_deg: np.ndarray) -> np.ndarray:
    # DIP flexion is left out of the curl: the short distal segments make it the noisiest.
    curl = flexion_deg[:, 3:].reshape(-1, 4, 3)[..., :2].sum(-1).mean(-1)
    return thumb_deg / _THUMB_SCALE_DEG + curl / _CURL_SCALE_DEG


def check_skeleton(keypoints: Any, side: Any = "right", units: str = "auto") -> PlausibilityReport:
    """Check hands against human joint ranges, proportions, units and handedness.

    Args:
        keypoints: ``[..., 21, 3]`` keypoints in the project's order (numpy, tensor or lists),
            any frame, units ``units``. Must be finite (else :class:`HalohandInputError`).
        side: ``"right"``, ``"left"``, or per hand (names or booleans, True = left).
        units: ``"auto"``, ``"m"``, ``"cm"`` or ``"mm"``.

    Returns:
        A :class:`PlausibilityReport`; implausible hands are reported, never raised.
    """
    kp_in = _as_array(keypoints)
    units = check_unit(units)
    batch_shape = tuple(kp_in.shape[:-2])
    is_left = _left_mask(side, batch_shape)
    kp = kp_in.reshape(-1, 21, 3)
    left = is_left.reshape(-1)
    n = kp.shape[0]
    hands = [tuple(int(i) for i in ix) for ix in np.ndindex(*batch_shape)]
    findings: list[Finding] = []

    def add(
        b: int, kind: str, name: str, value: float, band: _Band, unit: str, sev: str, msg: str
    ) -> None:
        findings.append(
            Finding(hands[b], kind, name, float(value), band[0], band[1], unit, sev, msg)
        )

    lengths = np.linalg.norm(kp[:, BONES[:, 1]] - kp[:, BONES[:, 0]], axis=-1)  # [B, 20]
    hand_len = lengths[:, 8:12].sum(-1)
    zero, collinear = _degeneracy(lengths, kp)
    degenerate = zero.any(-1) | collinear.any(-1)

    # Units: one unit for the batch (a sequence does not change units between frames).
    used = units
    if units == "auto":
        used = _detect(float(np.median(hand_len))) if n else None
    if used is not None:
        size_m = hand_len * UNIT_SCALE[used]
        for b in range(n):
            if degenerate[b]:
                continue
            if not _fits(size_m[b]):
                looks = _detect(hand_len[b])
                hint = f"; it looks like {looks}" if looks else ""
                add(
                    b,
                    "units",
                    "hand",
                    size_m[b],
                    (0.05, 0.45),
                    "m",
                    "error",
                    f"hand length {hand_len[b]:.4g} {used} = {size_m[b]:.3g} m is no human "
                    f"hand{hint}",
                )
            elif not HAND_SIZE_RANGE_M[0] <= size_m[b] <= HAND_SIZE_RANGE_M[1]:
                add(
                    b,
                    "hand_size",
                    "hand",
                    size_m[b],
                    HAND_SIZE_RANGE_M,
                    "m",
                    "warning",
                    f"hand length {size_m[b] * 100:.1f} cm is outside "
                    f"{HAND_SIZE_RANGE_M[0] * 100:g}-{HAND_SIZE_RANGE_M[1] * 100:g} cm",
                )
    elif n:
        med = float(np.median(hand_len))
        for b in range(n):
            add(
                b,
                "units",
                "hand",
                hand_len[b],
                (np.nan, np.nan),
                "",
                "error",
                f"hand length {med:.4g} units fits none of m/cm/mm (0.05-0.45 m)",
            )

    # Degenerate skeletons: reported, and excluded from the angle and side checks.
    for b in np.flatnonzero(degenerate):
        for j in np.flatnonzero(zero[b]):
            add(
                b,
                "degenerate",
                BONE_NAMES[j],
                lengths[b, j],
                (np.nan, np.nan),
                "",
                "error",
                f"bone {BONE_NAMES[j]} has zero length",
            )
        for k in np.flatnonzero(collinear[b]):
            a, c = _FINGERS[k], _FINGERS[k + 1]
            add(
                b,
                "degenerate",
                f"{a}/{c} root bones",
                np.nan,
                (np.nan, np.nan),
                "",
                "error",
                f"the {a} and {c} root bones are (anti)parallel: collinear palm",
            )

    flex = np.full((n, 15), np.nan)
    abd = np.full((n, 15), np.nan)
    score = np.full(n, np.nan)
    ok = ~degenerate
    if ok.any():
        canon = _measure(kp[ok], left[ok])
        flex[ok] = np.rad2deg(canon.flexion.numpy())
        abd[ok] = np.rad2deg(canon.abduction.numpy())
        score[ok] = _mirror_score(_thumb_elevation(kp[ok], left[ok]), flex[ok])

    bands = _angle_bands()
    for kind, values, k in (("flexion", flex, 0), ("abduction", abd, 1)):
        for sev_i, sev in ((1, "error"), (0, "warning")):
            lo, hi = bands[:, k, sev_i, 0], bands[:, k, sev_i, 1]
            bad = (values < lo) | (values > hi)
            if sev == "warning":  # only report the worst band of each angle
                bad &= (values >= bands[:, k, 1, 0]) & (values <= bands[:, k, 1, 1])
            for b, j in np.argwhere(bad):
                add(
                    b,
                    kind,
                    ANGLE_JOINTS[j],
                    values[b, j],
                    (lo[j], hi[j]),
                    "deg",
                    sev,
                    f"{ANGLE_JOINTS[j]} {kind} {values[b, j]:.1f} deg is outside "
                    f"[{lo[j]:g}, {hi[j]:g}]",
                )

    scale = _robust_scale(lengths)
    ratios = lengths / np.maximum(scale, 1e-300)[:, None]
    for sev_i, sev in ((1, "error"), (0, "warning")):
        lo, hi = BONE_RATIO_RANGES[:, sev_i, 0], BONE_RATIO_RANGES[:, sev_i, 1]
        bad = ((ratios < lo) | (ratios > hi)) & ~zero & ~degenerate[:, None]
        if sev == "warning":
            bad &= (ratios >= BONE_RATIO_RANGES[:, 1, 0]) & (ratios <= BONE_RATIO_RANGES[:, 1, 1])
        for b, j in np.argwhere(bad):
            add(
                b,
                "bone_length",
                BONE_NAMES[j],
                ratios[b, j],
                (lo[j], hi[j]),
                "ratio",
                sev,
                f"bone {BONE_NAMES[j]} is {ratios[b, j] / BONE_RATIO_NOMINAL[j]:.2f}x its "
                f"usual length (ratio {ratios[b, j]:.3f}, allowed [{lo[j]:.3f}, {hi[j]:.3f}])",
            )

    for b in np.flatnonzero(np.isfinite(score) & (score < MIRROR_WARNING)):
        given = "left" if left[b] else "right"
        other = "right" if left[b] else "left"
        sev = "error" if score[b] < MIRROR_ERROR else "warning"
        add(
            b,
            "mirrored",
            "hand",
            score[b],
            (MIRROR_WARNING, np.nan),
            "score",
            sev,
            f"looks like a {other} hand (checked as {given}, score {score[b]:.2f}): wrong "
            f"side, or a mirrored camera frame",
        )

    order = {h: i for i, h in enumerate(hands)}
    findings.sort(key=lambda f: (order[f.hand], *_worst_first(f)))
    return PlausibilityReport(
        batch_shape=batch_shape,
        is_left=is_left,
        units=used,
        hand_length=hand_len.reshape(batch_shape),
        flexion_deg=flex.reshape(*batch_shape, 15),
        abduction_deg=abd.reshape(*batch_shape, 15),
        bone_ratios=ratios.reshape(*batch_shape, 20),
        mirror_score=score.reshape(batch_shape),
        degenerate=degenerate.reshape(batch_shape),
        findings=tuple(findings),
    )


def suggest_format(
    keypoints: Any,
    fmt: str,
    side: Any = "right",
    units: str = "auto",
    errors_as_given: int | None = None,
) -> tuple[str, int, int] | None:
    """Another 21-joint order in which implausible keypoints would be a plausible hand.

    Datasets order their joints differently (MANO's is thumb-last, InterHand's tip-first),
    and keypoints read in the wrong order look like a broken hand. When the keypoints as
    ``fmt`` have errors, each other 21-joint format is tried on the same array.

    Args:
        keypoints: ``[..., 21, 3]`` in the joint order ``fmt`` (the caller's reading).
        fmt: the format they were read as.
        side / units: as for :func:`check_skeleton`.
        errors_as_given: the error count of :func:`check_skeleton` on them as ``fmt``, when
            the caller has it (else it is measured here).

    Returns:
        ``(format, errors as fmt, errors as format)`` for the format with the fewest errors
        when it has none (or at most a tenth of ``fmt``'s), else ``None``.
    """
    arr = _as_array(keypoints)
    as_given = errors_as_given
    if as_given is None:
        as_given = check_skeleton(to_openpose(arr, fmt), side, units).count("error")
    if as_given == 0:
        return None
    best: tuple[str, int, int] | None = None
    for other in ("openpose", "mano", "biomech", "interhand"):
        if other == fmt or (fmt == "mediapipe" and other == "openpose"):
            continue
        errors = check_skeleton(to_openpose(arr, other), side, units).count("error")
        if best is None or errors < best[2]:
            best = (other, as_given, errors)
    if best is not None and (best[2] == 0 or best[2] * 10 <= as_given):
        return best
    return None


def summary_line(report: PlausibilityReport) -> str | None:
    """One line naming the implausible / mirrored hands of a report, or ``None`` if none.

    Only ``error`` findings count (warnings are unusual but human).
    """
    errors = [f for f in report.findings if f.severity == "error"]
    if not errors:
        return None
    many = bool(report.batch_shape)
    parts = []
    mirrored = {f.hand for f in errors if f.kind == "mirrored"}
    if mirrored:
        side = "left" if report.is_left.reshape(-1)[0] else "right"
        count = f"{len(mirrored)} of {report.num_hands} hands look" if many else "looks"
        parts.append(f"{count} mirrored (is --side {side} correct?)")
    # A mirrored hand's angles are symptoms of the wrong side, not findings of their own.
    other = [
        f
        for f in errors
        if f.kind != "mirrored" and not (f.hand in mirrored and f.kind in ("flexion", "abduction"))
    ]
    if other:
        count = f" in {len({f.hand for f in other})} of {report.num_hands} hands" if many else ""
        where = f"hand {list(other[0].hand)}: " if many else ""
        parts.append(f"implausible skeleton{count} ({where}{other[0].message})")
    return "; ".join(parts) + "; see halohand check"


# ---- projection onto plausible skeletons --------------------------------------------------


@dataclass(frozen=True)
class FixedSkeleton:
    """Result of :func:`fix_skeleton`; ``...`` is the input's batch shape.

    Attributes:
        keypoints: ``[..., 21, 3]`` the projected hands, input frame and units.
        moved: ``[..., 21]`` distance each joint moved, input units.
        units: the unit of the input (given or detected), ``None`` if unknown.
        moved_mm: ``[..., 21]`` the same in millimetres (NaN when ``units`` is ``None``).
    """

    keypoints: np.ndarray
    moved: np.ndarray
    units: str | None
    moved_mm: np.ndarray


def repose_skeleton(
    keypoints: Any,
    side: Any = "right",
    flexion_deg: np.ndarray | None = None,
    abduction_deg: np.ndarray | None = None,
    bone_lengths: np.ndarray | None = None,
) -> np.ndarray:
    """Rebuild hands with new finger angles and/or bone lengths, keeping the palm frame.

    The wrist, the directions of the five root bones (wrist to thumb CMC and to the four
    MCPs) and the global frame stay; each finger is re-walked with the layer's twist-free
    swings (the inverse of the angle measurement), so unchanged angles and lengths give the
    input back (to rounding).

    Args:
        keypoints: ``[..., 21, 3]`` non-degenerate hands, project order, any unit.
        side: as in :func:`check_skeleton`.
        flexion_deg / abduction_deg: ``[..., 15]`` degrees (:data:`ANGLE_JOINTS`); ``None``
            keeps the measured ones.
        bone_lengths: ``[..., 20]`` input units (:data:`BONE_NAMES`); ``None`` keeps them.

    Returns:
        ``[..., 21, 3]`` float64 keypoints in the input frame and units.
    """
    kp_in = _as_array(keypoints)
    batch_shape = tuple(kp_in.shape[:-2])
    kp = kp_in.reshape(-1, 21, 3)
    left = _left_mask(side, batch_shape).reshape(-1)
    canon = _measure(kp, left)
    theta = canon.flexion if flexion_deg is None else _batch(np.deg2rad(flexion_deg), 15, kp)
    phi = canon.abduction if abduction_deg is None else _batch(np.deg2rad(abduction_deg), 15, kp)
    lengths = canon.bone_lengths if bone_lengths is None else _batch(bone_lengths, 20, kp)
    p = canon.normalized_keypoints  # HALO frame
    palm = canon.bone_transforms[:, _ROOT_BONES, :3, :3]  # [B, 5, 3, 3] N_f per finger
    frames = canonical_frames(torch.float64)  # [5, 3, 3] rows: local axes of level 1
    z = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)

    out = torch.zeros_like(p)
    roots = torch.as_tensor(_ROOT_JOINTS)
    root_dir = p[:, roots] - p[:, :1]
    root_dir = root_dir / torch.linalg.vector_norm(root_dir, dim=-1, keepdim=True)
    out[:, roots] = lengths[:, _ROOT_BONES, None] * root_dir
    back = palm.transpose(-1, -2) @ frames.transpose(-1, -2)  # local -> HALO per finger
    chain = torch.eye(3, dtype=torch.float64).expand(kp.shape[0], 5, 3, 3)
    for level in range(3):
        idx = torch.arange(5) * 3 + level  # finger-bone slot of each finger at this level
        chain = chain @ swing(theta[:, idx], phi[:, idx])
        direction = back @ chain @ z  # [B, 5, 3]
        child = roots + level + 1
        out[:, child] = out[:, child - 1] + lengths[:, child - 1, None] * direction
    g_inv = torch.linalg.inv(canon.global_transform)
    x = out @ g_inv[:, :3, :3].transpose(-1, -2) + g_inv[:, None, :3, 3]
    return x.numpy().reshape(kp_in.shape)


def _batch(values: Any, size: int, kp: np.ndarray) -> Tensor:
    arr = np.asarray(values, dtype=np.float64)
    return torch.as_tensor(np.broadcast_to(arr, (*kp.shape[:-2], size)).reshape(-1, size).copy())


#: Clamping targets sit this far inside the warning bands, so a fixed hand re-checks clean.
_ANGLE_MARGIN_DEG: Final = 0.05
_RATIO_MARGIN: Final = 0.01


def fix_skeleton(keypoints: Any, side: Any = "right", units: str = "auto") -> FixedSkeleton:
    """Project hands onto the nearest skeleton without angle or proportion findings.

    Flexion and abduction are clamped into the warning bands of :data:`ANGLE_LIMITS_DEG`,
    bone lengths into :data:`BONE_RATIO_RANGES` times the robust hand length ``H`` (which a
    single wrong bone does not move), and the fingers are rebuilt by
    :func:`repose_skeleton`: the wrist and the palm frame stay put, in-range angles and
    lengths are unchanged. The side and the units are not changed (a mirrored hand stays
    mirrored; ``units`` is only used to report the motion in millimetres).

    Raises:
        HalohandInputError: for non-finite input or a degenerate hand (zero-length bone,
            collinear palm), which has no palm frame to keep.
    """
    kp_in = _as_array(keypoints)
    units = check_unit(units)
    batch_shape = tuple(kp_in.shape[:-2])
    kp = kp_in.reshape(-1, 21, 3)
    left = _left_mask(side, batch_shape).reshape(-1)
    lengths = np.linalg.norm(kp[:, BONES[:, 1]] - kp[:, BONES[:, 0]], axis=-1)
    zero, collinear = _degeneracy(lengths, kp)
    bad = np.flatnonzero(zero.any(-1) | collinear.any(-1))
    if len(bad):
        where = f" (first: hand {int(bad[0])})" if batch_shape else ""
        raise HalohandInputError(
            f"cannot fix a degenerate skeleton (zero-length bone or collinear palm) in "
            f"{len(bad)} of {kp.shape[0]} hands{where}"
        )
    canon = _measure(kp, left)
    bands = _angle_bands()
    flex = np.rad2deg(canon.flexion.numpy())
    abd = np.rad2deg(canon.abduction.numpy())
    flex = np.clip(
        flex, bands[:, 0, 0, 0] + _ANGLE_MARGIN_DEG, bands[:, 0, 0, 1] - _ANGLE_MARGIN_DEG
    )
    abd = np.clip(abd, bands[:, 1, 0, 0] + _ANGLE_MARGIN_DEG, bands[:, 1, 0, 1] - _ANGLE_MARGIN_DEG)
    scale = _robust_scale(lengths)[:, None]
    lo = BONE_RATIO_RANGES[:, 0, 0] * (1 + _RATIO_MARGIN)
    hi = BONE_RATIO_RANGES[:, 0, 1] * (1 - _RATIO_MARGIN)
    fixed_len = np.clip(lengths, lo * scale, hi * scale)
    fixed = repose_skeleton(kp, left, flex, abd, fixed_len)
    moved = np.linalg.norm(fixed - kp, axis=-1)
    used = units if units != "auto" else _detect(float(np.median(lengths[:, 8:12].sum(-1))))
    moved_mm = moved * (UNIT_SCALE[used] * 1000.0) if used else np.full_like(moved, np.nan)
    return FixedSkeleton(
        keypoints=fixed.reshape(kp_in.shape),
        moved=moved.reshape(*batch_shape, 21),
        units=used,
        moved_mm=moved_mm.reshape(*batch_shape, 21),
    )
