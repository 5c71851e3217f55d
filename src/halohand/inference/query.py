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
from typing import Any

import numpy as np
import torch
from torch import Tensor

from halohand.core.errors import HalohandInputError
from halohand.fields.conditioning import HALO_UNIT_M, HandConditioning, hand_conditioning
from halohand.fields.grids import GridMaps
from halohand.fields.occupancy import (
    OccupancyNetwork,
    first_layer_constants,
    first_layer_point_weights,
    part_chain_logits,
)
from halohand.fields.skipping import effective_radii, skip_mask
from halohand.inference.threads import run_batches, torch_threads

#: Query points per work item of :func:`sparse_occupancy` (items run in worker threads).
SPARSE_CHUNK = 32_768
#: Query points per support test of :func:`sparse_occupancy` (about eight ``[points, 24]``
#: float32 temporaries: 6 MiB).
SPARSE_MASK_CHUNK = 8192
#: Most (point, part) pairs per network call of :func:`sparse_occupancy` (two ``[pairs,
#: 64]`` float32 activations and the pairs' inputs: ~17 MiB). Each call costs ~1 ms of
#: Python around its ~80 small matrix products, so calls should be large.
SPARSE_MAX_PAIRS = 32_768


def default_chunk(skipping: bool) -> int:
    """Points per network call on the CPU: 1024 dense (keeps the ``[16, chunk, 64]``
    activations in cache: ~1.6x faster than 4096), 4096 with supports / skipping (~2-4
    active pairs per point near the surface: 20-40 % less time per point than 16384)."""
    return 4096 if skipping else 1024


def knuckle_spread_of(model: Any, hands: HandConditioning) -> Tensor | None:
    """``hands.knuckle_spread`` for a network that reads it (``reads_knuckle_spread``),
    else ``None``."""
    return hands.knuckle_spread if getattr(model, "reads_knuckle_spread", False) else None


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
            bone_lengths, return_parts=, part_mask=)``; also ``canonical_keypoints=``
            when its ``reads_canonical_skeleton`` is true, ``knuckle_spread=`` when its
            ``reads_knuckle_spread`` is).
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
    # only networks that read the canonical skeleton take it (other models keep the
    # original query signature)
    skeleton = {}
    if getattr(model, "reads_canonical_skeleton", False):
        skeleton["canonical_keypoints"] = hands.canonical_keypoints
    spread = knuckle_spread_of(model, hands)
    if spread is not None:
        skeleton["knuckle_spread"] = spread
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
            return_parts=True, part_mask=mask, **skeleton,
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


def can_query_sparse(
    model: object,
    hands: HandConditioning,
    points: Tensor,
    skip_radii: Sequence[float] | Tensor | bool | None = None,
) -> bool:
    """Whether :func:`sparse_occupancy` serves this query: an
    :class:`~halohand.fields.OccupancyNetwork` with part supports or ``skip_radii`` (else
    every part counts everywhere and nothing is skipped), on its folded inference path
    (CPU, float32, hard max over parts), and no autograd graph to build."""
    if not isinstance(model, OccupancyNetwork) or effective_radii(model, skip_radii) is None:
        return False
    if points.device.type != "cpu" or hands.part_matrices.device.type != "cpu":
        return False
    return model._can_fold(points, hands.part_matrices, hands.bone_lengths, hands.keypoints)


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
    mask_chunk: int = SPARSE_MASK_CHUNK,
    max_pairs: int = SPARSE_MAX_PAIRS,
    workers: int = 1,
) -> tuple[Tensor, Tensor | None]:
    """Inference form of :func:`query_occupancy` on the active (point, part) pairs only.

    The points of each hand are cut into work items of ``chunk_size`` points (fewer when
    that leaves a worker idle), which run in ``workers`` threads with one torch thread
    each (also in the caller's thread when there is one item or worker: OpenMP's threads
    would mostly wait on each other over these small kernels). An item takes
    ``mask_chunk`` points at a time through the support test
    (:func:`~halohand.fields.skip_mask`, exactly as :func:`query_occupancy` runs it) and
    keeps the points with at least one part in their support; once the kept points have
    ``max_pairs`` (point, part) pairs, the folded network runs on them. Points without a
    part are 0 (the network's value there) and cost no network call; every other value
    is computed as :func:`query_occupancy` computes it (the same pairs, the same float32
    network, up to the rounding of differently sized matrix products: 1.2e-7 measured).

    Memory beyond the inputs and outputs, per worker: the support test of ``mask_chunk``
    points (~8 ``[mask_chunk, 24]`` float32 temporaries: 6 MiB at 8192) and at most
    ``max_pairs`` pairs in one network call (~17 MiB at 32768: two ``[pairs, 64]``
    float32 activations and the pairs' inputs), with the kept points waiting for it
    (< ``max_pairs + 16 mask_chunk`` pairs, ~2 MiB). No call sees more than
    ``max(max_pairs, 16)`` pairs, whatever the number of points.

    A network without supports and without ``skip_radii`` has every part at every point:
    16 pairs per point, all evaluated (:func:`can_query_sparse` leaves such networks to
    :func:`query_occupancy`, whose dense path is as fast there).

    Args:
        model: an occupancy network for which :func:`can_query_sparse` holds.
        hands: the hands' network inputs.
        points: ``[B, N, 3]`` query points (the keypoints' frame), in units of ``scale``
            metres; ``[1, N, 3]`` queries every hand at the same points.
        scale: metres per unit of ``points``.
        skip_radii: as for :func:`query_occupancy`.
        return_parts: also return the part probabilities (0 outside the supports).
        chunk_size: points per work item.
        mask_chunk: points per support test.
        max_pairs: (point, part) pairs per network call.
        workers: threads.

    Returns:
        ``occupancy [B, N]`` and ``part_probs [B, N, 16]`` (or None), float32.
    """
    b = hands.part_matrices.shape[0]
    if points.ndim != 3 or points.shape[-1] != 3 or points.shape[0] not in (1, b):
        raise HalohandInputError(
            f"points must be [{b}, N, 3] or [1, N, 3], got {list(points.shape)}"
        )
    if min(chunk_size, mask_chunk, max_pairs) < 1:
        raise HalohandInputError("chunk_size, mask_chunk and max_pairs must be >= 1")
    k = model.num_parts
    n = points.shape[1]
    radii = effective_radii(model, skip_radii)
    w_hand, const = model.folded_weights(
        hands.part_matrices, hands.bone_lengths, knuckle_spread=knuckle_spread_of(model, hands)
    )
    frames = model.folded_frames(
        hands.part_matrices, bone_lengths=hands.bone_lengths,
        canonical_keypoints=hands.canonical_keypoints,
    )  # fmt: skip
    layers = model.folded_layers()  # once per query, not per batch of pairs
    # As query_occupancy runs them: the support test in float32, the network input frame
    # in the conditioning's dtype (float64: hands far from the origin), the network in
    # float32.
    keypoints32 = hands.keypoints.float()
    g = hands.global_transform
    occ = torch.zeros(b, n, dtype=torch.float32)
    parts = torch.zeros(b, n, k, dtype=torch.float32) if return_parts else None
    # Items small enough that every worker gets one (but not below one support test).
    per_item = min(chunk_size, max(mask_chunk, -(-n * b // max(workers, 1))))

    def network(hand: int, kept: list[tuple[Tensor, Tensor, Tensor]]) -> None:
        """Occupancy (and parts) of the kept ``(index, mask, network input)`` points."""
        idx = torch.cat([x[0] for x in kept])
        mask = torch.cat([x[1] for x in kept])
        p_halo = torch.cat([x[2] for x in kept])
        w, c = w_hand[:, hand : hand + 1], const[:, hand : hand + 1]
        f = None if frames is None else tuple(t[:, hand : hand + 1] for t in frames)
        occ_k = torch.empty(len(idx), dtype=torch.float32)
        parts_k = None if parts is None else torch.zeros(len(idx), k, dtype=torch.float32)
        for a, e in pair_batches(mask.sum(1).numpy(), max_pairs):
            part, row = mask[a:e].T.nonzero(as_tuple=True)  # sorted by part, then point
            logits = model.folded_logits(
                p_halo[a:e].index_select(0, row), torch.bincount(part, minlength=k), w, c,
                layers, f,
            )  # fmt: skip
            top = logits.new_full((e - a,), float("-inf"))
            top.scatter_reduce_(0, row, logits, reduce="amax")
            # sigmoid is monotonic: the max of the probabilities is the sigmoid of the max
            occ_k[a:e] = torch.sigmoid(top)
            if parts_k is not None:
                parts_k[a:e].index_put_((row, part), torch.sigmoid(logits))
        occ[hand, idx] = occ_k
        if parts is not None:
            parts[hand, idx] = parts_k

    @torch.no_grad()  # grad mode is per thread: workers start with grad on
    def run(work: tuple[int, int]) -> None:
        hand, start = work
        src = points[min(hand, points.shape[0] - 1)]
        gh = g[hand : hand + 1]
        kept: list[tuple[Tensor, Tensor, Tensor]] = []
        held = 0
        for s0 in range(start, min(start + per_item, n), mask_chunk):
            pts = src[s0 : min(s0 + mask_chunk, start + per_item, n)]
            if scale != 1.0:
                pts = pts * scale
            if radii is None:
                mask = torch.ones(len(pts), k, dtype=torch.bool)
            else:
                mask = skip_mask(pts[None].float(), keypoints32[hand : hand + 1], radii)[0]
            idx = mask.any(1).nonzero()[:, 0]
            if idx.numel() == 0:
                continue
            mask = mask.index_select(0, idx)
            p = pts.index_select(0, idx).to(g.dtype)[None]
            p_halo = (torch.einsum("bij,bnj->bni", gh[:, :3, :3], p) + gh[:, None, :3, 3])[0]
            pairs = int(mask.sum())
            if kept and held + pairs > max_pairs:
                network(hand, kept)
                kept, held = [], 0
            kept.append((idx + s0, mask, (p_halo / HALO_UNIT_M).float()))
            held += pairs
        if kept:
            network(hand, kept)

    items = [(hand, s) for hand in range(b) for s in range(0, n, per_item)]
    run_batches(run, items, workers, one_thread=True)
    return occ, parts


#: Most (point, part) pairs per network call of :func:`sparse_query`: its autograd graph
#: holds ~1.9 KiB per pair (six ``[pairs, 64]`` float32 activations and their masks, the
#: pairs' inputs), ~60 MiB at 32768.
GRAD_MAX_PAIRS = 32_768
#: Fewer query points per hand than this take :func:`query_occupancy` even with gradients:
#: its network calls take every hand at once, while here each hand has its own (~6 ms of
#: Python each); e.g. ``halohand grasp --n 20 --refine`` refines 80 hands x 512 probes.
GRAD_SPARSE_MIN_POINTS = 8192
#: Above this many (point, part) pairs in one :func:`sparse_query` (over all hands), the
#: graphs of its network calls are not kept: the backward pass rebuilds them, one call per
#: worker at a time.
GRAD_CHECKPOINT_PAIRS = 1 << 19


def can_query_sparse_grad(
    model: object,
    hands: HandConditioning,
    skip_radii: Sequence[float] | Tensor | bool | None = None,
    points: int = GRAD_SPARSE_MIN_POINTS,
) -> bool:
    """Whether :func:`sparse_query` serves this (differentiable) query of ``points`` points
    per hand: an :class:`~halohand.fields.OccupancyNetwork` with part supports or
    ``skip_radii`` (else every pair is active and there is nothing to skip), the hard max
    over parts (the smooth max weighs every part, active or not), on the
    CPU (its worker threads suit a CPU), at least :data:`GRAD_SPARSE_MIN_POINTS` points per
    hand."""
    if points < GRAD_SPARSE_MIN_POINTS:
        return False
    if not isinstance(model, OccupancyNetwork) or effective_radii(model, skip_radii) is None:
        return False
    if model.config.smooth_max or hands.part_matrices.shape[1] != model.num_parts:
        return False
    return hands.part_matrices.device.type == "cpu" and model.mlp.layers[0].weight.is_cpu


def sparse_query(
    model: OccupancyNetwork,
    hands: HandConditioning,
    points: Tensor,
    *,
    scale: float = 1.0,
    skip_radii: Sequence[float] | Tensor | bool | None = None,
    return_parts: bool = False,
    mask_chunk: int = SPARSE_MASK_CHUNK,
    max_pairs: int = GRAD_MAX_PAIRS,
    checkpoint_pairs: int | None = GRAD_CHECKPOINT_PAIRS,
    workers: int = 1,
) -> tuple[Tensor, Tensor | None]:
    """Differentiable :func:`query_occupancy` on the active (point, part) pairs only.

    The support test runs first, without autograd (as in :func:`query_occupancy`, where the
    mask is computed from detached inputs); only the points with at least one part in their
    support reach the network, and each part's MLP runs on its own pairs
    (:func:`~halohand.fields.occupancy.part_chain_logits`), in network calls of at most
    ``max_pairs`` pairs. The values are those of :func:`query_occupancy` (the same float64
    canonicalization and float32 network operations, up to the rounding of differently
    sized matrix products), and so are the first derivatives with respect to the points,
    the keypoints behind ``hands`` and the network's parameters; points outside every
    support are 0 with gradient 0, as there. Second derivatives are not supported
    (``create_graph`` through this query raises).

    The network calls run in ``workers`` threads with one torch thread each, in the forward
    and in the backward pass (one custom autograd node; each call's graph is built and
    differentiated in a worker): their kernels are small, and two OpenMP threads over them
    mostly wait on each other, or on a neighbouring process that shares a core
    (``benchmarks/speed/bench_neighbour.py``).

    Memory beyond the inputs and outputs: the support test of ``mask_chunk`` points (~6
    MiB at 8192), the active points' indices and masks (~25 bytes per active point) and the
    calls' autograd graphs, ~1.9 KiB per (point, part) pair in them: without the part
    probabilities only the pair of the max at each point has a graph (the others run
    without autograd first), about half of the pairs. With more than ``checkpoint_pairs``
    pairs in all (over every hand; ``None``: no limit), the forward pass keeps no graph and
    the backward pass rebuilds each call's: then at most one call's graph per worker is
    alive (~60 MiB at 32768 pairs), for one more forward pass of those pairs. So the graphs
    never exceed ~1 GiB at the defaults (~0.5 GiB without part probabilities), whatever
    the number of points. Measured on the earlier MLP model, uniform points in the box, peak
    resident memory above the inputs, forward and backward
    (``benchmarks/speed/bench_occupancy_grad.py``): 82 MiB for 2e5 points of one hand,
    286 MiB for 8 hands x 1e5 (graphs kept), 339 MiB for 2e6 points (rebuilt); the
    chunked query took 264 MiB, 695 MiB and 1.4 GiB for 1e6 points. On the shipped grid
    model (each call also differentiates its grid lookups): 303 MB for 8 x 1e5 and 368 MB
    for 1e6 points, against 939 MB and 1.6 GB for the chunked query
    (``benchmarks/results/speed/bench_occupancy_grad_grids.json``).

    Args:
        model: an occupancy network for which :func:`can_query_sparse_grad` holds.
        hands: the hands' network inputs.
        points: ``[B, N, 3]`` or ``[1, N, 3]`` (every hand at the same points) query points
            in units of ``scale`` metres, the keypoints' frame.
        scale: metres per unit of ``points``.
        skip_radii: as for :func:`query_occupancy`.
        return_parts: also return the part probabilities (0 outside the supports).
        mask_chunk: points per support test.
        max_pairs: (point, part) pairs per network call.
        checkpoint_pairs: pairs above which graphs are rebuilt in the backward pass.
        workers: threads for the network calls.

    Returns:
        ``occupancy [B, N]`` and ``part_probs [B, N, 16]`` (or None), in the network's dtype.
    """
    b = hands.part_matrices.shape[0]
    if points.ndim != 3 or points.shape[-1] != 3 or points.shape[0] not in (1, b):
        raise HalohandInputError(
            f"points must be [{b}, N, 3] or [1, N, 3], got {list(points.shape)}"
        )
    if min(mask_chunk, max_pairs) < 1:
        raise HalohandInputError("mask_chunk and max_pairs must be >= 1")
    radii = effective_radii(model, skip_radii)
    with torch_threads(1):
        calls = _active_calls(
            points, hands, scale, radii, model.num_parts, mask_chunk, max_pairs, workers
        )
        # Per-hand inputs, differentiable through the ordinary graph (a few small ops).
        const = first_layer_constants(
            model, hands.part_matrices, hands.bone_lengths, knuckle_spread_of(model, hands)
        )
        point_weights = first_layer_point_weights(model, hands.bone_lengths, b)
        # grids: each hand's maps from part frames to grid coordinates, [B, K, ...]
        maps = model.grid_maps(hands.bone_lengths, hands.canonical_keypoints)
        map_tensors = () if maps is None else tuple(t for t in maps if t is not None)
        tensors = (
            points,
            hands.global_transform,
            hands.part_matrices[..., :3, :3],
            hands.part_matrices[..., :3, 3],
            *map_tensors,
            const,
            point_weights,
        )
    total = sum(int(m.sum()) for _, _, m in calls)
    plan = _SparsePlan(
        model, calls, float(scale), return_parts, max(1, workers),
        keep_graphs=checkpoint_pairs is None or total <= checkpoint_pairs,
        grid_maps=len(map_tensors),
    )  # fmt: skip
    params = [t for layer in model.mlp.layers for t in (layer.weight, layer.bias)]
    if model.grids is not None:
        params.append(model.grids.table)
    out = _SparseQuery.apply(plan, *tensors, *params)
    return (out[0], out[1]) if return_parts else (out[0], None)


class _SparsePlan:
    """What :class:`_SparseQuery` needs besides tensors: the network, its calls and the
    graphs kept between the passes."""

    def __init__(
        self,
        model: OccupancyNetwork,
        calls: list[tuple[int, Tensor, Tensor]],
        scale: float,
        return_parts: bool,
        workers: int,
        keep_graphs: bool,
        grid_maps: int = 0,
    ) -> None:
        self.model = model
        #: inputs after the points that hold one entry per hand ([B, ...]): the hands'
        #: transform, rotations, translations and ``grid_maps`` grid-map tensors; then
        #: two per part and hand ([K, B, ...]): first-layer constants and point weights
        self.per_hand = 3 + grid_maps
        self.calls = calls
        self.scale = scale
        self.return_parts = return_parts
        self.workers = workers
        self.keep_graphs = keep_graphs
        #: per call: (leaves, outputs) with their graph, when kept
        self.graphs: list[tuple[list[Tensor], tuple[Tensor, Tensor]] | None] = []
        #: per call: the part of the max at each point, when only the occupancy is wanted
        self.tops: list[Tensor | None] = []

    def leaves(self, i: int, inputs: tuple[Tensor, ...], needs: tuple[bool, ...]) -> list[Tensor]:
        """Detached inputs of call ``i`` (requiring grad where the query's do): its points,
        its hand's transform, rotations, translations and grid maps, first-layer constants
        and point weights, and the network's parameters (the MLP's, then the grid table)."""
        hand, idx, _ = self.calls[i]
        pts = inputs[0]
        h1 = 1 + self.per_hand
        src = pts[min(hand, pts.shape[0] - 1)].index_select(0, idx)
        own = [
            src,
            *(t[hand] for t in inputs[1:h1]),
            *(t[:, hand] for t in inputs[h1 : h1 + 2]),
            *inputs[h1 + 2 :],
        ]
        return [t.detach().requires_grad_(need) for t, need in zip(own, needs, strict=True)]

    def run(self, i: int, leaves: list[Tensor], top: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Occupancy ``[M]`` and part probabilities ``[M, K]`` of call ``i``'s points; with
        ``top`` (``[M]`` part indices), of those (point, part) pairs only."""
        model = self.model
        k = model.num_parts
        _, _, mask = self.calls[i]
        if top is not None:
            # Where every active pair's probability is 0 (the sigmoid underflows), the max
            # picks part 0 whether it is active or not; an inactive pair has no gradient
            # in the chunked query, so it gets no pair here.
            mask = mask & torch.zeros_like(mask).index_put_(
                (torch.arange(len(top), device=top.device), top), torch.tensor(True)
            )
        h1 = 1 + self.per_hand
        p, g_h, rot_h, trans_h = leaves[:4]
        maps_h = leaves[4:h1]  # linear [K, 3, 3], offset [K, 3] (, knots, slopes [K, 2])
        const_h, point_w_h = leaves[h1 : h1 + 2]
        params_h = leaves[h1 + 2 :]
        # the grid table follows the MLP's parameters (see sparse_query)
        table = params_h.pop() if model.grids is not None else None
        if self.scale != 1.0:
            p = p * self.scale
        p = p.to(g_h.dtype)
        # As HandConditioning.to_halo_frame and part_inputs compute them (float64).
        p_halo = (p @ g_h[:3, :3].T + g_h[:3, 3]) / HALO_UNIT_M
        part, row = mask.T.nonzero(as_tuple=True)  # sorted by part, then point
        pairs = p_halo.index_select(0, row).split(torch.bincount(part, minlength=k).tolist())
        # One unbind per parameter (not one select per part): its backward is one stack.
        params = [t.unbind(0) for t in params_h]
        layers = list(zip(params[0::2], params[1::2], strict=True))  # (weights, biases)
        logits = []
        for kk, pp in enumerate(pairs):
            if not len(pp):
                continue
            canon = pp @ rot_h[kk].T + trans_h[kk]
            features = None
            if table is not None:
                features = self.grid_features(canon, kk, maps_h, table)
            logits.append(
                part_chain_logits(
                    model, canon, const_h[kk], [(w[kk], b[kk]) for w, b in layers],
                    point_w_h[kk], features,
                )
            )  # fmt: skip
        dtype = model.mlp.layers[0].weight.dtype
        probs = torch.zeros(len(mask), k, dtype=dtype, device=mask.device)
        probs = probs.index_put((row, part), torch.sigmoid(torch.cat(logits)))
        return model.combine(probs), probs

    def grid_features(
        self, canon: Tensor, part: int, maps: Sequence[Tensor], table: Tensor
    ) -> Tensor:
        """``[P, C]`` grid features of part ``part`` at ``[P, 3]`` canonical points (HALO
        units), read from ``table`` through one hand's grid maps (``[K, ...]`` each, in
        :class:`~halohand.fields.grids.GridMaps` order): what
        :meth:`~halohand.fields.OccupancyNetwork.part_logits` computes for those rows."""
        grids = self.model.grids
        assert grids is not None
        own = GridMaps(*(t[None] for t in maps))  # one hand's maps, as a batch of one
        return grids(own.apply_part(canon.to(table.dtype), 0, part), part, table)


class _SparseQuery(torch.autograd.Function):
    """The network calls of :func:`sparse_query` as one autograd node whose forward and
    backward passes run the calls in worker threads (one torch thread each)."""

    @staticmethod
    def forward(ctx, plan: _SparsePlan, *inputs: Tensor) -> tuple[Tensor, Tensor]:  # noqa: ANN001
        needs = tuple(ctx.needs_input_grad[1:])
        grad = any(needs)
        points, const = inputs[0], inputs[1 + plan.per_hand]
        b = inputs[1].shape[0]
        n = points.shape[1]
        k = plan.model.num_parts
        occ = torch.zeros(b, n, dtype=const.dtype, device=const.device)
        parts = torch.zeros(b, n, k, dtype=const.dtype, device=const.device)
        keep = grad and plan.keep_graphs
        plan.graphs = [None] * len(plan.calls)

        # The hard max passes the occupancy's gradient to one pair per point: without the
        # part probabilities, only those pairs' graphs are built (about half of the pairs
        # on uniform points), after a forward pass without autograd over all of them.
        tops = grad and not plan.return_parts
        plan.tops = [None] * len(plan.calls)

        def one(i: int) -> None:
            leaves = plan.leaves(i, inputs, needs if keep else (False,) * len(needs))
            graph = keep and not tops
            with torch.set_grad_enabled(graph):  # grad mode is per thread
                o, p = plan.run(i, leaves)
            hand, idx, _ = plan.calls[i]
            occ[hand, idx] = o.detach()
            if plan.return_parts:
                parts[hand, idx] = p.detach()
            if tops:
                # the index torch.max picks, as OccupancyNetwork.combine's backward does
                plan.tops[i] = top = p.max(1).indices
                if keep:
                    with torch.enable_grad():
                        plan.graphs[i] = (leaves, plan.run(i, leaves, top))
            elif keep:
                plan.graphs[i] = (leaves, (o, p))

        run_batches(one, range(len(plan.calls)), plan.workers, one_thread=True)
        ctx.plan = plan
        ctx.needs = needs
        if grad:
            ctx.save_for_backward(*inputs)
        if not plan.return_parts:
            ctx.mark_non_differentiable(parts)
        return occ, parts

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_occ: Tensor, g_parts: Tensor | None) -> tuple[Tensor | None, ...]:  # noqa: ANN001
        plan: _SparsePlan = ctx.plan
        needs: tuple[bool, ...] = ctx.needs
        inputs = ctx.saved_tensors
        results: list[list[Tensor | None] | None] = [None] * len(plan.calls)

        def one(i: int) -> None:
            hand, idx, _ = plan.calls[i]
            kept = plan.graphs[i]
            if kept is None:  # not kept: rebuild this call's graph
                leaves = plan.leaves(i, inputs, needs)
                with torch.enable_grad():
                    outs = plan.run(i, leaves, plan.tops[i])
            else:
                leaves, outs = kept
                plan.graphs[i] = None  # free the graph as soon as it is used
            grads_out = [g_occ[hand, idx]]
            targets = [outs[0]]
            if plan.return_parts and g_parts is not None:
                grads_out.append(g_parts[hand, idx])
                targets.append(outs[1])
            wanted = [leaf for leaf, need in zip(leaves, needs, strict=True) if need]
            got = iter(torch.autograd.grad(targets, wanted, grads_out, allow_unused=True))
            results[i] = [next(got) if need else None for need in needs]

        run_batches(one, range(len(plan.calls)), plan.workers, one_thread=True)
        grads: list[Tensor | None] = [
            torch.zeros_like(t) if need else None for t, need in zip(inputs, needs, strict=True)
        ]
        h1 = 1 + plan.per_hand
        for i, res in enumerate(results):
            hand, idx, _ = plan.calls[i]
            assert res is not None
            for j, (acc, got) in enumerate(zip(grads, res, strict=True)):
                if acc is None or got is None:
                    continue
                if j == 0:
                    acc[min(hand, acc.shape[0] - 1)].index_add_(0, idx, got)
                elif j < h1:  # [B, ...]: per hand
                    acc[hand] += got
                elif j < h1 + 2:  # [K, B, ...]: per part and hand
                    acc[:, hand] += got
                else:
                    acc += got
        ctx.plan = None
        plan.tops = []
        return (None, *grads)


def _active_calls(
    points: Tensor,
    hands: HandConditioning,
    scale: float,
    radii: Tensor | None,
    k: int,
    mask_chunk: int,
    max_pairs: int,
    workers: int = 1,
) -> list[tuple[int, Tensor, Tensor]]:
    """The network calls of :func:`sparse_query`: ``(hand, point indices [M], part mask [M,
    K])`` of the points with at least one active part, at most ``max_pairs`` pairs per call
    (a point with more runs alone), in point order per hand. The support tests run in
    ``workers`` threads, ``mask_chunk`` points each."""
    b = hands.part_matrices.shape[0]
    n = points.shape[1]
    keypoints32 = hands.keypoints.detach().float()
    found: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}

    @torch.no_grad()  # grad mode is per thread
    def test(item: tuple[int, int]) -> None:
        hand, s0 = item
        pts = points[min(hand, points.shape[0] - 1), s0 : s0 + mask_chunk].detach()
        if scale != 1.0:
            pts = pts * scale
        if radii is None:
            mask = torch.ones(len(pts), k, dtype=torch.bool, device=pts.device)
        else:
            mask = skip_mask(pts[None].float(), keypoints32[hand : hand + 1], radii)[0]
        idx = mask.any(1).nonzero()[:, 0]
        if idx.numel():
            found[item] = (idx + s0, mask.index_select(0, idx))

    items = [(hand, s0) for hand in range(b) for s0 in range(0, n, mask_chunk)]
    run_batches(test, items, workers, one_thread=True)
    calls: list[tuple[int, Tensor, Tensor]] = []
    for hand in range(b):
        got = [found[(hand, s0)] for s0 in range(0, n, mask_chunk) if (hand, s0) in found]
        if not got:
            continue
        idx_h = torch.cat([x[0] for x in got])
        mask_h = torch.cat([x[1] for x in got])
        for a, e in pair_batches(mask_h.sum(1).cpu().numpy(), max_pairs):
            calls.append((hand, idx_h[a:e], mask_h[a:e]))
    return calls
