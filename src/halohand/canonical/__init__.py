"""Differentiable HALO canonicalization: hand skeleton -> canonical pose in one pass.

``canonicalize(keypoints, side="right")`` returns a :class:`Canonicalization` with the
global normalization, the 20 per-bone and 16 per-part rigid posed -> canonical maps, the
canonical skeleton, bone lengths and the finger/palm angles. See
:mod:`halohand.canonical.canonicalize` for conventions, gradients and degeneracy rules.
"""

from halohand.canonical.canonicalize import (
    CANONICAL_PLANE_ANGLES,
    CANONICAL_SPREAD_ANGLES,
    FINGER_BONE_CHILDREN,
    HALO_UNIT,
    MIN_BONE_RATIO,
    MIN_ROOT_SINE,
    MIN_SWING_COS,
    PART_BONE_INDEX,
    Canonicalization,
    canonical_frames,
    canonical_root_directions,
    canonicalize,
    points_to_part_frames,
    skeleton_from_angles,
)

__all__ = [
    "CANONICAL_PLANE_ANGLES",
    "CANONICAL_SPREAD_ANGLES",
    "FINGER_BONE_CHILDREN",
    "HALO_UNIT",
    "MIN_BONE_RATIO",
    "MIN_ROOT_SINE",
    "MIN_SWING_COS",
    "PART_BONE_INDEX",
    "Canonicalization",
    "canonical_frames",
    "canonical_root_directions",
    "canonicalize",
    "points_to_part_frames",
    "skeleton_from_angles",
]
