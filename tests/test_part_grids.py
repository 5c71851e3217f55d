"""Learned per-part feature grids (config ``grid_resolution``; ``halohand.fields.grids``).

Trilinear interpolation is checked against closed forms (a linear field is reproduced
exactly, vertices read their own values, points outside read the nearest face) and by
``gradcheck``. In the network, the grid features enter every path that runs the part MLPs:
the generic forward (dense and masked), the folded inference path (chunked and sparse
occupancy queries, the lattice query of mesh extraction); each is checked against the
float64 generic forward on a network whose grid weights are not zero. Adding grids to a
trained network keeps its function (the warm start of ``init_weights``), and the grids
read points in palm lengths, so a hand scaled as a whole reads the same features. Grids
that follow the bones (``grid_frame = "bone"``) map every finger bone of the canonical
skeleton onto the same unit segment, and pass the same path checks. Eased (smoothstep)
interpolation makes the features' gradient continuous across cell faces, where the
trilinear gradient jumps, and passes them too.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from halo_fakes import hand_keypoints, query_points
from inference_paths import (
    check_every_inference_path,
    check_same_function,
    check_sparse_gradients,
    fake_hands,
)

from halohand.fields import OccupancyConfig, OccupancyNetwork, hand_conditioning
from halohand.fields.grids import (
    GridMaps,
    PartGrids,
    grid_maps,
    smoothstep_cells,
    trilinear,
    trilinear_gathered,
)
from halohand.fields.occupancy import part_inputs
from halohand.fields.skipping import effective_radii, skip_mask
from halohand.inference.halo import HALO
from halohand.inference.query import (
    query_occupancy,
)
from halohand.training.widen import adapt_network

F64 = torch.float64


@pytest.mark.parametrize("read", [trilinear, trilinear_gathered])
def test_trilinear_reproduces_a_linear_field_and_the_vertices(read) -> None:
    r = 3
    axes = torch.arange(r + 1, dtype=F64)
    vertices = torch.stack(torch.meshgrid(axes, axes, axes, indexing="ij"), -1).reshape(-1, 3)
    a = torch.tensor([[0.5, -1.0], [2.0, 0.25], [-3.0, 1.5]], dtype=F64)
    b = torch.tensor([0.1, -0.7], dtype=F64)
    table = torch.cat([vertices @ a + b, vertices @ a - b])  # two parts, two channels
    gen = torch.Generator().manual_seed(0)
    cells = torch.rand(200, 3, generator=gen, dtype=F64) * r
    part = torch.randint(0, 2, (200,), generator=gen)
    got = read(table, cells, part, r)
    want = cells @ a + torch.where(part[:, None] == 0, b, -b)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # vertices (the upper faces included) read their own values; one part for all rows
    torch.testing.assert_close(read(table, vertices, 1, r), table[len(vertices) :])
    # outside the box: the nearest face's value
    outside = torch.tensor([[-2.0, 1.5, 1.0], [1.0, 7.0, 0.5]], dtype=F64)
    clamped = outside.clamp(0, r)
    torch.testing.assert_close(read(table, outside, 0, r), clamped @ a + b)


def test_gathered_lookup_equals_grid_sample_in_float32() -> None:
    # the inference path's lookup against the training path's on the shipped grids' size
    # (16 parts of 24 cells, 8 channels), points inside and outside the boxes
    gen = torch.Generator().manual_seed(2)
    r, k = 24, 16
    table = torch.randn(k * (r + 1) ** 3, 8, generator=gen)
    cells = torch.rand(5000, 3, generator=gen) * (r + 4) - 2
    part = torch.randint(0, k, (5000,), generator=gen).sort().values
    exact = trilinear(table.double(), cells.double(), part, r)
    got = trilinear_gathered(table, cells, part, r)
    assert got.dtype == torch.float32 and got.is_contiguous()
    torch.testing.assert_close(got.double(), exact, rtol=0, atol=1e-6)
    # grid_sample's own float32 rounding of the stacked volume's coordinate is larger
    torch.testing.assert_close(trilinear(table, cells, part, r).double(), exact, rtol=0, atol=5e-4)


def test_trilinear_gradients_are_those_of_the_interpolation() -> None:
    gen = torch.Generator().manual_seed(1)
    table = torch.randn(2 * 27, 3, generator=gen, dtype=F64, requires_grad=True)
    # away from cell faces, where the interpolation is smooth
    cells = (torch.rand(12, 3, generator=gen, dtype=F64) * 0.8 + 0.1 + torch.randint(
        0, 2, (12, 3), generator=gen
    )).requires_grad_()  # fmt: skip
    part = torch.randint(0, 2, (12,), generator=gen)
    assert torch.autograd.gradcheck(lambda t, c: trilinear(t, c, part, 2), (table, cells))


def test_smoothstep_keeps_the_vertices_and_makes_the_gradient_continuous() -> None:
    r = 3
    # vertices, cell midpoints and the box's faces are fixed points; outside is clamped
    u = torch.tensor([[0.0, 1.0, 3.0], [0.5, 1.5, 2.5], [-1.0, 4.0, 2.25]], dtype=F64)
    eased = smoothstep_cells(u, r)
    torch.testing.assert_close(eased[:2], u[:2], rtol=0, atol=1e-15)
    f = 0.25
    torch.testing.assert_close(eased[2], torch.tensor([0.0, 3.0, 2 + f * f * (3 - 2 * f)],
                                                      dtype=F64))  # fmt: skip
    gen = torch.Generator().manual_seed(2)
    table = torch.randn(2 * (r + 1) ** 3, 3, generator=gen, dtype=F64)

    def slopes(read, x: float) -> torch.Tensor:
        """d features / d x at cells (x, 1.3, 0.6) of part 1."""
        cells = torch.tensor([[x, 1.3, 0.6]], dtype=F64, requires_grad=True)
        (grad,) = torch.autograd.grad(read(cells).sum(), cells)
        return grad[0, 0]

    def eased_read(c):
        return trilinear(table, smoothstep_cells(c, r), 1, r)

    def plain_read(c):
        return trilinear(table, c, 1, r)

    # across the face x = 2 the trilinear slope jumps; the eased one goes to 0 on both sides
    below, above = slopes(plain_read, 2 - 1e-7), slopes(plain_read, 2 + 1e-7)
    assert abs(float(below - above)) > 1e-3
    for x in (2 - 1e-7, 2 + 1e-7):
        assert abs(float(slopes(eased_read, x))) < 1e-5
    cells = (torch.rand(12, 3, generator=gen, dtype=F64) * 2.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(eased_read, (cells,))


def test_part_grids_map_boxes_to_cells_and_validate() -> None:
    bounds = torch.tensor([[[-1.0, 0.0, 2.0], [1.0, 4.0, 3.0]]])
    grids = PartGrids(bounds, resolution=4, channels=2, value_scale=5.0)
    with torch.no_grad():
        grids.table.zero_()
        grids.table[:, 0] = 1.0  # stored: the features are 5x this
    corner = grids(torch.tensor([[-1.0, 0.0, 2.0], [0.3, 1.0, 2.5]]), 0)
    torch.testing.assert_close(corner, torch.tensor([[5.0, 0.0], [5.0, 0.0]]))
    assert float(grids.cell_scale[0, 1]) == 1.0 and float(grids.cell_scale[0, 2]) == 4.0
    # a linear field: every neighbour difference along an axis is its slope per cell
    with torch.no_grad():
        grids.table.zero_()
        v = torch.arange(5.0)
        field = (2.0 * v[:, None, None] + 0.5 * v[None, :, None] + 0 * v).reshape(-1)
        grids.table[:, 1] = field / 5.0  # features: 5x the table
    assert abs(float(grids.smoothness().detach()) - (4.0 + 0.25 + 0.0) / 3.0 / 2.0) < 1e-6
    assert abs(float(grids.curvature().detach())) < 1e-9  # linear: no second differences
    with torch.no_grad():  # a vertex-to-vertex zigzag along x: second differences of +-4
        grids.table[:, 1] = (((-1.0) ** v)[:, None, None] + 0 * v[:, None] + 0 * v).reshape(-1)
    assert abs(float(grids.curvature().detach()) - 5.0**2 * 16.0 / 3.0 / 2.0) < 1e-4
    assert not PartGrids(bounds, 4, 2).table.any()  # zero by default
    with pytest.raises(ValueError, match="upper corner"):
        PartGrids(bounds.flip(1), 4, 2)
    with pytest.raises(ValueError, match=r"\[K, 2, 3\]"):
        PartGrids(bounds[0], 4, 2)
    with pytest.raises(ValueError, match="interpolation"):
        PartGrids(bounds, 4, 2, interpolation="cubic")


def _bounds(
    kp: np.ndarray, pts: np.ndarray, frame: str = "palm", margin: float = 0.05
) -> tuple[float, ...]:
    """Each part's box (in ``frame``'s grid coordinates) around these hands' supported
    query points."""
    hands = hand_conditioning(torch.as_tensor(kp), torch.zeros(len(kp), dtype=torch.bool))
    points = torch.as_tensor(pts)
    canon, _ = part_inputs(hands.to_halo_frame(points), hands.part_matrices)  # [B, N, K, 3]
    canon = grid_maps(hands.bone_lengths, frame, hands.canonical_keypoints).apply(canon)
    mask = skip_mask(points.float(), hands.keypoints.float(), effective_radii(_plain()).float())
    out: list[float] = []
    for k in range(16):
        x = canon[..., k, :][mask[..., k]]
        out += [*(x.amin(0) - margin).tolist(), *(x.amax(0) + margin).tolist()]
    return tuple(out)


_PLAIN: list[OccupancyNetwork] = []


def _plain() -> OccupancyNetwork:
    return _PLAIN[0]


def _gridded(
    plain: OccupancyNetwork, frame: str, interpolation: str = "trilinear"
) -> tuple[OccupancyNetwork, OccupancyNetwork]:
    """``plain``, and the same with 6^3-cell grids of 4 channels in ``frame`` whose
    first-layer weights are random."""
    _PLAIN[:] = [plain]
    kp, pts = fake_hands(("spread", "fist", "relaxed"))
    config = dataclasses.replace(
        plain.config, grid_resolution=6, grid_channels=4, grid_bounds=_bounds(kp, pts, frame),
        grid_frame=frame, grid_interpolation=interpolation,
    )  # fmt: skip
    net = adapt_network(plain, config, torch.Generator().manual_seed(0))
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        w = net.mlp.layers[0].weight
        w[:, 3:7] = 0.3 * torch.randn(w.shape[0], 4, w.shape[2], generator=gen)
    net.grids.reset_parameters(0.1, gen)
    return plain, net.eval()


@pytest.fixture(scope="module")
def gridded(mlp_halo: HALO) -> tuple[OccupancyNetwork, OccupancyNetwork]:
    """A shipped MLP network and the same with random palm-frame grids (``_gridded``)."""
    return _gridded(mlp_halo.network, "palm")


@pytest.fixture(scope="module")
def bone_gridded(mlp_halo: HALO) -> tuple[OccupancyNetwork, OccupancyNetwork]:
    """A shipped MLP network and the same with random bone-frame grids (``_gridded``)."""
    return _gridded(mlp_halo.network, "bone")


@pytest.fixture(scope="module")
def finger_gridded(mlp_halo: HALO) -> tuple[OccupancyNetwork, OccupancyNetwork]:
    """A shipped MLP network and the same with random finger-frame grids (``_gridded``)."""
    return _gridded(mlp_halo.network, "finger")


@pytest.fixture(scope="module")
def smooth_gridded(mlp_halo: HALO) -> tuple[OccupancyNetwork, OccupancyNetwork]:
    """A shipped MLP network and the same with random finger-frame grids read through
    eased fractions (``_gridded``)."""
    return _gridded(mlp_halo.network, "finger", "smoothstep")


def test_config_validates_and_round_trips_the_grids() -> None:
    bounds = tuple([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0] * 16)
    cfg = OccupancyConfig(grid_resolution=8, grid_channels=5, grid_bounds=bounds)
    assert cfg.point_features == 8 and cfg.grid_start == 3
    assert cfg.in_features == OccupancyConfig().in_features + 5
    assert OccupancyConfig.from_dict(cfg.to_dict()) == cfg
    with_fourier = OccupancyConfig(point_frequencies=(2.0,), grid_resolution=8, grid_bounds=bounds)
    assert (with_fourier.grid_start, with_fourier.point_features) == (9, 17)
    for bad in (bounds[:-1], tuple([1.0, -1.0, -1.0, -1.0, 1.0, 1.0] * 16), ()):
        with pytest.raises(ValueError, match="grid_bounds"):
            OccupancyConfig(grid_resolution=8, grid_bounds=bad)
    with pytest.raises(ValueError, match="grid_value_scale"):
        OccupancyConfig(grid_resolution=8, grid_bounds=bounds, grid_value_scale=0.0)
    with pytest.raises(ValueError, match="grid_resolution"):
        OccupancyConfig(grid_resolution=-1)
    bone = OccupancyConfig(grid_resolution=8, grid_bounds=bounds, grid_frame="bone")
    assert OccupancyConfig.from_dict(bone.to_dict()) == bone
    with pytest.raises(ValueError, match="grid_frame"):
        OccupancyConfig(grid_frame="wrist")
    with pytest.raises(ValueError, match="transforms"):
        OccupancyConfig(grid_frame="bone", transforms="mano")
    eased = dataclasses.replace(bone, grid_interpolation="smoothstep")
    assert OccupancyConfig.from_dict(eased.to_dict()) == eased
    assert OccupancyNetwork(eased).grids.interpolation == "smoothstep"
    with pytest.raises(ValueError, match="grid_interpolation"):
        OccupancyConfig(grid_interpolation="cubic")
    assert OccupancyNetwork(OccupancyConfig()).grids is None


def test_added_grids_keep_the_trained_function_and_learn(gridded) -> None:
    plain, trained = gridded
    net = adapt_network(plain, trained.config, torch.Generator().manual_seed(0))
    hands, points = check_same_function(plain, net)
    # the grids start at zero (cells no training point reaches add nothing), their
    # first-layer weights do not, so the grids get gradients from the first step
    assert not net.grids.table.any()
    occ, _ = query_occupancy(net, hands, points)
    occ.sum().backward()
    assert net.grids.table.grad.abs().max() > 0
    # the same seed draws the same weights
    again = adapt_network(plain, trained.config, torch.Generator().manual_seed(0))
    weights = net.mlp.layers[0].weight[:, 3:7]
    assert weights.abs().min() > 0 and torch.equal(again.mlp.layers[0].weight[:, 3:7], weights)


def test_every_inference_path_sees_the_grids(gridded) -> None:
    # float32 paths: the stacked grids' normalized coordinate rounds to ~2e-5 of a cell,
    # which random weights on random features turn into up to ~1e-4 of occupancy
    check_every_inference_path(*gridded, atol=3e-4)


@pytest.mark.parametrize("fixture", ["gridded", "bone_gridded", "finger_gridded", "smooth_gridded"])
def test_sparse_gradients_through_the_grids_equal_the_chunked_query(fixture, request) -> None:
    # the differentiable sparse query reads each part's grid through the hand's grid maps
    # itself: values and first derivatives (points, keypoints, grid table, a layer) as the
    # chunked query's, in float64
    _, net32 = request.getfixturevalue(fixture)
    want = check_sparse_gradients(net32)
    assert want["grid_table"].abs().max() > 0


def test_bone_frame_puts_every_bone_on_the_unit_segment() -> None:
    from halohand.skeleton import FINGER_CHAINS, PART_BONES

    kp, _ = fake_hands(("spread", "fist", "relaxed"))
    # one hand's fingers made 20 % longer and another's thumb 15 % shorter: the bones'
    # ends still map to (0, 0, 0) and (0, 0, 1) of their parts' grids
    kp = np.concatenate([kp, kp[:1]])
    for f, chain in enumerate(FINGER_CHAINS):
        root = kp[3, chain[0]] if f else kp[3, 0]
        kp[3, list(chain[1:] if f else chain)] = root + (0.85 if f == 0 else 1.2) * (
            kp[3, list(chain[1:] if f else chain)] - root
        )
    hands = hand_conditioning(torch.as_tensor(kp), torch.zeros(len(kp), dtype=torch.bool))
    linear, offset, _, _ = grid_maps(hands.bone_lengths, "bone", hands.canonical_keypoints)
    canon = hands.canonical_keypoints / 0.4  # HALO units
    for k in range(1, 16):
        a, b = PART_BONES[k]
        start = torch.einsum("bij,bj->bi", linear[:, k], canon[:, a]) + offset[:, k]
        end = torch.einsum("bij,bj->bi", linear[:, k], canon[:, b]) + offset[:, k]
        torch.testing.assert_close(start, torch.zeros_like(start), rtol=0, atol=1e-12)
        unit = torch.tensor([0.0, 0.0, 1.0], dtype=F64).expand_as(end)
        torch.testing.assert_close(end, unit, rtol=0, atol=1e-12)
        # across the bone: palm lengths, as the palm's own grid
        across = linear[:, k, :2].norm(dim=-1)
        torch.testing.assert_close(across, linear[:, 0, :2].diagonal(dim1=-2, dim2=-1))
    palm, zero, knots, _ = grid_maps(hands.bone_lengths, "palm")
    assert knots is None
    torch.testing.assert_close(linear[:, 0], palm[:, 0])
    assert not zero.any() and not offset[:, 0].any()
    with pytest.raises(Exception, match="canonical skeleton"):
        grid_maps(hands.bone_lengths, "bone")
    with pytest.raises(ValueError, match="grid frame"):
        grid_maps(hands.bone_lengths, "wrist")


def test_finger_frame_puts_the_joints_at_0_1_2_3() -> None:
    from halohand.skeleton import FINGER_PARTS, PART_BONES

    kp, _ = fake_hands(("spread", "fist", "relaxed"))
    kp = kp * np.linspace(0.8, 1.2, 21)[None, :, None]  # other proportions in every hand
    hands = hand_conditioning(torch.as_tensor(kp), torch.zeros(len(kp), dtype=torch.bool))
    maps = grid_maps(hands.bone_lengths, "finger", hands.canonical_keypoints)
    bone = grid_maps(hands.bone_lengths, "bone", hands.canonical_keypoints)
    joints = hands.canonical_keypoints / 0.4  # HALO units, [B, 21, 3]
    every_part = joints[:, :, None].expand(-1, -1, 16, -1)  # [B, 21, K, 3]
    got, across = maps.apply(every_part), bone.apply(every_part)
    for parts in FINGER_PARTS:
        # the finger's four joints: its first bone's start, then each bone's end
        chain = [int(PART_BONES[parts[0], 0])] + [int(PART_BONES[k, 1]) for k in parts]
        for k in parts:
            along = got[:, chain, k, 2]
            want = torch.arange(4, dtype=F64).expand_as(along)
            torch.testing.assert_close(along, want, rtol=0, atol=1e-10)
            torch.testing.assert_close(got[:, :, k, :2], across[:, :, k, :2])
    # continuous at the joints: points a nanometre off map within a nanometre's reach
    near = maps.apply(every_part + 1e-9)
    assert (near - got).abs().max() < 1e-6


def test_every_inference_path_sees_bone_frame_grids(bone_gridded) -> None:
    check_every_inference_path(*bone_gridded, atol=3e-4)


def test_every_inference_path_sees_finger_frame_grids(finger_gridded) -> None:
    check_every_inference_path(*finger_gridded, atol=3e-4)


def test_every_inference_path_sees_eased_grids(smooth_gridded, finger_gridded) -> None:
    check_every_inference_path(*smooth_gridded, atol=3e-4)
    # the same table read another way: a different function
    hands, points = fake_hands(("fist",))
    hands = hand_conditioning(torch.as_tensor(hands), torch.tensor([False]))
    points = torch.as_tensor(points, dtype=torch.float32)
    eased, _ = query_occupancy(smooth_gridded[1], hands, points)
    plain, _ = query_occupancy(finger_gridded[1], hands, points)
    assert torch.equal(smooth_gridded[1].grids.table, finger_gridded[1].grids.table)
    assert (eased - plain).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("fixture", "gesture", "scale", "part"),
    [("gridded", "spread", 1.2, 5), ("bone_gridded", "fist", 0.85, 9),
     ("finger_gridded", "fist", 0.85, 9)],
)  # fmt: skip
def test_grids_read_a_scaled_hand_alike(fixture, gesture, scale, part, request) -> None:
    # every frame measures in the hand's own lengths (palm, bones), so a hand scaled as a
    # whole reads the same features
    _, net = request.getfixturevalue(fixture)
    kp = hand_keypoints(gesture)[None]
    pts = query_points(kp[0], 500, seed=5)[None]
    feats = []
    for s in (1.0, scale):
        hands = hand_conditioning(torch.as_tensor(kp * s), torch.tensor([False]))
        canon, _ = part_inputs(hands.to_halo_frame(torch.as_tensor(pts * s)), hands.part_matrices)
        maps = net.grid_maps(hands.bone_lengths, hands.canonical_keypoints, F64)
        feats.append(net.grids(maps.apply(canon)[0, :, part].float(), part))
    assert feats[0].abs().max() > 1e-2
    torch.testing.assert_close(feats[0], feats[1], rtol=0, atol=1e-5)


def test_reconstruct_with_grids_gives_a_closed_hand(gridded, tmp_path) -> None:
    from halohand.fields.io import load_model, save_model

    _, net = gridded
    path = tmp_path / "grids.safetensors"
    save_model(path, net)
    loaded = load_model(path)
    assert torch.equal(loaded.grids.table, net.grids.table)
    mesh = HALO(loaded).reconstruct(hand_keypoints("relaxed"), resolution=64)
    assert mesh.is_watertight and len(mesh.faces) > 1000


@pytest.mark.parametrize("bent", [False, True])
def test_one_parts_grid_map_equals_the_batched_one(bent: bool) -> None:
    g = torch.Generator().manual_seed(3)
    b, k, n = 2, 4, 50
    maps = GridMaps(
        torch.randn(b, k, 3, 3, generator=g, dtype=torch.float64),
        torch.randn(b, k, 3, generator=g, dtype=torch.float64),
        *(
            tuple(torch.randn(b, k, 2, generator=g, dtype=torch.float64) for _ in range(2))
            if bent
            else ()
        ),
    )
    canon = torch.randn(b, n, k, 3, generator=g, dtype=torch.float64)
    batched = maps.apply(canon)
    for hand in range(b):
        for part in range(k):
            rows = maps.apply_part(canon[hand, :, part], hand, part)
            torch.testing.assert_close(rows, batched[hand, :, part], rtol=0, atol=1e-12)
