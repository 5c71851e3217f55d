"""Pure, batched linear-blend-skinning helpers (numpy, float64).

Every function broadcasts over leading batch dimensions ``...``; ``J`` is the number of
joints, ``V`` the number of vertices. Transforms are homogeneous ``4 x 4`` matrices acting
on column vectors (``x' = T @ x``).
"""

from __future__ import annotations

import numpy as np


def rot_x(angle: np.ndarray) -> np.ndarray:
    """Rotation about +X by ``angle`` radians: ``[...] -> [..., 3, 3]``."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([o, z, z, z, c, -s, z, s, c], axis=-1).reshape(*np.shape(c), 3, 3)


def rot_y(angle: np.ndarray) -> np.ndarray:
    """Rotation about +Y by ``angle`` radians: ``[...] -> [..., 3, 3]``."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([c, z, s, z, o, z, -s, z, c], axis=-1).reshape(*np.shape(c), 3, 3)


def rot_z(angle: np.ndarray) -> np.ndarray:
    """Rotation about +Z by ``angle`` radians: ``[...] -> [..., 3, 3]``."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([c, -s, z, s, c, z, z, z, o], axis=-1).reshape(*np.shape(c), 3, 3)


def homogeneous(rotation: np.ndarray, translation: np.ndarray | None = None) -> np.ndarray:
    """Stack ``[..., 3, 3]`` rotations (and ``[..., 3]`` translations) into ``[..., 4, 4]``."""
    shape = rotation.shape[:-2]
    out = np.zeros((*shape, 4, 4))
    out[..., :3, :3] = rotation
    if translation is not None:
        out[..., :3, 3] = translation
    out[..., 3, 3] = 1.0
    return out


def rigid_inverse(transform: np.ndarray) -> np.ndarray:
    """Inverse of rigid ``[..., 4, 4]`` transforms (rotation part assumed orthonormal)."""
    rot_t = np.swapaxes(transform[..., :3, :3], -1, -2)
    trans = -np.einsum("...ij,...j->...i", rot_t, transform[..., :3, 3])
    return homogeneous(rot_t, trans)


def forward_kinematics(local: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Compose local joint transforms down the tree.

    Args:
        local: ``[..., J, 4, 4]`` transform of each joint relative to its parent (the root's is
            relative to the model frame).
        parents: ``[J]`` parent index, -1 for the root; every parent precedes its children.

    Returns:
        ``[..., J, 4, 4]`` world (model-frame) transforms.
    """
    world = np.empty_like(local)
    for j, p in enumerate(parents):
        world[..., j, :, :] = (
            local[..., j, :, :] if p < 0 else world[..., p, :, :] @ local[..., j, :, :]
        )
    return world


def skin(vertices: np.ndarray, weights: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Linear blend skinning: ``v' = sum_j w_vj T_j v``.

    Args:
        vertices: ``[V, 3]`` or ``[..., V, 3]`` vertices in the frame the transforms act on.
        weights: ``[V, J]`` skin weights (rows sum to 1).
        transforms: ``[..., J, 4, 4]`` per-joint transforms (affine allowed).

    Returns:
        ``[..., V, 3]`` skinned vertices.
    """
    blended = np.einsum("vj,...jab->...vab", weights, transforms[..., :3, :])  # [..., V, 3, 4]
    return np.einsum("...vab,...vb->...va", blended[..., :3], vertices) + blended[..., 3]


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply ``[..., 4, 4]`` transforms to ``[..., N, 3]`` points."""
    return (
        np.einsum("...ab,...nb->...na", transform[..., :3, :3], points)
        + transform[..., None, :3, 3]
    )
