"""HOISDF: the rendered hand-object data, the model's shapes and variants, the SDF sign
convention, the metrics, and training (a loss that falls, an exact resume)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from halohand.apps.handobject_data import HOIDataConfig, generate_split, hand_signed_distance
from halohand.core.errors import HalohandInputError
from halohand.handobject import HOISDF, HOISDFConfig, hand_object_errors, load_hoi
from halohand.training.hoisdf import (
    HOISDFTrainConfig,
    branch_run,
    hoisdf_losses,
    load_run,
    train_hoisdf,
)

TINY = dict(
    image_size=32,
    channels=(8, 8, 8, 8),
    feature_dim=16,
    sdf_hidden=16,
    attention_layers=1,
    heads=2,
    hand_points=8,
    object_points=8,
    grid=6,
    train_candidates=64,
)


def _grasp_dir(root: Path) -> Path:
    """Two grasps in the grasp engine's shard format: a flat right hand beside box_0."""
    n = 2
    z = {
        "angles": np.zeros((n, 15, 3)),
        "length_factors": np.ones((n, 16)),
        "palm_width": np.ones(n),
        "hand_length": np.full(n, 0.18),
        "global_rot": np.repeat(np.eye(3)[None], n, 0),
        "translation": np.array([[0.0, -0.08, 0.0], [0.0, 0.08, 0.02]]),
        "accepted": np.ones(n, bool),
        "side": np.array(["right"] * n),
        "object_id": np.array("box_0"),
    }
    folder = root / "grasps" / "box_0"
    folder.mkdir(parents=True)
    np.savez(folder / "batch_00000.npz", **z)
    return root / "grasps"


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hoi")
    cfg = HOIDataConfig(size=32, views=3, samples=256, object_points=64, renderer="numpy")
    generate_split(_grasp_dir(root), root / "a", "train", [0, 1], cfg)
    return root


def test_data_is_deterministic_and_resumable(split: Path) -> None:
    cfg = HOIDataConfig(size=32, views=3, samples=256, object_points=64, renderer="numpy")
    generate_split(split / "grasps", split / "b", "train", [1, 0], cfg)  # other order
    for name in ("g_00000.npz", "g_00001.npz"):
        a, b = np.load(split / "a" / "shards" / name), np.load(split / "b" / "shards" / name)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    again = generate_split(split / "grasps", split / "a", "train", [0, 1], cfg)
    assert again["made"] == 0  # finished shards are skipped
    with pytest.raises(HalohandInputError, match="other settings"):
        generate_split(
            split / "grasps",
            split / "a",
            "train",
            [0, 1],
            HOIDataConfig(size=32, views=2, samples=256, renderer="numpy"),
        )
    z = np.load(split / "a" / "shards" / "g_00000.npz")
    assert z["images"].shape == (3, 32, 32, 3) and z["masks"].max() == 2  # hand and object seen
    # the hand is the grasp's: the wrist of the rendered keypoints is where the pose put it
    assert z["keypoints"].shape == (21, 3) and np.isfinite(z["sdf_hand"]).all()


def test_sdf_signs_metres_positive_outside(split: Path) -> None:
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.05)
    pts = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.03], [0.0, 0.08, 0.0]])
    d = hand_signed_distance(sphere.vertices, sphere.faces, pts)
    np.testing.assert_allclose(d, [-0.05, -0.02, 0.03], atol=5e-4)
    z = np.load(split / "a" / "shards" / "g_00000.npz")
    # stored samples: some inside each surface, the far uniform ones outside both
    assert (z["sdf_hand"] < 0).any() and (z["sdf_object"] < 0).any()
    far = np.linalg.norm(z["sdf_points"] - z["keypoints"][0], axis=1) > 0.3
    assert (z["sdf_hand"][far] > 0).all()
    # the object's samples agree with the registry object's own signed distance
    from halohand.objects.registry import load_object

    np.testing.assert_allclose(
        z["sdf_object"][:20], load_object("box_0").signed_distance(z["sdf_points"][:20]), atol=1e-9
    )


def test_batch_frame_and_metrics(split: Path) -> None:
    data = load_hoi(split / "a", 32)
    b = data.batch(torch.arange(len(data)), n_sdf=16, k_near=8)
    assert torch.allclose(b["joints"][:, 0], torch.zeros(3), atol=1e-6)  # root-relative
    # near points are near: the object's near points have |true object distance| < 2 cm
    perfect = {
        "joints": b["joints"],
        "object_rotation": b["object_rotation"],
        "object_translation": b["object_translation"],
    }
    errs = hand_object_errors(perfect, b)
    for k, v in errs.items():
        assert np.allclose(v, 0.0, atol=1e-3), k
    moved = dict(perfect, object_translation=b["object_translation"] + torch.tensor([0.01, 0, 0]))
    errs = hand_object_errors(moved, b)
    np.testing.assert_allclose(errs["oce"], 10.0, atol=1e-3)
    np.testing.assert_allclose(errs["mce"], 10.0, atol=1e-3)
    assert (errs["add_s"] > 0).all() and (errs["add_s"] <= 10.0 + 1e-6).all()


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"sdf": False},
        {"sampling": "signed"},
        {"sampling": "uniform"},
        {"augment": "none"},
        {"augment": "density_concat"},
        {"augment": "distance_concat"},
    ],
)
def test_model_shapes(variant: dict) -> None:
    torch.manual_seed(0)
    cfg = HOISDFConfig(**TINY, **variant)
    model = HOISDF(cfg)
    b = 2
    img = torch.rand(b, 3, 32, 32)
    k = torch.tensor([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]]).expand(b, 3, 3)
    root = torch.tensor([0.0, 0.0, 0.5]).expand(b, 3)
    sdf_pts = torch.rand(b, 5, 3) * 0.1
    out = model(img, k, root, sdf_points=sdf_pts)
    assert out["joints"].shape == (b, 21, 3)
    assert out["object_translation"].shape == (b, 3)
    rot = out["object_rotation"]
    assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3).expand(b, 3, 3), atol=1e-5)
    assert out["hand_points"].shape == (b, 8, 3)
    assert (out["hand_points"].abs() <= cfg.volume_half).all()
    if cfg.sdf:
        assert out["sdf_hand"].shape == (b, 5)
        assert (out["sdf_hand"].abs() <= cfg.sdf_clamp).all()
    else:
        assert "sdf_hand" not in out and cfg.sampling == "uniform" and cfg.augment == "none"
    # test-time sampling is deterministic
    again = model(img, k, root)
    assert torch.equal(again["hand_points"], model(img, k, root)["hand_points"])


def test_field_sampling_keeps_points_nearest_the_hand_surface() -> None:
    cfg = HOISDFConfig(**TINY)
    model = HOISDF(cfg)
    # a hand field that is the distance to a sphere of 5 cm about (0.05, 0, 0)
    centre = torch.tensor([0.05, 0.0, 0.0])
    model.fields = (
        lambda pos, f: (  # type: ignore[method-assign]
            (pos[..., :3] * cfg.volume_half - centre).norm(dim=-1) - 0.05,
            pos[..., 0] * 0 + 1.0,
        )
    )
    maps = [torch.zeros(1, 8, 8, 8), torch.zeros(1, 8, 16, 16)]
    k = torch.tensor([[[10.0, 0, 16], [0, 10.0, 16], [0, 0, 1]]])
    hp, _ = model.sample_points(maps, k, torch.tensor([[0.0, 0.0, 0.5]]))
    d = ((hp - centre).norm(dim=-1) - 0.05).abs()
    lattice = model.candidates(1, None, "cpu")[0]
    all_d = ((lattice - centre).norm(dim=-1) - 0.05).abs()
    assert d.max() <= all_d.sort().values[cfg.hand_points - 1] + 1e-6


def test_training_lowers_the_loss_on_a_tiny_batch(split: Path) -> None:
    torch.manual_seed(0)
    data = load_hoi(split / "a", 32)
    cfg = HOISDFConfig(**TINY)
    model = HOISDF(cfg)
    tcfg = HOISDFTrainConfig()
    gen = torch.Generator().manual_seed(0)
    b = data.batch(torch.arange(4), n_sdf=32, k_near=8, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        out = model(
            b["images"],
            b["intrinsics"],
            b["root"],
            b["hand_near"],
            b["object_near"],
            b["sdf_points"],
        )
        loss = hoisdf_losses(model, out, b, tcfg)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_resume_matches_an_uninterrupted_run(split: Path, tmp_path: Path) -> None:
    data = load_hoi(split / "a", 32)
    cfg = HOISDFConfig(**TINY)
    tcfg = HOISDFTrainConfig(
        batch=2,
        max_steps=6,
        max_seconds=1e6,
        checkpoint_every=2,
        n_sdf=16,
        field_after=0.5,
        log_every=1,
    )
    train_hoisdf(data, tmp_path / "straight", cfg, tcfg)
    part = train_hoisdf(data, tmp_path / "resumed", cfg, tcfg, stop_after=3)
    assert part["stopped"] and part["steps"] == 3
    train_hoisdf(data, tmp_path / "resumed", cfg, tcfg)
    a, meta = load_run(tmp_path / "straight")
    b, meta_b = load_run(tmp_path / "resumed")
    assert meta["step"] == meta_b["step"] == 6
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    with pytest.raises(HalohandInputError, match="another model config"):
        train_hoisdf(data, tmp_path / "resumed", HOISDFConfig(**{**TINY, "sdf": False}), tcfg)


def test_a_branch_before_the_field_phase_equals_training_the_variant(
    split: Path, tmp_path: Path
) -> None:
    data = load_hoi(split / "a", 32)
    cfg = HOISDFConfig(**TINY)
    variant = HOISDFConfig(**{**TINY, "sampling": "signed"})
    tcfg = HOISDFTrainConfig(batch=2, max_steps=6, max_seconds=1e6, checkpoint_every=2,
                             n_sdf=16, field_after=0.5)  # fmt: skip
    train_hoisdf(data, tmp_path / "base", cfg, tcfg, stop_after=2)
    assert branch_run(tmp_path / "base", tmp_path / "branch", variant, tcfg) == 2
    train_hoisdf(data, tmp_path / "branch", variant, tcfg)
    train_hoisdf(data, tmp_path / "scratch", variant, tcfg)
    a, _ = load_run(tmp_path / "branch")
    b, _ = load_run(tmp_path / "scratch")
    assert a.config.sampling == "signed"
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    train_hoisdf(data, tmp_path / "base", cfg, tcfg, stop_after=4)  # into the field phase
    with pytest.raises(HalohandInputError, match="past the shared phase"):
        branch_run(tmp_path / "base", tmp_path / "late", variant, tcfg)
    with pytest.raises(HalohandInputError, match="more than its sampling"):
        branch_run(tmp_path / "scratch", tmp_path / "x", HOISDFConfig(**{**TINY, "grid": 7}), tcfg)


def test_study_splits_hold_out_the_last_grasps_of_each_object() -> None:
    from halohand.apps.handobject_data import split_indices

    ids = np.array(["a", "b", "a", "a", "b", "c"])
    assert split_indices(ids, 1) == ([0, 2, 1], [3, 4, 5])
    assert split_indices(ids, 0) == ([0, 2, 3, 1, 4, 5], [])


def test_data_hoi_command_renders_the_study_splits_and_resumes(monkeypatch, capsys, tmp_path):
    from halo_fakes import run_cli

    grasps = _grasp_dir(tmp_path)
    out = tmp_path / "data"
    args = ["data", "hoi", "--out", out, "--train-grasps", grasps, "--test-grasps", grasps,
            "--views", "2", "--heldout-views", "1", "--heldout-per-object", "1",
            "--size", "32", "--samples", "64", "--renderer", "numpy"]  # fmt: skip
    code, stdout, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    shards = {s: sorted(p.name for p in (out / s / "shards").iterdir()) for s in
              ("train", "heldout_scenes", "heldout_objects")}  # fmt: skip
    assert shards == {
        "train": ["g_00000.npz"], "heldout_scenes": ["g_00001.npz"],
        "heldout_objects": ["g_00000.npz", "g_00001.npz"],
    }  # fmt: skip
    assert np.load(out / "train" / "shards" / "g_00000.npz")["images"].shape == (2, 32, 32, 3)
    code, stdout, err = run_cli(monkeypatch, capsys, *args)  # a rerun makes nothing new
    rows = [line for line in stdout.splitlines() if line.startswith("{")]
    assert code == 0 and len(rows) == 3 and all('"made": 0' in row for row in rows)
    for bad, says in (
        (["--splits", "train,bogus"], "splits must be among"),
        (["--views", "0"], "--views"),
        (["--renderer", "vulkan"], "--renderer must be one of auto, egl, numpy"),
    ):
        code, _, err = run_cli(monkeypatch, capsys, *args, *bad)
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    code, _, err = run_cli(monkeypatch, capsys, "data", "hoi", "--out", tmp_path / "o2",
                           "--splits", "heldout_objects", "--train-grasps", grasps)  # fmt: skip
    assert code == 2 and "needs --test-grasps" in err
    assert not (tmp_path / "o2").exists()


def test_a_plain_model_can_train_on_its_own_test_time_draw(split: Path) -> None:
    """``plain_points="sampler"``: the no-SDF model's training points are drawn as at test
    time (points that project into the image first), not anywhere in the cube."""
    from halohand.training.hoisdf import _forward_train

    data = load_hoi(split / "a", 32)
    model = HOISDF(HOISDFConfig(**{**TINY, "sdf": False}))
    b = data.batch(torch.arange(2), n_sdf=16, k_near=8)
    outside = {}
    for how in ("cube", "sampler"):
        out = _forward_train(model, b, False, torch.Generator().manual_seed(0), how)
        pts = torch.cat([out["hand_points"], out["object_points"]], 1)
        _, inside = model.image_features(model.encode(b["images"])[0], pts, b["intrinsics"],
                                         b["root"])  # fmt: skip
        outside[how] = float((~inside).float().mean())
    assert outside["sampler"] == 0.0 and outside["cube"] > 0.1
    with pytest.raises(HalohandInputError, match="plain_points"):
        HOISDFTrainConfig(plain_points="grid")


CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "experiments" / "hoisdf"


def _read_config(path: Path) -> tuple[dict, dict]:
    import tomllib

    doc = tomllib.loads(path.read_text())
    return doc.get("model", {}), doc.get("train", {})


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_study_config_is_accepted(path: Path) -> None:
    model, train = _read_config(path)
    HOISDFConfig.from_dict(model)
    HOISDFTrainConfig(**train)


@pytest.mark.parametrize(
    ("run", "twin", "fields"),
    [
        ("eq4_sdf_uniform_s0", "eq3_sdf_uniform_s0", {"max_seconds"}),
        ("eq4_sdf_uniform_s1", "eq3_sdf_uniform_s1", {"max_seconds"}),
        ("eq4_nosdf_s0", "eq3_nosdf_s0", {"max_seconds"}),
        ("eq4_nosdf_s1", "eq3_nosdf_s1", {"max_seconds"}),
        ("gpu_nosdf", "gpu_sdf", {"sdf", "sampling", "augment", "plain_points"}),
    ],
)
def test_paired_configs_differ_only_in_the_named_fields(run: str, twin: str, fields: set) -> None:
    """Each arm of an equal-time pair is its twin but for the fields named here."""
    a, b = (_read_config(CONFIGS / f"{name}.toml") for name in (run, twin))
    differ = set()
    for x, y in zip(a, b, strict=True):
        differ |= {k for k in x.keys() | y.keys() if x.get(k) != y.get(k)}
    assert differ == fields
