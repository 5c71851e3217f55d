"""``halohand contact``: outputs of a hand and a ball refined together, and bad input."""

from __future__ import annotations

import json

import numpy as np
import trimesh
from halo_fakes import run_cli

from halohand.training.keypoint_refiner import hand_bank


def _scene(tmp_path):
    kp = hand_bank(1, 8)[0].numpy() + [0.0, 0.0, 0.4]
    away = np.cross(kp[8] - kp[7], kp[5] - kp[9])
    away /= np.linalg.norm(away)
    pose = np.eye(4)
    pose[:3, 3] = kp[8] + away * (0.03 - 0.008)  # the index tip 8 mm inside the ball
    trimesh.creation.icosphere(subdivisions=3, radius=0.03).export(tmp_path / "ball.stl")
    np.save(tmp_path / "kp.npy", kp * 1000.0)  # millimetres: units are read off the size
    np.save(tmp_path / "pose.npy", pose)
    return kp, pose


def test_contact_writes_refined_scene(monkeypatch, capsys, tmp_path):
    kp, pose = _scene(tmp_path)
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        monkeypatch, capsys, "contact", tmp_path / "kp.npy", "--object", tmp_path / "ball.stl",
        "--object-units", "m", "--pose", tmp_path / "pose.npy", "--out-dir", out,
        "--steps", "25", "--resolution", "48",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "kp_contact.json", "kp_hand.ply", "kp_scene.glb"
    ]  # fmt: skip
    report = json.loads((out / "kp_contact.json").read_text())
    assert "index" in report["contact_fingers"]
    assert report["overlap_after_cm3"] < 0.5 * report["overlap_before_cm3"]
    assert np.asarray(report["keypoints_m"]).shape == (21, 3)
    scene = trimesh.load(out / "kp_scene.glb")
    assert len(scene.geometry) == 2
    assert "overlap" in stdout


def test_contact_reads_mano_style_tips_and_answers_in_them(
    monkeypatch, capsys, tmp_path, shipped_halo
):
    """Skin-tipped keypoints (HO3D, DexYCB) are refined in the model's placement (the tips
    its file names moved) and come back in their own; ``--convention rig`` takes them as
    they are."""
    from halohand.skeleton.conventions import from_rig, to_rig

    kp, pose = _scene(tmp_path)
    np.save(tmp_path / "skin.npy", from_rig(kp, ["mano"]) * 1000.0)
    readings = {}
    for convention in ("auto", "rig"):
        out = tmp_path / convention
        code, _, err = run_cli(
            monkeypatch, capsys, "contact", tmp_path / "skin.npy", "--object",
            tmp_path / "ball.stl", "--object-units", "m", "--pose", tmp_path / "pose.npy",
            "--out-dir", out, "--steps", "3", "--resolution", "32", "--convention", convention,
        )  # fmt: skip
        assert code == 0, err
        report = json.loads((out / "skin_contact.json").read_text())
        readings[convention] = report["convention"]
        user, rig = np.asarray(report["keypoints_m"]), np.asarray(report["keypoints_rig_m"])
        if convention == "auto":
            assert "read as MANO-style" in err and err.startswith("warning: ")
            moved = to_rig(user, ["mano"], fingers=shipped_halo.moved_tips)
            np.testing.assert_allclose(moved, rig, atol=1e-9)
            tips = [8, 12, 16, 20]  # moved out to the skin: 6-12 mm past the model's joints
            assert (np.linalg.norm(user[tips] - rig[tips], axis=1) > 0.004).all()
        else:
            assert err == "" and np.array_equal(user, rig)
    assert readings == {"auto": "mano", "rig": "rig"}
    code, _, err = run_cli(
        monkeypatch, capsys, "contact", tmp_path / "skin.npy", "--object",
        tmp_path / "ball.stl", "--convention", "openpose", "--out-dir", tmp_path / "bad",
    )  # fmt: skip
    assert code == 2 and "unknown keypoint convention" in err
    assert not (tmp_path / "bad").exists()


def test_contact_bad_input_exits_2(monkeypatch, capsys, tmp_path):
    _scene(tmp_path)
    np.save(tmp_path / "bad_pose.npy", np.diag([2.0, 1.0, 1.0, 1.0]))
    code, _, err = run_cli(
        monkeypatch, capsys, "contact", tmp_path / "kp.npy", "--object", tmp_path / "ball.stl",
        "--pose", tmp_path / "bad_pose.npy", "--out-dir", tmp_path / "o",
    )  # fmt: skip
    assert code == 2 and "rigid" in err and len(err.strip().splitlines()) == 1
    np.save(tmp_path / "two.npy", np.zeros((2, 21, 3)))
    code, _, err = run_cli(
        monkeypatch, capsys, "contact", tmp_path / "two.npy", "--object", tmp_path / "ball.stl",
    )  # fmt: skip
    assert code == 2 and "give one hand" in err
    assert not (tmp_path / "o").exists()


def test_reconstruct_refine_moves_noisy_hands_toward_a_hand(monkeypatch, capsys, tmp_path):
    """``halohand reconstruct --refine``: single hands and a pair are cleaned before meshing
    (the skeleton the mesh file records is the refined one)."""
    bank = hand_bank(2, 4).numpy()
    rng = np.random.default_rng(0)
    right = bank[0] + [0.0, 0.0, 0.4]
    left = bank[1] * [-1.0, 1.0, 1.0] + [0.12, 0.0, 0.4]
    noisy = right + rng.normal(0, 0.01, right.shape)
    np.save(tmp_path / "one.npy", noisy)
    np.save(tmp_path / "both.npy", np.stack([noisy, left + rng.normal(0, 0.01, left.shape)]))
    out = tmp_path / "out"
    for args in ([tmp_path / "one.npy"], [tmp_path / "both.npy", "--pair"]):
        code, stdout, err = run_cli(
            monkeypatch, capsys, "reconstruct", *args, "--refine", "--resolution", "32",
            "--out-dir", out,
        )  # fmt: skip
        assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["both_left.ply", "both_pair.glb", "both_right.ply", "one.ply"]
    plain = tmp_path / "plain"
    code, _, err = run_cli(
        monkeypatch, capsys, "reconstruct", tmp_path / "one.npy", "--resolution", "32",
        "--out-dir", plain,
    )  # fmt: skip
    assert code == 0, err
    a = trimesh.load(out / "one.ply", process=False)
    b = trimesh.load(plain / "one.ply", process=False)
    assert not np.allclose(a.bounds, b.bounds)  # the refined skeleton gives another mesh
