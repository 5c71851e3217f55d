"""Fourier features of canonical query points (a positional encoding of the part MLPs' input).

A small MLP on raw coordinates is biased towards smooth functions of them: resolving
millimetre detail over a part's few centimetres takes large first-layer weights and many
steps. Sines and cosines of the coordinates at several frequencies give the first layer
that detail as inputs instead (the positional encoding of NeRF; "Fourier features" in
Tancik et al., NeurIPS 2020).

``encode_points`` is pure and batched; the network decides where it enters
(:class:`~halohand.fields.occupancy.OccupancyNetwork`, config ``point_frequencies``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["encode_points", "encoding_size"]


def encoding_size(frequencies: Sequence[float]) -> int:
    """Number of features :func:`encode_points` makes per point: ``6 F``."""
    return 6 * len(frequencies)


def encode_points(points: Tensor, frequencies: Sequence[float]) -> Tensor:
    """``[..., 3]`` points -> ``[..., 6F]`` features ``[sin(2 pi f x), cos(2 pi f x)]``.

    Args:
        points: ``[..., 3]`` coordinates (for the occupancy network: a part's canonical
            frame, HALO units, i.e. metres / 0.4).
        frequencies: ``F`` frequencies in cycles per unit of ``points`` (a frequency ``f``
            has a wavelength of ``1 / f`` units: 100 cycles per HALO unit = 4 mm).

    Returns:
        ``[..., 6F]`` in ``points``' dtype: the ``3F`` sines (frequency-major: the three
        axes of the first frequency, then of the second, ...) followed by the ``3F``
        cosines in the same order. Differentiable in ``points``; no features for ``F = 0``.
    """
    if points.shape[-1] != 3:
        raise ValueError(f"points must be [..., 3], got {list(points.shape)}")
    if not frequencies:
        return points.new_empty(*points.shape[:-1], 0)
    omega = torch.tensor(
        [2.0 * math.pi * float(f) for f in frequencies], dtype=points.dtype, device=points.device
    )
    angles = (points.unsqueeze(-2) * omega[:, None]).flatten(-2)  # [..., F * 3]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
