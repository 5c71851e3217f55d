"""Bones, parents, bone lengths and left/right mirroring in the project's joint order.

All functions are batched over leading dimensions and accept numpy arrays or torch tensors
of shape ``[..., 21, 3]``; lengths are in the units of the input.
"""

from __future__ import annotations

import sys
from typing import Final, TypeVar

import numpy as np

from halohand.skeleton.orders import FINGER_CHAINS

Array = TypeVar("Array")


def _torch():
    """The torch module if it is already imported (a tensor can only come from it), else None.

    Avoids importing torch (seconds) in numpy-only processes such as data workers.
    """
    return sys.modules.get("torch")


#: Parent of each joint in the project's order (-1 for the wrist).
PARENTS: Final = np.array([-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19])

#: The 20 bones as (parent joint, child joint), child = 1..20 in order.
BONES: Final = np.stack([PARENTS[1:], np.arange(1, 21)], axis=1)

#: HALO's 16 parts: palm, then index/middle/pinky/ring/thumb, 3 bones each (MANO order).
PART_NAMES: Final[tuple[str, ...]] = (
    "palm",
    "index1", "index2", "index3",
    "middle1", "middle2", "middle3",
    "pinky1", "pinky2", "pinky3",
    "ring1", "ring2", "ring3",
    "thumb1", "thumb2", "thumb3",
)  # fmt: skip
NUM_PARTS: Final = 16

#: For each part, the (start, end) joints in the project's order whose distance is the
#: part's bone length. The palm uses wrist -> middle MCP.
PART_BONES: Final = np.array(
    [
        [0, 9],
        [5, 6], [6, 7], [7, 8],
        [9, 10], [10, 11], [11, 12],
        [17, 18], [18, 19], [19, 20],
        [13, 14], [14, 15], [15, 16],
        [1, 2], [2, 3], [3, 4],
    ]
)  # fmt: skip

#: Part owning each of the 20 bones (indexed by child joint - 1); root bones of the four
#: long fingers belong to the palm.
BONE_PART: Final = np.array([0, 13, 14, 15, 0, 1, 2, 3, 0, 4, 5, 6, 0, 10, 11, 12, 0, 7, 8, 9])

#: ``[5, 3]`` the parts of each finger (thumb ... little), proximal to distal: the parts of
#: the bones that end at the finger's last three chain joints.
FINGER_PARTS: Final = BONE_PART[np.asarray(FINGER_CHAINS)[:, 1:] - 1]


#: Parent part of each part (-1 for the palm): every finger's first part hangs from the palm.
PART_PARENTS: Final = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])

#: The base of the hand: the palm, the four proximal phalanges and the thumb's metacarpal,
#: whose surfaces the webs between the fingers join.
BASE_PARTS: Final = (0, 1, 4, 7, 10, 13)


def _adjacent_parts() -> np.ndarray:
    adjacent = np.eye(NUM_PARTS, dtype=bool)
    child = np.flatnonzero(PART_PARENTS >= 0)
    adjacent[child, PART_PARENTS[child]] = True
    adjacent[PART_PARENTS[child], child] = True
    return adjacent


#: ``[16, 16]`` bool: a part and itself, a part and its parent (or child): the pairs that
#: meet in every hand, at a joint.
ADJACENT_PARTS: Final = _adjacent_parts()


def _joined_parts() -> np.ndarray:
    joined = ADJACENT_PARTS.copy()
    joined[np.ix_(BASE_PARTS, BASE_PARTS)] = True
    return joined


#: ``[16, 16]`` bool: which two parts' surfaces belong to one body where they meet (the
#: adjacent parts, and any two parts of the base). Two other parts that meet are touching
#: skin, such as a curled fingertip on the palm or two fingers pressed together, not
#: tissue.
JOINED_PARTS: Final = _joined_parts()


def _norm(x: Array) -> Array:
    torch = _torch()
    if torch is not None and isinstance(x, torch.Tensor):
        return torch.linalg.vector_norm(x, dim=-1)
    return np.linalg.norm(x, axis=-1)  # type: ignore[call-overload]


def _check(keypoints: Array) -> None:
    shape = tuple(keypoints.shape)  # type: ignore[attr-defined]
    if len(shape) < 2 or shape[-2:] != (21, 3):
        raise ValueError(f"keypoints must have shape [..., 21, 3], got {list(shape)}")


def bone_vectors(keypoints: Array) -> Array:
    """Child minus parent for the 20 bones: ``[..., 21, 3] -> [..., 20, 3]``."""
    _check(keypoints)
    return keypoints[..., BONES[:, 1], :] - keypoints[..., BONES[:, 0], :]  # type: ignore[index]


def bone_lengths(keypoints: Array) -> Array:
    """Lengths of the 20 bones (ordered by child joint): ``[..., 21, 3] -> [..., 20]``."""
    return _norm(bone_vectors(keypoints))


def part_bone_lengths(keypoints: Array) -> Array:
    """HALO's 16 per-part bone lengths: ``[..., 21, 3] -> [..., 16]``.

    Palm = |wrist - middle MCP|; part k >= 1 = the length of its own phalanx.
    """
    _check(keypoints)
    a = keypoints[..., PART_BONES[:, 0], :]  # type: ignore[index]
    b = keypoints[..., PART_BONES[:, 1], :]  # type: ignore[index]
    return _norm(b - a)


def hand_length(keypoints: Array) -> Array:
    """Wrist to middle fingertip along the middle-finger chain: ``[..., 21, 3] -> [...]``."""
    lengths = bone_lengths(keypoints)
    return lengths[..., 8:12].sum(-1)  # type: ignore[index, attr-defined]


def mirror(keypoints: Array, axis: int = 0) -> Array:
    """Mirror a hand across the plane ``x_axis = 0`` (turns a left hand into a right one).

    Works on any ``[..., 3]`` array (keypoints, points, vertices).
    """
    sign = np.ones(3)
    sign[axis] = -1.0
    torch = _torch()
    if torch is not None and isinstance(keypoints, torch.Tensor):
        return keypoints * torch.as_tensor(sign, dtype=keypoints.dtype, device=keypoints.device)
    return keypoints * sign.astype(np.asarray(keypoints).dtype, copy=False)  # type: ignore[operator]
