"""Mesh extraction from an occupancy function: dense or hierarchical grids + marching cubes.

The hierarchical path follows the idea of MISE (Occupancy Networks): evaluate a coarse
lattice, then refine only the cells whose corners straddle the threshold (dilated by one cell),
doubling the resolution each step. Lattice points never evaluated lie away from the surface;
they copy a coarse corner of their cell, which keeps their side of the threshold. Marching
cubes is scikit-image's, on a grid padded with one layer of "outside" so the surface is closed.

For part-based occupancy (the max over per-part probabilities), ``part_candidates`` also
narrows every refinement level: a fine point evaluates only the parts that were candidates
(close to the max) at the coarse lattice points around it, since a part's field does not
rise from below the others to above them within one coarse cell (2-9 mm for a hand at
256).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import trimesh
from scipy.ndimage import binary_dilation

from halohand.inference.threads import run_batches
from halohand.inference.touching import (
    CARVED,
    PartContacts,
    contact_cells,
    keep_apart,
    neighbours,
)

OccupancyFn = Callable[[np.ndarray], np.ndarray]
"""Maps ``[N, 3]`` float32 points to ``[N]`` occupancy probabilities."""


@dataclass
class ExtractionStats:
    """What an extraction evaluated: number of occupancy queries per level."""

    queries_per_level: list[int]
    #: Lattice index of the returned grid's first point (not 0 only with ``crop``).
    start: tuple[int, int, int] = (0, 0, 0)

    @property
    def total_queries(self) -> int:
        return int(sum(self.queries_per_level))

    def grid_bounds(
        self, bounds_min: np.ndarray, bounds_max: np.ndarray, resolution: int, shape: tuple
    ) -> tuple[np.ndarray, np.ndarray]:
        """Corners of the returned grid (``[3]`` each, units of the box): the full box, or
        the block from ``start`` of a cropped grid of ``shape`` on the ``resolution``
        lattice spanning ``[bounds_min, bounds_max]``."""
        bmin = np.asarray(bounds_min, dtype=np.float64)
        step = (np.asarray(bounds_max, dtype=np.float64) - bmin) / resolution
        first = np.asarray(self.start)
        return bmin + first * step, bmin + (first + np.asarray(shape) - 1) * step


@dataclass(frozen=True, eq=False)
class LatticeGrid:
    """Occupancy on a lattice, as :func:`lattice_grid` evaluated it.

    Attributes:
        values: ``[A, B, C]`` float32 occupancy on the (possibly cropped) lattice.
        stats: what was evaluated (queries per level, the crop's first lattice index).
        labels: ``[A, B, C]`` uint8 labels (argmax part), or ``None`` when not asked for.
        bounds_min / bounds_max: ``[3]`` corners of the full lattice's box.
        resolution: cells per axis of the full lattice.
    """

    values: np.ndarray
    stats: ExtractionStats
    labels: np.ndarray | None
    bounds_min: np.ndarray
    bounds_max: np.ndarray
    resolution: int

    @property
    def corners(self) -> tuple[np.ndarray, np.ndarray]:
        """``([3], [3])`` corners of :attr:`values` (the full box unless cropped)."""
        return self.stats.grid_bounds(
            self.bounds_min, self.bounds_max, self.resolution, self.values.shape
        )

    def mesh(self, level: float, *, labelled: bool = False) -> trimesh.Trimesh:
        """Marching cubes at ``level`` over the grid's own corners
        (:func:`mesh_from_grid`); ``labelled`` carries :attr:`labels` to the vertices."""
        lo, hi = self.corners
        return mesh_from_grid(self.values, lo, hi, level, labels=self.labels if labelled else None)


Columns = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Lattice indices of some points as three ``[N]`` int64 columns (one per axis)."""


def _columns(idx: np.ndarray | Columns) -> Columns:
    if isinstance(idx, tuple):
        return idx
    return idx[:, 0], idx[:, 1], idx[:, 2]


class _Lazy:
    """Rows of ``make(idx[rows])`` on demand: each batch's points (or candidate masks) are
    made by the worker thread that evaluates it, in parallel, not all up front."""

    def __init__(
        self, idx: np.ndarray | _Unravelled, make: Callable[[Columns], np.ndarray]
    ) -> None:
        self.idx = idx
        self.make = make

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, rows: slice) -> np.ndarray:
        return self.make(_columns(self.idx[rows]))


class _Unravelled:
    """Lattice indices (as :data:`Columns`) of the flat indices ``flat`` into a block of
    ``shape`` whose first point has lattice index ``offset``, made per batch by the worker
    thread that asks (for ~300k points of the last level: 5-10 ms off the serial path).
    Each thread keeps its last batch's rows: a batch's points and its candidate masks both
    ask for them."""

    def __init__(self, flat: np.ndarray, shape: tuple[int, ...], offset: np.ndarray) -> None:
        self.flat = flat
        self.shape = shape
        self.offset = offset
        self._kept = threading.local()

    def __len__(self) -> int:
        return len(self.flat)

    def __getitem__(self, rows: slice) -> Columns:
        key = (rows.start, rows.stop)
        kept = getattr(self._kept, "rows", None)
        if kept is not None and kept[0] == key:
            return kept[1]
        i, j, k = np.unravel_index(self.flat[rows], self.shape)
        cols = (i + self.offset[0], j + self.offset[1], k + self.offset[2])
        self._kept.rows = (key, cols)
        return cols

    def array(self) -> np.ndarray:
        """All ``[N, 3]`` lattice indices."""
        return np.stack(self[0 : len(self)], -1)


def _points_of(
    idx: np.ndarray | _Unravelled, bmin: np.ndarray, step: np.ndarray, count: int
) -> _Lazy:
    """Float32 points ``bmin + idx * step`` (float64, then rounded) of lattice indices in
    ``[0, count)``, gathered from one coordinate table per axis."""
    tables = [(bmin[a] + np.arange(count) * step[a]).astype(np.float32) for a in range(3)]

    def make(cols: Columns) -> np.ndarray:
        out = np.empty((len(cols[0]), 3), dtype=np.float32)
        for a in range(3):
            out[:, a] = tables[a][cols[a]]
        return out

    return _Lazy(idx, make)


def _coarse_bits_of(
    idx: _Unravelled | np.ndarray, near: np.ndarray, c_lo: np.ndarray, count: int
) -> _Lazy:
    """Bits of ``near`` (``[a, b, c]``, coarse lattice from index ``c_lo``) at the lower
    coarse corner of each fine lattice index in ``[0, count)`` (``idx // 2 - c_lo``), as
    flat gathers."""
    flat = np.ravel(near)
    strides = (near.shape[1] * near.shape[2], near.shape[2], 1)
    offsets = [(np.arange(count) // 2 - c_lo[a]) * strides[a] for a in range(3)]

    def make(cols: Columns) -> np.ndarray:
        return flat[offsets[0][cols[0]] + offsets[1][cols[1]] + offsets[2][cols[2]]]

    return _Lazy(idx, make)


def _evaluate(
    fn: OccupancyFn,
    points: np.ndarray | _Lazy,
    batch: int,
    labels: bool = False,
    workers: int = 1,
    parts: _PartMode | None = None,
    masks: np.ndarray | _Lazy | None = None,
    candidate_bits: bool = False,
    alongside: Callable[[], None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Values (and labels) of ``fn`` at ``points``; in part mode also candidate bit masks.

    In part mode ``fn(points, part_mask)`` returns ``(values, part_probs [N, K])``; labels
    are the argmax part, and the third output holds each point's candidate parts as bits.
    ``masks`` (bits per point) restricts the parts evaluated. With ``candidate_bits``,
    ``fn(points, bits)`` takes the bits and returns ``(values, labels, bits)`` itself.
    ``alongside`` (no arguments) runs as one more work item among the batches: the
    caller's bookkeeping for the level, in parallel with the network instead of after it.
    """
    out = np.empty(len(points), dtype=np.float32)
    lab = np.zeros(len(points), dtype=np.uint8) if labels or parts is not None else None
    cand = np.zeros(len(points), dtype=np.uint32) if parts is not None else None
    starts: list[int | None] = list(range(0, len(points), batch))
    if alongside is not None:
        starts.insert(0, None)

    def run(s: int | None) -> None:
        if s is None:
            alongside()
            return
        sl = slice(s, s + batch)
        if parts is not None and candidate_bits:
            res, lab[sl], cand[sl] = fn(points[sl], None if masks is None else masks[sl])
        elif parts is not None:
            mask = None if masks is None else parts.unpack(masks[sl])
            res, probs = fn(points[sl], mask)
            probs = np.asarray(probs, dtype=np.float32)
            lab[sl] = probs.argmax(-1)
            cand[sl] = parts.pack(probs)
        elif labels:
            res, part = fn(points[sl])
            lab[sl] = np.asarray(part).reshape(-1)
        else:
            res = fn(points[sl])
        out[sl] = np.asarray(res, dtype=np.float32).reshape(-1)

    # Batches in parallel threads, one torch thread each (halohand.inference.threads).
    run_batches(run, starts, workers)
    if not np.all(np.isfinite(out)):
        raise ValueError("the occupancy function returned NaN or inf")
    return out, lab, cand


@dataclass(frozen=True)
class _PartMode:
    """Which parts count as candidates at an evaluated point (see ``evaluate_grid``)."""

    num_parts: int
    tolerance: float
    floor: float

    @property
    def bits(self) -> np.ndarray:
        """``[K]`` uint32: the bit of each part."""
        return np.left_shift(np.uint32(1), np.arange(self.num_parts, dtype=np.uint32))

    def pack(self, probs: np.ndarray) -> np.ndarray:
        """``[N, K]`` probabilities -> ``[N]`` uint32 bits of the parts within ``tolerance``
        of the point's max and at least ``floor``."""
        top = probs.max(-1, keepdims=True)
        near = probs >= np.maximum(top - self.tolerance, self.floor)
        # The bits are distinct powers of two, so their OR is their sum: one float64
        # matrix-vector product (exact below 2^53) instead of a masked OR-reduction.
        return (near @ self.bits.astype(np.float64)).astype(np.uint32)

    def unpack(self, masks: np.ndarray) -> np.ndarray:
        """``[N]`` uint32 bits -> ``[N, K]`` bool."""
        return (masks[:, None] & self.bits) != 0


def _occupied_range(inside: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """First and last index per axis (``[3]`` each, inclusive) of the ``True`` entries of a
    3D bool array, or ``None`` when there are none (two passes over the array, not three)."""
    plane = inside.any(axis=2)
    per_axis = (plane.any(axis=1), plane.any(axis=0), inside.any(axis=(0, 1)))
    if not per_axis[0].any():
        return None
    first = np.array([int(np.argmax(h)) for h in per_axis])
    last = np.array([len(h) - 1 - int(np.argmax(h[::-1])) for h in per_axis])
    return first, last


def _box(lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice]:
    """Index of the lattice block from ``lo`` to ``hi`` (inclusive) per axis."""
    return tuple(slice(int(a), int(b) + 1) for a, b in zip(lo, hi, strict=True))


def _pair(a: np.ndarray, axis: int, op: np.ufunc) -> np.ndarray:
    """``op`` of neighbouring entries along ``axis`` (one shorter there); applied along the
    three axes it combines the 8 corners of every cell with 3 operations instead of 14."""
    lo, hi = neighbours(axis)
    return op(a[lo], a[hi])


def _corner_counts(inside: np.ndarray) -> np.ndarray:
    """``[A-1, B-1, C-1]`` uint8: how many of its 8 corners are inside, for every cell of an
    ``[A, B, C]`` bool lattice (uint8 sums of neighbours, axis by axis: three additions)."""
    count = inside.view(np.uint8)
    for axis in range(3):
        count = _pair(count, axis, np.add)
    return count


def _crossing_cells(
    inside: np.ndarray, count: np.ndarray | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """``[A-1, B-1, C-1]`` bool: the cells of an ``[A, B, C]`` lattice whose 8 corners
    disagree (some but not all inside), i.e. the cells the surface passes through;
    written into ``out`` if given. ``count``: the :func:`_corner_counts` of ``inside``, if
    known (it is used up: changed in place)."""
    # 1 to 7 of 8 is a crossing. Subtracting 1 wraps 0 to 255, so one comparison tests
    # both ends.
    count = _corner_counts(inside) if count is None else count
    count -= 1
    return np.less(count, 7, out=out)


_CELL_CORNERS = np.array([(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)])


def _face_steps(shape: tuple[int, ...]) -> np.ndarray:
    """``[6]`` flat-index offsets of a point's 6 face neighbours in a C-ordered 3D grid."""
    b, c = shape[1:]
    return np.array([b * c, -b * c, c, -c, 1, -1])


def _enclosed_points(inside: np.ndarray, count: np.ndarray, specks: bool = False) -> np.ndarray:
    """Flat indices of the outside lattice points that close a surface of their own inside
    the shape: a point whose 6 face neighbours are all inside, or two face neighbours whose
    other 10 face neighbours are (a bubble of one or two lattice points; the topology study,
    ``benchmarks/studies/topology.py``, found them in 3 of 60 hands). With ``specks``, the
    other way round: the inside points of a speck of one or two points beside the shape.

    Args:
        inside: ``[A, B, C]`` bool, its faces outside (as :func:`mesh_from_grid` makes
            them).
        count: its :func:`_corner_counts`.

    Such a point is found as the one outside corner of one of its cells with 7 inside
    (unless every cell around it has another outside corner); only those cells are looked
    at, not the whole lattice. A speck point is the one inside corner of a cell with 1.
    """
    cells = np.flatnonzero(count == (1 if specks else 7))
    if len(cells) == 0:
        return cells
    i, j, k = np.unravel_index(cells, count.shape)
    b, c = inside.shape[1:]
    corners = ((i * b + j) * c + k)[:, None] + (_CELL_CORNERS @ np.array([b * c, c, 1]))
    flat = np.ravel(inside)
    odd = flat[corners].argmax(1) if specks else flat[corners].argmin(1)
    point = corners[np.arange(len(cells)), odd]
    # The point is not on the grid's faces (they are outside; a cell with 7 inside
    # corners has none there), so its 6 face neighbours are in the grid. Candidates repeat
    # (a point is the odd corner of up to 8 cells); the few found are made unique at the
    # end. ``same``: the face neighbours on the point's side of the level.
    steps = _face_steps(inside.shape)
    same = flat[point[:, None] + steps] == specks  # [n, 6]
    alone = same.sum(1)
    lone = point[alone == 0]
    # two points: each one's only face neighbour on its side is the other
    one = alone == 1
    first = point[one]
    second = first + steps[same[one].argmax(1)]
    pair = (flat[second[:, None] + steps] == specks).sum(1) == 1
    return np.unique(np.concatenate([lone, first[pair], second[pair]]))


def _fine_corners(cells: np.ndarray) -> np.ndarray:
    """``[a, b, c]`` bool coarse cells -> ``[2a+1, 2b+1, 2c+1]`` bool fine lattice points:
    the 27 fine corners of every ``True`` cell's 2 x 2 x 2 fine cells."""
    out = cells
    for axis in range(3):
        shape = list(out.shape)
        shape[axis] = 2 * shape[axis] + 1
        fine = np.empty(shape, dtype=bool)

        def along(s: slice, axis: int = axis) -> tuple[slice, ...]:
            idx = [slice(None)] * 3
            idx[axis] = s
            return tuple(idx)

        # Every fine point written once (no zeroed array ORed into): fine 2c + 1 lies
        # inside cell c, fine 2c (0 < c < n) on the face cells c - 1 and c share, and the
        # two end points on the faces of the first and last cells.
        fine[along(slice(1, None, 2))] = out
        fine[along(slice(0, 1))] = out[along(slice(0, 1))]
        fine[along(slice(-1, None))] = out[along(slice(-1, None))]
        lo, hi = neighbours(axis)
        np.logical_or(out[lo], out[hi], out=fine[along(slice(2, -1, 2))])
        out = fine
    return out


def _dilate_bits(bits: np.ndarray) -> np.ndarray:
    """OR of every lattice point's bits over its 3 x 3 x 3 neighbourhood (separable)."""
    out = bits.copy()
    for axis in range(3):
        src = out.copy()
        lo, hi = neighbours(axis)
        out[lo] |= src[hi]
        out[hi] |= src[lo]
    return out


def _upsample_nearest(values: np.ndarray) -> np.ndarray:
    """``[a, b, c]`` -> ``[2a - 1, 2b - 1, 2c - 1]``: every fine lattice point copies its
    lower coarse corner."""
    a, b, c = values.shape
    fine = np.empty((2 * a - 1, 2 * b - 1, 2 * c - 1), dtype=values.dtype)
    for i in (0, 1):
        for j in (0, 1):
            for k in (0, 1):
                fine[i::2, j::2, k::2] = values[: a - i, : b - j, : c - k]
    return fine


def _earlier_labels(
    evaluated: list[tuple[np.ndarray | None, np.ndarray, np.ndarray | None]],
    start: np.ndarray,
    shape: tuple[int, ...],
) -> np.ndarray:
    """``shape`` uint8 grid from lattice index ``start`` holding the labels of the entries
    of ``evaluated`` given by final-lattice indices (``[N, 3]`` each, flat ``None``); entries
    with flat indices and points outside the grid are skipped, the rest stay 0."""
    grid = np.zeros(shape, dtype=np.uint8)
    top = np.asarray(shape)
    for where, lab, flat in evaluated:
        if flat is not None:
            continue
        local = where - start
        within = np.all((local >= 0) & (local < top), axis=1)
        grid[tuple(local[within].T)] = lab[within]
    return grid


def lattice_grid(
    fn: OccupancyFn,
    bounds_min: np.ndarray,
    bounds_max: np.ndarray,
    resolution: int = 256,
    coarse_resolution: int = 32,
    threshold: float = 0.5,
    hierarchical: bool = True,
    batch: int = 262_144,
    dilated_levels: int = 1,
    labels: bool = False,
    workers: int = 1,
    part_candidates: tuple[int, float, float] | None = None,
    crop: bool = False,
    candidate_bits: bool = False,
    contacts: PartContacts | None = None,
) -> LatticeGrid:
    """Occupancy on the ``(resolution + 1)^3`` lattice spanning ``[bounds_min, bounds_max]``.

    Args:
        fn: occupancy function (see :data:`OccupancyFn`); with ``labels`` it returns
            ``(values [N], labels [N])``.
        bounds_min, bounds_max: ``[3]`` corners of the box, in the units of ``fn``'s input.
        resolution: cells per axis of the final lattice; ``resolution / coarse_resolution``
            must be a power of two when ``hierarchical``.
        coarse_resolution: cells per axis of the first level.
        threshold: iso-level in probability.
        hierarchical: refine near the surface only (otherwise evaluate every lattice point).
        batch: points per call of ``fn``.
        dilated_levels: how many of the first refinement steps also refine the neighbours
            of straddling cells (all: MISE's behaviour; 1: the default).
        labels: also keep an integer label per evaluated lattice point (e.g. the part with
            the highest probability); never-evaluated points get 0.
        workers: threads calling ``fn`` on different batches at once (``fn`` must be
            thread-safe; torch-based functions are).
        part_candidates: ``(K, tolerance, floor)`` for a max-over-parts occupancy with
            ``K <= 32`` parts. ``fn(points, part_mask)`` then takes ``None`` or a ``[N, K]``
            bool mask of the parts to evaluate and returns ``(values, part_probs [N, K])``;
            labels are the argmax part. Every level after the first (hierarchical only)
            evaluates at each point only the parts that, at some previous-level lattice
            point of the 3 x 3 x 3 block around it, were within ``tolerance`` of that
            point's max and at least ``floor`` (a point never evaluated has the parts of
            the coarse corner it copies).
        candidate_bits: with ``part_candidates``, ``fn(points, bits)`` takes ``None`` or
            ``[N]`` uint32 bits of the parts to evaluate (bit k: part k) and returns
            ``(values [N], labels [N], bits [N])`` itself: the argmax part and the bits of
            its candidate parts, by the rule above (e.g.
            :class:`~halohand.inference.lattice_query.LatticeQuery`, which reduces them
            from the evaluated pairs without a ``[N, K]`` array).
        crop: return only the sub-lattice around the surface and the inside points (plus
            one cell of outside points, hierarchical only): lattice indices
            ``stats.start`` to ``stats.start + values.shape - 1``. Marching cubes on it
            gives the mesh of the full grid, without filling the full grid.
        contacts: which labels' inside regions merge and which are kept apart (e.g.
            :data:`~halohand.inference.touching.HAND_CONTACTS`); implies ``labels``. Every
            level also refines the cells with inside corners of two labels not adjacent,
            and the final lattice keeps labels not joined apart by outside points
            (:func:`~halohand.inference.touching.keep_apart`). Never-evaluated points take
            the label of the coarse corner they copy.

    Returns:
        a :class:`LatticeGrid`: ``[R+1, R+1, R+1]`` float32 values, the stats and, with
        ``labels``, the ``[R+1]^3`` uint8 labels (with ``crop``, the sub-lattice of both).
    """
    bmin = np.asarray(bounds_min, dtype=np.float64)
    bmax = np.asarray(bounds_max, dtype=np.float64)
    if bmin.shape != (3,) or bmax.shape != (3,) or not np.all(bmax > bmin):
        raise ValueError("bounds must be two 3-vectors with bounds_max > bounds_min")
    labels = labels or contacts is not None
    parts = None
    if part_candidates is not None:
        k, tolerance, floor = part_candidates
        if not 1 <= k <= 32 or tolerance < 0:
            raise ValueError("part_candidates needs 1 <= K <= 32 parts and a tolerance >= 0")
        parts = _PartMode(int(k), float(tolerance), float(floor))
    if not hierarchical:
        n = resolution + 1
        idx = np.stack(np.meshgrid(*(np.arange(n),) * 3, indexing="ij"), -1).reshape(-1, 3)
        vals, lab, _ = _evaluate(
            fn, _points_of(idx, bmin, (bmax - bmin) / resolution, n), batch, labels, workers,
            parts, None, candidate_bits,
        )  # fmt: skip
        stats = ExtractionStats([n**3])
        lab_grid = lab.reshape(n, n, n) if labels else None
        values = vals.reshape(n, n, n)
        if contacts is not None:
            keep_apart(values, lab_grid, contacts.joined, threshold)
        return LatticeGrid(values, stats, lab_grid, bmin, bmax, resolution)

    steps = np.log2(resolution / coarse_resolution)
    if steps < 0 or not float(steps).is_integer():
        raise ValueError(
            f"resolution / coarse_resolution must be a power of two, got {resolution} / "
            f"{coarse_resolution}"
        )
    steps = int(steps)
    # Labels of every level's evaluated points, at their final-lattice indices; filled into
    # the returned (possibly cropped) grid at the end, so no full [R+1]^3 array is made.
    evaluated_labels: list[tuple[np.ndarray | None, np.ndarray, np.ndarray | None]] = []
    r = coarse_resolution
    n = r + 1
    idx = np.stack(np.meshgrid(*(np.arange(n),) * 3, indexing="ij"), -1).reshape(-1, 3)
    vals, lab, cand = _evaluate(
        fn,
        _points_of(idx, bmin, (bmax - bmin) / r, n),
        batch,
        labels,
        workers,
        parts,
        None,
        candidate_bits,
    )
    values = vals.reshape(n, n, n)
    # Candidate bits of the current level's lattice points (the next level's masks).
    bits = cand.reshape(n, n, n) if cand is not None else None
    # With ``contacts``, every level's labels on its whole lattice (copied like the values)
    # instead of the lists.
    label_grid = lab.reshape(n, n, n) if contacts is not None else None
    listed = labels and label_grid is None
    if listed:
        evaluated_labels.append((idx * (resolution // r), lab, None))
    queries = [n**3]
    start = np.zeros(3, dtype=np.int64)
    for level in range(steps):
        last = level == steps - 1
        inside = values >= threshold
        active = _crossing_cells(inside)
        if label_grid is not None:
            # contacts lie between inside points: only their box is looked at
            hits = _occupied_range(inside)
            if hits is not None and np.all(hits[1] > hits[0]):
                box = _box(*hits)
                near = contact_cells(inside[box], label_grid[box], contacts.adjacent)
                active[_box(hits[0], hits[1] - 1)] |= near
        if level < dilated_levels:
            # Dilation guards the coarsest levels against features thinner than a cell,
            # which the next level would otherwise never look at. Later steps refine cells
            # of a few mm (for a hand at 256: 3.3 mm from the 64 level on), where a feature
            # that pokes into an undilated neighbour is still seen on the shared face and
            # found one level later; dilating there would triple the finest queries.
            active = binary_dilation(active, iterations=1)
        r2 = 2 * r
        span = _occupied_range(active)  # the box of the active cells (inclusive)
        # The last level may cover only the box around the active cells and the inside
        # points (+ one coarse cell): beyond it every lattice point is outside and copied,
        # so marching cubes there finds nothing. ``lo`` is the box's lowest coarse index.
        lo = np.zeros(3, dtype=np.int64)
        hi = np.full(3, r, dtype=np.int64)
        if crop and last and span is not None:
            hits = _occupied_range(inside)
            for axis in range(3):
                first, end = span[0][axis], span[1][axis] + 1
                if hits is not None:
                    first, end = min(first, hits[0][axis]), max(end, hits[1][axis])
                lo[axis], hi[axis] = max(first - 1, 0), min(end + 1, r)
        shape2 = tuple(int(x) for x in 2 * (hi - lo) + 1)
        # Each active coarse cell becomes 2 x 2 x 2 fine cells whose 27 corners are needed
        # (separable: per axis, a fine point belongs to the one or two coarse cells around
        # it); coarse lattice points are known already.
        mark = _fine_corners(active[_box(lo, hi - 1)])
        mark[::2, ::2, ::2] = False
        todo = np.flatnonzero(mark)
        todo_idx: np.ndarray | _Unravelled = _Unravelled(todo, shape2, 2 * lo)
        if listed and not last:
            # these levels' labels are kept at their lattice indices (see below)
            todo_idx = todo_idx.array()
        masks = None
        if parts is not None and span is not None:
            # A fine point's coarse cell (or the cells sharing its face / edge) lies in
            # the 3 x 3 x 3 block around its lower coarse corner; the todo points' corners
            # lie in the box of the active cells, whose neighbours one cell out are needed.
            c_lo = np.maximum(span[0] - 1, 0)
            c_hi = np.minimum(span[1] + 2, r)
            near = _dilate_bits(bits[_box(c_lo, c_hi)])
            masks = _coarse_bits_of(todo_idx, near, c_lo, r2 + 1)
        # Points outside every active cell lie in cells whose corners agree: copying the
        # nearest lower coarse corner keeps their side of the threshold. Like the values,
        # points not evaluated take the candidate bits of their coarse corner. Both copies
        # run beside the network's batches.
        # On the last level, the labels of the earlier levels' points are filled into
        # the returned grid there too (they are known by then; no full grid is made).
        upsampled: dict[str, np.ndarray] = {}

        def upsample(
            box: tuple[slice, ...] = _box(lo, hi),
            values: np.ndarray = values,
            bits: np.ndarray | None = bits,
            label_grid: np.ndarray | None = label_grid,
            last: bool = last,
            out: dict = upsampled,
            start: np.ndarray = 2 * lo,
            shape: tuple[int, ...] = shape2,
        ) -> None:
            out["values"] = _upsample_nearest(values[box])
            if bits is not None and not last:
                out["bits"] = _upsample_nearest(bits)
            if label_grid is not None:
                out["label_grid"] = _upsample_nearest(label_grid[box])
            elif labels and last:
                out["labels"] = _earlier_labels(evaluated_labels, start, shape)

        vals, lab, cand = _evaluate(
            fn, _points_of(todo_idx, bmin, (bmax - bmin) / r2, r2 + 1), batch, labels, workers,
            parts, masks, candidate_bits, upsample,
        )  # fmt: skip
        fine = upsampled["values"]
        fine.reshape(-1)[todo] = vals
        if listed:
            # the last level's points are flat indices of the returned grid already
            if last:
                evaluated_labels.append((None, lab, todo))
            else:
                evaluated_labels.append((todo_idx * (resolution // r2), lab, None))
        if parts is not None and not last:
            bits = upsampled["bits"]
            bits.reshape(-1)[todo] = cand
        if label_grid is not None:
            label_grid = upsampled["label_grid"]
            label_grid.reshape(-1)[todo] = lab
        queries.append(len(todo))
        values, r = fine, r2
        start = 2 * lo
    stats = ExtractionStats(queries, tuple(int(x) for x in start))
    if label_grid is not None:
        keep_apart(values, label_grid, contacts.joined, threshold)
        return LatticeGrid(values, stats, label_grid, bmin, bmax, resolution)
    if labels:
        # Never-evaluated points keep label 0; later levels overwrite nothing (each point
        # is evaluated once), so the order of filling does not matter.
        if steps:
            label_grid = upsampled["labels"]
            _, lab, flat = evaluated_labels[-1]
            label_grid.reshape(-1)[flat] = lab
        else:
            label_grid = _earlier_labels(evaluated_labels, start, values.shape)
    return LatticeGrid(values, stats, label_grid, bmin, bmax, resolution)


def evaluate_grid(
    fn: OccupancyFn, *args: Any, **kwargs: Any
) -> tuple[np.ndarray, ExtractionStats] | tuple[np.ndarray, ExtractionStats, np.ndarray]:
    """:func:`lattice_grid` as a tuple: ``(values, stats)``, or ``(values, stats, labels)``
    with ``labels=True`` (the form earlier releases returned; new code uses the result
    object)."""
    grid = lattice_grid(fn, *args, **kwargs)
    if grid.labels is None:
        return grid.values, grid.stats
    return grid.values, grid.stats, grid.labels


def mesh_from_grid(
    values: np.ndarray,
    bounds_min: np.ndarray,
    bounds_max: np.ndarray,
    threshold: float = 0.5,
    labels: np.ndarray | None = None,
) -> trimesh.Trimesh:
    """Marching cubes on a lattice over the box; returns a closed, outward mesh.

    ``values`` is ``[A, B, C]`` (``[R+1]^3`` from :func:`evaluate_grid`), its corner points
    at ``bounds_min`` and ``bounds_max``. An empty or full grid gives an empty mesh. With
    ``labels`` (same shape, ints, e.g. from
    :func:`evaluate_grid`), each vertex gets the label of the inside end of the lattice edge
    it lies on, in ``mesh.vertex_attributes["label"]``.
    """
    from skimage.measure import marching_cubes

    bmin = np.asarray(bounds_min, dtype=np.float64)
    bmax = np.asarray(bounds_max, dtype=np.float64)
    step = (bmax - bmin) / (np.asarray(values.shape) - 1)
    if _outside_border(values, threshold):
        # Already closed by a layer of outside points (a cropped extraction grid): marching
        # cubes runs on the grid itself, no sub-box and no padded copy.
        if not values.max() >= threshold:
            return _empty_mesh(labels)
        lo = np.ones(3, dtype=np.int64)
        padded = values
    else:
        inside = values >= threshold
        hits = _occupied_range(inside)
        if hits is None or inside.all():
            return _empty_mesh(labels)
        # Faces only occur in cells with corners on both sides of the level, all within
        # one lattice step of the inside points: marching cubes runs on that sub-box only
        # (a hand fills ~1/3 of its extraction box), padded with one layer of "outside".
        lo = np.maximum(hits[0] - 1, 0)
        hi = np.minimum(hits[1] + 1, np.asarray(values.shape) - 1)
        sub = values[_box(lo, hi)]
        padded = np.pad(sub, 1, mode="constant", constant_values=0.0)
    # Marching cubes visits only the cells the surface crosses (a band ~2 % of the box for
    # a hand): scikit-image's mask entry (i, j, k) stands for the cell whose upper corner
    # is lattice point (i, j, k). Same vertices and faces as the full volume, ~3x faster.
    inside = padded > threshold
    count = _corner_counts(inside)
    enclosed = _enclosed_points(inside, count)
    # points held outside on purpose (touching parts kept apart) stay outside
    enclosed = enclosed[np.ravel(padded)[enclosed] != CARVED]
    if len(enclosed):
        # One or two outside lattice points enclosed by inside face neighbours would close
        # a surface of their own, a bubble inside the shape: they take their neighbours'
        # largest value (inside), so the mesh is one body.
        padded = np.array(padded, copy=True) if padded is values else padded
        flat = np.ravel(padded)
        flat[enclosed] = flat[enclosed[:, None] + _face_steps(padded.shape)].max(1)
        np.ravel(inside)[enclosed] = True
        count = _corner_counts(inside)
    # The same rule the other way round: one or two inside lattice points whose face
    # neighbours are all outside would close a speck of their own beside the shape (the
    # topology study found them with Fourier features of the points). They take their
    # neighbours' smallest value, unless they are all there is.
    specks = _enclosed_points(inside, count, specks=True)
    if len(specks) and np.count_nonzero(inside) > len(specks):
        padded = np.array(padded, copy=True) if padded is values else padded
        flat = np.ravel(padded)
        flat[specks] = flat[specks[:, None] + _face_steps(padded.shape)].min(1)
        np.ravel(inside)[specks] = False
        count = _corner_counts(inside)
    band = np.zeros(padded.shape, dtype=bool)
    _crossing_cells(inside, count, out=band[1:, 1:, 1:])
    # Unit spacing: vertices come out in lattice coordinates (exact on two axes), which
    # also locates the lattice edge of each vertex for the labels.
    verts, faces, _, _ = marching_cubes(padded, level=threshold, mask=band)
    # A lattice value equal to the level puts a vertex of each of its edges on the lattice
    # point, and marching cubes can close them with a face of no area whose edges no other
    # face shares: the mesh is not closed (1 of 16 test hands at 256^3). Such a point,
    # outside by ``inside`` above, moves to the next value below the level and the cells
    # run again. Its vertices lie on the lattice point, so only the points under vertices
    # are tested (others get there by rounding and leave the mesh closed).
    on_point = np.flatnonzero(np.all(verts == np.rint(verts), axis=1))
    if len(on_point):
        at = tuple(np.rint(verts[on_point]).astype(np.int64).T)
        level = padded.dtype.type(threshold)
        exact = padded[at] == level
        if exact.any():
            padded = np.array(padded, copy=True) if padded is values else padded
            at = tuple(i[exact] for i in at)
            padded[at] = np.nextafter(level, padded.dtype.type(-np.inf))
            verts, faces, _, _ = marching_cubes(padded, level=threshold, mask=band)
    lattice = verts + (np.asarray(lo) - 1)
    verts = lattice * step + bmin
    # scikit-image orients faces toward increasing values (the inside): flip to outward.
    # Its vertices are already shared (one per crossed lattice edge), so the mesh is closed
    # by construction. trimesh's processing would merge vertices that lie within 1e-8 of
    # each other (a lattice value next to the threshold puts the vertices of several edges
    # on one corner), creating edges shared by 4 faces: ~30 % of 256^3 meshes were not
    # watertight that way.
    # The winding follows from the lattice alone: an axis running backwards (bounds_max
    # below bounds_min) mirrors the box and flips it, so an odd number of them flips it
    # back (no signed-volume pass over the faces: ~10 ms at 256^3; tests/test_meshing.py
    # checks the volume's sign with every axis reversed).
    if (np.count_nonzero(step < 0) % 2) == 0:
        faces = faces[:, ::-1]
    mesh = trimesh.Trimesh(verts, np.ascontiguousarray(faces), process=False)
    if labels is not None:
        mesh.vertex_attributes["label"] = _edge_labels(lattice, values, labels, threshold)
    return mesh


def _outside_border(values: np.ndarray, threshold: float) -> bool:
    """Whether every point on the six faces of a 3D grid is below ``threshold``."""
    if min(values.shape) < 3:
        return False
    faces = (values[0], values[-1], values[:, 0], values[:, -1], values[:, :, 0], values[:, :, -1])
    return all(face.max() < threshold for face in faces)


def _empty_mesh(labels: np.ndarray | None) -> trimesh.Trimesh:
    mesh = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    if labels is not None:
        mesh.vertex_attributes["label"] = np.zeros(0, dtype=labels.dtype)
    return mesh


def _edge_labels(
    lattice: np.ndarray, values: np.ndarray, labels: np.ndarray, threshold: float
) -> np.ndarray:
    """Label of the inside end of the lattice edge under each vertex (``[V, 3]`` lattice
    coordinates)."""
    top = np.asarray(values.shape) - 1
    near = np.rint(lattice)
    dev = lattice - near
    axis = np.abs(dev).argmax(1)[:, None]
    # The vertex lies on the edge from its nearest lattice point along ``axis`` (exact
    # integers on the other two), towards the side it deviates to: flat indices of the
    # edge's lower end ``a`` and upper end ``b``, computed once per vertex (exact in
    # float64 below 2^53) instead of clipping and gathering [V, 3] integer arrays.
    strides = np.array([values.shape[1] * values.shape[2], values.shape[2], 1])
    step = strides[axis[:, 0]]
    along = np.take_along_axis(dev, axis, 1)[:, 0]
    flat_a = (near @ strides.astype(np.float64)).astype(np.int64) - step * (along < 0)
    flat_b = flat_a + step
    # A vertex on a lattice point (a value equal to the level, up to rounding) has no edge
    # of its own: take that point if inside, else an inside neighbour.
    on_point = np.flatnonzero(along == 0)
    flat_b[on_point] = flat_a[on_point]  # its "b" may lie beyond the grid; replaced below
    inside_a = np.ravel(values)[flat_a] >= threshold
    end = np.where(inside_a, flat_a, flat_b)
    if len(on_point):
        p = near[on_point].astype(np.int64)
        best = p.copy()
        found = values[tuple(p.T)] >= threshold
        for d in np.concatenate([np.eye(3, dtype=np.int64), -np.eye(3, dtype=np.int64)]):
            q = np.clip(p + d, 0, top)
            take = ~found & (values[tuple(q.T)] >= threshold)
            best[take] = q[take]
            found |= take
        end[on_point] = best @ strides
    return np.ravel(labels)[end]


def extract_mesh(
    fn: OccupancyFn,
    bounds_min: np.ndarray,
    bounds_max: np.ndarray,
    resolution: int = 256,
    coarse_resolution: int = 32,
    threshold: float = 0.5,
    hierarchical: bool = True,
) -> trimesh.Trimesh:
    """Occupancy function -> watertight mesh (see :func:`lattice_grid`, :func:`mesh_from_grid`)."""
    grid = lattice_grid(
        fn, bounds_min, bounds_max, resolution, coarse_resolution, threshold, hierarchical
    )
    return grid.mesh(threshold)
