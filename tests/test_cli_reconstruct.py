"""``halohand reconstruct`` / ``halohand occupancy``: outputs, naming, units, bad input.

Most runs are in-process (``halohand.apps.cli.main`` with the analytic capsule net patched in);
two subprocess runs check the installed entry point end to end with a real (tiny) model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from halo_fakes import CapsuleNet, hand_keypoints, run_cli, write_bad_files

from halohand.apps.cli import reconstruct as reconstruct_cli
from halohand.fields import OccupancyConfig, OccupancyNetwork, save_model
from halohand.inference import halo as api
from halohand.inference.halo import HALO
from halohand.skeleton import from_openpose, mirror

RES = "32"


@pytest.fixture(scope="module")
def kp() -> np.ndarray:
    return hand_keypoints("spread")


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch, kp: np.ndarray) -> HALO:
    model = HALO(CapsuleNet(kp))
    monkeypatch.setattr(reconstruct_cli, "_load_model", lambda checkpoint, device: model)
    return model


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_single_and_sequence_outputs(monkeypatch, capsys, tmp_path, kp, fake_model) -> None:
    np.save(tmp_path / "r00.npy", kp)
    np.save(tmp_path / "seq.npy", np.stack([kp, kp + 0.01, kp + 0.02]) * 1000)  # millimetres
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        monkeypatch, capsys, "reconstruct", tmp_path / "r00.npy", tmp_path / "seq.npy",
        "--out-dir", out, "--resolution", RES,
    )  # fmt: skip
    assert code == 0, err
    assert "wrote 4 meshes" in stdout
    assert files(out) == ["r00.ply", "seq_0000.ply", "seq_0001.ply", "seq_0002.ply"]
    single = trimesh.load(out / "r00.ply", process=False)
    assert single.is_watertight and len(single.faces) > 100
    assert len(np.unique(single.visual.vertex_colors, axis=0)) > 8  # part colours
    frames = [trimesh.load(out / f"seq_{i:04d}.ply", process=False) for i in range(3)]
    # same frame and units as the input: millimetres, shifted by 10 mm per frame
    np.testing.assert_allclose(frames[0].vertices, single.vertices * 1000, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(frames[2].vertices, frames[0].vertices + 20, atol=1e-3)


def test_json_txt_formats_and_extensions(monkeypatch, capsys, tmp_path, kp, fake_model) -> None:
    doc = {
        "order": "openpose",
        "units": "cm",
        "side": "left",
        "keypoints": (mirror(kp) * 100).tolist(),
    }
    (tmp_path / "hand_keypoints.json").write_text(json.dumps(doc))
    np.savetxt(tmp_path / "mano.txt", from_openpose(kp, "mano"))
    out = tmp_path / "out"
    code, _, err = run_cli(
        monkeypatch, capsys, "reconstruct", tmp_path / "hand_keypoints.json", "--out-dir", out,
        "--ext", "glb", "--resolution", RES,
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(
        monkeypatch, capsys, "reconstruct", tmp_path / "mano.txt", "--out-dir", out,
        "--format", "mano", "--ext", "obj", "--resolution", RES,
    )  # fmt: skip
    assert code == 0, err
    assert files(out) == ["hand_keypoints.glb", "mano.obj"]
    scene = trimesh.load(out / "hand_keypoints.glb")
    assert {"hand", "skeleton", "keypoints"} <= set(scene.geometry)
    left = scene.geometry["hand"]
    right = fake_model.reconstruct(kp, resolution=int(RES))
    # the file's side (left) and units (cm) were used: the mirror image, in centimetres
    assert abs(abs(left.volume) / (right.volume * 1e6) - 1) < 1e-3
    np.testing.assert_allclose(left.bounds[:, 1:], right.bounds[:, 1:] * 100, atol=1e-4)
    np.testing.assert_allclose(left.bounds[::-1, 0], -right.bounds[:, 0] * 100, atol=1e-4)
    obj = trimesh.load(out / "mano.obj", process=False)
    np.testing.assert_allclose(obj.bounds, right.bounds, atol=1e-6)


def _bad_cases(tmp_path: Path, kp: np.ndarray) -> list[tuple[str, list[str], str]]:
    """(id, CLI arguments after ``reconstruct``, expected stderr fragment)."""
    cases = [(name, [str(tmp_path / file)], pattern.split("\\")[0][:12])
             for name, (file, pattern) in write_bad_files(tmp_path, kp).items()]  # fmt: skip
    zero = kp.copy()
    zero[10] = zero[9]
    np.save(tmp_path / "zero.npy", zero)
    np.save(tmp_path / "good.npy", kp)
    np.save(tmp_path / "huge.npy", kp * 17)
    good = str(tmp_path / "good.npy")
    cases += [
        ("zero_bone", [str(tmp_path / "zero.npy")], "zero"),
        ("no_unit", [str(tmp_path / "huge.npy")], "fits none of m/cm/mm"),
        ("format", [good, "--format", "kinect"], "unknown keypoint format"),
        ("units", [good, "--units", "inch"], "--units must be one of"),
        ("side", [good, "--side", "both"], "--side must be one of"),
        ("ext", [good, "--ext", "stl"], "unknown mesh format"),
        ("resolution", [good, "--resolution", "2"], "resolution must be"),
        ("second_bad", [good, str(tmp_path / "zero.npy")], "zero.npy"),
        ("collision", [good, str(tmp_path / "sub" / "good.json")], "would both write good.ply"),
    ]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "good.json").write_text(json.dumps(kp.tolist()))
    return cases


def test_bad_input_one_line_exit_2_no_output(monkeypatch, capsys, tmp_path, kp, fake_model):
    cases = _bad_cases(tmp_path, kp)
    assert len(cases) == 20
    for name, args, fragment in cases:
        out = tmp_path / f"out_{name}"
        code, stdout, err = run_cli(monkeypatch, capsys, "reconstruct", *args, "--out-dir", out)
        assert code == 2, (name, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, err)
        assert fragment in lines[0], (name, lines[0])
        assert files(out) == [], name


def test_missing_weights_and_bad_checkpoint(monkeypatch, capsys, tmp_path, kp) -> None:
    np.save(tmp_path / "r00.npy", kp)
    monkeypatch.setattr(api, "pretrained_path", lambda: None)
    out = tmp_path / "out"
    code, _, err = run_cli(
        monkeypatch, capsys, "reconstruct", tmp_path / "r00.npy", "--out-dir", out
    )
    assert code == 2 and "no pretrained weights shipped" in err and "--checkpoint" in err
    assert len(err.strip().splitlines()) == 1
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    code, _, err = run_cli(
        monkeypatch, capsys, "reconstruct", tmp_path / "r00.npy", "--out-dir", out,
        "--checkpoint", tmp_path / "junk.safetensors",
    )  # fmt: skip
    assert code == 2 and "junk.safetensors" in err and len(err.strip().splitlines()) == 1
    assert files(out) == []


def test_occupancy_command(monkeypatch, capsys, tmp_path, kp, fake_model) -> None:
    mids = 0.5 * (kp[[6, 10, 14, 18]] + kp[[7, 11, 15, 19]])
    pts = np.concatenate([mids, kp.mean(0) + [[0.2, 0, 0]]]) * 1000  # millimetres
    np.save(tmp_path / "kp.npy", kp * 1000)
    np.save(tmp_path / "pts.npy", pts)
    np.save(tmp_path / "kps.npy", np.stack([kp, kp + 0.05]) * 1000)
    code, stdout, err = run_cli(
        monkeypatch, capsys, "occupancy", tmp_path / "kp.npy", tmp_path / "pts.npy",
        "--out", tmp_path / "occ.npy",
    )  # fmt: skip
    assert code == 0, err
    occ = np.load(tmp_path / "occ.npy")
    assert occ.shape == (5,) and occ.dtype == np.float32
    assert (occ[:4] > 0.9).all() and occ[4] < 0.01 and "4 of 5 inside" in stdout
    code, _, err = run_cli(
        monkeypatch, capsys, "occupancy", tmp_path / "kps.npy", tmp_path / "pts.npy",
        "--out", tmp_path / "occ2.npy",
    )  # fmt: skip
    assert code == 0, err
    occ2 = np.load(tmp_path / "occ2.npy")
    assert occ2.shape == (2, 5) and (occ2[1, :4] < 0.5).all()  # second hand moved 5 cm
    np.save(tmp_path / "bad_pts.npy", np.zeros((5, 2)))
    code, _, err = run_cli(
        monkeypatch, capsys, "occupancy", tmp_path / "kp.npy", tmp_path / "bad_pts.npy",
        "--out", tmp_path / "occ3.npy",
    )  # fmt: skip
    assert code == 2 and "bad_pts.npy" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "occ3.npy").exists()


@pytest.mark.slow
def test_entry_point_end_to_end(tmp_path, kp) -> None:
    """The installed CLI with a real (tiny, random) model: exit 0 and a file; bad input: 2."""
    torch.manual_seed(0)
    model = save_model(
        tmp_path / "tiny.safetensors", OccupancyNetwork(OccupancyConfig(hidden=(8,)))
    )
    np.save(tmp_path / "r00.npy", kp)
    cmd = [sys.executable, "-m", "halohand.apps.cli", "reconstruct", str(tmp_path / "r00.npy"),
           "--out-dir", str(tmp_path / "out"), "--checkpoint", str(model),
           "--resolution", "16", "--ext", "glb"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert files(tmp_path / "out") == ["r00.glb"]
    (tmp_path / "r01.npy").write_bytes((tmp_path / "r00.npy").read_bytes()[:100])
    cmd[4] = str(tmp_path / "r01.npy")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "r01.npy" in proc.stderr and "truncated" in proc.stderr
    assert files(tmp_path / "out") == ["r00.glb"]


def test_touching_apart_meshes_a_fist_as_one_body_of_genus_0(
    monkeypatch, capsys, tmp_path, shipped_halo
) -> None:
    from halohand.handmodel.keyposes import load_key_poses
    from halohand.inference.bodies import body_stats

    monkeypatch.setattr(reconstruct_cli, "_load_model", lambda checkpoint, device: shipped_halo)
    fist = next(p for p in load_key_poses() if p.name == "fist")
    np.save(tmp_path / "fist.npy", fist.keypoints)
    genus = {}
    for touching in ("merge", "apart"):
        out = tmp_path / touching
        code, _, err = run_cli(
            monkeypatch, capsys, "reconstruct", tmp_path / "fist.npy", "--out-dir", out,
            "--resolution", "128", "--touching", touching,
        )  # fmt: skip
        assert code == 0, err
        mesh = trimesh.load(out / "fist.ply", process=False)
        stats = body_stats(mesh)
        assert mesh.is_watertight and stats.count == 1
        genus[touching] = int(stats.genus[0])
    assert genus["merge"] > 0 and genus["apart"] == 0
    code, _, err = run_cli(
        monkeypatch, capsys, "reconstruct", tmp_path / "fist.npy", "--out-dir",
        tmp_path / "bad", "--touching", "glue",
    )  # fmt: skip
    assert code == 2 and "--touching" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
