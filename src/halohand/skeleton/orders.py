"""Keypoint orders and converters between them.

The project's order is the OpenPose / MediaPipe / FreiHAND order (21 joints):

    0 wrist; 1-4 thumb CMC, MCP, IP, tip; 5-8 index MCP, PIP, DIP, tip;
    9-12 middle; 13-16 ring; 17-20 pinky.

Every converter is a gather along the joint axis, ``out[..., i, :] = inp[..., MAP[i], :]``,
so it works on numpy arrays and torch tensors of shape ``[..., J, 3]``. The maps come
from the tables of the ecosystem notes (section 3) and are tested against them.
"""

from __future__ import annotations

import sys
from typing import Final, TypeVar

import numpy as np

Array = TypeVar("Array")


def _torch():
    """The torch module if it is already imported (a tensor can only come from it), else None.

    Avoids importing torch (seconds) in numpy-only processes such as data workers.
    """
    return sys.modules.get("torch")


NUM_JOINTS: Final = 21

#: Joint names in the project's (OpenPose / MediaPipe) order.
JOINT_NAMES: Final[tuple[str, ...]] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip

FINGERS: Final[tuple[str, ...]] = ("thumb", "index", "middle", "ring", "pinky")

#: Each finger's joints in project (OpenPose) order, knuckle to tip, in :data:`FINGERS` order
#: (the thumb's first joint is its CMC).
FINGER_CHAINS: Final[tuple[tuple[int, int, int, int], ...]] = (
    (1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20),
)  # fmt: skip

#: MANO's native order (16 kinematic joints + 5 tips); also HO3D's and the "halo" order.
MANO_JOINT_NAMES: Final[tuple[str, ...]] = (
    "wrist",
    "index_mcp", "index_pip", "index_dip",
    "middle_mcp", "middle_pip", "middle_dip",
    "pinky_mcp", "pinky_pip", "pinky_dip",
    "ring_mcp", "ring_pip", "ring_dip",
    "thumb_cmc", "thumb_mcp", "thumb_ip",
    "thumb_tip", "index_tip", "middle_tip", "ring_tip", "pinky_tip",
)  # fmt: skip

#: WebXR Hand Input joints (25).
WEBXR_JOINT_NAMES: Final[tuple[str, ...]] = (
    ("wrist",)
    + tuple(f"thumb-{p}" for p in ("metacarpal", "phalanx-proximal", "phalanx-distal", "tip"))
    + tuple(
        f"{f}-finger-{p}"
        for f in ("index", "middle", "ring", "pinky")
        for p in ("metacarpal", "phalanx-proximal", "phalanx-intermediate", "phalanx-distal", "tip")
    )
)

#: OpenXR XR_EXT_hand_tracking joints (26): PALM first, then the WebXR joints.
OPENXR_JOINT_NAMES: Final[tuple[str, ...]] = ("palm",) + WEBXR_JOINT_NAMES

# Gather maps: ``<to>_FROM_<from>[i]`` is the index in the <from> order of joint i of <to>.
OPENPOSE_FROM_MANO: Final = np.array(
    [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]
)
MANO_FROM_OPENPOSE: Final = np.array(
    [0, 5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3, 4, 8, 12, 16, 20]
)
BIOMECH_FROM_OPENPOSE: Final = np.array(
    [0, 1, 5, 9, 13, 17, 2, 6, 10, 14, 18, 3, 7, 11, 15, 19, 4, 8, 12, 16, 20]
)
OPENPOSE_FROM_BIOMECH: Final = np.array(
    [0, 1, 6, 11, 16, 2, 7, 12, 17, 3, 8, 13, 18, 4, 9, 14, 19, 5, 10, 15, 20]
)
#: Per hand; InterHand2.6M stores the right hand at 0-20 and the left at 21-41.
OPENPOSE_FROM_INTERHAND: Final = np.array(
    [20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16]
)
INTERHAND_FROM_OPENPOSE: Final = np.argsort(OPENPOSE_FROM_INTERHAND)
OPENPOSE_FROM_WEBXR: Final = np.array(
    [0, 1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 16, 17, 18, 19, 21, 22, 23, 24]
)
OPENPOSE_FROM_OPENXR: Final = OPENPOSE_FROM_WEBXR + 1

#: Names accepted by :func:`to_openpose` / :func:`from_openpose`.
FORMATS: Final[tuple[str, ...]] = (
    "openpose", "mediapipe", "mano", "biomech", "interhand", "webxr", "openxr",
)  # fmt: skip

_NUM_JOINTS_OF: Final[dict[str, int]] = {
    "openpose": 21, "mediapipe": 21, "mano": 21, "biomech": 21, "interhand": 21,
    "webxr": 25, "openxr": 26,
}  # fmt: skip

_TO_OPENPOSE: Final[dict[str, np.ndarray]] = {
    "openpose": np.arange(21),
    "mediapipe": np.arange(21),
    "mano": OPENPOSE_FROM_MANO,
    "biomech": OPENPOSE_FROM_BIOMECH,
    "interhand": OPENPOSE_FROM_INTERHAND,
    "webxr": OPENPOSE_FROM_WEBXR,
    "openxr": OPENPOSE_FROM_OPENXR,
}
_FROM_OPENPOSE: Final[dict[str, np.ndarray]] = {
    "openpose": np.arange(21),
    "mediapipe": np.arange(21),
    "mano": MANO_FROM_OPENPOSE,
    "biomech": BIOMECH_FROM_OPENPOSE,
    "interhand": INTERHAND_FROM_OPENPOSE,
}


def num_joints(fmt: str) -> int:
    """Number of joints a keypoint array of format ``fmt`` has."""
    return _NUM_JOINTS_OF[_check_format(fmt)]


def _check_format(fmt: str) -> str:
    key = fmt.lower()
    if key not in _NUM_JOINTS_OF:
        raise ValueError(f"unknown keypoint format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return key


def _gather(keypoints: Array, index: np.ndarray, expected: int, fmt: str) -> Array:
    shape = tuple(keypoints.shape)  # type: ignore[attr-defined]
    if len(shape) < 2 or shape[-2] != expected or shape[-1] != 3:
        raise ValueError(f"{fmt} keypoints must have shape [..., {expected}, 3], got {list(shape)}")
    torch = _torch()
    if torch is not None and isinstance(keypoints, torch.Tensor):
        return keypoints[..., torch.as_tensor(index, device=keypoints.device), :]
    return keypoints[..., index, :]  # type: ignore[index]


def to_openpose(keypoints: Array, fmt: str) -> Array:
    """Reorder ``[..., J, 3]`` keypoints of format ``fmt`` to the project's 21-joint order.

    WebXR (25) and OpenXR (26) drop the four non-thumb metacarpals (and OpenXR's palm).
    """
    key = _check_format(fmt)
    return _gather(keypoints, _TO_OPENPOSE[key], _NUM_JOINTS_OF[key], key)


def from_openpose(keypoints: Array, fmt: str) -> Array:
    """Reorder ``[..., 21, 3]`` project-order keypoints to format ``fmt`` (21-joint formats).

    WebXR / OpenXR cannot be produced from 21 keypoints (their metacarpal joints are not
    observed); use the hand model for a full 25-joint skeleton.
    """
    key = _check_format(fmt)
    if key not in _FROM_OPENPOSE:
        raise ValueError(
            f"cannot convert 21 keypoints to {fmt!r}: it has joints that 21 keypoints do not hold"
        )
    return _gather(keypoints, _FROM_OPENPOSE[key], 21, "openpose")


def split_interhand(keypoints: Array) -> tuple[Array, Array]:
    """Split InterHand2.6M ``[..., 42, 3]`` keypoints into (right, left), each in project order."""
    shape = tuple(keypoints.shape)  # type: ignore[attr-defined]
    if len(shape) < 2 or shape[-2] != 42 or shape[-1] != 3:
        raise ValueError(f"InterHand2.6M keypoints must have shape [..., 42, 3], got {list(shape)}")
    right = keypoints[..., :21, :]  # type: ignore[index]
    left = keypoints[..., 21:, :]  # type: ignore[index]
    return to_openpose(right, "interhand"), to_openpose(left, "interhand")
