"""The learned two-hand occupancy refinement: network, penetration loss, files, the
``refine_occupancy`` path of ``HALO.reconstruct_pair`` and the resumable training loop.

Reconstruction runs on the analytic capsule net of ``halo_fakes``; training on small
synthetic caches (the HALO-dependent cache builder needs pair data and runs in the
training recipe, not here).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from halo_fakes import CapsuleNet, hand_keypoints, run_cli

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.rotations import rodrigues
from halohand.inference.halo import HALO
from halohand.inference.pair_refiner import (
    RESIDUAL_BOUND,
    LearnedPair,
    PairOccupancyRefiner,
    PairRefinerConfig,
    farthest_points,
    level_logits,
    load_pair_refiner,
    pair_frame,
    penetration_loss,
    refined_occupancy,
    save_pair_refiner,
    surface_points,
)
from halohand.training.pair_refiner import PairRefinerTrainConfig, train_on_caches

SMALL = PairRefinerConfig(iso_points=64, anchors=8, neighbours=8, width=16, heads=2,
                          surface_resolution=24)  # fmt: skip
RES = 32


def _perturbed(config: PairRefinerConfig = SMALL, seed: int = 0) -> PairOccupancyRefiner:
    """A refiner whose last layer is not zero (as after training)."""
    torch.manual_seed(seed)
    net = PairOccupancyRefiner(config)
    with torch.no_grad():
        last = net.decoder[-1]
        last.weight.normal_(0.0, 0.5)
        last.bias.normal_(0.0, 0.5)
    return net.eval()


@pytest.fixture(scope="module")
def two_hands() -> np.ndarray:
    """A right and a left spread hand, palms 3.5 cm apart and overlapping (metres)."""
    right = hand_keypoints("spread")
    left = right * [-1.0, 1.0, 1.0] + [0.035, 0.0, 0.012]
    return np.stack([right, left])


@pytest.fixture
def model() -> HALO:
    return HALO(CapsuleNet(hand_keypoints("spread")))


def _inputs(b: int = 2, n: int = 100, seed: int = 0, iso: int = 80) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    kp = torch.from_numpy(np.stack([hand_keypoints("spread"), hand_keypoints("fist")]))
    kp = kp[None].repeat(b, 1, 1, 1) + 0.01 * torch.randn(b, 2, 21, 3, generator=g, dtype=kp.dtype)
    iso_pts = 0.05 * torch.randn(b, 2, iso, 3, generator=g, dtype=torch.float64)
    points = 0.05 * torch.randn(b, n, 3, generator=g, dtype=torch.float64)
    prob = torch.rand(b, n, 2, generator=g)
    return iso_pts, kp, points, prob


# ------------------------------------------------------------------ network


def test_shapes_and_zero_residual_at_init() -> None:
    iso, kp, points, prob = _inputs()
    net = PairOccupancyRefiner(SMALL)
    ctx = net.context(iso, kp)
    assert ctx.anchors.shape == (2, 2 * SMALL.anchors, 3)
    assert ctx.keys.shape == ctx.values.shape == (2, 2 * SMALL.anchors, SMALL.width)
    assert ctx.code.shape == (2, SMALL.width)
    logits = level_logits(prob, 0.65)
    r = net.residual(ctx, points, logits)
    assert r.shape == (2, 100, 2)
    assert torch.equal(r, torch.zeros_like(r))  # the last layer starts at zero
    # ... so the refined occupancy is the initial one, bit for bit
    assert torch.equal(refined_occupancy(prob, r, 0.65), prob)
    out = net(iso, kp, points, prob, 0.65)
    assert torch.equal(out, logits)


def test_residual_is_bounded_and_band_keeps_every_side() -> None:
    """The residual stays within +-RESIDUAL_BOUND however large the weights, so the band
    refinement (meshing) puts every point on the same side of both levels as the full one,
    refines the band's points exactly as the full one and leaves the rest as they were."""
    net = _perturbed()
    with torch.no_grad():
        net.decoder[-1].weight.mul_(40.0)  # residuals of many logits before the bound
    iso, kp, points, _ = _inputs(b=1, n=4000)
    g = torch.Generator().manual_seed(3)
    # initial logits spread over +-9 about the level: some in the band, most outside
    u = 18.0 * torch.rand(4000, 2, generator=g) - 9.0
    prob = torch.sigmoid(u + math.log(0.65 / 0.35))
    with torch.no_grad():
        ctx = net.context(iso, kp)
        r = net.residual(ctx, points, level_logits(prob, 0.65)[None])[0]
        learned = LearnedPair(net, ctx, 0.65)
        full = learned.refine(points[0], prob)
        both = learned.refine(points[0], prob, band=(0, 1))
        left = learned.refine(points[0], prob, band=(1,))
    assert r.abs().max() <= RESIDUAL_BOUND and r.abs().max() > 0.9 * RESIDUAL_BOUND
    near = level_logits(prob, 0.65).abs() <= RESIDUAL_BOUND
    for band, inside, sides in ((both, near.any(-1), [0, 1]), (left, near[:, 1], [1])):
        assert 0 < inside.sum() < len(inside)
        torch.testing.assert_close(band[inside], full[inside], atol=1e-6, rtol=0)
        assert torch.equal(band[~inside], prob[~inside])
        assert torch.equal(band[:, sides] > 0.65, full[:, sides] > 0.65)
    assert not torch.equal(left[:, 0] > 0.65, full[:, 0] > 0.65)  # the right hand's side moved
    # the bound is what makes this hold: the unbounded residual flips points outside it
    flips = (level_logits(prob, 0.65) + 3.0 * r).sign() != level_logits(prob, 0.65).sign()
    assert (flips & ~inside[:, None]).any()


def test_shipped_pair_lattice_queries_the_other_hand_exactly(shipped_halo) -> None:
    """Meshing one hand of a pair queries the other hand on the shipped network's fast
    lattice path: its separated values are those of the ordinary occupancy query."""
    from halohand.inference.two_hands import PAIR_SIDES, separate_occupancy

    right = hand_keypoints("spread")
    kp = np.stack([right, right * [-1.0, 1.0, 1.0] + [0.03, 0.0, 0.012]])
    prepared = shipped_halo.prepare(kp, list(PAIR_SIDES), "m")
    centre = torch.tensor([0.01, 0.02, 0.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    points = (0.06 * torch.rand(3000, 3, generator=g, dtype=torch.float64) - 0.03).float()
    at = (points.double() + centre).numpy()
    occ = shipped_halo.occupancy(at, kp, side=list(PAIR_SIDES), units="m").float()
    assert ((occ > 0.3) & (occ < 0.95)).any(0).sum() > 100  # points near both surfaces

    def own(p: np.ndarray) -> np.ndarray:  # hand 0's values, as its lattice gives them
        return occ[0].numpy()

    paired = shipped_halo._paired(own, prepared, 0, 1, centre, True, None)
    got = torch.from_numpy(paired(points.numpy()))
    level = shipped_halo.iso_level
    torch.testing.assert_close(got, separate_occupancy(occ[0], occ[1], level), atol=1e-5, rtol=0)


def test_refined_occupancy_is_sigmoid_of_shifted_logit() -> None:
    prob = torch.tensor([0.2, 0.65, 0.9])
    r = torch.tensor([1.0, -0.5, 2.0])
    expect = torch.sigmoid(torch.logit(prob) + r)
    torch.testing.assert_close(refined_occupancy(prob, r, 0.65), expect, atol=1e-6, rtol=0)
    assert level_logits(torch.tensor([0.65]), 0.65).abs().item() < 1e-6


def test_untrained_refiner_reproduces_halo_meshes(model: HALO, two_hands: np.ndarray) -> None:
    base = model.reconstruct_pair(two_hands, resolution=RES, colors=False)
    same = model.reconstruct_pair(
        two_hands, resolution=RES, colors=False, refine_occupancy=PairOccupancyRefiner(SMALL)
    )
    for a, b in zip(base.meshes, same.meshes, strict=True):
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.faces, b.faces)
    pts = torch.from_numpy(two_hands.reshape(-1, 3))
    assert torch.equal(base.occupancy(pts), same.occupancy(pts))


def test_refined_meshes_follow_the_refined_field(model: HALO, two_hands: np.ndarray) -> None:
    net = _perturbed()
    base = model.reconstruct_pair(two_hands, resolution=RES, colors=False)
    pair = model.reconstruct_pair(two_hands, resolution=RES, colors=False, refine_occupancy=net)
    assert pair.learned is not None
    assert not np.array_equal(base.right.vertices, pair.right.vertices)
    # every vertex of the refined right mesh lies on the refined field's level
    verts = torch.from_numpy(np.asarray(pair.right.vertices))
    occ = pair.occupancy(verts)[0]
    assert (occ - model.iso_level).abs().median() < 0.05
    # and its occupancy has gradients with respect to the points
    p = torch.from_numpy(two_hands[:, 9]).requires_grad_(True)
    pair.occupancy(p).sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_refined_pair_in_millimetres_is_the_pair_in_metres(model: HALO, two_hands) -> None:
    net = _perturbed()
    m = model.reconstruct_pair(two_hands, units="m", resolution=RES, refine_occupancy=net)
    mm = model.reconstruct_pair(
        two_hands * 1000.0, units="mm", resolution=RES, refine_occupancy=net
    )
    for a, b in zip(m.meshes, mm.meshes, strict=True):
        np.testing.assert_allclose(np.asarray(b.vertices) / 1000.0, a.vertices, atol=1e-9)
    pts = two_hands.reshape(-1, 3)[::5]
    torch.testing.assert_close(mm.occupancy(pts * 1000.0), m.occupancy(pts))


def test_output_does_not_depend_on_the_pair_pose() -> None:
    """Everything is seen in the pair's own frame: moving and turning the whole input
    changes nothing."""
    net = _perturbed().double()
    iso, kp, points, prob = _inputs(b=1)
    axis = np.array([0.3, -0.5, 0.8])
    rot = torch.from_numpy(rodrigues(axis / np.linalg.norm(axis), 1.1))
    shift = torch.tensor([0.4, -0.2, 1.5], dtype=torch.float64)

    def move(x: torch.Tensor) -> torch.Tensor:
        return x @ rot.T + shift

    a = net(iso, kp, points, prob, 0.5)
    b = net(move(iso), move(kp), move(points), prob, 0.5)
    torch.testing.assert_close(a, b, atol=1e-9, rtol=0)
    r, origin = pair_frame(kp)
    torch.testing.assert_close(r[0].T @ r[0], torch.eye(3, dtype=r.dtype), atol=1e-12, rtol=0)
    torch.testing.assert_close(origin[0], kp[0].reshape(-1, 3).mean(0))


def test_gradients_reach_every_parameter() -> None:
    iso, kp, points, prob = _inputs()
    labels = (torch.rand(2, 100, 2, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    net = PairOccupancyRefiner(SMALL)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(2):  # the zero last layer passes no gradient back until it has moved
        opt.zero_grad()
        logits = net(iso, kp, points, prob, 0.65)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        loss.backward()
        opt.step()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_farthest_points_and_surface_points() -> None:
    pts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0.1, 0, 0], [0, 2, 0], [0.5, 0.5, 0]])
    idx = farthest_points(pts, 3)
    # start: farthest from the centroid (0, 2, 0); then (1, 0, 0); then (0, 0, 0)
    assert idx.tolist() == [3, 1, 0]
    assert torch.equal(farthest_points(pts[None].repeat(2, 1, 1), 3)[1], idx)
    out = surface_points(pts.numpy()[:2], 5)  # fewer vertices than asked: repeated
    assert out.shape == (5, 3)
    with pytest.raises(HalohandInputError):
        surface_points(np.zeros((0, 3)), 4)


# ------------------------------------------------------------------ penetration loss


def test_penetration_loss_of_two_balls_is_their_lens() -> None:
    """Sharp occupancies of two balls (radius r, centres d apart) on a lattice: Eq. 9 counts
    the lattice points in both, i.e. the lens volume pi (4r + d)(2r - d)^2 / 12 over the
    cell volume."""
    r, d, h = 1.0, 1.0, 0.02
    axis = torch.arange(-1.5, 2.5 + h / 2, h, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    right = ((grid - torch.tensor([0.0, 0, 0])).norm(dim=-1) < r).double()
    left = ((grid - torch.tensor([d, 0, 0])).norm(dim=-1) < r).double()
    lens = math.pi * (4 * r + d) * (2 * r - d) ** 2 / 12
    loss = penetration_loss(right[None], left[None]) * h**3
    assert loss.item() == pytest.approx(lens, rel=0.01)
    # soft occupancies: only points claimed by both count, with the product of the two
    a = torch.tensor([[0.9, 0.9, 0.4, 0.6]])
    b = torch.tensor([[0.8, 0.3, 0.9, 0.6]])
    assert penetration_loss(a, b).item() == pytest.approx(0.9 * 0.8 + 0.6 * 0.6)
    a.requires_grad_(True)
    penetration_loss(a, b).backward()
    torch.testing.assert_close(a.grad, torch.tensor([[0.8, 0.0, 0.0, 0.6]]))
    # the mean over pairs
    two = penetration_loss(torch.cat([a, a]).detach(), torch.cat([b, torch.zeros_like(b)]))
    assert two.item() == pytest.approx(0.5 * (0.9 * 0.8 + 0.6 * 0.6))


# ------------------------------------------------------------------ files


def test_save_load_round_trip(tmp_path: Path) -> None:
    net = _perturbed()
    path = save_pair_refiner(net, tmp_path / "r.safetensors", {"note": "test"})
    back = load_pair_refiner(path)
    assert back.config == net.config
    iso, kp, points, prob = _inputs()
    with torch.no_grad():
        expect = net(iso, kp, points, prob, 0.65)
        torch.testing.assert_close(back(iso, kp, points, prob, 0.65), expect)
    with pytest.raises(CorruptFileError, match="not found"):
        load_pair_refiner(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(CorruptFileError, match="cannot read"):
        load_pair_refiner(tmp_path / "junk.safetensors")
    from halohand.core.weights_file import write_weights

    write_weights(tmp_path / "other.safetensors", {"x": torch.zeros(2)}, {"format": "else"})
    with pytest.raises(CorruptFileError, match="not a halohand pair refiner"):
        load_pair_refiner(tmp_path / "other.safetensors")


# ------------------------------------------------------------------ bad input


def test_bad_input(model: HALO, two_hands: np.ndarray) -> None:
    with pytest.raises(HalohandInputError, match="anchors"):
        PairRefinerConfig(iso_points=8, anchors=16)
    with pytest.raises(HalohandInputError, match="multiple of heads"):
        PairRefinerConfig(width=10, heads=4)
    with pytest.raises(HalohandInputError, match="penetration_weight"):
        PairRefinerConfig(penetration_weight=-1.0)
    net = PairOccupancyRefiner(SMALL)
    iso, kp, points, prob = _inputs()
    with pytest.raises(HalohandInputError, match="iso_points must be"):
        net.context(iso[:, 0], kp)
    with pytest.raises(HalohandInputError, match="iso points per hand"):
        net.context(iso[:, :, :10], kp)
    with pytest.raises(HalohandInputError, match="keypoints must be"):
        net.context(iso, kp[:, :, :20])
    ctx = net.context(iso, kp)
    with pytest.raises(HalohandInputError, match="logits"):
        net.residual(ctx, points, prob[..., :1])
    with pytest.raises(HalohandInputError, match="point sets"):
        net.residual(ctx, points[:1], prob[:1])
    with pytest.raises(HalohandInputError, match="refine_occupancy"):
        model.reconstruct_pair(two_hands, resolution=RES, refine_occupancy="yes")  # type: ignore[arg-type]
    with pytest.raises(HalohandInputError, match="two hands"):
        next(model.meshes(model.prepare(two_hands[:1]), RES, learned=object()))  # type: ignore[arg-type]


def test_cli_bad_options(monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "train-pair-refiner", "--data", tmp_path,
                           "--out", tmp_path / "o", "--preset", "tpu")  # fmt: skip
    assert code == 2 and "--preset" in err
    code, _, err = run_cli(monkeypatch, capsys, "train-pair-refiner", "--data", tmp_path,
                           "--out", tmp_path / "o")  # fmt: skip
    assert code == 2 and "manifest.json" in err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ training


def _cache(pairs: int, pool: int, seed: int) -> dict[str, np.ndarray]:
    """Synthetic caches: HALO's probability is the truth blurred, both hands a ball."""
    rng = np.random.default_rng(seed)
    kp = np.stack([np.stack([hand_keypoints("spread"), hand_keypoints("fist")])] * pairs)
    kp = kp + rng.normal(0, 0.005, kp.shape)
    iso = rng.normal(0, 0.04, (pairs, 2, SMALL.iso_points, 3))
    points = rng.uniform(-0.1, 0.1, (pairs, pool, 3))
    centres = kp[:, :, 9][:, None]  # [P, 1, 2, 3]: each hand's middle MCP
    dist = np.linalg.norm(points[:, :, None] - centres, axis=-1)  # [P, M, 2]
    labels = dist < 0.04
    prob = 1.0 / (1.0 + np.exp((dist - 0.045) / 0.005))  # HALO's ball is too big
    return {
        "keypoints": kp.astype(np.float32), "iso": iso.astype(np.float32),
        "points": points.astype(np.float32), "labels": labels,
        "prob": prob.astype(np.float32),
    }  # fmt: skip


def test_training_learns_and_resumes(tmp_path: Path) -> None:
    cfg = PairRefinerTrainConfig(steps=30, batch=2, points=128, lr=3e-3, val_points=256,
                                 checkpoint_every=10, model=SMALL)  # fmt: skip
    train, val = _cache(4, 512, 0), _cache(2, 512, 1)
    full = train_on_caches(cfg, train, val, 0.5, tmp_path / "full", log=lambda s: None)
    assert full["val"]["iou_refined"] > full["val"]["iou_halo"]
    first = train_on_caches(cfg, train, val, 0.5, tmp_path / "part", log=lambda s: None,
                            stop_after=10)  # fmt: skip
    assert first == {"steps": 10, "stopped": True}
    assert not (tmp_path / "part" / "pair_refiner.safetensors").exists()
    resumed = train_on_caches(cfg, train, val, 0.5, tmp_path / "part", resume=True,
                              log=lambda s: None)  # fmt: skip
    a = load_pair_refiner(tmp_path / "full" / "pair_refiner.safetensors").state_dict()
    b = load_pair_refiner(tmp_path / "part" / "pair_refiner.safetensors").state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)
    assert resumed["val"] == pytest.approx(full["val"], abs=1e-6)
    assert "resumed at step 10" in (tmp_path / "part" / "train.log").read_text()


def test_shipped_weights_load_as_the_card_says() -> None:
    from halohand.inference.pair_refiner import pair_refiner_path

    path = pair_refiner_path()
    if path is None:
        pytest.skip("no pair refiner weights shipped")
    net = load_pair_refiner()
    assert net.config == PairRefinerConfig(penetration_weight=0.05)
    assert sum(p.numel() for p in net.parameters()) == 91_590
    iso, kp, points, prob = _inputs(b=1, iso=600)
    with torch.no_grad():
        r = net.residual(net.context(iso, kp), points, level_logits(prob, 0.65))
    assert r.abs().max() > 0.01  # trained: not the zero residual it starts from


def test_cli_learned_two_hand_file(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path, model: HALO, two_hands: np.ndarray
) -> None:
    import trimesh

    from halohand.apps.cli import reconstruct as reconstruct_cli
    from halohand.inference import two_hands as two_hands_module

    monkeypatch.setattr(reconstruct_cli, "_load_model", lambda checkpoint, device: model)
    np.save(tmp_path / "kp.npy", two_hands)
    code, _, err = run_cli(monkeypatch, capsys, "reconstruct", tmp_path / "kp.npy", "--pair",
                           "--learned", "--learned-model", "mlp",
                           "--out-dir", tmp_path / "bad")  # fmt: skip
    assert code == 2 and "--learned-model" in err
    meshes = {}
    for name, net in (("untrained", PairOccupancyRefiner(SMALL)), ("perturbed", _perturbed())):
        monkeypatch.setattr(two_hands_module, "load_pair_refiner", lambda net=net: net)
        code, _, err = run_cli(monkeypatch, capsys, "reconstruct", tmp_path / "kp.npy", "--pair",
                               "--learned", "--learned-model", "attention", "--no-separate",
                               "--out-dir", tmp_path / name, "--resolution", RES)  # fmt: skip
        assert code == 0, err
        meshes[name] = trimesh.load(tmp_path / name / "kp_right.ply", process=False)
    code, _, err = run_cli(monkeypatch, capsys, "reconstruct", tmp_path / "kp.npy", "--pair",
                           "--no-separate", "--out-dir", tmp_path / "plain",
                           "--resolution", RES)  # fmt: skip
    assert code == 0, err
    plain = trimesh.load(tmp_path / "plain" / "kp_right.ply", process=False)
    np.testing.assert_array_equal(meshes["untrained"].vertices, plain.vertices)
    changed = meshes["perturbed"].vertices
    assert changed.shape != plain.vertices.shape or not np.array_equal(changed, plain.vertices)


def test_presets_build_and_options_reach_the_model() -> None:
    from halohand.training.pair_refiner import PRESETS, config_with

    for preset in PRESETS.values():
        net = PairOccupancyRefiner(preset.model)
        iso, kp, points, prob = _inputs(b=1, n=8, iso=preset.model.iso_points)
        with torch.no_grad():
            assert net(iso, kp, points, prob, 0.65).shape == (1, 8, 2)
    cfg = config_with(PRESETS["cpu"], anchors=32, penetration_weight=0.5, steps=7, device=None)
    assert (cfg.model.anchors, cfg.model.penetration_weight, cfg.steps) == (32, 0.5, 7)
    assert cfg.device == "cpu" and cfg.model.width == PRESETS["cpu"].model.width


def test_cache_is_rebuilt_when_halos_weights_change(tmp_path) -> None:
    # the cache of HALO's probabilities names the weights, not only the level: a retrained
    # HALO at the same level must not reuse stale probabilities
    from halohand.data.engine import generate
    from halohand.data.pairs import PairSampler
    from halohand.inference.pair_refiner import PairRefinerConfig
    from halohand.training.pair_refiner import build_cache, network_digest

    root = tmp_path / "pairs"
    generate(root, {"train": 1}, seed=3, source=PairSampler, source_name=PairSampler.name,
             side="both", hands_per_shard=1, workers=1, progress=False, kind="pairs")  # fmt: skip
    halo = HALO.pretrained()
    other = HALO.pretrained()
    with torch.no_grad():
        other.network.mlp.layers[-1].bias += 0.5  # another function, the same level
    assert other.iso_level == halo.iso_level
    assert network_digest(other.network) != network_digest(halo.network)
    assert network_digest(HALO.pretrained().network) == network_digest(halo.network)
    model, config = PairRefinerConfig(), PairRefinerTrainConfig(pool_near=64, pool_uniform=32)
    path, said = tmp_path / "cache.npz", []
    first = build_cache(halo, root, "train", model, config, path, log=said.append)
    again = build_cache(halo, root, "train", model, config, path, log=said.append)
    assert not any("rebuilding" in s for s in said)
    np.testing.assert_array_equal(again["prob"], first["prob"])
    changed = build_cache(other, root, "train", model, config, path, log=said.append)
    assert any("rebuilding" in s for s in said)
    assert np.abs(changed["prob"] - first["prob"]).max() > 1e-3
