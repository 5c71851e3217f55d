"""The serial steps of mesh extraction: crossing cells, fine corners of refined cells,
vertex labels from lattice edges, lattice indices unravelled per batch."""

from __future__ import annotations

import threading

import numpy as np

from halohand.inference.extract import (
    _coarse_bits_of,
    _crossing_cells,
    _edge_labels,
    _fine_corners,
    _points_of,
    _Unravelled,
    mesh_from_grid,
)


def _edge_labels_one_by_one(
    lattice: np.ndarray, values: np.ndarray, labels: np.ndarray, level: float
) -> np.ndarray:
    """The rule of ``_edge_labels``, vertex by vertex: the label of the inside end of the
    lattice edge under the vertex; a vertex on a lattice point takes that point if inside,
    else its first inside neighbour in the order +x, +y, +z, -x, -y, -z."""
    top = np.asarray(values.shape) - 1
    out = np.empty(len(lattice), dtype=labels.dtype)
    for v, x in enumerate(lattice):
        near = np.rint(x).astype(np.int64)
        off = [a for a in range(3) if x[a] != near[a]]
        if not off:
            best = near
            for d in [*np.eye(3, dtype=np.int64), *-np.eye(3, dtype=np.int64)]:
                if values[tuple(near)] >= level:
                    break
                q = np.clip(near + d, 0, top)
                if values[tuple(q)] >= level:
                    best = q
                    break
            out[v] = labels[tuple(best)]
            continue
        assert len(off) == 1, "a vertex lies on one lattice edge"
        a = near.copy()
        a[off[0]] = int(np.floor(x[off[0]]))
        b = a.copy()
        b[off[0]] += 1
        out[v] = labels[tuple(a)] if values[tuple(a)] >= level else labels[tuple(b)]
    return out


def test_edge_labels_follow_the_rule_vertex_by_vertex() -> None:
    rng = np.random.default_rng(3)
    x = np.linspace(-1.0, 1.0, 23)
    p = np.stack(np.meshgrid(x, x, x, indexing="ij"), -1)
    r = np.linalg.norm(p - [0.1, -0.05, 0.0], axis=-1)
    values = np.clip(0.5 + 2.0 * (0.55 - r) + 0.05 * rng.standard_normal(r.shape), 0, 1)
    # values exactly at the level put vertices on lattice points (the fallback branch)
    values[np.abs(values - 0.5) < 0.03] = 0.5
    values = values.astype(np.float32)
    labels = rng.integers(0, 16, size=values.shape).astype(np.uint8)
    mesh = mesh_from_grid(values, np.full(3, -1.0), np.full(3, 1.0), labels=labels)
    # back to lattice coordinates, with the rounding of the way there undone
    lattice = (np.asarray(mesh.vertices) + 1.0) / (2.0 / 22)
    near = np.rint(lattice)
    snap = np.abs(lattice - near) < 1e-9
    lattice[snap] = near[snap]
    on_point = np.all(lattice == np.rint(lattice), axis=1)
    assert on_point.sum() > 10 and (~on_point).sum() > 100
    got = _edge_labels(lattice, values, labels, 0.5)
    np.testing.assert_array_equal(got, _edge_labels_one_by_one(lattice, values, labels, 0.5))
    np.testing.assert_array_equal(mesh.vertex_attributes["label"], got)


def test_unravelled_rows_match_unravel_index_in_every_thread() -> None:
    shape = (7, 5, 9)
    flat = np.sort(np.random.default_rng(0).choice(np.prod(shape), 200, replace=False))
    offset = np.array([4, 0, 2])
    rows = _Unravelled(flat, shape, offset)
    want = np.stack(np.unravel_index(flat, shape), -1) + offset
    assert len(rows) == 200
    got: dict[int, tuple[np.ndarray, ...]] = {}

    def take(start: int) -> None:
        sl = slice(start, start + 30)
        first = rows[sl]
        assert rows[sl] is first  # the batch's second ask reuses the rows
        got[start] = first

    threads = [threading.Thread(target=take, args=(s,)) for s in range(0, 200, 30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got_all = np.concatenate([np.stack(got[s], -1) for s in sorted(got)])
    np.testing.assert_array_equal(got_all, want)
    np.testing.assert_array_equal(np.stack(rows[10:20], -1), want[10:20])
    np.testing.assert_array_equal(rows.array(), want)


def test_points_and_coarse_bits_from_tables_equal_the_direct_formulas() -> None:
    rng = np.random.default_rng(2)
    shape, offset = (40, 30, 50), np.array([6, 2, 10])
    flat = np.sort(rng.choice(np.prod(shape), 500, replace=False))
    idx = np.stack(np.unravel_index(flat, shape), -1) + offset
    bmin, step = np.array([-0.11, 0.02, -0.3]), np.array([0.0011, 0.0013, 0.0017])
    count = 2 * 64 + 1
    for source in (_Unravelled(flat, shape, offset), idx):
        points = _points_of(source, bmin, step, count)[100:400]
        np.testing.assert_array_equal(points, (bmin + idx[100:400] * step).astype(np.float32))
        c_lo = idx.min(0) // 2
        near = rng.integers(0, 1 << 16, tuple(idx.max(0) // 2 - c_lo + 1)).astype(np.uint32)
        bits = _coarse_bits_of(source, near, c_lo, count)[100:400]
        np.testing.assert_array_equal(bits, near[tuple((idx[100:400] // 2 - c_lo).T)])


def test_fine_corners_are_the_27_corners_of_every_cell() -> None:
    rng = np.random.default_rng(1)
    for shape in [(1, 1, 1), (1, 4, 2), (5, 3, 6)]:
        cells = rng.random(shape) < 0.3
        want = np.zeros(tuple(2 * n + 1 for n in shape), dtype=bool)
        for i, j, k in np.argwhere(cells):
            want[2 * i : 2 * i + 3, 2 * j : 2 * j + 3, 2 * k : 2 * k + 3] = True
        np.testing.assert_array_equal(_fine_corners(cells), want)


def test_crossing_cells_are_those_with_corners_on_both_sides() -> None:
    rng = np.random.default_rng(2)
    for shape in [(2, 2, 2), (1, 3, 4), (6, 5, 7)]:
        inside = rng.random(shape) < 0.5
        inside[0, 0, 0] = True  # and a block all inside, one all outside
        cells = _crossing_cells(inside)
        assert cells.shape == tuple(max(n - 1, 0) for n in shape)
        for i, j, k in np.ndindex(cells.shape):
            corners = inside[i : i + 2, j : j + 2, k : k + 2]
            assert cells[i, j, k] == (corners.any() and not corners.all())
    assert not _crossing_cells(np.ones((3, 3, 3), dtype=bool)).any()
    assert not _crossing_cells(np.zeros((3, 3, 3), dtype=bool)).any()
