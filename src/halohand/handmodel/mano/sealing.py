"""Closing MANO's open wrist as HALO did: one vertex at the ring's mean, fan triangles.

On MANO the mesh goes from 778 to 779 vertices and from 1538 to 1554 faces; the posed hand
(:mod:`~halohand.handmodel.mano.source`) skins the seal vertex to the palm (part 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import torch

from halohand.core.errors import HalohandInputError

#: The open wrist boundary of the MANO mesh, in loop order (HALO's ``seal()``).
WRIST_RING: Final = np.array(
    [108, 79, 78, 121, 214, 215, 279, 239, 234, 92, 38, 122, 118, 117, 119, 120]
)


def boundary_loop(faces: np.ndarray) -> np.ndarray:
    """The single boundary loop of a mesh, following its boundary edges."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edge_set = {(int(a), int(b)) for a, b in directed}
    nxt: dict[int, int] = {}
    for a, b in edge_set:
        if (b, a) not in edge_set:
            if b in nxt:
                raise HalohandInputError("mesh boundary is not a simple loop")
            nxt[b] = a  # walk against the faces' direction
    if not nxt:
        raise HalohandInputError("mesh has no open boundary to seal")
    start = min(nxt)
    loop = [start]
    while nxt[loop[-1]] != start:
        loop.append(nxt[loop[-1]])
        if len(loop) > len(nxt):
            raise HalohandInputError("mesh boundary is not a simple loop")
    if len(loop) != len(nxt):
        raise HalohandInputError(
            f"mesh has several boundary loops ({len(nxt)} boundary vertices); pass ring="
        )
    return np.array(loop, dtype=np.int64)


def seal_wrist(
    vertices: Any, faces: np.ndarray, ring: Sequence[int] | np.ndarray | None = WRIST_RING
) -> tuple[Any, np.ndarray]:
    """Close the wrist opening as HALO did: one vertex at the ring's mean, fan triangles.

    Args:
        vertices: ``[..., V, 3]`` (numpy or torch, batched).
        faces: ``[F, 3]`` triangles with the ring as an open boundary.
        ring: the boundary loop in order (default MANO's 16 wrist vertices); None finds the
            mesh's single boundary loop.

    Returns:
        ``([..., V + 1, 3], [F + len(ring), 3])``; the new vertex is last. Each fan triangle
        is oriented opposite to the existing face on its ring edge, so an outward-oriented
        open mesh becomes an outward-oriented closed one (MANO: 779 vertices, 1554 faces).

    Raises:
        HalohandInputError: a ring edge is not a boundary edge of the mesh.
    """
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise HalohandInputError(f"faces must have shape [F, 3], got {list(faces.shape)}")
    loop = boundary_loop(faces) if ring is None else np.asarray(ring, dtype=np.int64)
    n_v = int(vertices.shape[-2])
    if loop.ndim != 1 or len(loop) < 3 or loop.min() < 0 or loop.max() >= n_v:
        raise HalohandInputError(f"wrist ring must be >= 3 vertex ids in 0..{n_v - 1}")
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    code = directed[:, 0] * n_v + directed[:, 1]
    a, b = loop, np.roll(loop, -1)
    fwd = np.isin(a * n_v + b, code)
    bwd = np.isin(b * n_v + a, code)
    if np.any(fwd == bwd):
        k = int(np.flatnonzero(fwd == bwd)[0])
        raise HalohandInputError(
            f"wrist ring edge ({a[k]}, {b[k]}) is not an open boundary edge of the mesh"
        )
    c = np.full_like(a, n_v)
    new_faces = np.where(fwd[:, None], np.stack([b, a, c], 1), np.stack([a, b, c], 1))
    if isinstance(vertices, torch.Tensor):
        center = vertices[..., torch.as_tensor(loop), :].mean(dim=-2, keepdim=True)
        sealed = torch.cat([vertices, center], dim=-2)
    else:
        v = np.asarray(vertices)
        sealed = np.concatenate([v, v[..., loop, :].mean(axis=-2, keepdims=True)], axis=-2)
    return sealed, np.concatenate([faces, new_faces])
