"""Linear blend skinning and the rigid-transform algebra around it, as pure batched functions.

Every function broadcasts over leading batch dimensions ``...`` and takes torch tensors
(differentiable, dtype and device kept) or numpy arrays (computed with numpy, float64),
running the same formula (:mod:`halohand.core._arrays`). ``J`` is the number of joints,
``V`` the number of vertices. Transforms are homogeneous ``4 x 4`` matrices acting on column
vectors (``x' = T @ x``); where only the top ``3 x 4`` rows are read (affine maps), a
``[..., 3, 4]`` array works as well. Units are those of the inputs (metres in halohand).
Elementary rotations live in :mod:`halohand.core.rotations`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from halohand.core._arrays import NUMPY, namespace

if TYPE_CHECKING:
    import torch

    Array = TypeVar("Array", np.ndarray, torch.Tensor)
else:
    Array = TypeVar("Array")

__all__ = ["forward_kinematics", "homogeneous", "rigid_inverse", "skin", "transform_points"]


def homogeneous(rotation: Array, translation: Array | None = None) -> Array:
    """Stack ``[..., 3, 3]`` rotations (and ``[..., 3]`` translations, default zero) into
    ``[..., 4, 4]`` transforms; the two broadcast against each other."""
    xp = namespace(rotation, translation)
    rotation = xp.asarray(rotation)
    if translation is None:
        translation = xp.zeros((*rotation.shape[:-1],), rotation)
    translation = xp.asarray(translation)
    batch = np.broadcast_shapes(tuple(rotation.shape[:-2]), tuple(translation.shape[:-1]))
    rotation = xp.broadcast_to(rotation, (*batch, 3, 3))
    translation = xp.broadcast_to(translation, (*batch, 3))
    bottom = xp.zeros((*batch, 1, 4), rotation)
    bottom[..., 0, 3] = 1.0
    top = xp.concat([rotation, translation[..., None]], -1)
    return xp.concat([top, bottom], -2)


def rigid_inverse(transform: Array) -> Array:
    """Inverse of rigid ``[..., 4, 4]`` transforms (rotation part assumed orthonormal):
    ``[R^T, -R^T t]``."""
    xp = namespace(transform)
    rot_t = xp.transpose(transform[..., :3, :3])
    trans = -xp.einsum("...ij,...j->...i", rot_t, transform[..., :3, 3])
    return homogeneous(rot_t, trans)


@lru_cache(maxsize=32)
def _tree_levels(parents: tuple[int, ...]) -> tuple[list[list[int]], list[list[int]], list[int]]:
    """Joints per tree depth, their parents' positions in the level above, and the
    permutation from level-concatenated order back to joint order."""
    depth: list[int] = []
    for j, p in enumerate(parents):
        if p >= j:
            raise ValueError(f"joint {j}'s parent {p} does not precede it")
        depth.append(0 if p < 0 else depth[p] + 1)
    levels = [[j for j, d in enumerate(depth) if d == lv] for lv in range(max(depth) + 1)]
    parent_pos = [[]] + [
        [levels[lv - 1].index(parents[j]) for j in levels[lv]] for lv in range(1, len(levels))
    ]
    flat = [j for lv in levels for j in lv]
    return levels, parent_pos, [flat.index(j) for j in range(len(parents))]


@lru_cache(maxsize=32)
def _tree_index_tensors(parents: tuple[int, ...], device: Any) -> tuple[list, list, Any]:
    """:func:`_tree_levels` as index tensors on ``device`` (torch indexes faster with them
    than with lists, which it converts on every call)."""
    import torch

    levels, parent_pos, order = _tree_levels(parents)

    def index(ids: list[int]) -> Any:
        return torch.tensor(ids, dtype=torch.long, device=device)

    return [index(j) for j in levels], [index(p) for p in parent_pos], index(order)


def forward_kinematics(local: Array, parents: Sequence[int] | np.ndarray) -> Array:
    """Compose local joint transforms down the tree: ``world_j = world_parent(j) @ local_j``.

    Args:
        local: ``[..., J, 4, 4]`` transform of each joint relative to its parent (the root's is
            relative to the model frame).
        parents: ``[J]`` parent index, -1 for a root; every parent precedes its children.

    Returns:
        ``[..., J, 4, 4]`` world (model-frame) transforms.

    Joints are composed one tree depth at a time (a hand: 4 to 6 batched products instead of
    one per joint) and out of place, so the torch backward pass stays short.
    """
    xp = namespace(local)
    tree = tuple(int(p) for p in parents)
    levels, parent_pos, order = (
        _tree_levels(tree) if xp is NUMPY else _tree_index_tensors(tree, local.device)
    )
    world = [local[..., levels[0], :, :]]
    for joints, pos in zip(levels[1:], parent_pos[1:], strict=True):
        world.append(world[-1][..., pos, :, :] @ local[..., joints, :, :])
    return xp.concat(world, -3)[..., order, :, :]


def skin(vertices: Array, weights: Array, transforms: Array) -> Array:
    """Linear blend skinning: ``v' = sum_j w_vj T_j v``.

    Args:
        vertices: ``[V, 3]`` or ``[..., V, 3]`` vertices in the frame the transforms act on.
        weights: ``[V, J]`` skin weights (rows sum to 1 for a rigid-preserving blend).
        transforms: ``[..., J, 4, 4]`` (or ``[..., J, 3, 4]``) per-joint transforms, affine
            allowed.

    Returns:
        ``[..., V, 3]`` skinned vertices.
    """
    xp = namespace(vertices, weights, transforms)
    # The linear part and the translation are blended apart: slicing one blended 3 x 4 array
    # makes torch's backward pass about twice as slow.
    linear = xp.einsum("vj,...jab->...vab", weights, transforms[..., :3, :3])  # [..., V, 3, 3]
    shift = xp.einsum("vj,...ja->...va", weights, transforms[..., :3, 3])  # [..., V, 3]
    return xp.einsum("...vab,...vb->...va", linear, vertices) + shift


def transform_points(transform: Array, points: Array) -> Array:
    """Apply ``[..., 4, 4]`` transforms to ``[..., N, 3]`` points."""
    xp = namespace(transform, points)
    return (
        xp.einsum("...ab,...nb->...na", transform[..., :3, :3], points)
        + transform[..., None, :3, 3]
    )
