"""One hand's occupancy on extraction lattice points, on the candidate (point, part) pairs.

Mesh extraction (:func:`~halohand.inference.extract.lattice_grid` with
``candidate_bits``) asks, level after level, for the occupancy of lattice points at which
only a few parts are in question: the parts that were near the maximum around the point one
level before, given as bits. :class:`LatticeQuery` answers from those pairs alone, and
returns what the next level needs (the value, the argmax part, the candidate bits) without
ever forming a ``[points, 16]`` array:

* the support test runs on the candidate pairs (:class:`~halohand.fields.skipping.PartSupports`),
  not on every part at every point;
* the hand's global normalisation and the lattice's centre are folded into the first
  layer (:meth:`~halohand.fields.OccupancyNetwork.folded_weights` with ``points_frame``),
  so lattice points (float32 metres about the centre) enter the network unconverted;
* the maximum, the argmax part and the parts within ``tolerance`` of the maximum are
  reduced per point from the pairs' probabilities, part by part (a part's rows are
  distinct points, so each step is a gather and a write).

The values are those of :func:`~halohand.inference.query.query_occupancy` on the same pairs
up to float32 rounding (the first layer is composed in float64 and rounded once, instead of
rounding the transformed points); ``benchmarks/speed/bench_extraction.py`` compares the
meshes with the dense grid's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from halohand.fields.conditioning import HALO_UNIT_M, HandConditioning
from halohand.fields.occupancy import OccupancyNetwork
from halohand.fields.skipping import PartSupports, skip_mask
from halohand.inference.query import knuckle_spread_of


class LatticeQuery:
    """Occupancy, argmax part and candidate parts of one hand at lattice points.

    Args:
        network: an occupancy network on its folded CPU path (float32, hard max).
        hand: the hand's network inputs (batch of one).
        origin_m: ``[3]`` float64 metres: the lattice points are given relative to it.
        radii: ``[16]`` part support radii in metres.
        tolerance: a part is a candidate at a point when its probability is within
            ``tolerance`` of the point's maximum ...
        floor: ... and at least ``floor``.

    Calling it is thread-safe (every call allocates its own outputs); the network runs in
    the calling thread's torch threads.
    """

    def __init__(
        self,
        network: OccupancyNetwork,
        hand: HandConditioning,
        origin_m: np.ndarray,
        radii: Tensor,
        tolerance: float,
        floor: float,
    ) -> None:
        if hand.part_matrices.shape[0] != 1:
            raise ValueError("LatticeQuery takes one hand")
        self.network = network
        self.num_parts = network.num_parts
        g = hand.global_transform[0].to(torch.float64).cpu()
        origin = torch.as_tensor(np.asarray(origin_m, dtype=np.float64))
        # q (metres about origin) -> network input p = (R (q + origin) + t) / unit
        frame = torch.eye(4, dtype=torch.float64)
        frame[:3, :3] = g[:3, :3] / HALO_UNIT_M
        frame[:3, 3] = (g[:3, :3] @ origin + g[:3, 3]) / HALO_UNIT_M
        with torch.no_grad():
            w, c = network.folded_weights(
                hand.part_matrices, hand.bone_lengths, frame[None],
                knuckle_spread=knuckle_spread_of(network, hand),
            )  # fmt: skip
            self._frames = network.folded_frames(
                hand.part_matrices, frame[None], hand.bone_lengths, hand.canonical_keypoints
            )
        self._weights, self._const = w.contiguous(), c.contiguous()
        self._layers = network.folded_layers()
        keypoints = hand.keypoints[0].to(torch.float64).cpu() - origin
        self._supports = PartSupports(keypoints, radii)
        self.tolerance = float(tolerance)
        self.floor = float(floor)

    @torch.no_grad()
    def __call__(
        self, points: np.ndarray, candidates: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Evaluate lattice points.

        Args:
            points: ``[N, 3]`` float32 metres about ``origin_m``.
            candidates: ``[N]`` uint32 bits of the parts to evaluate at each point (bit k:
                part k), or ``None`` for every part.

        Returns:
            ``values [N]`` float32 occupancy (0 where no candidate part is in its support),
            ``labels [N]`` uint8 argmax part (the lowest index among equal maxima, as
            ``numpy.argmax``; 0 without parts) and ``bits [N]`` uint32 of the parts within
            ``tolerance`` of the maximum and at least ``floor``.
        """
        k = self.num_parts
        q = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
        n = q.shape[0]
        if candidates is None:
            # Every part: the [N, 16] support test is the cheaper form.
            sup = self._supports
            pairs = skip_mask(q[None], sup.keypoints[None], sup.radii.to(torch.float32))[0].T
            part, row = pairs.nonzero(as_tuple=True)  # sorted by part, then point
        else:
            part_np, row_np = _candidate_pairs(candidates)
            part, row = torch.from_numpy(part_np), torch.from_numpy(row_np)
            coords = q.T.contiguous().index_select(1, row)
            keep = self._supports.contains(coords, part).nonzero()[:, 0]
            part, row = part.index_select(0, keep), row.index_select(0, keep)
        counts = torch.bincount(part, minlength=k)
        logits = self.network.folded_logits(
            q.index_select(0, row), counts, self._weights, self._const, self._layers,
            self._frames,
        )  # fmt: skip
        probs = torch.sigmoid(logits).numpy()
        rows = row.numpy()
        sizes = counts.tolist()
        ends = np.cumsum(sizes).tolist()
        spans = [(kk, ends[kk] - sizes[kk], ends[kk]) for kk in range(k) if sizes[kk]]
        # Per part, rows are distinct: the max, its (lowest) part and the candidates are
        # plain gathers and writes per part, in part order. -1 marks "no pair yet", so the
        # first part evaluated at a point holds it even at probability 0.
        values = np.full(n, -1.0, dtype=np.float32)
        labels = np.zeros(n, dtype=np.uint8)
        for kk, s0, s1 in spans:
            r, p = rows[s0:s1], probs[s0:s1]
            v = values[r]
            higher = p > v
            labels[r[higher]] = kk
            values[r] = np.where(higher, p, v)
        np.maximum(values, 0.0, out=values)
        cand = np.zeros(n, dtype=np.uint32)
        bar = np.maximum(values - np.float32(self.tolerance), np.float32(self.floor))
        for kk, s0, s1 in spans:
            r = rows[s0:s1]
            cand[r[probs[s0:s1] >= bar[r]]] |= np.uint32(1 << kk)
        return values, labels, cand


def _candidate_pairs(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(part, row)`` int64 of every set bit of ``bits`` (``[N]`` uint32; bit k: part k),
    sorted by part, then row: the lowest set bit of every point is peeled off in turn
    (~1.3 rounds on shrinking sets for extraction's candidates, against a ``[32, N]`` test
    and its ``nonzero``)."""
    b = np.asarray(bits, dtype=np.uint32)
    n = len(b)
    rows = np.flatnonzero(b)
    b = b[rows]
    parts, owners = [], []
    while len(b):
        low = b & (~b + np.uint32(1))
        # a power of two's float32 exponent is its bit index
        parts.append((low.astype(np.float32).view(np.int32) >> 23) - 127)
        owners.append(rows)
        b ^= low
        more = np.flatnonzero(b)
        b, rows = b[more], rows[more]
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    key = np.sort(np.concatenate(parts).astype(np.int64) * n + np.concatenate(owners))
    return np.divmod(key, n)
