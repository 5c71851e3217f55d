"""The one chunked occupancy query: network inputs of hands + points -> probabilities.

:func:`query_occupancy` runs in the caller's grad mode, so :meth:`halohand.HALO.occupancy`
(differentiable), mesh extraction (no grad) and evaluation all go through the same loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from halohand.core.errors import HalohandInputError
from halohand.fields.conditioning import HandConditioning, hand_conditioning
from halohand.fields.occupancy import OccupancyNetwork
from halohand.fields.skipping import effective_radii, skip_mask


def default_chunk(skipping: bool) -> int:
    """Points per network call on the CPU: 1024 dense (keeps the ``[16, chunk, 64]``
    activations in cache: ~1.6x faster than 4096), 4096 with supports / skipping (~2-4
    active pairs per point near the surface: 20-40 % less time per point than 16384)."""
    return 4096 if skipping else 1024


def query_occupancy(
    model: OccupancyNetwork,
    hands: HandConditioning,
    points_m: Tensor,
    *,
    chunk_size: int | None = None,
    skip_radii: Sequence[float] | Tensor | bool | None = None,
    part_mask: Tensor | None = None,
    return_parts: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """Occupancy ``[B, N]`` and part probabilities ``[B, N, 16]`` of hands at points.

    Runs in the caller's autograd mode: gradients flow to ``points_m``, to the keypoints
    behind ``hands`` and to the network's parameters when grad is enabled.

    Args:
        model: a keypoint-driven occupancy network (``query(points, part_matrices,
            bone_lengths, return_parts=, part_mask=)``).
        hands: the hands' network inputs (:func:`~halohand.fields.hand_conditioning`).
        points_m: ``[B, N, 3]`` query points in metres, the keypoints' frame.
        chunk_size: points per network call (default :func:`default_chunk`).
        skip_radii: part skipping (:mod:`halohand.fields.skipping`): ``None``/``False``
            evaluates every part, ``True`` the default radii, or per-part radii in metres.
            A model trained with part supports always uses them.
        part_mask: optional ``[B, N, 16]`` bool: evaluate only these (point, part) pairs;
            the others count as probability 0.
        return_parts: also collect the part probabilities (else the second value is None).
    """
    if points_m.ndim != 3 or points_m.shape[-1] != 3:
        raise HalohandInputError(f"points must be [B, N, 3], got {list(points_m.shape)}")
    if points_m.shape[0] != hands.part_matrices.shape[0]:
        raise HalohandInputError("points and keypoints batch sizes differ")
    if part_mask is not None and part_mask.shape != (*points_m.shape[:2], 16):
        raise HalohandInputError(
            f"part_mask must be [{points_m.shape[0]}, {points_m.shape[1]}, 16], "
            f"got {list(part_mask.shape)}"
        )
    radii = effective_radii(model, skip_radii)
    chunk = max(1, chunk_size or default_chunk(radii is not None or part_mask is not None))
    p_halo = hands.to_halo_frame(points_m)
    occs: list[Tensor] = []
    parts: list[Tensor] = []
    for start in range(0, points_m.shape[1], chunk):
        sl = slice(start, start + chunk)
        mask = None if part_mask is None else part_mask[:, sl].to(torch.bool)
        if radii is not None:
            # float32 is plenty for a centimetre-scale capsule test and halves its cost.
            support = skip_mask(
                points_m[:, sl].detach().float(), hands.keypoints.detach().float(), radii
            )
            mask = support if mask is None else mask & support.to(mask.device)
        occ, prob = model.query(
            p_halo[:, sl], hands.part_matrices, hands.bone_lengths,
            return_parts=True, part_mask=mask,
        )  # fmt: skip
        occs.append(occ)
        if return_parts:
            parts.append(prob)
    b, n = points_m.shape[:2]
    occ_all = torch.cat(occs, 1) if occs else points_m.new_zeros(b, n).float()
    if not return_parts:
        return occ_all, None
    parts_all = torch.cat(parts, 1) if parts else points_m.new_zeros(b, n, 16).float()
    return occ_all, parts_all


@torch.no_grad()
def occupancy_from_keypoints(
    model: OccupancyNetwork,
    hands: HandConditioning | Tensor,
    points_m: Tensor,
    *,
    side: str | Tensor = "right",
    chunk_size: int | None = None,
    skip_radii: Sequence[float] | Tensor | bool | None = None,
    return_parts: bool = False,
    part_mask: Tensor | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """Inference (no grad) form of :func:`query_occupancy`; ``hands`` may be ``[B, 21, 3]``
    keypoints in metres (with ``side``) or a precomputed :class:`HandConditioning`.

    Returns:
        ``occupancy [B, N]`` and, with ``return_parts``, ``part_probs [B, N, 16]``.
    """
    if isinstance(hands, Tensor):
        hands = hand_conditioning(hands, side=side)
    occ, parts = query_occupancy(
        model, hands, points_m, chunk_size=chunk_size, skip_radii=skip_radii,
        part_mask=part_mask, return_parts=return_parts,
    )  # fmt: skip
    return (occ, parts) if return_parts else occ
