"""The one chunked occupancy query: network inputs of hands + points -> probabilities.

:func:`query_occupancy` runs in the caller's grad mode, so :meth:`halohand.HALO.occupancy`
(differentiable), mesh extraction (no grad) and evaluation all go through the same loop.

:func:`sparse_occupancy` is its inference form for arbitrary (e.g. uniform) query points
on the CPU, which :meth:`halohand.HALO.occupancy` takes without gradients: the same
support test and the same folded network on the same (point, part) pairs, so the same
values, but points outside every part's support get 0 without a network call, the
network sees only the points with at least one part, in batches bounded by their number
of (point, part) pairs, and batches run in worker threads with one torch thread each.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from halohand.core.errors import HalohandInputError
from halohand.fields.conditioning import HALO_UNIT_M, HandConditioning, hand_conditioning
from halohand.fields.occupancy import OccupancyNetwork
from halohand.fields.skipping import effective_radii, skip_mask
from halohand.inference.threads import run_batches

#: Query points per work item of :func:`sparse_occupancy` (its support test holds about
#: eight ``[SPARSE_CHUNK, 24]`` float32 temporaries: ~1.6 MiB at 2048).
SPARSE_CHUNK = 2048
#: Most (point, part) pairs per network call of :func:`sparse_occupancy`: two ``[pairs,
#: 64]`` float32 activations (+ inputs), ~4.3 MiB at 8192.
SPARSE_MAX_PAIRS = 8192


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


def can_query_sparse(model: object, hands: HandConditioning, points_m: Tensor) -> bool:
    """Whether :func:`sparse_occupancy` serves this query: an
    :class:`~halohand.fields.OccupancyNetwork` that takes its folded inference path
    (CPU, float32, hard max over parts) and no autograd graph to build."""
    if not isinstance(model, OccupancyNetwork):
        return False
    if points_m.device.type != "cpu" or hands.part_matrices.device.type != "cpu":
        return False
    return model._can_fold(points_m, hands.part_matrices, hands.bone_lengths, hands.keypoints)


def pair_batches(pair_counts: np.ndarray, max_pairs: int) -> list[tuple[int, int]]:
    """Split consecutive points into ``[start, end)`` runs of at most ``max_pairs``
    (point, part) pairs each (a point with more pairs than that runs alone).

    Args:
        pair_counts: ``[N]`` pairs of each point (>= 1).
        max_pairs: the bound.
    """
    cum = np.cumsum(np.asarray(pair_counts, dtype=np.int64))
    out: list[tuple[int, int]] = []
    start, done = 0, 0
    n = len(cum)
    while start < n:
        end = int(np.searchsorted(cum, done + max_pairs, side="right"))
        end = max(end, start + 1)
        out.append((start, end))
        done = int(cum[end - 1])
        start = end
    return out


@torch.no_grad()
def sparse_occupancy(
    model: OccupancyNetwork,
    hands: HandConditioning,
    points: Tensor,
    *,
    scale: float = 1.0,
    skip_radii: Sequence[float] | Tensor | bool | None = None,
    return_parts: bool = False,
    chunk_size: int = SPARSE_CHUNK,
    max_pairs: int = SPARSE_MAX_PAIRS,
    workers: int = 1,
) -> tuple[Tensor, Tensor | None]:
    """Inference form of :func:`query_occupancy` on the active (point, part) pairs only.

    Per work item of ``chunk_size`` points of one hand: the support test
    (:func:`~halohand.fields.skip_mask`, exactly as :func:`query_occupancy` runs it), the
    points with at least one part in their support, then the folded network on their
    pairs in batches of at most ``max_pairs`` pairs. Points without a part are 0 (the
    network's value there); every other value is computed as :func:`query_occupancy`
    computes it. Work items run in ``workers`` threads with one torch thread each.

    Memory beyond the inputs and outputs: per worker, the support test of ``chunk_size``
    points and the network's activations of ``max_pairs`` pairs (~6 MiB at the defaults).

    A network that evaluates every part everywhere (no supports, no ``skip_radii``) has
    16 pairs per point, all evaluated.

    Args:
        model: an occupancy network for which :func:`can_query_sparse` holds.
        hands: the hands' network inputs.
        points: ``[B, N, 3]`` query points (the keypoints' frame), in units of ``scale``
            metres; ``[1, N, 3]`` queries every hand at the same points.
        scale: metres per unit of ``points``.
        skip_radii: as for :func:`query_occupancy`.
        return_parts: also return the part probabilities (0 outside the supports).
        chunk_size: points per work item.
        max_pairs: (point, part) pairs per network call (>= 1).
        workers: threads.

    Returns:
        ``occupancy [B, N]`` float32 and ``part_probs [B, N, 16]`` float32 or None.
    """
    b = hands.part_matrices.shape[0]
    if points.ndim != 3 or points.shape[-1] != 3 or points.shape[0] not in (1, b):
        raise HalohandInputError(
            f"points must be [{b}, N, 3] or [1, N, 3], got {list(points.shape)}"
        )
    if chunk_size < 1 or max_pairs < 1:
        raise HalohandInputError("chunk_size and max_pairs must be >= 1")
    k = model.num_parts
    n = points.shape[1]
    radii = effective_radii(model, skip_radii)
    w_hand, const = model.folded_weights(hands.part_matrices, hands.bone_lengths)
    # Per hand, as query_occupancy runs them: the support test in float32 and the network
    # input frame in the conditioning's dtype (float64).
    keypoints32 = hands.keypoints.float()
    g = hands.global_transform
    occ = torch.zeros(b, n, dtype=torch.float32)
    parts = torch.zeros(b, n, k, dtype=torch.float32) if return_parts else None

    @torch.no_grad()  # grad mode is per thread: workers start with grad on
    def run(item: tuple[int, int]) -> None:
        hand, start = item
        sl = slice(start, start + chunk_size)
        pts = points[min(hand, points.shape[0] - 1), sl]
        if scale != 1.0:
            pts = pts * scale
        if radii is None:
            mask = torch.ones(len(pts), k, dtype=torch.bool)
        else:
            mask = skip_mask(pts[None].float(), keypoints32[hand : hand + 1], radii)[0]
        counts = mask.sum(1)
        idx = counts.nonzero()[:, 0]
        if idx.numel() == 0:
            return
        mask, counts = mask[idx], counts[idx]
        p = pts.index_select(0, idx).to(g.dtype)
        gh = g[hand : hand + 1]
        p_halo = torch.einsum("bij,bnj->bni", gh[:, :3, :3], p[None]) + gh[:, None, :3, 3]
        p_halo = (p_halo[0] / HALO_UNIT_M).float()
        occ_c = torch.empty(len(idx), dtype=torch.float32)
        parts_c = torch.zeros(len(idx), k, dtype=torch.float32) if parts is not None else None
        w, c = w_hand[:, hand : hand + 1], const[:, hand : hand + 1]
        for a, e in pair_batches(counts.numpy(), max_pairs):
            part, row = mask[a:e].T.nonzero(as_tuple=True)  # sorted by part, then point
            logits = model.folded_logits(
                p_halo[a:e].index_select(0, row), torch.bincount(part, minlength=k), w, c
            )
            top = logits.new_full((e - a,), float("-inf"))
            top.scatter_reduce_(0, row, logits, reduce="amax")
            # sigmoid is monotonic: the max of the probabilities is the sigmoid of the max
            occ_c[a:e] = torch.sigmoid(top)
            if parts_c is not None:
                parts_c[a:e].index_put_((row, part), torch.sigmoid(logits))
        occ[hand, start + idx] = occ_c
        if parts is not None:
            parts[hand, start + idx] = parts_c

    items = [(hand, s) for hand in range(b) for s in range(0, n, chunk_size)]
    run_batches(run, items, workers)
    return occ, parts
