"""Mesh extraction's network path (inference.lattice_query) and its pieces: the pairwise
support test, the folded input frame, the band-restricted marching cubes.

Tolerances: the pairwise support test equals ``skip_mask`` away from the capsule boundary
(within 1e-6 m of it float32 rounding may decide either way); lattice values equal the
chunked query's on the same pairs within 1e-5 (float32 in another order: the input frame
composed into the first layer in float64); labels and candidate bits are the ones computed
from those values by the extraction's own rule.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from halo_fakes import hand_keypoints, query_points
from skimage.measure import marching_cubes

from halohand.fields import hand_conditioning, part_distances, skip_mask
from halohand.fields.skipping import DEFAULT_SKIP_RADII_M, PartSupports, effective_radii
from halohand.inference.extract import _crossing_cells, _PartMode, mesh_from_grid
from halohand.inference.halo import HALO, keypoint_box
from halohand.inference.lattice_query import LatticeQuery, _candidate_pairs
from halohand.inference.query import query_occupancy


def test_pairwise_support_test_matches_skip_mask() -> None:
    kp = hand_keypoints("fist")
    pts = query_points(kp, 20_000, seed=0)
    origin = kp.mean(0)
    q = torch.as_tensor(pts - origin, dtype=torch.float32)
    kp_local = torch.as_tensor(kp - origin)
    radii = torch.as_tensor(DEFAULT_SKIP_RADII_M)
    want = skip_mask(q[None], kp_local.float()[None], radii.float())[0]  # [N, 16]
    supports = PartSupports(kp_local, radii)
    rng = np.random.default_rng(1)
    row = torch.as_tensor(rng.integers(0, len(pts), 50_000))
    part = torch.as_tensor(rng.integers(0, 16, 50_000))
    got = supports.contains(q.T.contiguous()[:, row], part)
    expected = want[row, part]
    # differences only at the boundary, where float32 rounding may go either way
    dist = part_distances(q[None].double(), kp_local[None])[0][row, part]
    boundary = (dist - radii[part]).abs() < 1e-6
    assert torch.equal(got[~boundary], expected[~boundary])
    assert expected.any() and (~expected).any()
    with pytest.raises(ValueError, match="21, 3"):
        PartSupports(kp_local[:20], radii)


def test_candidate_pairs_are_the_set_bits_sorted_by_part_then_row() -> None:
    rng = np.random.default_rng(3)
    # mostly one bit per point, some several, some none, and the top bit
    bits = np.left_shift(np.uint32(1), rng.integers(0, 16, 5_000).astype(np.uint32))
    bits |= np.where(rng.random(5_000) < 0.3, rng.integers(0, 1 << 16, 5_000), 0).astype(np.uint32)
    bits[rng.random(5_000) < 0.1] = 0
    bits[:7] = np.uint32(1 << 31) | np.uint32(5)
    part, row = _candidate_pairs(bits)
    want_part, want_row = np.nonzero((bits[None] >> np.arange(32, dtype=np.uint32)[:, None]) & 1)
    assert np.array_equal(part, want_part) and np.array_equal(row, want_row)
    assert part.dtype == row.dtype == np.int64
    empty = _candidate_pairs(np.zeros(4, dtype=np.uint32))
    assert empty[0].shape == empty[1].shape == (0,)


@pytest.mark.parametrize(("model", "atol"), [("shipped_halo", 5e-5), ("mlp_halo", 1e-5)])
def test_lattice_query_values_labels_and_bits(model: str, atol: float, request) -> None:
    # float32 in another order: the grids' coordinates are folded into the part transforms
    net = request.getfixturevalue(model).network
    tolerance, floor = 0.3, 0.01
    for i, (gesture, side) in enumerate((("spread", "right"), ("fist", "left"))):
        kp = hand_keypoints(gesture) + np.array([0.3, -0.2, 0.5])  # away from the origin
        cond = hand_conditioning(torch.as_tensor(kp)[None], side)
        lo, hi = keypoint_box(kp, 0.04)
        centre = 0.5 * (lo + hi)
        pts = query_points(kp, 8000, seed=i)
        radii = effective_radii(net)
        query = LatticeQuery(net, cond, centre, radii, tolerance, floor)
        with torch.no_grad():
            ref, ref_parts = query_occupancy(net, cond, torch.as_tensor(pts)[None])
        ref, ref_parts = ref[0].numpy(), ref_parts[0].numpy()
        mode = _PartMode(16, tolerance, floor)
        local = (pts - centre).astype(np.float32)
        values, labels, bits = query(local, None)
        assert values.dtype == np.float32 and labels.dtype == np.uint8 and bits.dtype == np.uint32
        assert np.abs(values - ref).max() < atol
        assert (values == 0).any() and (values > 0.5).any()
        clear = np.sort(ref_parts, 1)[:, -2] < ref_parts.max(1) - 1e-4  # no near-tie
        np.testing.assert_array_equal(labels[clear], ref_parts.argmax(1)[clear])
        # bits away from the tolerance's and the floor's edges
        top = ref_parts.max(1, keepdims=True)
        edge = np.minimum(
            np.abs(ref_parts - np.maximum(top - tolerance, floor)), np.abs(ref_parts - floor)
        ).min(1)
        sure = edge > 1e-4
        np.testing.assert_array_equal(bits[sure], mode.pack(ref_parts)[sure])
        # a restricted set of candidates: the others count as probability 0
        only = np.full(len(pts), 1 << 5, dtype=np.uint32)  # middle finger, proximal
        restricted, rl, _ = query(local, only)
        assert np.abs(restricted - ref_parts[:, 5]).max() < atol
        assert set(np.unique(rl)) <= {0, 5}


def test_band_marching_cubes_equals_the_full_volume(monkeypatch) -> None:
    # Noise and values exactly at the level: the band must follow scikit-image's own
    # inside/outside rule (a value equal to the level counts as outside). The noise also
    # encloses lattice points, which mesh_from_grid resolves (tests/test_bodies.py): off.
    import halohand.inference.extract as extract

    monkeypatch.setattr(extract, "_enclosed_points", lambda *args, **kwargs: np.zeros(0, int))
    x = np.linspace(-1.0, 1.0, 33)
    r = np.linalg.norm(np.stack(np.meshgrid(x, x, x, indexing="ij")), axis=0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        values = np.clip(0.5 + 3.0 * (0.6 - r) + rng.normal(0, 0.05, r.shape), 0, 1)
        values = values.astype(np.float32)
        values[rng.random(r.shape) < 0.1] = 0.5
        padded = np.pad(values, 1)
        band = np.zeros(padded.shape, dtype=bool)
        band[1:, 1:, 1:] = _crossing_cells(padded > 0.5)
        v_band, f_band, _, _ = marching_cubes(padded, 0.5, mask=band)
        v_full, f_full, _, _ = marching_cubes(padded, 0.5)
        np.testing.assert_array_equal(f_band, f_full)
        np.testing.assert_array_equal(v_band, v_full)
        # mesh_from_grid moves values at the level just below it (zero-area faces left
        # the mesh open; tests/test_meshing.py): the same as the full volume of those
        mesh = mesh_from_grid(values, np.full(3, -1.0), np.full(3, 1.0))
        below = np.where(padded == 0.5, np.nextafter(np.float32(0.5), np.float32(0)), padded)
        v_below, f_below, _, _ = marching_cubes(below, 0.5)
        assert len(mesh.faces) == len(f_below) < len(f_full)
        assert mesh.is_watertight


def test_reconstruct_uses_the_lattice_query_and_matches_the_generic_path(
    shipped_halo: HALO, monkeypatch
) -> None:
    import halohand.inference.halo as halo_module

    kp = hand_keypoints("relaxed")
    calls = []
    original = LatticeQuery.__call__

    def spy(self, points, candidates):
        calls.append(len(points))
        return original(self, points, candidates)

    monkeypatch.setattr(LatticeQuery, "__call__", spy)
    fast = shipped_halo.reconstruct(kp, units="m", resolution=64)
    assert calls, "the lattice query was not used"
    # the generic path: occupancy function returning dense part probabilities
    monkeypatch.setattr(halo_module, "can_query_sparse", lambda *a, **k: False)
    generic = shipped_halo.reconstruct(kp, units="m", resolution=64)
    assert fast.is_watertight and generic.is_watertight
    assert len(fast.faces) == len(generic.faces)
    np.testing.assert_allclose(np.sort(fast.vertices, 0), np.sort(generic.vertices, 0), atol=1e-5)


def test_several_hands_mesh_side_by_side_in_order(shipped_halo: HALO) -> None:
    kp = np.stack([hand_keypoints(g) for g in ("spread", "fist", "relaxed")])
    sides = ["right", "left", "right"]
    batch = shipped_halo.reconstruct(kp, side=sides, units="m", resolution=64)
    for one_kp, side, got in zip(kp, sides, batch, strict=True):
        want = shipped_halo.reconstruct(one_kp, side=side, units="m", resolution=64)
        assert got.metadata["side"] == side
        np.testing.assert_array_equal(got.faces, want.faces)
        np.testing.assert_array_equal(got.vertices, want.vertices)
        np.testing.assert_array_equal(got.vertex_attributes["part"], want.vertex_attributes["part"])


def test_mesh_winding_is_outward_for_every_axis_direction() -> None:
    x = np.linspace(-1.0, 1.0, 25)
    grid = np.stack(np.meshgrid(x, x, x, indexing="ij"))
    # an off-centre ellipsoid, so a mirrored box moves it
    r = np.sqrt(((grid[0] - 0.2) / 0.7) ** 2 + (grid[1] / 0.5) ** 2 + (grid[2] / 0.6) ** 2)
    values = np.clip(0.5 + 2.0 * (1.0 - r), 0, 1).astype(np.float32)
    for flips in range(8):
        lo, hi = np.full(3, -1.0), np.full(3, 1.0)
        for axis in range(3):
            if flips >> axis & 1:
                lo[axis], hi[axis] = hi[axis], lo[axis]
        mesh = mesh_from_grid(values, lo, hi)
        assert mesh.is_watertight and mesh.is_winding_consistent
        assert mesh.volume > 0, f"inward faces with axes {flips:03b} reversed"
        centre_x = mesh.vertices[:, 0].mean()
        assert np.sign(centre_x) == (-1 if flips & 1 else 1)


def test_vertex_labels_come_from_an_inside_lattice_point_within_one_cell() -> None:
    # Labels by octant; values exactly at the level put vertices on lattice points too.
    x = np.linspace(-1.0, 1.0, 33)
    grid = np.stack(np.meshgrid(x, x, x, indexing="ij"))
    r = np.linalg.norm(grid, axis=0)
    values = np.clip(0.5 + 2.0 * (0.6 - r), 0, 1).astype(np.float32)
    values[np.abs(r - 0.6) < 0.02] = 0.5
    labels = ((grid[0] > 0) * 1 + (grid[1] > 0) * 2 + (grid[2] > 0) * 4).astype(np.uint8)
    mesh = mesh_from_grid(values, np.full(3, -1.0), np.full(3, 1.0), labels=labels)
    got = np.asarray(mesh.vertex_attributes["label"])
    assert len(got) == len(mesh.vertices) and (values == 0.5).any()
    step = 2.0 / 32
    for v, lab in zip(mesh.vertices[::7], got[::7], strict=True):
        idx = np.rint((v + 1.0) / step).astype(int)
        block = tuple(slice(max(i - 1, 0), i + 2) for i in idx)
        near_inside = labels[block][values[block] >= 0.5]
        assert lab in near_inside
