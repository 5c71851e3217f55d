"""The image-conditioned initial occupancy ("HALO + image"): the camera convention against
the renderer's, the zero-initialised residual (HALO bit for bit), shapes and bad input,
files, the meshing path and a small training run.

Reconstruction runs on the analytic capsule net of ``halo_fakes``; training on small
synthetic sets (the HALO-dependent cache and the renders are the recipe's, not here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from halo_fakes import CapsuleNet, hand_keypoints, run_cli

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.inference.halo import HALO
from halohand.inference.image_occupancy import (
    ImageOccupancy,
    ImageOccupancyConfig,
    image_pair,
    load_image_occupancy,
    prepare_image,
    project,
    save_image_occupancy,
)
from halohand.inference.pair_refiner import level_logits
from halohand.inference.two_hands import reconstruct_pair_image
from halohand.training.image_occupancy import ImageOccupancyTrainConfig, train_on_data

SMALL = ImageOccupancyConfig(image_size=32, channels=(4, 8, 8), width=16, layers=2)
RES = 32


@pytest.fixture
def model() -> HALO:
    return HALO(CapsuleNet(hand_keypoints("spread")))


@pytest.fixture(scope="module")
def two_hands() -> np.ndarray:
    """A right and a left spread hand, palms 3.5 cm apart (metres)."""
    right = hand_keypoints("spread")
    left = right * [-1.0, 1.0, 1.0] + [0.035, 0.0, 0.012]
    return np.stack([right, left])


def _camera(points: np.ndarray, size: int, seed: int = 0):
    from halohand.apps.scene_render import random_camera

    return random_camera(np.random.default_rng(seed), points, size)


def _perturbed(config: ImageOccupancyConfig = SMALL, seed: int = 0) -> ImageOccupancy:
    """A model whose last layer is not zero (as after training)."""
    torch.manual_seed(seed)
    net = ImageOccupancy(config)
    with torch.no_grad():
        net.out.weight.normal_(0.0, 0.5)
        net.out.bias.normal_(0.0, 0.5)
    return net.eval()


# ------------------------------------------------------------------ camera


def test_projection_matches_the_renderer() -> None:
    """Two spheres drawn by the renderer: each centre projects into its own sphere's
    pixels, and a feature map read at the projection (grid_sample, the model's own
    normalisation) gives that sphere's mask id."""
    from halohand.apps.scene_render import render_meshes

    size = 64
    a = trimesh.creation.icosphere(3, radius=0.02)
    b = trimesh.creation.icosphere(3, radius=0.015)
    centres = np.array([[-0.03, 0.01, 0.0], [0.035, -0.02, 0.01]])
    both = np.concatenate([a.vertices + centres[0], b.vertices + centres[1]])
    for seed in range(3):
        rot, trans, k = _camera(both, size, seed)
        meshes = [
            ((a.vertices + centres[0]) @ rot.T + trans, a.faces, np.array([0.8, 0.6, 0.5])),
            ((b.vertices + centres[1]) @ rot.T + trans, b.faces, np.array([0.7, 0.5, 0.4])),
        ]
        _, mask = render_meshes(None, meshes, k, size, np.random.default_rng(seed))
        uvz = project(
            torch.from_numpy(centres)[None], torch.from_numpy(k)[None],
            torch.from_numpy(rot)[None], torch.from_numpy(trans)[None],
        )[0].numpy()  # fmt: skip
        for i, (u, v, z) in enumerate(uvz):
            assert z > 0 and mask[int(v), int(u)] == i + 1
            # the mask's pixel centres (j + 0.5, i + 0.5) average to the projected centre
            rows, cols = np.nonzero(mask == i + 1)
            sphere_px = np.array([cols.mean() + 0.5, rows.mean() + 0.5])
            assert np.abs(sphere_px - [u, v]).max() < 1.0
        grid = torch.from_numpy(2.0 * uvz[:, :2] / size - 1.0).float()[None, :, None]
        m = torch.from_numpy(mask.astype(np.float32))[None, None]
        read = torch.nn.functional.grid_sample(m, grid, mode="nearest", align_corners=False)
        assert read.flatten().tolist() == [1.0, 2.0]


def test_points_behind_the_camera_read_no_features() -> None:
    net = ImageOccupancy(SMALL)
    k = torch.tensor([[[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]]], dtype=torch.float64)
    r, t = torch.eye(3, dtype=torch.float64)[None], torch.tensor([[0.0, 0.0, 0.3]])
    uvz = project(torch.tensor([[[0.0, 0.0, -0.5], [0.0, 0.0, 0.0]]]), k, r, t.double())
    assert uvz[0, 0, 0] < -1e5 and uvz[0, 1, :2].tolist() == [16.0, 16.0]
    maps = net.encode(torch.ones(1, 3, 32, 32))
    assert [m.shape[-1] for m in maps] == [16, 8, 4]


def test_prepare_image_resizes_and_scales_the_intrinsics() -> None:
    img = np.zeros((64, 48, 3), dtype=np.uint8)
    k = np.array([[50.0, 0, 24], [0, 60.0, 32], [0, 0, 1]])
    px, k2 = prepare_image(img, k, 32)
    assert px.shape == (3, 32, 32) and float(px.max()) == pytest.approx(-2.0)
    # the image centre stays the centre; focal lengths scale with each side
    np.testing.assert_allclose(k2.numpy(), [[50 * 32 / 48, 0, 16], [0, 30, 16], [0, 0, 1]])
    same, k3 = prepare_image(np.full((32, 32, 3), 255, np.uint8), k, 32)
    assert torch.equal(k3, torch.as_tensor(k)) and float(same.min()) == pytest.approx(2.0)


# ------------------------------------------------------------------ network


def _inputs(b: int = 2, n: int = 50, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    kp = torch.from_numpy(np.stack([hand_keypoints("spread"), hand_keypoints("fist")]))
    kp = kp[None].repeat(b, 1, 1, 1) + 0.01 * torch.randn(b, 2, 21, 3, generator=g, dtype=kp.dtype)
    points = 0.05 * torch.randn(b, n, 3, generator=g, dtype=torch.float64)
    prob = torch.rand(b, n, 2, generator=g)
    pixels = torch.randn(b, 3, 32, 32, generator=g)
    rot, trans, k = _camera(kp[0].reshape(-1, 3).numpy(), 32)
    cam = tuple(torch.from_numpy(x)[None].repeat(b, *([1] * x.ndim)) for x in (k, rot, trans))
    return pixels, cam, kp, points, prob


@pytest.mark.parametrize("image", [True, False])
def test_zero_residual_at_init(image: bool) -> None:
    pixels, cam, kp, points, prob = _inputs()
    net = ImageOccupancy(ImageOccupancyConfig(**{**SMALL.__dict__, "image": image}))
    logits = level_logits(prob, 0.65)
    r = net.residual(net.encode(pixels), points, logits, kp, cam)
    assert r.shape == (2, 50, 2) and torch.equal(r, torch.zeros_like(r))
    assert torch.equal(net(pixels, cam, kp, points, prob, 0.65), logits)
    # the meshing path: HALO's probabilities come back bit for bit
    pair = image_pair(net, kp[0].numpy(), np.zeros((32, 32, 3), np.uint8), cam[0][0].numpy(),
                      cam[1][0].numpy(), cam[2][0].numpy(), 0.65)  # fmt: skip
    assert torch.equal(pair.refine(points[0], prob[0]), prob[0])


def test_image_branch_sees_the_image_and_the_other_arm_does_not() -> None:
    pixels, cam, kp, points, prob = _inputs()
    logits = level_logits(prob, 0.65)
    with_image = _perturbed()
    a = with_image.residual(with_image.encode(pixels), points, logits, kp, cam)
    b = with_image.residual(with_image.encode(-pixels), points, logits, kp, cam)
    assert not torch.allclose(a, b)
    blind = _perturbed(ImageOccupancyConfig(**{**SMALL.__dict__, "image": False}))
    assert blind.encode(pixels) == []
    c = blind.residual([], points, logits, kp, None)
    assert torch.equal(c, blind.residual([], points, logits, kp, cam))


def test_bad_input() -> None:
    pixels, cam, kp, points, prob = _inputs()
    net = ImageOccupancy(SMALL)
    maps = net.encode(pixels)
    logits = level_logits(prob, 0.65)
    with pytest.raises(HalohandInputError, match="logits"):
        net.residual(maps, points, logits[..., :1], kp, cam)
    with pytest.raises(HalohandInputError, match="keypoints must be"):
        net.residual(maps, points, logits, kp[:, :, :20], cam)
    with pytest.raises(HalohandInputError, match="needs the view"):
        net.residual([], points, logits, kp, cam)
    with pytest.raises(HalohandInputError, match="pixels must be"):
        net.encode(pixels[:, :2])
    with pytest.raises(HalohandInputError, match="image must be"):
        prepare_image(np.zeros((8, 8)), np.eye(3), 32)
    with pytest.raises(HalohandInputError, match="intrinsics"):
        prepare_image(np.zeros((8, 8, 3)), np.eye(2), 32)
    with pytest.raises(HalohandInputError, match="rotation matrix"):
        image_pair(net, kp[0].numpy(), np.zeros((8, 8, 3)), np.eye(3), 2 * np.eye(3),
                   np.zeros(3), 0.65)  # fmt: skip
    with pytest.raises(HalohandInputError, match="translation"):
        image_pair(net, kp[0].numpy(), np.zeros((8, 8, 3)), np.eye(3), np.eye(3),
                   np.zeros(2), 0.65)  # fmt: skip
    with pytest.raises(HalohandInputError, match="keypoints must be"):
        image_pair(net, kp[0, :1].numpy(), np.zeros((8, 8, 3)), np.eye(3), np.eye(3),
                   np.zeros(3), 0.65)  # fmt: skip
    for bad in ({"image_size": 8}, {"channels": (4, 8)}, {"width": 0}):
        with pytest.raises(HalohandInputError):
            ImageOccupancyConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(HalohandInputError, match="seconds"):
        ImageOccupancyTrainConfig(seconds=0)


def test_files_round_trip_and_foreign_files(tmp_path: Path) -> None:
    from halohand.core.weights_file import write_weights

    pixels, cam, kp, points, prob = _inputs()
    net = _perturbed()
    path = save_image_occupancy(net, tmp_path / "m.safetensors", {"note": 1})
    back = load_image_occupancy(path)
    assert back.config == net.config
    with torch.no_grad():
        torch.testing.assert_close(back(pixels, cam, kp, points, prob, 0.65),
                                   net(pixels, cam, kp, points, prob, 0.65))  # fmt: skip
    with pytest.raises(CorruptFileError, match="not found"):
        load_image_occupancy(tmp_path / "missing.safetensors")
    write_weights(tmp_path / "other.safetensors", {"w": torch.zeros(2)}, {"format": "x"})
    with pytest.raises(CorruptFileError, match="not a halohand image occupancy"):
        load_image_occupancy(tmp_path / "other.safetensors")


# ------------------------------------------------------------------ meshing


def test_untrained_model_reproduces_halo_meshes(model: HALO, two_hands: np.ndarray) -> None:
    rot, trans, k = _camera(two_hands.reshape(-1, 3), 32)
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    base = model.reconstruct_pair(two_hands, units="m", resolution=RES, colors=False)
    same = reconstruct_pair_image(model, two_hands, img, k, rot, trans, ImageOccupancy(SMALL),
                                  units="m", resolution=RES, colors=False)  # fmt: skip
    for a, b in zip(base.meshes, same.meshes, strict=True):
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.faces, b.faces)
    changed = reconstruct_pair_image(model, two_hands, img, k, rot, trans, _perturbed(),
                                     units="m", resolution=RES, colors=False)  # fmt: skip
    assert not np.array_equal(changed.right.vertices, base.right.vertices)
    # the occupancy is the meshed one: in millimetres too, same camera in metres
    pts = two_hands.reshape(-1, 3)[:5]
    occ_m = changed.occupancy(pts)
    mm = reconstruct_pair_image(model, two_hands * 1e3, img, k, rot, trans, _perturbed(),
                                units="mm", resolution=RES, colors=False)  # fmt: skip
    torch.testing.assert_close(mm.occupancy(pts * 1e3), occ_m, atol=1e-5, rtol=0)


def test_keypoint_model_through_reconstruct_pair(
    monkeypatch: pytest.MonkeyPatch, model: HALO, two_hands: np.ndarray
) -> None:
    """A keypoint-only model refines a pair through HALO.reconstruct_pair with no view;
    ``True`` / ``"residual"`` load the shipped one and ``"attention"`` the attention
    refiner; an image model and unknown names are refused."""
    from halohand.inference import two_hands as two_hands_module
    from halohand.inference.image_occupancy import ImagePair
    from halohand.inference.pair_refiner import LearnedPair, PairOccupancyRefiner, PairRefinerConfig

    kp_only = ImageOccupancyConfig(image=False, width=16, layers=2)
    base = model.reconstruct_pair(two_hands, units="m", resolution=RES, colors=False)
    same = model.reconstruct_pair(two_hands, units="m", resolution=RES, colors=False,
                                  refine_occupancy=ImageOccupancy(kp_only))  # fmt: skip
    np.testing.assert_array_equal(same.right.vertices, base.right.vertices)
    net = _perturbed(kp_only)
    monkeypatch.setattr(two_hands_module, "load_image_occupancy", lambda: net)
    small = PairRefinerConfig(iso_points=64, anchors=8, neighbours=8, width=16, heads=2,
                              surface_resolution=24)  # fmt: skip
    attention = PairOccupancyRefiner(small)
    monkeypatch.setattr(two_hands_module, "load_pair_refiner", lambda: attention)
    for choice in (True, "residual"):
        pair = model.reconstruct_pair(two_hands, units="m", resolution=RES, colors=False,
                                      refine_occupancy=choice)  # fmt: skip
        assert isinstance(pair.learned, ImagePair) and pair.learned.model is net
        assert not np.array_equal(pair.right.vertices, base.right.vertices)
        verts = torch.from_numpy(np.asarray(pair.right.vertices))
        assert (pair.occupancy(verts)[0] - model.iso_level).abs().median() < 0.05
    # a residual far beyond the attention refiner's bound: meshing must not skip a band
    with torch.no_grad():
        net.out.weight.mul_(40.0)
    for separate in (False, True):
        pair = model.reconstruct_pair(two_hands, units="m", resolution=RES, colors=False,
                                      refine_occupancy=True, separate=separate)  # fmt: skip
        for i, mesh in enumerate(pair.meshes):
            occ = pair.occupancy(torch.from_numpy(np.asarray(mesh.vertices)))[i]
            assert (occ - model.iso_level).abs().median() < 0.05, (separate, i)
    pair = model.reconstruct_pair(two_hands, units="m", resolution=RES, colors=False,
                                  refine_occupancy="attention")  # fmt: skip
    assert isinstance(pair.learned, LearnedPair) and pair.learned.model is attention
    with pytest.raises(HalohandInputError, match="view of the pair"):
        model.reconstruct_pair(two_hands, units="m", refine_occupancy=_perturbed())
    with pytest.raises(HalohandInputError, match="refine_occupancy must be"):
        model.reconstruct_pair(two_hands, units="m", refine_occupancy="mlp")


def test_shipped_keypoint_residual_loads_as_the_card_says() -> None:
    from halohand.inference.image_occupancy import pair_residual_path

    if pair_residual_path() is None:
        pytest.skip("no keypoint residual weights shipped")
    net = load_image_occupancy()
    assert net.config == ImageOccupancyConfig(image=False)
    assert sum(p.numel() for p in net.parameters()) == 10_049
    g = torch.Generator().manual_seed(0)
    kp = torch.from_numpy(np.stack([hand_keypoints("spread"), hand_keypoints("fist")]))[None]
    points = 0.05 * torch.randn(1, 200, 3, generator=g, dtype=torch.float64)
    logits = level_logits(torch.rand(1, 200, 2, generator=g), 0.65)
    with torch.no_grad():
        r = net.residual([], points, logits, kp, None)
    assert r.abs().max() > 0.01  # trained: not the zero residual it starts from


# ------------------------------------------------------------------ training


def _set(pairs: int, pool: int, seed: int) -> dict[str, np.ndarray]:
    """Synthetic pairs: both hands balls whose radius the keypoints do not tell but the
    image's brightness does; HALO's probability is a ball of the mean radius."""
    rng = np.random.default_rng(seed)
    kp = np.stack([np.stack([hand_keypoints("spread"), hand_keypoints("fist")])] * pairs)
    kp = kp + rng.normal(0, 0.005, kp.shape)
    radius = rng.uniform(0.03, 0.05, pairs)
    points = rng.uniform(-0.1, 0.1, (pairs, pool, 3))
    dist = np.linalg.norm(points[:, :, None] - kp[:, :, 9][:, None], axis=-1)  # [P, M, 2]
    labels = dist < radius[:, None, None]
    prob = 1.0 / (1.0 + np.exp((dist - 0.04) / 0.005))
    views = 2
    grey = ((radius - 0.03) / 0.02 * 255).astype(np.uint8)[:, None, None, None, None]
    images = np.broadcast_to(grey, (pairs, views, 32, 32, 3)).copy()
    rot, trans, k = _camera(kp[0].reshape(-1, 3), 32)
    return {
        "keypoints": kp.astype(np.float32), "points": points.astype(np.float32),
        "labels": labels, "prob": prob.astype(np.float32), "images": images,
        "masks": np.zeros((pairs, views, 16, 16), dtype=np.int64),
        "intrinsics": np.broadcast_to(k, (pairs, views, 3, 3)).copy(),
        "rotation": np.broadcast_to(rot, (pairs, views, 3, 3)).copy(),
        "translation": np.broadcast_to(trans, (pairs, views, 3)).copy(),
    }  # fmt: skip


def test_training_learns_and_resumes(tmp_path: Path) -> None:
    cfg = ImageOccupancyTrainConfig(steps=60, batch=4, points=256, lr=3e-3, val_points=512,
                                    checkpoint_every=20, model=SMALL)  # fmt: skip
    train, val = _set(8, 1024, 0), _set(4, 1024, 1)
    full = train_on_data(cfg, train, val, 0.5, tmp_path / "full", log=lambda s: None)
    assert full["val"]["iou_refined"] > full["val"]["iou_halo"] + 0.02
    assert full["history"][0]["step"] == 20 and full["kept_step"] in (20, 40, 60)
    net = load_image_occupancy(tmp_path / "full" / "image_occupancy.safetensors")
    assert net.config == SMALL
    # a run stopped by its own budget resumes from its checkpoint when given more steps
    short = ImageOccupancyTrainConfig(**{**cfg.__dict__, "steps": 20})
    train_on_data(short, train, val, 0.5, tmp_path / "part", log=lambda s: None)
    more = train_on_data(cfg, train, val, 0.5, tmp_path / "part", resume=True, log=lambda s: None)
    assert more["steps"] == 60
    assert "resumed at step 20" in (tmp_path / "part" / "train.log").read_text()


def test_wall_clock_budget_ends_the_run(tmp_path: Path) -> None:
    cfg = ImageOccupancyTrainConfig(steps=10**6, seconds=0.5, batch=2, points=64,
                                    val_points=64, checkpoint_every=10**6, model=SMALL)  # fmt: skip
    out = train_on_data(cfg, _set(2, 128, 0), _set(2, 128, 1), 0.5, tmp_path, log=lambda s: None)
    assert 1 <= out["steps"] < 10**6 and out["train_wall_s"] >= 0.5


def test_presets_build_and_cli_bad_options(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    from halohand.training.image_occupancy import PRESETS, config_with

    for preset in PRESETS.values():
        net = ImageOccupancy(preset.model)
        s = preset.model.image_size
        maps = net.encode(torch.zeros(1, 3, s, s))
        assert [m.shape[1] for m in maps] == list(preset.model.channels)
    cfg = config_with(PRESETS["cpu"], image=False, width=32, seconds=60.0, device=None)
    assert (cfg.model.image, cfg.model.width, cfg.seconds, cfg.device) == (False, 32, 60.0, "cpu")
    code, _, err = run_cli(monkeypatch, capsys, "train-image-occupancy", "--data", tmp_path,
                           "--images", tmp_path, "--out", tmp_path / "o")  # fmt: skip
    assert code == 2 and "manifest.json" in err
    code, _, err = run_cli(monkeypatch, capsys, "train-image-occupancy", "--data", tmp_path,
                           "--out", tmp_path / "o", "--images", tmp_path, "--images",
                           tmp_path)  # fmt: skip
    assert code == 2 and "one --images folder per --data" in err
    code, _, err = run_cli(monkeypatch, capsys, "train-image-occupancy", "--data", tmp_path,
                           "--images", tmp_path, "--out", tmp_path / "o",
                           "--seconds", "0")  # fmt: skip
    assert code == 2
    assert not (tmp_path / "o").exists()
