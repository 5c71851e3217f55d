"""Closed-form signed distances of spheres, boxes and capsules (batched torch).

Every function takes query points ``[..., 3]`` (metres) and returns the signed distance
``[...]`` in metres, positive outside, negative inside, differentiable with respect to the
points and to the shape's parameters (centre, half extents, radius, end points). They are
the ground truth of the interaction tests and are usable directly as object fields
(``lambda p: sphere_sdf(p, c, r)``, see :mod:`halohand.interaction.compose`).

The box and the capsule are exact Euclidean distances (not bounds): for the box, the
outside part is the distance to the clamped point and the inside part the distance to the
nearest face, which together are the true signed distance everywhere.
"""

from __future__ import annotations

import torch
from torch import Tensor

from halohand.core.errors import HalohandInputError

__all__ = ["box_sdf", "capsule_sdf", "sphere_sdf"]


def _points(points: Tensor) -> Tensor:
    if not isinstance(points, Tensor) or points.shape[-1:] != (3,):
        shape = list(getattr(points, "shape", ()))
        raise HalohandInputError(f"points must be a [..., 3] tensor, got {shape}")
    return points


def sphere_sdf(points: Tensor, center: Tensor | tuple, radius: Tensor | float) -> Tensor:
    """Signed distance ``[...]`` (m) of ``[..., 3]`` points to the sphere of ``center``
    ``[3]`` and ``radius`` (m)."""
    p = _points(points)
    c = torch.as_tensor(center, dtype=p.dtype, device=p.device)
    return torch.linalg.vector_norm(p - c, dim=-1) - radius


def box_sdf(
    points: Tensor,
    half_extents: Tensor | tuple,
    center: Tensor | tuple = (0.0, 0.0, 0.0),
) -> Tensor:
    """Signed distance ``[...]`` (m) to the axis-aligned box of ``half_extents`` ``[3]``
    (m) about ``center`` ``[3]``; rotate the points into the box frame for other boxes.

    Outside: distance to the nearest point of the box; inside: minus the distance to the
    nearest face. The ``clamp_min(0)`` and ``max`` keep the gradient the true one (the
    outward face normal inside, the direction away from the box outside)."""
    p = _points(points)
    h = torch.as_tensor(half_extents, dtype=p.dtype, device=p.device)
    c = torch.as_tensor(center, dtype=p.dtype, device=p.device)
    q = (p - c).abs() - h  # per-axis excess; all negative inside
    outside = torch.linalg.vector_norm(q.clamp_min(0.0), dim=-1)
    inside = q.amax(dim=-1).clamp_max(0.0)
    return outside + inside


def capsule_sdf(
    points: Tensor, a: Tensor | tuple, b: Tensor | tuple, radius: Tensor | float
) -> Tensor:
    """Signed distance ``[...]`` (m) to the capsule of segment ``a``-``b`` (``[3]`` each, m)
    and ``radius`` (m): distance to the segment minus the radius."""
    p = _points(points)
    a = torch.as_tensor(a, dtype=p.dtype, device=p.device)
    b = torch.as_tensor(b, dtype=p.dtype, device=p.device)
    ab = b - a
    t = (((p - a) * ab).sum(-1) / (ab * ab).sum().clamp_min(1e-30)).clamp(0.0, 1.0)
    return torch.linalg.vector_norm(p - a - t[..., None] * ab, dim=-1) - radius
