"""Skeleton conventions: joint orders, bones, bone lengths and mirroring."""

from halohand.skeleton.bones import (
    ADJACENT_PARTS,
    BASE_PARTS,
    BONE_PART,
    BONES,
    FINGER_PARTS,
    JOINED_PARTS,
    NUM_PARTS,
    PARENTS,
    PART_BONES,
    PART_NAMES,
    PART_PARENTS,
    bone_lengths,
    bone_vectors,
    hand_length,
    mirror,
    part_bone_lengths,
)
from halohand.skeleton.orders import (
    FINGER_CHAINS,
    FINGERS,
    FORMATS,
    JOINT_NAMES,
    MANO_JOINT_NAMES,
    NUM_JOINTS,
    OPENXR_JOINT_NAMES,
    WEBXR_JOINT_NAMES,
    from_openpose,
    num_joints,
    split_interhand,
    to_openpose,
)

__all__ = [
    "ADJACENT_PARTS", "BASE_PARTS", "BONES", "BONE_PART", "FINGER_CHAINS", "FINGER_PARTS",
    "FINGERS", "FORMATS", "JOINED_PARTS", "JOINT_NAMES", "MANO_JOINT_NAMES", "NUM_JOINTS",
    "NUM_PARTS", "OPENXR_JOINT_NAMES", "PARENTS", "PART_BONES", "PART_NAMES", "PART_PARENTS",
    "WEBXR_JOINT_NAMES", "bone_lengths", "bone_vectors", "from_openpose", "hand_length",
    "mirror", "num_joints", "part_bone_lengths", "split_interhand", "to_openpose",
]  # fmt: skip
