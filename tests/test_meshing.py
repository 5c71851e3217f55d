"""Mesh extraction and metrics against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from halohand.evaluation import chamfer_and_normals, iou, mesh_metrics
from halohand.inference import evaluate_grid, extract_mesh, lattice_grid, mesh_from_grid
from halohand.objects.inside import contains

BMIN = np.array([-0.08, -0.05, -0.05])
BMAX = np.array([0.08, 0.05, 0.05])


def two_spheres(p: np.ndarray) -> np.ndarray:
    d1 = np.linalg.norm(p - [0.02, 0.0, 0.0], axis=1) - 0.03
    d2 = np.linalg.norm(p - [-0.04, 0.01, 0.0], axis=1) - 0.008
    return 1.0 / (1.0 + np.exp(np.minimum(d1, d2) / 0.001))


def test_hierarchical_equals_dense_and_saves_queries() -> None:
    dense, s_dense = evaluate_grid(two_spheres, BMIN, BMAX, 64, 16, hierarchical=False)
    hier, s_hier = evaluate_grid(two_spheres, BMIN, BMAX, 64, 16, hierarchical=True)
    np.testing.assert_array_equal(dense >= 0.5, hier >= 0.5)
    m_dense = mesh_from_grid(dense, BMIN, BMAX)
    m_hier = mesh_from_grid(hier, BMIN, BMAX)
    np.testing.assert_allclose(m_hier.vertices, m_dense.vertices)
    assert s_hier.total_queries < 0.5 * s_dense.total_queries


def two_spheres_labelled(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy plus a label: 1 nearer the big sphere's centre, 2 nearer the small one."""
    d1 = np.linalg.norm(p - [0.02, 0.0, 0.0], axis=1)
    d2 = np.linalg.norm(p - [-0.04, 0.01, 0.0], axis=1)
    return two_spheres(p), np.where(d1 - 0.03 < d2 - 0.008, 1, 2).astype(np.uint8)


def test_labels_follow_the_evaluated_points_and_reach_every_vertex() -> None:
    values, _, labels = evaluate_grid(two_spheres_labelled, BMIN, BMAX, 64, 16, labels=True)
    plain, _ = evaluate_grid(two_spheres, BMIN, BMAX, 64, 16)
    np.testing.assert_array_equal(values, plain)
    assert set(np.unique(labels)) == {0, 1, 2}  # 0: never evaluated
    mesh = mesh_from_grid(values, BMIN, BMAX, labels=labels)
    vertex_labels = mesh.vertex_attributes["label"]
    assert len(vertex_labels) == len(mesh.vertices)
    # every vertex takes an evaluated inside point's label: the sphere it belongs to
    truth = two_spheres_labelled(np.asarray(mesh.vertices))[1]
    np.testing.assert_array_equal(vertex_labels, truth)
    dense, _, dense_labels = evaluate_grid(
        two_spheres_labelled, BMIN, BMAX, 64, hierarchical=False, labels=True
    )
    np.testing.assert_array_equal(
        mesh_from_grid(dense, BMIN, BMAX, labels=dense_labels).vertex_attributes["label"],
        vertex_labels,
    )


_PART_CENTRES = np.array([[0.02, 0.0, 0.0], [-0.04, 0.01, 0.0], [-0.01, -0.025, 0.01]])
_PART_RADII = np.array([0.03, 0.008, 0.012])


def three_parts(p: np.ndarray, part_mask: np.ndarray | None = None, calls: list | None = None):
    """Max-over-parts occupancy of three overlapping spheres, with the part-mode protocol."""
    d = np.linalg.norm(p[:, None] - _PART_CENTRES[None], axis=-1) - _PART_RADII
    probs = 1.0 / (1.0 + np.exp(d / 0.002))
    if part_mask is not None:
        probs = np.where(part_mask, probs, 0.0)
    if calls is not None:
        calls.append((p, part_mask))
    return probs.max(-1), probs


def test_part_candidates_match_every_part_with_fewer_evaluations() -> None:
    def argmax_labelled(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        occ, probs = three_parts(p)
        return occ, probs.argmax(-1).astype(np.uint8)

    exact, _, exact_labels = evaluate_grid(argmax_labelled, BMIN, BMAX, 64, 16, labels=True)
    calls: list = []
    values, _, labels = evaluate_grid(
        lambda p, m: three_parts(p, m, calls), BMIN, BMAX, 64, 16, labels=True,
        part_candidates=(3, 0.3, 0.01),
    )  # fmt: skip
    np.testing.assert_array_equal(values >= 0.5, exact >= 0.5)
    # A part below the floor (0.01) is never a candidate: only such values may differ.
    np.testing.assert_allclose(values, exact, atol=0.01)
    sure = exact >= 0.01
    np.testing.assert_allclose(values[sure], exact[sure], atol=1e-6)
    np.testing.assert_array_equal(labels[sure], exact_labels[sure])
    a, b = mesh_from_grid(values, BMIN, BMAX), mesh_from_grid(exact, BMIN, BMAX)
    np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-9)
    # The first level evaluates every part; the refinement levels get masks that always
    # hold the true argmax part where the occupancy is not negligible, while evaluating
    # fewer parts than all three.
    first = 17**3
    assert sum(len(p) for p, _ in calls[:1]) == first and calls[0][1] is None
    masked = [(p, m) for p, m in calls if m is not None]
    assert sum(len(p) for p, _ in masked) == sum(len(p) for p, _ in calls) - first
    points = np.concatenate([p for p, _ in masked])
    masks = np.concatenate([m for _, m in masked])
    occ, probs = three_parts(points)
    rows = np.flatnonzero(occ >= 0.05)
    assert masks[rows, probs[rows].argmax(-1)].all()
    assert masks.sum() < 0.6 * masks.size


def test_part_candidates_need_a_small_part_count() -> None:
    with pytest.raises(ValueError, match="part_candidates"):
        evaluate_grid(three_parts, BMIN, BMAX, 32, 16, part_candidates=(40, 0.3, 0.01))


def test_cropped_grid_is_the_block_of_the_full_grid_and_gives_its_mesh() -> None:
    full, _, full_labels = evaluate_grid(two_spheres_labelled, BMIN, BMAX, 64, 16, labels=True)
    sub, stats, sub_labels = evaluate_grid(
        two_spheres_labelled, BMIN, BMAX, 64, 16, labels=True, crop=True
    )
    start = np.asarray(stats.start)
    assert sub.size < 0.5 * full.size and (start > 0).any()
    box = tuple(slice(a, a + m) for a, m in zip(start, sub.shape, strict=True))
    np.testing.assert_array_equal(sub, full[box])
    np.testing.assert_array_equal(sub_labels, full_labels[box])
    # everything outside the block is outside the surface
    outside = np.ones(full.shape, dtype=bool)
    outside[box] = False
    assert (full[outside] < 0.5).all()
    lo, hi = stats.grid_bounds(BMIN, BMAX, 64, sub.shape)
    a = mesh_from_grid(sub, lo, hi, labels=sub_labels)
    b = mesh_from_grid(full, BMIN, BMAX, labels=full_labels)
    # Marching cubes writes lattice coordinates in float32: the two grids' different
    # index offsets round a vertex differently, by less than 1e-5 of a cell.
    cell = (BMAX - BMIN) / 64
    np.testing.assert_allclose(a.vertices, b.vertices, rtol=0, atol=float(1e-5 * cell.max()))
    np.testing.assert_array_equal(a.faces, b.faces)
    np.testing.assert_array_equal(a.vertex_attributes["label"], b.vertex_attributes["label"])


def test_grid_closed_by_outside_points_meshes_as_the_padded_sub_box(monkeypatch) -> None:
    import halohand.inference.extract as extract

    grid, _, labels = evaluate_grid(two_spheres_labelled, BMIN, BMAX, 64, 16, labels=True)
    assert extract._outside_border(grid, 0.5)
    assert not extract._outside_border(np.pad(grid, 1, constant_values=1.0), 0.5)
    fast = mesh_from_grid(grid, BMIN, BMAX, labels=labels)
    monkeypatch.setattr(extract, "_outside_border", lambda values, threshold: False)
    generic = mesh_from_grid(grid, BMIN, BMAX, labels=labels)
    assert len(fast.faces) > 1000 and fast.is_watertight
    np.testing.assert_array_equal(fast.faces, generic.faces)
    tol = float(1e-5 * ((BMAX - BMIN) / 64).max())
    np.testing.assert_allclose(fast.vertices, generic.vertices, rtol=0, atol=tol)
    label = "label"
    np.testing.assert_array_equal(fast.vertex_attributes[label], generic.vertex_attributes[label])
    # an empty grid closed by outside points gives the empty mesh, as before
    assert len(mesh_from_grid(np.zeros((5, 5, 5), np.float32), BMIN, BMAX).faces) == 0


def test_cropped_grid_of_a_shape_cut_by_the_box() -> None:
    def cut_ball(p: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(p - [BMAX[0] - 0.005, 0.0, 0.0], axis=1) - 0.03
        return 1.0 / (1.0 + np.exp(d / 0.001))

    full, _ = evaluate_grid(cut_ball, BMIN, BMAX, 64, 16)
    sub, stats = evaluate_grid(cut_ball, BMIN, BMAX, 64, 16, crop=True)
    assert stats.start[0] + sub.shape[0] == 65  # reaches the box face that cuts the ball
    lo, hi = stats.grid_bounds(BMIN, BMAX, 64, sub.shape)
    a, b = mesh_from_grid(sub, lo, hi), mesh_from_grid(full, BMIN, BMAX)
    assert a.is_watertight
    np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-12)


def test_parallel_batches_give_the_same_grid() -> None:
    one, s1 = evaluate_grid(two_spheres, BMIN, BMAX, 64, 16, batch=1000)
    two, s2 = evaluate_grid(two_spheres, BMIN, BMAX, 64, 16, batch=1000, workers=2)
    np.testing.assert_array_equal(one, two)
    assert s1.queries_per_level == s2.queries_per_level


def test_extracted_mesh_is_watertight_with_the_right_volume() -> None:
    mesh = extract_mesh(two_spheres, BMIN, BMAX, resolution=128, coarse_resolution=16)
    assert mesh.is_watertight and mesh.volume > 0
    expected = 4 / 3 * np.pi * (0.03**3 + 0.008**3)
    assert abs(mesh.volume - expected) / expected < 0.01
    assert mesh.body_count == 2


def test_mesh_stays_watertight_when_lattice_values_hit_the_level() -> None:
    # Values exactly at the level put the vertices of several lattice edges on one corner;
    # merging those coincident vertices (trimesh's processing) made edges shared by 4 faces.
    x = np.linspace(-1.0, 1.0, 41)
    r = np.linalg.norm(np.stack(np.meshgrid(x, x, x, indexing="ij")), axis=0)
    values = np.clip(0.5 + 3.0 * (0.6 - r), 0.0, 1.0)
    values[np.isclose(r, 0.6, atol=1e-9)] = 0.5
    assert (values == 0.5).sum() > 0
    mesh = mesh_from_grid(values.astype(np.float32), np.full(3, -1.0), np.full(3, 1.0))
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0


def test_a_value_at_the_level_leaves_no_face_without_neighbours() -> None:
    # The 3 x 3 x 3 lattice block around a point exactly at the level in a test hand's
    # 256^3 grid (offsets from the level 0.55): marching cubes closed the point's edge
    # vertices with a zero-area face whose edges no other face shared.
    offsets = np.array(
        [[[-0.52, -0.517, -0.518], [-0.424, -0.412, -0.416], [-0.147, -0.11, -0.118]],
         [[-0.375, -0.332, -0.313], [-0.075, 0.0, 0.034], [0.202, 0.269, 0.293]],
         [[-0.03, 0.064, 0.129], [0.224, 0.288, 0.334], [0.361, 0.389, 0.405]]]
    )  # fmt: skip
    level = np.float32(0.55)
    values = (offsets + level).astype(np.float32)
    values[1, 1, 1] = level
    mesh = mesh_from_grid(values, np.zeros(3), np.ones(3), float(level))
    assert mesh.is_watertight and mesh.euler_number == 2
    # no vertex sits on the lattice point: it counts as outside, as it always did
    lattice = np.asarray(mesh.vertices) * 2.0
    assert not np.all(lattice == np.rint(lattice), axis=1).any()
    assert values[1, 1, 1] == level  # the caller's grid is left as it was


def test_a_vertex_rounded_onto_an_inside_point_leaves_it_inside() -> None:
    # An inside value a float32 step above the level next to a far lower one: the edge's
    # vertex rounds onto the inside point without the point being at the level (two-hand
    # separation gives such values). It must stay inside and the mesh closed.
    x = np.linspace(-1.0, 1.0, 21)
    r = np.linalg.norm(np.stack(np.meshgrid(x, x, x, indexing="ij")), axis=0)
    values = np.clip(0.5 + 2.0 * (0.63 - r), 0.0, 1.0).astype(np.float32)
    i, j, k = 10, 10, 16  # inside, next to the outside point (10, 10, 17)
    assert values[i, j, k] > 0.5 > values[i, j, k + 1]
    values[i, j, k] = np.nextafter(np.float32(0.5), np.float32(1.0))
    values[i, j, k + 1] = -1.0e6
    mesh = mesh_from_grid(values, np.full(3, -1.0), np.full(3, 1.0))
    assert mesh.is_watertight and mesh.euler_number == 2
    lattice = (np.asarray(mesh.vertices) + 1.0) * 10.0
    assert np.all(np.abs(lattice - (i, j, k)) < 1e-4, axis=1).any()  # the rounded vertex


def test_empty_and_bad_input() -> None:
    empty = extract_mesh(lambda p: np.zeros(len(p)), BMIN, BMAX, 32, 8)
    assert len(empty.faces) == 0
    with pytest.raises(ValueError, match="NaN"):
        extract_mesh(lambda p: np.full(len(p), np.nan), BMIN, BMAX, 32, 8)
    with pytest.raises(ValueError, match="power of two"):
        evaluate_grid(two_spheres, BMIN, BMAX, 96, 64)
    with pytest.raises(ValueError, match="bounds"):
        evaluate_grid(two_spheres, BMAX, BMIN, 32, 8)


def test_contains_sphere() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.05)
    pts = np.random.default_rng(0).uniform(-0.06, 0.06, (20000, 3))
    r = np.linalg.norm(pts, axis=1)
    inside = contains(sphere.vertices, sphere.faces, pts)
    clear = np.abs(r - 0.05) > 1e-3  # away from the polygonal approximation error
    np.testing.assert_array_equal(inside[clear], r[clear] < 0.05)


def test_iou_closed_forms() -> None:
    a = np.array([1, 1, 0, 0], bool)
    b = np.array([1, 0, 1, 0], bool)
    assert iou(a, b) == pytest.approx(1 / 3)
    assert iou(a, a) == 1.0
    assert iou(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    assert iou(np.zeros(3, bool), np.ones(3, bool)) == 0.0


def test_chamfer_of_shifted_plane_samples() -> None:
    rng = np.random.default_rng(0)
    gt = np.c_[rng.random((4000, 2)), np.zeros(4000)]
    n = np.tile([0.0, 0.0, 1.0], (4000, 1))
    cl1, cl2, nc = chamfer_and_normals(gt + [0, 0, 0.002], n, gt, -n)
    assert cl1 == pytest.approx(0.002)
    assert cl2 == pytest.approx(0.002**2)
    assert nc == pytest.approx(1.0)  # orientation is ignored


def test_mesh_metrics_of_a_perfect_and_a_shifted_sphere() -> None:
    gt_mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.05)
    rng = np.random.default_rng(1)
    pts = rng.uniform(-0.06, 0.06, (20000, 3))
    occ = contains(gt_mesh.vertices, gt_mesh.faces, pts)
    gt_pts, fid = trimesh.sample.sample_surface(gt_mesh, 20000, seed=2)
    gt_n = gt_mesh.face_normals[fid]
    same = mesh_metrics(gt_mesh, pts, occ, gt_pts, gt_n, n_samples=20000)
    # Two independent 20k-sample sets of one sphere are ~0.6 mm apart (sampling floor).
    assert same.iou == 1.0 and same.chamfer_l1_mm < 1.0 and same.normal_consistency > 0.99
    moved = gt_mesh.copy()
    moved.apply_translation([0.01, 0, 0])
    worse = mesh_metrics(moved, pts, occ, gt_pts, gt_n, n_samples=20000)
    assert worse.iou < 0.9 and worse.chamfer_l1_mm > 2.0


def test_concurrent_extractions_keep_the_torch_thread_count() -> None:
    import threading

    import torch

    before = torch.get_num_threads()
    results: list[np.ndarray] = []

    def job() -> None:
        results.append(evaluate_grid(two_spheres, BMIN, BMAX, 64, 16, batch=500, workers=2)[0])

    threads = [threading.Thread(target=job) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert torch.get_num_threads() == before
    assert len(results) == 3 and all(np.array_equal(results[0], r) for r in results)


def test_lattice_grid_result_object_matches_the_tuple_form_and_meshes_itself() -> None:
    grid = lattice_grid(two_spheres_labelled, BMIN, BMAX, 64, 16, labels=True, crop=True)
    values, stats, labels = evaluate_grid(
        two_spheres_labelled, BMIN, BMAX, 64, 16, labels=True, crop=True
    )
    np.testing.assert_array_equal(grid.values, values)
    np.testing.assert_array_equal(grid.labels, labels)
    assert grid.stats == stats and grid.resolution == 64
    lo, hi = stats.grid_bounds(BMIN, BMAX, 64, values.shape)
    np.testing.assert_allclose(grid.corners[0], lo)
    np.testing.assert_allclose(grid.corners[1], hi)
    own = grid.mesh(0.5, labelled=True)
    ref = mesh_from_grid(values, lo, hi, 0.5, labels=labels)
    np.testing.assert_array_equal(own.faces, ref.faces)
    np.testing.assert_allclose(own.vertices, ref.vertices)
    np.testing.assert_array_equal(own.vertex_attributes["label"], ref.vertex_attributes["label"])
    plain = lattice_grid(two_spheres, BMIN, BMAX, 64, 16)
    assert plain.labels is None and len(evaluate_grid(two_spheres, BMIN, BMAX, 64, 16)) == 2
