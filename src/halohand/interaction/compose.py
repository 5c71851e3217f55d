"""Scenes of fields: union, penetration, contact, with gradients.

A *field* is any callable ``points [..., 3] (metres) -> signed distance [...]`` (metres,
positive outside) that torch can differentiate: the primitives of
:mod:`halohand.interaction.primitives`, ``ObjectField(...).posed(R, t)``, a
:class:`~halohand.interaction.hand_field.HandField`. The functions here take fields and
points and never look inside them, so gradients reach whatever the fields depend on (hand
keypoints, object pose).

Penetration is measured on the *intersection* of two solids, whose signed distance is
``max(d_a, d_b)`` (negative exactly where a point is inside both): ``-max(d_a, d_b)`` is how
far a point must move to leave the overlap. Volumes and energies are sums over points that
sample a region (``grid_points``: cell centres of a box, each standing for ``cell_volume``
m^3); the soft forms replace the inside test ``d < 0`` by ``sigmoid(-d / softness)``, so
the count has a gradient where the surfaces cross.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from halohand.core.errors import HalohandInputError

__all__ = [
    "Field", "contact", "contact_energy", "grid_points", "intersection", "penetration_depth",
    "penetration_energy", "penetration_volume", "union",
]  # fmt: skip

Field = Callable[[Tensor], Tensor]


def union(*fields: Field) -> Field:
    """The field of the union of solids: ``min`` of their distances (exact outside the
    union; inside, a lower bound of the depth where solids overlap)."""
    if not fields:
        raise HalohandInputError("union needs at least one field")

    def field(points: Tensor) -> Tensor:
        return torch.stack([f(points) for f in fields]).amin(0)

    return field


def intersection(field_a: Field, field_b: Field) -> Field:
    """The field of the overlap of two solids: ``max`` of their distances (negative inside
    both; there, minus the distance to leave the overlap by the nearer surface)."""

    def field(points: Tensor) -> Tensor:
        return torch.maximum(field_a(points), field_b(points))

    return field


def grid_points(lo: Tensor, hi: Tensor, resolution: int) -> tuple[Tensor, float]:
    """Cell centres ``[resolution^3, 3]`` of a ``resolution``-per-axis split of the box
    ``lo``-``hi`` (``[3]`` metres each), and the volume of one cell (m^3)."""
    lo = torch.as_tensor(lo)
    hi = torch.as_tensor(hi, dtype=lo.dtype)
    if lo.shape != (3,) or hi.shape != (3,) or bool((hi <= lo).any()):
        raise HalohandInputError("the box must be lo [3] < hi [3]")
    if int(resolution) < 1:
        raise HalohandInputError(f"resolution must be >= 1, got {resolution}")
    step = (hi - lo) / resolution
    axes = [lo[k] + step[k] * (torch.arange(resolution, dtype=lo.dtype) + 0.5) for k in range(3)]
    pts = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    return pts, float(step.prod())


def penetration_depth(points: Tensor, field: Field) -> Tensor:
    """Depth ``[...]`` (metres, >= 0) of ``[..., 3]`` points inside a field's solid:
    ``relu(-d)`` (0 outside). Points of one solid (its surface samples, its interior
    cells) against the other's field give "how deep A reaches into B"."""
    return torch.relu(-field(points))


def _soft_inside(d: Tensor, softness: float) -> Tensor:
    if softness < 0:
        raise HalohandInputError(f"softness must be >= 0, got {softness}")
    if softness == 0:
        return (d < 0).to(d.dtype)
    return torch.sigmoid(-d / softness)


def penetration_volume(
    field_a: Field, field_b: Field, points: Tensor, cell_volume: float, softness: float = 0.0
) -> Tensor:
    """Volume (m^3) of the overlap of two solids sampled at ``[N, 3]`` points standing for
    ``cell_volume`` m^3 each: ``sum inside(max(d_a, d_b)) * cell_volume``, with the
    hard inside test for ``softness = 0`` and ``sigmoid(-d / softness)`` otherwise
    (differentiable; ``softness`` ~ the cell size keeps it close to the hard count)."""
    d = torch.maximum(field_a(points), field_b(points))
    return _soft_inside(d, softness).sum() * cell_volume


def penetration_energy(
    field_a: Field, field_b: Field, points: Tensor, cell_volume: float
) -> Tensor:
    """``sum relu(-max(d_a, d_b))^2 * cell_volume`` (m^5) over ``[N, 3]`` points: zero
    without overlap, and its gradient pushes both solids apart, most strongly where the
    overlap is deepest (the squared depth vanishes smoothly at the overlap's boundary)."""
    d = torch.maximum(field_a(points), field_b(points))
    return (torch.relu(-d) ** 2).sum() * cell_volume


def contact(points: Tensor, field: Field, threshold: float = 0.002) -> tuple[Tensor, Tensor]:
    """Which ``[..., 3]`` points touch a solid: ``|d| < threshold`` (metres; a point
    inside counts as touching only within ``threshold`` of the surface, deeper is
    penetration). Returns ``(mask [...] bool, distance [...])`` (the distance keeps its
    graph)."""
    if not threshold > 0:
        raise HalohandInputError(f"threshold must be positive, got {threshold}")
    d = field(points)
    return d.detach().abs() < threshold, d


def contact_energy(points: Tensor, field: Field, threshold: float = 0.002) -> Tensor:
    """``sum relu(d - threshold)^2`` (m^2) over ``[..., 3]`` points that should touch a
    solid: pulls each one to within ``threshold`` of the surface from outside, and does
    nothing to points already there or inside (penetration is the other energy's job)."""
    if not threshold >= 0:
        raise HalohandInputError(f"threshold must be >= 0, got {threshold}")
    return (torch.relu(field(points) - threshold) ** 2).sum()
