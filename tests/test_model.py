"""Occupancy network: architecture, batching, variants, part skipping, save/load, glue."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch.nn import functional as F

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.fields import (
    DEFAULT_SKIP_RADII_M,
    VARIANTS,
    OccupancyConfig,
    OccupancyNetwork,
    count_parameters,
    fit_skip_radii,
    hand_conditioning,
    load_model,
    part_distances,
    part_inputs,
    save_model,
    skip_mask,
    variant_config,
)
from halohand.fields.skipping import PART_SEGMENTS, SEGMENT_PART
from halohand.inference.query import occupancy_from_keypoints

K = 16


def _inputs(b: int = 2, n: int = 50, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, K, 3, generator=g) * 0.3
    pose = torch.randn(b, K, 3, generator=g) * 0.2
    lengths = 0.02 + 0.06 * torch.rand(b, K, generator=g)
    return x, pose, lengths


def _loop_reference(model: OccupancyNetwork, x, pose, lengths) -> torch.Tensor:
    """Spec 1.4 literally: one MLP per part, input [x, l, E(l), P(theta)], residual before act."""
    cfg = model.config
    layers = model.mlp.layers
    b, n = x.shape[:2]
    theta = pose.reshape(b, -1)
    code = model.bone_encoder(lengths) if model.bone_encoder is not None else None
    out = []
    for k in range(K):
        cols = [x[:, :, k]]
        if cfg.use_bone_length:
            cols.append(lengths[:, k, None, None].expand(b, n, 1))
            if code is not None:
                cols.append(code[:, None].expand(b, n, -1))
        if cfg.use_pose_code:
            pw = model.pose_projection
            proj = theta if pw is None else F.linear(theta, pw.weight[k].T, pw.bias[k])
            cols.append(proj[:, None].expand(b, n, -1))
        h = torch.cat(cols, -1)
        h = F.leaky_relu(F.linear(h, layers[0].weight[k].T, layers[0].bias[k]), 0.1)
        for layer in layers[1:-1]:
            h = F.leaky_relu(F.linear(h, layer.weight[k].T, layer.bias[k]) + h, 0.1)
        out.append(F.linear(h, layers[-1].weight[k].T, layers[-1].bias[k])[..., 0])
    return torch.stack(out, -1)


def test_default_parameter_count_matches_original() -> None:
    model = OccupancyNetwork()
    assert count_parameters(model) == 238_024
    expected = (
        16 * (28 * 64 + 64 + 3 * (64 * 64 + 64) + 65)
        + 16 * (48 * 8 + 8)
        + (16 * 40 + 40 + 40 * 16 + 16)
    )
    assert expected == 238_024
    assert model.config.in_features == 28


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_batched_equals_per_part_loop(name: str) -> None:
    torch.manual_seed(1)
    model = OccupancyNetwork(VARIANTS[name])
    x, pose, lengths = _inputs()
    occ, parts = model(x, pose, lengths, return_parts=True)
    logits = _loop_reference(model, x, pose, lengths)
    torch.testing.assert_close(parts, torch.sigmoid(logits), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(occ, torch.sigmoid(logits).max(-1).values, atol=1e-6, rtol=1e-5)


def test_variant_inputs_and_sizes() -> None:
    counts = {name: count_parameters(OccupancyNetwork(cfg)) for name, cfg in VARIANTS.items()}
    assert counts["halo"] == counts["halo_gt"] == 238_024
    # NASA: no bone inputs -> 3 + 8 inputs per part, no encoder.
    assert counts["nasa"] == counts["nasa_resampled"] == 238_024 - 1_336 - 16 * 17 * 64
    assert counts["nasa_bone_length"] == counts["nasa"] + 16 * 64
    assert VARIANTS["halo"].transforms == "keypoints"
    assert {VARIANTS[n].transforms for n in ("nasa", "nasa_resampled", "halo_gt")} == {"mano"}
    # A NASA model ignores bone lengths entirely.
    model = OccupancyNetwork(VARIANTS["nasa"])
    x, pose, lengths = _inputs()
    torch.testing.assert_close(model(x, pose, lengths), model(x, pose, None))
    with pytest.raises(ValueError, match="unknown variant"):
        variant_config("nope")
    wide = variant_config("halo", hidden=(32, 32, 32), pose_projection_size=0)
    assert OccupancyNetwork(wide)(x, pose, lengths).shape == (2, 50)
    assert wide.in_features == 3 + 17 + 48


def test_residual_placement_and_relu_variant() -> None:
    # "after": h = act(L h) + h (NASA rigid decoder); differs from "before" for the same weights.
    torch.manual_seed(2)
    before = OccupancyNetwork(OccupancyConfig(residual="before"))
    after = OccupancyNetwork(OccupancyConfig(residual="after"))
    after.load_state_dict(before.state_dict())
    x, pose, lengths = _inputs()
    assert not torch.allclose(before(x, pose, lengths), after(x, pose, lengths))
    none = OccupancyNetwork(OccupancyConfig(residual="none", negative_slope=0.0))
    assert none(x, pose, lengths).shape == (2, 50)
    with pytest.raises(ValueError):
        OccupancyConfig(residual="sideways")  # type: ignore[arg-type]


def test_smooth_max() -> None:
    torch.manual_seed(3)
    hard = OccupancyNetwork()
    smooth = OccupancyNetwork(OccupancyConfig(smooth_max=True))
    smooth.load_state_dict(hard.state_dict())
    x, pose, lengths = _inputs()
    occ, parts = smooth(x, pose, lengths, return_parts=True)
    w = torch.softmax(5.0 * parts, -1)
    torch.testing.assert_close(occ, (w * parts).sum(-1))
    assert torch.all(occ <= hard(x, pose, lengths) + 1e-6)


def test_part_mask_matches_dense_and_is_differentiable() -> None:
    torch.manual_seed(4)
    model = OccupancyNetwork()
    x, pose, lengths = _inputs(b=3, n=300)
    _, parts = model(x, pose, lengths, return_parts=True)
    for frac in (0.0, 0.05, 0.4, 1.0):
        mask = torch.rand(3, 300, K) < frac
        occ_m, parts_m = model(x, pose, lengths, return_parts=True, part_mask=mask)
        torch.testing.assert_close(parts_m, torch.where(mask, parts, 0.0), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(occ_m, parts_m.max(-1).values)
    mask = torch.rand(3, 300, K) < 0.3
    model(x, pose, lengths, part_mask=mask).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(HalohandInputError):
        model(x, pose, lengths, part_mask=mask[:, :10])


def test_gradients_reach_inputs_and_training_step_reduces_loss() -> None:
    torch.manual_seed(5)
    model = OccupancyNetwork()
    x, pose, lengths = _inputs(n=64)
    x.requires_grad_(True)
    target = (x[..., 0, :].norm(dim=-1) < 0.3).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = F.mse_loss(model(x, pose, lengths), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert losses[-1] < losses[0]


def test_input_validation() -> None:
    model = OccupancyNetwork()
    x, pose, lengths = _inputs()
    with pytest.raises(HalohandInputError, match="points"):
        model(x[..., :2], pose, lengths)
    with pytest.raises(HalohandInputError, match="bone_lengths"):
        model(x, pose, None)
    with pytest.raises(HalohandInputError, match="pose"):
        model(x, None, lengths)
    with pytest.raises(HalohandInputError):
        model(x, pose[:, :5], lengths)
    with pytest.raises(HalohandInputError):
        model(x, pose[:1], lengths[:1])
    assert isinstance(HalohandInputError("x"), ValueError)


def test_part_inputs_and_query() -> None:
    torch.manual_seed(6)
    b, n = 2, 20
    rot = torch.linalg.qr(torch.randn(b, K, 3, 3)).Q
    mats = torch.eye(4).repeat(b, K, 1, 1)
    mats[..., :3, :3] = rot
    mats[..., :3, 3] = torch.randn(b, K, 3)
    p = torch.randn(b, n, 3)
    canon, code = part_inputs(p, mats)
    torch.testing.assert_close(canon[1, 3, 7], rot[1, 7] @ p[1, 3] + mats[1, 7, :3, 3])
    torch.testing.assert_close(code, mats[..., :3, 3])
    model = OccupancyNetwork()
    lengths = torch.full((b, K), 0.03)
    torch.testing.assert_close(model.query(p, mats, lengths), model(canon, code, lengths))


def test_config_roundtrip() -> None:
    cfg = variant_config("nasa_bone_length", hidden=(32, 48))
    assert OccupancyConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown config keys"):
        OccupancyConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    assert dataclasses.replace(cfg, hidden=[8, 8]).hidden == (8, 8)  # type: ignore[arg-type]


# --- save / load ---------------------------------------------------------------------------


def test_save_load_roundtrip(tmp_path) -> None:
    torch.manual_seed(7)
    model = OccupancyNetwork(variant_config("nasa_bone_length", hidden=(16, 16, 16)))
    path = save_model(tmp_path / "m.safetensors", model, {"iteration": "12"})
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp left behind
    loaded = load_model(path)
    assert loaded.config == model.config and not loaded.training
    x, pose, lengths = _inputs()
    torch.testing.assert_close(loaded(x, pose, lengths), model(x, pose, lengths))


def test_corrupt_and_foreign_files_raise(tmp_path) -> None:
    from safetensors.torch import save_file

    good = save_model(tmp_path / "good.safetensors", OccupancyNetwork())
    data = good.read_bytes()
    cases = {
        "garbage.safetensors": b"not a model at all",
        "truncated.safetensors": data[: len(data) // 2],
        "empty.safetensors": b"",
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
    save_file({"w": torch.zeros(3)}, str(tmp_path / "foreign.safetensors"))
    # Right tag, wrong weights for the config.
    bad = OccupancyNetwork(OccupancyConfig(hidden=(8, 8)))
    save_model(tmp_path / "mismatch.safetensors", bad)
    blob = (tmp_path / "mismatch.safetensors").read_bytes()
    assert blob.count(b"[8, 8]") == 1
    blob = blob.replace(b"[8, 8]", b"[9, 8]")
    (tmp_path / "mismatch.safetensors").write_bytes(blob)
    for name in [*cases, "foreign.safetensors", "mismatch.safetensors", "missing.safetensors"]:
        with pytest.raises(CorruptFileError, match=name):
            load_model(tmp_path / name)


# --- keypoint glue and part skipping -----------------------------------------------------------


def _hand(seed: int = 0) -> torch.Tensor:
    """A plausible right hand (metres, project order) from forward kinematics."""
    from halohand.canonical import skeleton_from_angles

    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(
        [0.035, 0.035, 0.03, 0.025, 0.09, 0.045, 0.025, 0.02, 0.09, 0.05, 0.03, 0.022,
         0.085, 0.045, 0.028, 0.022, 0.08, 0.035, 0.02, 0.02], dtype=torch.float64,
    )  # fmt: skip
    flex = 0.2 + 0.6 * torch.rand(15, generator=g, dtype=torch.float64)
    abd = 0.1 * torch.randn(15, generator=g, dtype=torch.float64)
    return skeleton_from_angles(flex, abd, lengths)


def _rigid(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    q = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64)).Q
    q = q * torch.sign(torch.linalg.det(q))
    return q, torch.randn(3, generator=g, dtype=torch.float64) * 0.3


def test_keypoint_glue_units_and_invariance() -> None:
    torch.manual_seed(8)
    model = OccupancyNetwork().double()
    kp = torch.stack([_hand(0), _hand(1)])
    pts = kp[:, :1] + 0.1 * torch.randn(2, 200, 3, dtype=torch.float64)
    hands = hand_conditioning(kp)
    manual = model.query(hands.to_halo_frame(pts), hands.part_matrices, hands.bone_lengths)
    occ = occupancy_from_keypoints(model, kp, pts, chunk_size=37)
    torch.testing.assert_close(occ, manual)
    assert hands.bone_lengths[0, 0].item() == pytest.approx(
        (kp[0, 9] - kp[0, 0]).norm().item()
    )  # metres, palm = wrist -> middle MCP
    # Moving hand and points rigidly does not change anything.
    r, t = _rigid(3)
    moved = occupancy_from_keypoints(model, kp @ r.T + t, pts @ r.T + t)
    torch.testing.assert_close(moved, occ, atol=1e-9, rtol=0)
    # A left hand (mirror image) gives the mirrored occupancy.
    flip = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    left = occupancy_from_keypoints(model, kp * flip, pts * flip, side="left")
    torch.testing.assert_close(left, occ, atol=1e-9, rtol=0)


def test_selecting_one_hand_keeps_every_field() -> None:
    kp = torch.stack([_hand(0), _hand(1)])
    hands = hand_conditioning(kp, spread_known=torch.tensor([True, False]))
    one = hands.select(1)
    for field in dataclasses.fields(hands):
        torch.testing.assert_close(getattr(one, field.name), getattr(hands, field.name)[1:2],
                                   rtol=0, atol=0)  # fmt: skip
    without = dataclasses.replace(hands, canonical_keypoints=None).select(0, "cpu")
    assert without.canonical_keypoints is None and without.keypoints.shape == (1, 21, 3)


def test_part_distances_brute_force() -> None:
    kp = _hand(2)[None]
    pts = kp[:, :1] + 0.08 * torch.randn(1, 64, 3, dtype=torch.float64)
    d = part_distances(pts, kp)
    ts = torch.linspace(0, 1, 2001, dtype=torch.float64)
    for part in (0, 1, 7, 13):
        segs = PART_SEGMENTS[SEGMENT_PART == part]
        samples = torch.cat([kp[0, a] + ts[:, None] * (kp[0, b] - kp[0, a]) for a, b in segs])
        brute = torch.cdist(pts[0], samples).min(-1).values
        torch.testing.assert_close(d[0, :, part], brute, atol=1e-4, rtol=0)


def test_skipping_with_large_radii_is_exact_and_default_radii_are_sane() -> None:
    torch.manual_seed(9)
    model = OccupancyNetwork().double()
    kp = _hand(4)[None]
    pts = kp[:, :1] + 0.15 * torch.randn(1, 500, 3, dtype=torch.float64)
    full = occupancy_from_keypoints(model, kp, pts)
    everything = occupancy_from_keypoints(model, kp, pts, skip_radii=[1.0] * K)
    torch.testing.assert_close(everything, full)
    mask = skip_mask(pts, kp)
    assert 0 < mask.float().mean() < 1
    assert len(DEFAULT_SKIP_RADII_M) == K and all(0.02 < r < 0.08 for r in DEFAULT_SKIP_RADII_M)
    d = torch.tensor([[0.01, 0.05], [0.03, 0.2]])
    q = torch.tensor([[0.9, 0.001], [0.02, 0.5]])
    torch.testing.assert_close(fit_skip_radii(d, q, 0.01, 0.0), torch.tensor([0.03, 0.2]))
    assert math.isfinite(skip_mask(pts, kp, DEFAULT_SKIP_RADII_M).sum().item())


def test_gradcheck_small_network() -> None:
    # The in-place activations / fused residual must give exact gradients.
    torch.manual_seed(10)
    for residual in ("before", "after"):
        cfg = OccupancyConfig(hidden=(4, 4, 4), residual=residual, pose_projection_size=2,
                              bone_latent_size=2, bone_hidden_size=3)  # fmt: skip
        model = OccupancyNetwork(cfg).double()
        x, pose, lengths = (t.double() for t in _inputs(b=2, n=3))
        x.requires_grad_(True)
        pose.requires_grad_(True)
        mask = torch.rand(2, 3, K) < 0.5
        for m in (None, mask):

            def fn(a, p, model=model, lengths=lengths, m=m):
                return model(a, p, lengths, part_mask=m)

            assert torch.autograd.gradcheck(fn, (x, pose), fast_mode=True)


def _rigid_mats(b: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mats = torch.eye(4, dtype=torch.float64).repeat(b, K, 1, 1)
    mats[..., :3, :3] = torch.linalg.qr(torch.randn(b, K, 3, 3, generator=g, dtype=torch.float64)).Q
    mats[..., :3, 3] = 0.3 * torch.randn(b, K, 3, generator=g, dtype=torch.float64)
    return mats


@pytest.mark.parametrize(
    "config",
    [
        OccupancyConfig(),
        OccupancyConfig(residual="after", hidden=(32, 48, 48)),
        OccupancyConfig(residual="none", negative_slope=0.0, hidden=(16, 16)),
        OccupancyConfig(hidden=(30, 30)),  # widths that are not a multiple of 4
        variant_config("nasa"),  # no context at all
        variant_config("nasa_bone_length"),  # local bone length, no shared code
    ],
)
def test_folded_inference_equals_transform_then_evaluate(config: OccupancyConfig) -> None:
    # Inference on masked pairs folds each part transform into the first layer and runs one
    # GEMM per part; it must give what transforming the points and evaluating gives.
    torch.manual_seed(7)
    model = OccupancyNetwork(config).eval()
    b, n = 3, 400
    mats = _rigid_mats(b, seed=1)
    p = 0.5 * torch.randn(b, n, 3, dtype=torch.float64)
    lengths = 0.02 + 0.06 * torch.rand(b, K, dtype=torch.float64)
    mask = torch.rand(b, n, K) < 0.3
    mask[0, :5] = False  # points with no active part
    mask[:, :, 4] = False  # a part with no active pair
    canon, code = part_inputs(p, mats)
    with torch.no_grad():
        ref_occ, ref_parts = model(canon, code, lengths, return_parts=True, part_mask=mask)
        assert model._can_fold(p, mats, lengths)
        occ, parts = model.query(p, mats, lengths, return_parts=True, part_mask=mask)
        none_occ = model.query(p, mats, lengths, part_mask=torch.zeros_like(mask))
    torch.testing.assert_close(parts, ref_parts, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(occ, ref_occ, atol=2e-6, rtol=1e-5)
    assert (occ[0, :5] == 0).all() and (parts[..., 4] == 0).all()
    assert (none_occ == 0).all()


def test_folded_path_only_without_gradients() -> None:
    model = OccupancyNetwork()
    b, n = 1, 64
    mats = _rigid_mats(b, seed=2)
    p = (0.3 * torch.randn(b, n, 3, dtype=torch.float64)).requires_grad_(True)
    lengths = torch.full((b, K), 0.03, dtype=torch.float64)
    mask = torch.ones(b, n, K, dtype=torch.bool)
    assert not model._can_fold(p, mats, lengths)  # grad mode: the differentiable path
    occ = model.query(p, mats, lengths, part_mask=mask)
    occ.sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()
    with torch.no_grad():
        assert model._can_fold(p, mats, lengths)
    smooth = OccupancyNetwork(OccupancyConfig(smooth_max=True))
    with torch.no_grad():  # the folded path takes the hard max only
        assert not smooth._can_fold(p, mats, lengths)
        assert smooth.query(p, mats, lengths, part_mask=mask).shape == (b, n)


def test_widened_network_computes_the_same_function_and_trains_apart() -> None:
    from halohand.training.widen import widen_network

    torch.manual_seed(0)
    narrow = OccupancyNetwork(dataclasses.replace(OccupancyConfig(), hidden=(16, 16, 16)))
    # Non-trivial biases, so that dead / saturated units are exercised as well.
    with torch.no_grad():
        for layer in narrow.mlp.layers:
            layer.bias.normal_(0.0, 0.3)
    wide = widen_network(narrow, 24, torch.Generator().manual_seed(1))
    assert wide.config.hidden == (24, 24, 24)
    x, pose, lengths = _inputs()
    _, a = narrow(x, pose, lengths, return_parts=True)
    _, b = wide(x, pose, lengths, return_parts=True)
    torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5)
    # A copy has its source's incoming weights, but (uneven splits) another gradient, so
    # training separates them.
    wide(x, pose, lengths, return_parts=True)[1].sum().backward()
    first = wide.mlp.layers[0]
    w, grad = first.weight[0], first.weight.grad[0]  # part 0, [in, out]
    apart = 0
    for j in range(16, 24):
        source = int((w[:, :16] == w[:, j : j + 1]).all(0).nonzero()[0, 0])
        if grad[:, source].abs().max() > 0:  # units that are never active get no gradient
            apart += not torch.allclose(grad[:, j], grad[:, source])
    assert apart >= 4
    with pytest.raises(ValueError, match="cannot widen"):
        widen_network(narrow, 8)


def test_point_scale_is_the_same_function_with_a_larger_step_on_the_point_weights() -> None:
    from halohand.training.widen import adapt_network, rescale_points

    torch.manual_seed(0)
    base = OccupancyNetwork(dataclasses.replace(OccupancyConfig(), hidden=(16, 16)))
    scaled = rescale_points(base, 10.0)
    assert scaled.config.point_scale == 10.0
    x, pose, lengths = _inputs()
    torch.testing.assert_close(scaled(x, pose, lengths), base(x, pose, lengths))
    # The folded inference path (point weights used without the points being scaled).
    b, n, k = 2, 50, base.num_parts
    p = torch.randn(b, n, 3) * 0.2
    mats = torch.eye(4).repeat(b, k, 1, 1)
    mats[..., :3, 3] = torch.randn(b, k, 3) * 0.1
    mask = torch.rand(b, n, k) < 0.5
    with torch.no_grad():
        assert scaled._can_fold(p, mats, lengths)
        folded = scaled.query(p, mats, lengths, part_mask=mask)
        dense = base.query(p, mats, lengths)
        dense_masked = base.forward(*part_inputs(p, mats), lengths, part_mask=mask)
    torch.testing.assert_close(folded, dense_masked, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(dense, dense_masked)  # the mask matters: a real comparison

    # One Adam step moves every weight by ~lr (first step: exactly lr * sign(grad)), so a
    # point weight of the scaled network moves the function like a 10x step of the base's.
    def first_step_change(net: OccupancyNetwork) -> torch.Tensor:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        net(x, pose, lengths).sum().backward()
        before = net.mlp.layers[0].weight[:, :3].detach().clone()
        opt.step()
        return (net.mlp.layers[0].weight[:, :3].detach() - before) * net.config.point_scale

    moved_base, moved_scaled = first_step_change(base), first_step_change(scaled)
    torch.testing.assert_close(moved_scaled, 10.0 * moved_base, atol=1e-7, rtol=1e-4)
    # adapt_network: widening and rescaling together; anything else is refused.
    target = dataclasses.replace(base.config, hidden=(24, 24), point_scale=4.0)
    adapted = adapt_network(base, target, torch.Generator().manual_seed(0))
    assert adapted.config == target
    torch.testing.assert_close(adapted(x, pose, lengths), base(x, pose, lengths))
    with pytest.raises(ValueError, match="only the hidden width"):
        adapt_network(base, dataclasses.replace(base.config, bone_latent_size=4))
    with pytest.raises(ValueError, match="cannot widen"):
        adapt_network(base, dataclasses.replace(base.config, hidden=(24, 24, 24)))
    with pytest.raises(ValueError, match="point_scale"):
        OccupancyConfig(point_scale=0.0)


def test_growing_the_pose_input_keeps_the_function_and_trains_the_new_inputs() -> None:
    from halohand.training.widen import adapt_network, grow_pose_input

    torch.manual_seed(0)
    base = OccupancyNetwork(dataclasses.replace(OccupancyConfig(), hidden=(16, 16)))
    with torch.no_grad():
        base.pose_projection.bias.normal_(0.0, 0.3)  # the raw variant folds it into a bias
    x, pose, lengths = _inputs()
    want = base(x, pose, lengths)
    for size in (24, 0):
        grown = grow_pose_input(base, size)
        assert grown.config.pose_projection_size == size
        assert grown.config.in_features == 3 + 17 + (size or 48)
        torch.testing.assert_close(grown(x, pose, lengths), want, atol=1e-6, rtol=1e-5)
        grown(x, pose, lengths).sum().backward()
        new_cols = grown.mlp.layers[0].weight.grad[:, 20 + (8 if size else 0) :]
        assert new_cols.abs().max() > 0  # the added inputs get gradients
    both = adapt_network(
        base, dataclasses.replace(base.config, pose_projection_size=0, hidden=(24, 24))
    )
    torch.testing.assert_close(both(x, pose, lengths), want, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="cannot grow"):
        grow_pose_input(base, 4)
    with pytest.raises(ValueError, match="no pose projection"):
        grow_pose_input(grow_pose_input(base, 0), 16)
