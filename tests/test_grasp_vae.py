"""HALO-VAE: network pieces against closed forms, losses, training (exact resume), sampling,
refinement, evaluation and the ``halohand grasp`` commands on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from halo_fakes import hand_keypoints, run_cli

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.grasp.energies import bone_lengths, interior_points, interpenetration
from halohand.grasp.vae import (
    GraspVAE,
    ResnetPointNet,
    VAEConfig,
    kl_divergence,
    load_vae,
    rotation_6d_to_matrix,
    save_vae,
)
from halohand.objects.registry import load_object
from halohand.training.grasp_vae import (
    GraspData,
    VAETrainConfig,
    grasp_losses,
    load_vae_config,
    train_vae,
)

TINY = {"object_dim": 16, "object_hidden": 16, "object_blocks": 2, "width": 32, "latent": 4}


@pytest.fixture(scope="module")
def halo():
    """A model of this module's own: train_vae freezes the parameters of the HALO it is
    given, which must not leak into other modules' shared model."""
    from halohand.inference.halo import HALO

    return HALO.pretrained()


def _grasp_near(obj_id: str, gesture: str, shift: float) -> np.ndarray:
    """A right hand whose palm faces the object's +x side, ``shift`` m beyond its surface."""
    kp = hand_keypoints(gesture)
    obj = load_object(obj_id)
    kp = kp - kp[[0, 5, 9, 13, 17]].mean(0)
    return kp + np.array([obj.mesh.bounds[1, 0] + shift, 0.0, 0.0])


@pytest.fixture(scope="module")
def grasp_dir(tmp_path_factory) -> Path:
    """Two objects x 4 right-hand 'grasps' in the engine's shard format (+ rejected, left)."""
    root = tmp_path_factory.mktemp("grasps")
    for oid in ("box_0", "sphere_0"):
        kp = np.stack(
            [
                _grasp_near(oid, g, 0.02)
                for g in ("relaxed", "cylinder", "sphere", "tripod", "pinch", "relaxed")
            ]
        )
        (root / oid).mkdir()
        np.savez(
            root / oid / "batch_00000.npz", keypoints=kp.astype(np.float32),
            accepted=np.array([1, 1, 1, 1, 0, 1], bool),
            side=np.array(["right"] * 5 + ["left"]), object_id=np.array(oid),
        )  # fmt: skip
    return root


# -- network pieces ----------------------------------------------------------------------------


def test_pointnet_is_permutation_invariant() -> None:
    torch.manual_seed(0)
    net = ResnetPointNet(out=8, hidden=16, blocks=3)
    pts = torch.randn(2, 50, 3)
    perm = torch.randperm(50)
    torch.testing.assert_close(net(pts), net(pts[:, perm]))
    assert not torch.allclose(net(pts)[0], net(pts * 2)[0])


def test_kl_matches_torch_distributions() -> None:
    torch.manual_seed(0)
    mean, log_std = torch.randn(5, 4), 0.3 * torch.randn(5, 4)
    q = torch.distributions.Normal(mean, log_std.exp())
    p = torch.distributions.Normal(torch.zeros(4), torch.ones(4))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(kl_divergence(mean, log_std), expected)
    assert float(kl_divergence(torch.zeros(1, 3), torch.zeros(1, 3))) == 0.0


def test_rotation_6d_is_a_rotation() -> None:
    torch.manual_seed(0)
    r = rotation_6d_to_matrix(torch.randn(10, 6))
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3).expand(10, 3, 3))
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(10))
    eye = rotation_6d_to_matrix(torch.tensor([1.0, 0, 0, 0, 1, 0]))
    torch.testing.assert_close(eye, torch.eye(3))


def test_pose_decoder_at_zero_is_the_flat_mean_hand() -> None:
    """Zero decoder output = zero angles, identity rotation, mean identity (closed form)."""
    from halohand.handmodel.torch_model import TorchHandModel

    model = GraspVAE(VAEConfig(output="pose", **TINY))
    layer = model.pose_layer
    kp = layer(torch.zeros(2, 72, dtype=torch.float64))
    hand = TorchHandModel()
    ones = torch.ones(2, 16, dtype=torch.float64)
    pw = torch.ones(2, dtype=torch.float64)
    length = layer.mean_length.expand(2).double()
    ref = hand(torch.zeros(2, 15, 3), ones, pw, hand.scale_for_hand_length(length, ones, pw))
    torch.testing.assert_close(kp, ref.keypoints * 100.0)
    # Hand length (wrist to middle tip along the chain) is the identity prior's mean.
    chain = kp[0, [0, 9, 10, 11, 12]]
    got = torch.linalg.vector_norm(chain[1:] - chain[:-1], dim=-1).sum() / 100.0
    assert abs(float(got) - float(layer.mean_length)) < 1e-6


def test_save_load_round_trip_and_bad_files(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = GraspVAE(VAEConfig(**TINY)).eval()
    path = save_vae(tmp_path / "m.safetensors", model, {"note": "x"})
    loaded, meta = load_vae(path)
    assert meta == {"note": "x"} and loaded.config == model.config
    cloud = torch.randn(100, 3) * 3
    a = model.sample(cloud, 3, torch.Generator().manual_seed(1))
    b = loaded.sample(cloud, 3, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    assert a.shape == (3, 21, 3)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CorruptFileError, match="bad.safetensors"):
        load_vae(bad)
    with pytest.raises(HalohandInputError, match="no such"):
        load_vae(tmp_path / "missing.safetensors")
    with pytest.raises(HalohandInputError, match="output"):
        VAEConfig(output="mano")


# -- losses -------------------------------------------------------------------------------------


def test_losses_vanish_for_a_perfect_reconstruction() -> None:
    kp = torch.tensor(np.stack([hand_keypoints("relaxed"), hand_keypoints("pinch")]) * 100.0)
    cfg = VAETrainConfig()
    total, terms = grasp_losses(kp.float(), kp.float(), None, None, cfg, angles=True)
    assert set(terms) == {"joints", "bones", "root_angles", "plane_angles", "angles"}
    assert all(abs(v) < 1e-5 for v in terms.values()) and float(total) < 1e-4
    # A rigid motion changes the joints term but no bone length or angle.
    rot = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64)
    _, moved = grasp_losses((kp @ rot.T).float(), kp.float(), None, None, cfg, angles=True)
    assert moved["joints"] > 1.0
    assert max(moved[k] for k in ("bones", "root_angles", "plane_angles", "angles")) < 1e-4
    # Bone lengths in closed form: a 2x larger hand has 2x longer bones.
    torch.testing.assert_close(bone_lengths(2 * kp), 2 * bone_lengths(kp))


def test_interpenetration_inside_vs_away_and_gradient(halo) -> None:
    kp = torch.tensor(hand_keypoints("relaxed") * 100.0, requires_grad=True)
    palm = kp.detach()[[0, 5, 9, 13, 17]].mean(0)
    # Points at the palm centre are inside the hand; points 30 cm away are not.
    inside = palm + 0.2 * torch.randn(1, 16, 3, generator=torch.Generator().manual_seed(0))
    away = inside + torch.tensor([30.0, 0.0, 0.0])
    assert float(interpenetration(halo, kp[None].detach(), inside.float()).detach()) > 0.5
    assert float(interpenetration(halo, kp[None].detach(), away.float())) == 0.0
    # The gradient flows where the occupancy is above 0.5 but not saturated (deep inside,
    # float32's sigmoid is exactly 1 and passes none): points within 3 cm of the palm centre
    # that the model puts in that band.
    near = palm + 3.0 * (torch.rand(400, 3, generator=torch.Generator().manual_seed(1)) - 0.5)
    occ = halo.occupancy(near.float() / 100.0, kp.detach() / 100.0, units="m")
    band = near[(occ > 0.6) & (occ < 0.99)]
    assert len(band) >= 4
    interpenetration(halo, kp[None], band[None].float()).sum().backward()
    assert torch.isfinite(kp.grad).all() and kp.grad.abs().sum() > 0


# -- data and training --------------------------------------------------------------------------


def test_grasp_data_keeps_accepted_right_hands_and_rotates_together(grasp_dir: Path) -> None:
    data = GraspData(grasp_dir, object_points=64, clouds_per_object=1, interior_bank=32)
    assert data.object_ids == ["box_0", "sphere_0"] and len(data) == 8  # 4 accepted right each
    box = load_object("box_0")
    assert box.contains(data.interiors[0].numpy() / 100.0).all()
    gen = torch.Generator().manual_seed(0)
    b = data.batch(gen, objects=2, per_object=3, interior=5, rotate_z=True)
    assert b["clouds"].shape == (2, 64, 3) and b["keypoints"].shape == (6, 21, 3)
    assert b["interiors"].shape == (6, 5, 3)
    for i in range(6):
        kp, cloud = b["keypoints"][i], b["clouds"][b["group"][i]]
        # The grasp it came from: same heights and distances from the z axis (a z rotation)...
        sig = torch.cat([kp[:, 2], kp[:, :2].norm(dim=-1)])
        src = [j for j in range(len(data))
               if torch.allclose(torch.cat([data.keypoints[j][:, 2],
                                            data.keypoints[j][:, :2].norm(dim=-1)]), sig,
                                 atol=1e-4)]  # fmt: skip
        assert src, "batch grasp is not a z-rotation of a data grasp"
        j = src[0]
        obj = int(data.grasp_object[j])
        # ... rotated together with its object: keypoint-to-cloud distances are unchanged.
        torch.testing.assert_close(
            torch.cdist(kp, cloud), torch.cdist(data.keypoints[j], data.clouds[obj, 0]),
            atol=1e-3, rtol=0,
        )  # fmt: skip
        assert not torch.allclose(kp, data.keypoints[j], atol=1e-3)  # it did rotate
    pts = interior_points(box, 100, seed=0)
    assert box.contains(pts).all() and pts.shape == (100, 3)


def test_training_resumes_exactly_and_logs(grasp_dir: Path, tmp_path: Path, halo) -> None:
    data = GraspData(grasp_dir, object_points=64, clouds_per_object=2, interior_bank=32)

    def cfg(out: Path) -> VAETrainConfig:
        return VAETrainConfig(
            grasps=str(grasp_dir), out_dir=str(out), model=VAEConfig(**TINY), steps=6,
            objects_per_batch=2, grasps_per_object=2, object_points=64, interior_points=4,
            warmup_fraction=0.5, log_every=1, checkpoint_every_s=1e9,
        )  # fmt: skip

    full = train_vae(cfg(tmp_path / "a"), progress=False, halo=halo, data=data)
    assert full["finished"] and full["steps"] == 6
    part = train_vae(cfg(tmp_path / "b"), progress=False, halo=halo, data=data, stop_after=4)
    assert not part["finished"] and part["steps"] == 4
    with pytest.raises(HalohandInputError, match="resume"):
        train_vae(cfg(tmp_path / "b"), progress=False, halo=halo, data=data)
    rest = train_vae(cfg(tmp_path / "b"), resume=True, progress=False, halo=halo, data=data)
    assert rest["finished"]
    a, _ = load_vae(tmp_path / "a" / "model.safetensors")
    b, _ = load_vae(tmp_path / "b" / "model.safetensors")
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(va, vb, msg=ka)
    log_a = (tmp_path / "a" / "log.csv").read_text().splitlines()
    log_b = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert len(log_a) == 7 and [r.split(",")[0] for r in log_b] == [r.split(",")[0] for r in log_a]
    import csv

    last = list(csv.DictReader(log_a))[-1]
    assert last["interpenetration"] != "" and last["hand_frame"] == ""  # after warm-up
    other = cfg(tmp_path / "b")
    other.lr = 1e-3
    with pytest.raises(HalohandInputError, match="another config"):
        train_vae(other, resume=True, progress=False, halo=halo, data=data)


def test_config_file_errors(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("steps = 5\nbogus = 1\n")
    with pytest.raises(HalohandInputError, match="bogus"):
        load_vae_config(p)
    p.write_text("steps = 0\n")
    with pytest.raises(HalohandInputError, match="steps"):
        load_vae_config(p)
    p.write_text("lr = nan\n")
    with pytest.raises(HalohandInputError, match="finite"):
        load_vae_config(p)
    p.write_text('[model]\noutput = "pose"\n')
    assert load_vae_config(p, steps=7).model.output == "pose"
    assert load_vae_config(p, steps=7).steps == 7


# -- sampling, refinement, evaluation ----------------------------------------------------------


def test_refinement_moves_a_penetrating_hand_out(halo) -> None:
    from halohand.grasp.generate import refine_translation

    sphere = load_object("sphere_0")
    kp = _grasp_near("sphere_0", "relaxed", -0.015)[None]  # palm 15 mm inside the sphere
    out = refine_translation(halo, kp, sphere, steps=10)
    assert out.shape == kp.shape
    shift = out[0] - kp[0]
    np.testing.assert_allclose(shift - shift[0], 0.0, atol=1e-12)  # one translation per hand
    assert shift[0, 0] > 0.003  # pushed out along +x (out of the sphere)

    inner = torch.tensor(interior_points(sphere, 256, 0) * 100.0)[None].float()

    def pen(k: np.ndarray) -> float:
        return float(interpenetration(halo, torch.tensor(k * 100.0).float(), inner))

    assert pen(out) < pen(kp)


def test_refinement_adam_matches_torch_optim() -> None:
    from halohand.grasp.generate import _adam_step

    torch.manual_seed(0)
    x0 = torch.randn(4, 1, 3, dtype=torch.float64)
    weights = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return (x**2 * weights).sum() + x.sin().sum()

    a = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([a], lr=0.8)
    b = x0.clone().requires_grad_(True)
    moments = (torch.zeros_like(b), torch.zeros_like(b))
    for k in range(10):
        lr = 0.8 * 0.5 * (1 + np.cos(np.pi * k / 10))
        opt.param_groups[0]["lr"] = lr
        opt.zero_grad()
        f(a).backward()
        opt.step()
        (g,) = torch.autograd.grad(f(b), b)
        with torch.no_grad():
            _adam_step(b, g, moments, k, lr)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert (a - x0).abs().max() > 0.1  # it moved


def test_penetration_probes_lie_inside_and_fill_the_shell() -> None:
    from halohand.grasp.generate import penetration_probes

    box = load_object("box_0")
    probes = penetration_probes(box, 200, seed=1, shell_mm=10.0, shell_fraction=0.5)
    assert probes.shape == (200, 3)
    depth = -box.signed_distance(probes)
    assert (depth > 0.0).all()  # strictly inside
    assert (depth[100:] <= 0.010 + 1e-9).all()  # the shell half: at most 10 mm deep
    uniform = penetration_probes(box, 200, seed=1, shell_fraction=0.0)
    np.testing.assert_array_equal(uniform, interior_points(box, 200, 1))


def test_selection_keeps_the_touching_candidate_of_each_group(halo) -> None:
    from halohand.grasp.generate import select_grasps

    sphere = load_object("sphere_0")
    deep = _grasp_near("sphere_0", "relaxed", -0.02)  # palm 2 cm inside
    touching = _grasp_near("sphere_0", "relaxed", 0.0)
    far = _grasp_near("sphere_0", "relaxed", 0.2)  # no contact
    broken = touching.copy()
    broken[10] = broken[9]  # a zero-length bone
    # n = 2 groups: candidate i belongs to group i % 2.
    cands = np.stack([deep, far, touching, broken, far, deep])
    out = select_grasps(halo, cands, sphere, n=2, seed=0)
    assert out.shape == (2, 21, 3)
    np.testing.assert_array_equal(out[0], touching)  # group 0: deep, touching, far
    np.testing.assert_array_equal(out[1], deep)  # group 1: far, broken, deep


def test_generate_with_candidates_returns_n_grasps(halo) -> None:
    from halohand.grasp.generate import generate_grasps

    torch.manual_seed(0)
    vae = GraspVAE(VAEConfig(**TINY))
    box = load_object("box_0")
    gs = generate_grasps(vae, box, 3, seed=0, candidates=2, halo=halo)
    assert gs.keypoints.shape == (3, 21, 3) and "select" in gs.seconds
    with pytest.raises(HalohandInputError, match="candidates"):
        generate_grasps(vae, box, 3, candidates=0, halo=halo)


def test_evaluate_scores_a_far_and_a_touching_source(halo) -> None:
    from halohand.grasp.evaluate import evaluate_grasps

    def far(obj, n, seed):
        return np.stack([_grasp_near(obj.object_id, "relaxed", 0.2)] * n), 0.0

    def deep(obj, n, seed):
        return np.stack([_grasp_near(obj.object_id, "relaxed", -0.01)] * n), 0.0

    box = load_object("box_0")
    r_far = evaluate_grasps(far, [box], halo, n=2, resolution=32, progress=False)
    r_deep = evaluate_grasps(deep, [box], halo, n=2, resolution=32, progress=False)
    assert r_far["mean"]["intersection_cm3"] == 0.0 and r_far["mean"]["contact_ratio"] == 0.0
    assert r_far["mean"]["gap_mm"] > 100.0
    assert r_deep["mean"]["intersection_cm3"] > 1.0 and r_deep["mean"]["contact_ratio"] == 1.0
    assert np.isnan(r_far["mean"]["diversity_entropy"])  # 2 grasps < 20 clusters


# -- CLI ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_grasp_mesh_command_writes_meshes_keypoints_sheet(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    torch.manual_seed(0)
    model = save_vae(tmp_path / "vae.safetensors", GraspVAE(VAEConfig(**TINY)), {})
    mesh_path = tmp_path / "box_mm.stl"
    (load_object("box_0").mesh.copy().apply_scale(1000.0)).export(mesh_path)
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        monkeypatch, capsys, "grasp", str(mesh_path), "--n", "2", "--out-dir", str(out),
        "--model", str(model), "--resolution", "32", "--refine", "--seed", "3",
    )  # fmt: skip
    assert code == 0, err
    kp = np.load(out / "keypoints.npy")
    assert kp.shape == (2, 21, 3) and np.isfinite(kp).all()
    names = sorted(p.name for p in out.iterdir())
    assert {
        "grasp_00.ply",
        "grasp_01.ply",
        "object.ply",
        "contact_sheet.png",
        "grasps.json",
    } <= set(names)
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]  # no leftovers
    import trimesh

    obj = trimesh.load(out / "object.ply")
    np.testing.assert_allclose(obj.bounds, trimesh.load(mesh_path).bounds, atol=1e-3)  # mm
    summary = json.loads((out / "grasps.json").read_text())
    assert summary["refine"] is True and summary["candidates"] == 4


def test_grasp_evaluate_command_on_a_mesh_file(tmp_path: Path, monkeypatch, capsys) -> None:
    torch.manual_seed(0)
    model = save_vae(tmp_path / "vae.safetensors", GraspVAE(VAEConfig(**TINY)), {})
    mesh_path = tmp_path / "can_cm.stl"
    (load_object("cylinder_0").mesh.copy().apply_scale(100.0)).export(mesh_path)  # cm
    out = tmp_path / "eval.json"
    code, _, err = run_cli(
        monkeypatch, capsys, "grasp", "evaluate", "--model", str(model), "--objects",
        str(mesh_path), "--n", "2", "--resolution", "32", "--refine", "--candidates", "2",
        "--json", str(out), "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["candidates"] == 2 and doc["objects"][0]["object"] == "can_cm"
    assert doc["mean"]["grasps"] + doc["mean"]["invalid"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["grasp", "nosuch.obj", "--out-dir", "OUT", "--model", "MODEL"], "no such mesh file"),
        (["grasp", "box_0", "--n", "0", "--out-dir", "OUT", "--model", "MODEL"], "--n"),
        (
            ["grasp", "box_0", "--candidates", "0", "--out-dir", "OUT", "--model", "MODEL"],
            "--candidates",
        ),
        (["grasp", "box_0", "--out-dir", "OUT", "--model", "BAD"], "grasp model"),
        (["grasp", "evaluate", "--model", "MODEL", "--engine", "OUT"], "at most one"),
        (["grasp", "evaluate", "--objects", "nosuch_3"], "unknown object"),
        (["grasp", "train", "--config", "NOPE.toml"], "config file not found"),
    ],
)
def test_grasp_commands_bad_input(tmp_path, monkeypatch, capsys, args, message) -> None:
    model = save_vae(tmp_path / "vae.safetensors", GraspVAE(VAEConfig(**TINY)), {})
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    sub = {"OUT": str(tmp_path / "o"), "MODEL": str(model), "BAD": str(bad),
           "NOPE.toml": str(tmp_path / "nope.toml")}  # fmt: skip
    code, _, err = run_cli(monkeypatch, capsys, *[sub.get(a, a) for a in args])
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "keypoints.npy").exists()


def test_shipped_grasp_model_samples_hands_on_the_object() -> None:
    """The shipped VAE gives hand-sized skeletons whose fingers reach a held-out object."""
    from halohand.grasp.generate import generate_grasps, shipped_model_path

    vae, meta = load_vae(shipped_model_path())
    assert meta["finished"] and "cylinder_4" not in meta["objects"]  # held out
    obj = load_object("cylinder_4")
    kp = generate_grasps(vae, obj, 16, seed=0).keypoints
    assert kp.shape == (16, 21, 3) and np.isfinite(kp).all()
    chain = kp[:, [0, 9, 10, 11, 12]]
    length = np.linalg.norm(np.diff(chain, axis=1), axis=-1).sum(-1)
    assert ((length > 0.13) & (length < 0.25)).all()  # metres, wrist to middle tip
    tips = kp[:, [4, 8, 12, 16, 20]].reshape(-1, 3)
    d = obj.signed_distance(tips).reshape(16, 5)
    assert np.median(np.abs(d).min(1)) < 0.02  # the nearest fingertip touches (2 cm)
    # Different latent draws give different hands.
    assert np.linalg.norm(kp - kp.mean(0), axis=-1).mean() > 0.01


def test_hand_frame_decoder_places_hand_frame_keypoints_rigidly() -> None:
    from halohand.canonical import canonicalize

    torch.manual_seed(0)
    model = GraspVAE(VAEConfig(output="hand_frame", **TINY))
    z, code = torch.randn(3, 4), torch.randn(3, 16)
    kp, local = model.decode_parts(z, code)
    assert kp.shape == local.shape == (3, 21, 3)
    # Rigid placement: all pairwise distances of the hand-frame keypoints are kept.
    torch.testing.assert_close(torch.cdist(kp, kp), torch.cdist(local, local), atol=1e-4, rtol=0)
    # The hand-frame term is zero exactly for the target's normalized keypoints.
    target = torch.tensor(hand_keypoints("tripod") * 100.0)[None].float()
    normalized = canonicalize(target.double(), "right").normalized_keypoints.float()
    _, terms = grasp_losses(target, target, None, None, VAETrainConfig(), angles=False,
                            local=normalized)  # fmt: skip
    assert terms["hand_frame"] < 1e-8
    _, terms = grasp_losses(target, target, None, None, VAETrainConfig(), angles=False,
                            local=target)  # fmt: skip
    assert terms["hand_frame"] > 1.0  # object-frame keypoints are not hand-frame ones
