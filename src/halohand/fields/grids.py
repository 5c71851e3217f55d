"""Learned feature grids in each part's canonical frame (a local encoding of the points).

A part MLP of 4 x 64 units on a point's coordinates is a smooth function of them; the
errors of the default model are spread over the whole surface as a capacity limit makes
them (``docs/RESULTS.md``, "What limits accuracy"). A grid of learned feature vectors over
each part's canonical box, read by trilinear interpolation, gives every part spatial
capacity at the cost of a lookup instead of wider layers (the dense grids of Plenoxels /
DVGO and the single level of Instant-NGP's hash grid, here one small grid per part in the
frame where the part does not move).

``trilinear`` is pure and batched; :class:`PartGrids` holds the tables and boxes, and the
network decides where the features enter
(:class:`~halohand.fields.occupancy.OccupancyNetwork`, config ``grid_resolution``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from halohand.canonical.canonicalize import canonical_frames
from halohand.core.errors import HalohandInputError
from halohand.core.units import HALO_UNIT_M
from halohand.skeleton import FINGER_PARTS, PART_BONES

__all__ = [
    "GRID_FRAMES", "GRID_INTERPOLATIONS", "GridMaps", "PartGrids", "bend", "grid_maps",
    "inverse_palm_length", "smoothstep_cells", "trilinear",
]  # fmt: skip

#: Coordinates a network's grids can read (``OccupancyConfig.grid_frame``, :func:`grid_maps`).
GRID_FRAMES = ("palm", "bone", "finger")

#: How a point's features blend its cell's eight vertices (``OccupancyConfig.grid_interpolation``):
#: trilinear weights, or the same with each axis's fraction ``f`` eased to
#: ``f^2 (3 - 2 f)``, which makes the features' gradient continuous across cell faces.
GRID_INTERPOLATIONS = ("trilinear", "smoothstep")


#: The finger (0 thumb ... 4 little) of parts 1..15, and the three parts of that finger.
_FINGER_OF_PART = np.empty(FINGER_PARTS.size, dtype=np.int64)
_FINGER_OF_PART[FINGER_PARTS - 1] = np.arange(len(FINGER_PARTS))[:, None]
_CHAIN_OF_PART = FINGER_PARTS[_FINGER_OF_PART]  # [K-1, 3]


def inverse_palm_length(bone_lengths: Tensor) -> Tensor:
    """``[B, K]`` part bone lengths (metres) -> ``[B]`` 1 / the palm's length (part 0's
    bone, wrist to middle knuckle) in HALO units: the factor that takes a hand's canonical
    points (HALO units) to the palm lengths the occupancy network's grids read, so that
    hands of every size meet the same cells."""
    return HALO_UNIT_M / bone_lengths[:, 0]


class GridMaps(NamedTuple):
    """Where each part's canonical points read its grid: ``g = bend(linear @ c + offset)``.

    Attributes:
        linear: ``[B, K, 3, 3]`` and ``offset`` ``[B, K, 3]``: the affine part, canonical
            points (HALO units) -> grid coordinates.
        knots: ``[B, K, 2]`` and ``slopes`` ``[B, K, 2]``, or ``None`` (no bend): the last
            (along-finger) coordinate ``z`` becomes ``z + sum_j slopes_j relu(z - knots_j)``,
            a continuous piecewise-linear map (:func:`bend`).
    """

    linear: Tensor
    offset: Tensor
    knots: Tensor | None = None
    slopes: Tensor | None = None

    def apply(self, canon: Tensor) -> Tensor:
        """``[B, N, K, 3]`` canonical points (HALO units) -> ``[B, N, K, 3]`` grid
        coordinates."""
        g = torch.einsum("bkij,bnkj->bnki", self.linear, canon) + self.offset[:, None]
        if self.knots is None or self.slopes is None:
            return g
        return bend(g, self.knots[:, None], self.slopes[:, None])

    def apply_part(self, canon: Tensor, hand: int, part: int) -> Tensor:
        """``[P, 3]`` canonical points (HALO units) of one hand's part -> ``[P, 3]`` grid
        coordinates: :meth:`apply` for those rows alone, in ``canon``'s dtype (one matrix
        product instead of a batched one: the sparse query calls it per part)."""
        dtype = canon.dtype
        linear, offset = self.linear[hand, part].to(dtype), self.offset[hand, part].to(dtype)
        g = torch.addmm(offset, canon, linear.T)
        if self.knots is None or self.slopes is None:
            return g
        return bend(g, self.knots[hand, part].to(dtype), self.slopes[hand, part].to(dtype))


def bend(points: Tensor, knots: Tensor, slopes: Tensor) -> Tensor:
    """``[..., 3]`` points with their last coordinate ``z`` mapped to
    ``z + sum_j slopes[..., j] relu(z - knots[..., j])`` (``knots``, ``slopes``: ``[..., J]``
    broadcastable to the points' leading shape): continuous, piecewise linear, the slope
    changing by ``slopes_j`` at ``knots_j``. Differentiable; a new tensor."""
    z = points[..., 2:]
    z = z + (slopes * (z - knots).clamp_min(0.0)).sum(-1, keepdim=True)
    return torch.cat([points[..., :2], z], dim=-1)


def grid_maps(
    bone_lengths: Tensor, frame: str = "palm", canonical_keypoints: Tensor | None = None
) -> GridMaps:
    """The maps from each part's canonical points to the coordinates its grid reads.

    ``"palm"``: the canonical point in palm lengths (wrist to middle knuckle), the same
    map for every part, so hands of every size meet the same cells; a finger's end then
    lies where the hand's proportions put it. ``"bone"``: each finger part reads its point
    in its bone's frame, origin at the bone's proximal joint of the canonical skeleton,
    axes the finger's constant canonical frame (palmar side, lateral, along the finger),
    the two across the finger in palm lengths and the one along it in the bone's own
    length, so a bone ends at 1 whatever the hand's proportions or keypoint source.
    ``"finger"``: as ``"bone"`` across the finger, but all three parts of a finger read
    one coordinate along it that puts the finger's four joints at 0, 1, 2 and 3 (its
    first bone's length before the second joint, each later bone's own length after
    its proximal joint; piecewise linear, continuous): whichever part a training run
    lets cover a phalanx, its joints and its tip sit at the same coordinates in every
    hand. The palm part reads palm lengths in every frame.

    Args:
        bone_lengths: ``[B, K]`` per-part bone lengths, metres (HALO part order, palm first).
        frame: one of :data:`GRID_FRAMES`.
        canonical_keypoints: ``[B, 21, 3]`` the canonical skeleton, metres
            (``Canonicalization.canonical_keypoints``); needed for ``"bone"`` and
            ``"finger"``.

    Returns:
        :class:`GridMaps` in ``bone_lengths``' dtype.
    """
    b, k = bone_lengths.shape
    if frame not in GRID_FRAMES:
        raise ValueError(f"grid frame must be one of {GRID_FRAMES}, got {frame!r}")
    if frame != "palm" and k != len(PART_BONES):
        raise ValueError(f"{frame}-frame grids need the {len(PART_BONES)} HALO parts, got {k}")
    palm = inverse_palm_length(bone_lengths)  # [B]
    eye = torch.eye(3, dtype=bone_lengths.dtype, device=bone_lengths.device)
    linear = (palm[:, None, None, None] * eye).expand(b, k, 3, 3).clone()
    offset = bone_lengths.new_zeros(b, k, 3)
    if frame == "palm":
        return GridMaps(linear, offset)
    if canonical_keypoints is None or canonical_keypoints.shape != (b, 21, 3):
        raise HalohandInputError(
            f"{frame}-frame grids need the canonical skeleton [{b}, 21, 3] (metres)"
        )
    device = bone_lengths.device
    axes = canonical_frames(bone_lengths.dtype, device)[_FINGER_OF_PART]  # [K-1, 3, 3]
    # the bone whose proximal joint is the origin and whose length scales the along axis:
    # the part's own ("bone") or its finger's first ("finger")
    first = np.arange(1, k) if frame == "bone" else _CHAIN_OF_PART[:, 0]
    lengths = bone_lengths[:, first]  # [B, K-1] metres
    scale = torch.stack(
        [palm[:, None].expand(b, k - 1), palm[:, None].expand(b, k - 1), HALO_UNIT_M / lengths],
        dim=-1,
    )  # [B, K-1, 3]
    bone_linear = scale[..., None] * axes  # rows scaled: diag(scale) @ axes
    start = canonical_keypoints[:, PART_BONES[first, 0]].to(bone_lengths.dtype) / HALO_UNIT_M
    linear[:, 1:] = bone_linear
    offset[:, 1:] = -torch.einsum("bkij,bkj->bki", bone_linear, start)
    if frame == "bone":
        return GridMaps(linear, offset)
    # along the finger in its first bone's lengths, the second and third bones bent onto
    # their own: knots at the second and third joints, slopes l1 / l2 - 1 and l1 / l3 - l1 / l2
    l1, l2, l3 = bone_lengths[:, _CHAIN_OF_PART].unbind(-1)  # [B, K-1] each
    knots = bone_lengths.new_zeros(b, k, 2)
    slopes = bone_lengths.new_zeros(b, k, 2)
    knots[:, 1:, 0] = 1.0
    knots[:, 1:, 1] = 1.0 + l2 / l1
    slopes[:, 1:, 0] = l1 / l2 - 1.0
    slopes[:, 1:, 1] = l1 / l3 - l1 / l2
    return GridMaps(linear, offset, knots, slopes)


def smoothstep_cells(cells: Tensor, resolution: int) -> Tensor:
    """``[M, 3]`` cell coordinates clamped to ``[0, resolution]``, with the fraction ``f``
    within each cell eased to ``f^2 (3 - 2 f)`` along every axis: read by
    :func:`trilinear`, the features are a C1 function of the points (trilinear
    interpolation alone is only C0: its gradient jumps at every cell face, a crease in an
    iso-surface that crosses it). The gradient is zero at the vertices.

    Args:
        cells: ``[M, 3]`` points in cell units.
        resolution: cells per axis.

    Returns:
        ``[M, 3]`` eased cell coordinates, differentiable in ``cells``.
    """
    u = cells.clamp(0.0, float(resolution))
    base = u.detach().floor().clamp_(max=resolution - 1)
    f = u - base
    return base + f * f * (3.0 - 2.0 * f)


def trilinear(table: Tensor, cells: Tensor, part: Tensor | int, resolution: int) -> Tensor:
    """Trilinear interpolation in per-part grids of feature vectors.

    Args:
        table: ``[K * V^3, C]`` the grids' vertex features, part-major, then x, y, z
            (``V = resolution + 1`` vertices per axis).
        cells: ``[M, 3]`` points in cell units (0 at the box's lower corner,
            ``resolution`` at its upper corner); clamped to the box, so points outside read
            the nearest face's features (and get no gradient along the clamped axes).
        part: ``[M]`` int64 part of each row, or one part for all rows.
        resolution: cells per axis.

    Returns:
        ``[M, C]`` in ``table``'s dtype, differentiable in ``table`` and ``cells``.
    """
    v = resolution + 1
    parts = table.shape[0] // v**3
    channels = table.shape[1]
    if len(cells) == 0:
        return table.new_empty(0, channels)
    # The K grids stacked along x as one volume [1, C, K V, V, V] (a view: channels last),
    # read by grid_sample's trilinear kernel, one call for rows of any parts. A point of
    # part k lies in x-cells k V .. k V + R, so no interpolation crosses into the next
    # part's vertices (a clamped x = R gives them weight 0 up to the float32 rounding of
    # the normalized coordinate, ~1e-5 of a cell).
    volume = table.view(parts * v, v, v, channels).permute(3, 0, 1, 2).unsqueeze(0)
    u = cells.clamp(0.0, float(resolution)).to(table.dtype)
    # grid_sample's coordinates: (z, y, x) order, each axis mapped to [-1, 1]
    depth = 2.0 / (parts * v - 1)
    axes = torch.tensor([2.0 / (v - 1), 2.0 / (v - 1), depth], dtype=u.dtype, device=u.device)
    grid = torch.addcmul(torch.full_like(axes, -1.0), u.flip(-1), axes)
    if isinstance(part, int):
        grid[:, 2] += part * v * depth
    else:
        grid[:, 2].add_(part.to(u.dtype), alpha=v * depth)
    out = F.grid_sample(
        volume, grid.view(1, 1, 1, -1, 3), mode="bilinear", padding_mode="border",
        align_corners=True,
    )  # fmt: skip
    return out.view(channels, -1).T


def trilinear_gathered(table: Tensor, cells: Tensor, part: Tensor | int, resolution: int) -> Tensor:
    """:func:`trilinear` for inference: the same values (closer to the exact interpolation
    than ``grid_sample``'s float32 coordinates), faster on the CPU, with a slower backward
    (use :func:`trilinear` for training).

    Each row is a bag of its cell's eight vertex rows of ``table``, summed with their
    trilinear weights by ``embedding_bag``, instead of ``grid_sample``'s general 3D kernel:
    0.38x its time on two threads, and 1.8x its forward-and-backward time
    (``benchmarks/speed/bench_grid_lookup.py``).

    Args:
        table, cells, part, resolution: as :func:`trilinear`.

    Returns:
        ``[M, C]`` contiguous, in ``table``'s dtype.
    """
    v = resolution + 1
    channels = table.shape[1]
    if len(cells) == 0:
        return table.new_empty(0, channels)
    u = cells.T.clamp(0.0, float(resolution)).to(table.dtype)  # [3, M]: one row per axis
    base = u.floor().clamp_(max=resolution - 1)
    f = u - base
    # int32 rows (K V^3 = 250,000 for 16 parts of 24 cells) halve the index traffic
    corner = base.to(torch.int32)
    if isinstance(part, Tensor):
        part = part.to(torch.int32)
    first = ((part * v + corner[0]) * v + corner[1]) * v + corner[2]
    offsets = torch.tensor(
        [dx * v * v + dy * v + dz for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)],
        dtype=torch.int32, device=first.device,
    )  # fmt: skip
    rows = first[:, None] + offsets  # [M, 8], x-major like the weights below
    fx, fy, fz = f
    gx, gy, gz = 1.0 - f
    yz = torch.stack((gy * gz, gy * fz, fy * gz, fy * fz))
    weights = torch.cat((yz * gx, yz * fx)).T  # [M, 8]
    return F.embedding_bag(rows, table, per_sample_weights=weights, mode="sum")


class PartGrids(nn.Module):
    """One grid of learned features per part over a box of its canonical frame.

    Parameters:
        table: ``[K * (R + 1)^3, C]`` vertex features, stored divided by ``value_scale``.

    Buffers:
        lower: ``[K, 3]`` the boxes' lower corners.
        cell_scale: ``[K, 3]`` cells per unit along each axis.

    Coordinates are the caller's: the occupancy network reads the grids at canonical
    points in palm lengths (``OccupancyNetwork.point_inputs``).

    Args:
        bounds: ``[K, 2, 3]`` lower and upper corner of each part's box.
        resolution: cells per axis ``R``.
        channels: features per vertex ``C``.
        value_scale: the features are ``value_scale`` times the stored table: with Adam,
            whose steps are about the learning rate whatever the gradient's size, this is
            a ``value_scale`` times larger learning rate for the grids alone (they need a
            larger one than the MLP weights).
        init_std: standard deviation of the initial features (0: all zero, so that cells
            no training point reaches add nothing; the first layer's weights of the
            features must then not be zero, or neither gets a gradient).
        generator: random source of the initial features.
        interpolation: one of :data:`GRID_INTERPOLATIONS`.
    """

    def __init__(
        self,
        bounds: Tensor,
        resolution: int,
        channels: int,
        value_scale: float = 1.0,
        init_std: float = 0.0,
        generator: torch.Generator | None = None,
        interpolation: str = "trilinear",
    ) -> None:
        super().__init__()
        bounds = torch.as_tensor(bounds, dtype=torch.float32)
        if bounds.ndim != 3 or bounds.shape[1:] != (2, 3):
            raise ValueError(f"bounds must be [K, 2, 3], got {list(bounds.shape)}")
        if not bool((bounds[:, 1] > bounds[:, 0]).all()):
            raise ValueError("every box's upper corner must be above its lower corner")
        if resolution < 1 or channels < 1 or not value_scale > 0:
            raise ValueError("resolution and channels must be >= 1, value_scale > 0")
        if interpolation not in GRID_INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {GRID_INTERPOLATIONS}, got {interpolation!r}"
            )
        self.interpolation = interpolation
        self.num_parts = bounds.shape[0]
        self.resolution = int(resolution)
        self.channels = int(channels)
        self.value_scale = float(value_scale)
        vertices = self.num_parts * (self.resolution + 1) ** 3
        self.table = nn.Parameter(torch.empty(vertices, self.channels))
        self.register_buffer("lower", bounds[:, 0].clone())
        self.register_buffer("cell_scale", self.resolution / (bounds[:, 1] - bounds[:, 0]))
        self.reset_parameters(init_std, generator)

    def reset_parameters(
        self, init_std: float = 0.0, generator: torch.Generator | None = None
    ) -> None:
        """Draw the features from ``N(0, init_std^2)`` (the stored table: divided by
        ``value_scale``)."""
        table = torch.randn(self.table.shape, generator=generator)
        with torch.no_grad():
            self.table.copy_(table * (init_std / self.value_scale))

    def smoothness(self) -> Tensor:
        """Mean squared difference of the features (``value_scale`` included) between
        neighbouring vertices, over the three axes of every grid: a penalty that pulls the
        grids toward smooth fields, scalar, differentiable in the table."""
        return self._differences(1)

    def curvature(self) -> Tensor:
        """Mean squared second difference of the features (``value_scale`` included)
        along each axis of every grid, ``f[i-1] - 2 f[i] + f[i+1]``: zero for features
        linear along the axis, largest for ones that alternate from vertex to vertex. A
        penalty on ripples of a cell's size that leaves broad variation free (which
        :meth:`smoothness` pulls toward constant); scalar, differentiable in the table."""
        return self._differences(2)

    def _differences(self, order: int) -> Tensor:
        v = self.resolution + 1
        grid = self.table.view(self.num_parts, v, v, v, self.channels) * self.value_scale
        terms = [grid.diff(n=order, dim=axis).square().mean() for axis in (1, 2, 3)]
        return (terms[0] + terms[1] + terms[2]) / 3.0

    def cell_maps(self) -> tuple[Tensor, Tensor]:
        """``scale [K, 3]`` and ``shift [K, 3]``: a point's cells in its part's grid are
        ``canon * scale + shift`` (``canon`` in the grids' coordinates), for callers that
        fold the map into their own (the folded inference path)."""
        return self.cell_scale, -self.lower * self.cell_scale

    def lookup(
        self,
        cells: Tensor,
        part: Tensor | int,
        dtype: torch.dtype,
        table: Tensor | None = None,
        *,
        inference: bool = False,
    ) -> Tensor:
        """``[M, 3]`` points in cell units of parts ``part`` (``[M]`` int64 or one part)
        -> ``[M, C]`` interpolated table rows (without ``value_scale``), in ``dtype``.
        ``table``: read instead of :attr:`table` (the same shape; e.g. a detached leaf of
        it that a caller differentiates on its own). ``inference``: read with
        :func:`trilinear_gathered` (faster forward, slow backward) instead of
        :func:`trilinear`."""
        if self.interpolation == "smoothstep":
            cells = smoothstep_cells(cells, self.resolution)
        table = self.table if table is None else table
        read = trilinear_gathered if inference else trilinear
        return read(table.to(dtype), cells, part, self.resolution)

    def forward(self, canon: Tensor, part: Tensor | int, table: Tensor | None = None) -> Tensor:
        """``[..., 3]`` points in the grids' coordinates of parts ``part`` (``[...]`` int64
        or one part) -> ``[..., C]`` features (``value_scale`` times the interpolated
        table; ``table`` as for :meth:`lookup`)."""
        shape = canon.shape[:-1]
        flat = canon.reshape(-1, 3)
        if isinstance(part, Tensor):
            part = part.expand(shape).reshape(-1)
        dtype = flat.dtype
        cells = (flat - self.lower[part].to(dtype)) * self.cell_scale[part].to(dtype)
        features = self.lookup(cells, part, dtype, table)
        if self.value_scale != 1.0:
            features = features * self.value_scale
        return features.view(*shape, self.channels)

    def extra_repr(self) -> str:
        return (
            f"parts={self.num_parts}, resolution={self.resolution}, channels={self.channels}, "
            f"value_scale={self.value_scale}, interpolation={self.interpolation}"
        )
