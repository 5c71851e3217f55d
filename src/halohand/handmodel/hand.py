"""The record every hand source (the embedded WebXR rig, optional MANO) produces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PosedHand:
    """One posed hand with everything the data engine and the tests need.

    Units are metres; the frame is the hand model's own frame with the wrist keypoint at the
    origin (no random global rotation: canonicalization is rotation invariant and is tested
    for it separately). Part order is HALO's (``halohand.skeleton.PART_NAMES``).

    Attributes:
        vertices: ``[V, 3]`` float64 posed vertices of a closed, watertight surface.
        faces: ``[F, 3]`` int64 triangles, outward orientation.
        keypoints: ``[21, 3]`` float64 keypoints in the project's order, exactly the rig's joints.
        part_transforms: ``[16, 4, 4]`` float64 rigid maps from the posed hand to the
            canonical (rest) hand of the same identity, one per part.
        canonical_vertices: ``[V, 3]`` float64 rest-pose vertices of the same identity.
        bone_lengths: ``[16]`` float64 HALO per-part bone lengths (metres).
        skin_weights: ``[V, 16]`` float64 per-part skinning weights (rows sum to 1).
        part_labels: ``[V]`` int64 dominant part of each vertex.
        side: ``"right"`` or ``"left"`` (left hands are mirrored right hands).
        rest_keypoints: ``[21, 3]`` float64 keypoints of the same identity in the rest
            (canonical) pose, project order; ``None`` if the source does not provide them.
    """

    vertices: np.ndarray
    faces: np.ndarray
    keypoints: np.ndarray
    part_transforms: np.ndarray
    canonical_vertices: np.ndarray
    bone_lengths: np.ndarray
    skin_weights: np.ndarray
    part_labels: np.ndarray
    side: str = "right"
    rest_keypoints: np.ndarray | None = None
