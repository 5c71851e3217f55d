"""Hard edges a new user or a fuzzer hits: each ends in one line on stderr, exit status 2,
no traceback, no numpy warning and nothing written."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from conftest import REPO

from halohand.apps import cli
from halohand.data.engine import generate
from halohand.handmodel.toy import ToyHandSource
from halohand.objects.registry import object_from_mesh


def _run(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr("sys.argv", ["halohand", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capsys.readouterr().err
    return int(exit_info.value.code or 0), err


@pytest.mark.parametrize("scale", [1e300, 1e308, 1e7])
@pytest.mark.parametrize("command", ["reconstruct", "check", "occupancy"])
def test_huge_coordinates_are_refused_before_any_arithmetic(
    tmp_path, monkeypatch, capsys, scale: float, command: str
) -> None:
    rng = np.random.default_rng(0)
    with np.errstate(over="ignore"):
        kp = rng.normal(size=(21, 3)) * scale
    path = tmp_path / "huge.npy"
    np.save(path, kp)
    out = tmp_path / "out"
    args = {
        "reconstruct": ["reconstruct", str(path), "--out-dir", str(out)],
        "check": ["check", str(path)],
        "occupancy": ["occupancy", str(path), str(path), "--out", str(out / "o.npy")],
    }[command]
    with np.errstate(all="raise"):  # any overflow in the check would raise, not warn
        code, err = _run(monkeypatch, capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Warning" not in err and not out.exists()


def test_text_meshes_with_latin1_comments_load(tmp_path) -> None:
    box = trimesh.creation.box((0.05, 0.04, 0.03))
    text = box.export(file_type="stl_ascii")
    path = tmp_path / "cad.stl"
    path.write_bytes(text.replace("solid", "solid Pi\xe8ce d\xe9coup\xe9e", 1).encode("latin-1"))
    obj = object_from_mesh(path, units="m")
    assert obj.mesh.is_watertight
    assert obj.mesh.volume == pytest.approx(0.05 * 0.04 * 0.03, rel=1e-6)


def test_evaluate_on_a_damaged_split_fails_before_meshing(tmp_path, monkeypatch, capsys) -> None:
    data = tmp_path / "hands"
    generate(data, {"train": 1, "val": 0, "test": 2}, seed=3, source=ToyHandSource(),
             workers=1, progress=False)  # fmt: skip
    shard = sorted((data / "test").glob("*.npz"))[0]
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    calls = []
    import halohand.inference.halo as halo_module

    monkeypatch.setattr(halo_module.HALO, "meshes", lambda *a, **k: calls.append(1))
    code, err = _run(
        monkeypatch, capsys, "evaluate", "--checkpoint",
        str(REPO / "src/halohand/weights/halo_default.safetensors"), "--data", str(data),
        "--split", "test", "--json", str(tmp_path / "e.json"),
    )  # fmt: skip
    assert code == 2 and "SHA-256 differs" in err and len(err.strip().splitlines()) == 1
    assert calls == [] and not (tmp_path / "e.json").exists()


def test_demo_into_a_file_fails_before_rendering(tmp_path, monkeypatch, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    code, err = _run(monkeypatch, capsys, "demo", "--out-dir", str(afile), "--frames", "2")
    assert code == 2 and "not a folder" in err and len(err.strip().splitlines()) == 1
    assert afile.read_text() == "keep me"


def _run_folder(folder):
    from halohand.training.run import Run

    return Run(
        folder, {"k": 1}, columns=("step", "loss"), format_tag="t", required=("step",),
        learning_rate=lambda s: 1e-3, checkpoint_every_s=60.0,
    )  # fmt: skip


def test_a_second_run_on_the_same_folder_is_refused(tmp_path) -> None:
    from halohand.core.errors import HalohandInputError

    first = _run_folder(tmp_path / "run")
    first.start()
    second = _run_folder(tmp_path / "run")
    with pytest.raises(HalohandInputError, match=r"in use by another training run \(pid \d+\)"):
        second.start()
    first.close()
    second.start()  # free again once the first session ended
    second.close()


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; sys.path.insert(0, sys.argv[1]); import test_first_contact as t; "
         "r = t._run_folder(sys.argv[2]); r.start(); print('locked', flush=True); "
         "time.sleep(60)", str(REPO / "tests"), str(folder)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        from halohand.core.errors import HalohandInputError

        with pytest.raises(HalohandInputError, match="in use"):
            _run_folder(folder).start()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        time.sleep(0.1)
        run = _run_folder(folder)
        run.start()  # the dead holder's lock file is still there, its lock is not
        assert (folder / "run.lock").read_text().strip() == str(os.getpid())
        run.close()
    finally:
        if holder.poll() is None:
            holder.kill()


def test_train_on_damaged_data_leaves_nothing(tmp_path, monkeypatch, capsys) -> None:
    data = tmp_path / "hands"
    generate(data, {"train": 2, "val": 1, "test": 0}, seed=3, source=ToyHandSource(),
             workers=1, progress=False)  # fmt: skip
    shard = sorted((data / "train").glob("*.npz"))[0]
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    shard.write_bytes(bytes(raw))
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(f'data = "{data}"\nmax_steps = 2\nbatch_size = 1\n')
    out = tmp_path / "run"
    code, err = _run(monkeypatch, capsys, "train", "--config", str(cfg), "--out", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["grasp", "examples/box_mm.stl", "--out-dir", "G", "--n", "100000000"], "at most 1,000"),
        (["grasp", "examples/box_mm.stl", "--out-dir", "G", "--n", "1000000"], "another --seed"),
        (["grasp", "examples/box_mm.stl", "--out-dir", "G", "--candidates", "10000"], "--candid"),
        (["grasp", "evaluate", "--n", "5000"], "--n must be at most"),
        (["grasp", "synthesize", "--out", "S", "--n-per-object", "10000000"], "--n-per-object"),
        (["data", "generate", "--out", "D", "--n-train", "100000000"], "--n-train must be"),
        (["data", "generate", "--out", "D", "--n-val", "-1"], "--n-val must be >= 0"),
        (
            [
                "evaluate",
                "--checkpoint",
                "M",
                "--data",
                "D",
                "--json",
                "J",
                "--surface-samples",
                "10**9",
            ],
            "--surface-samples must be at most",
        ),  # fmt: skip
    ],
)
def test_count_options_have_limits(tmp_path, monkeypatch, capsys, args, match) -> None:
    monkeypatch.chdir(REPO)
    args = [a.replace("10**9", str(10**9)) for a in args]
    args = [str(tmp_path / a) if a in ("S", "D", "M", "G", "J") else a for a in args]
    code, err = _run(monkeypatch, capsys, *args)
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_the_library_limits_grasps_per_call_like_the_cli() -> None:
    from halohand.apps.cli import options
    from halohand.core.errors import HalohandInputError
    from halohand.grasp import generate as grasp_generate

    assert options.MAX_GRASPS == grasp_generate.MAX_GRASPS_PER_CALL
    assert options.MAX_CANDIDATES == grasp_generate.MAX_CANDIDATES
    with pytest.raises(HalohandInputError, match="another seed"):
        grasp_generate.generate_grasps(None, None, n=10**8)  # type: ignore[arg-type]


def _key_hand():
    from halohand.handmodel.keyposes import load_key_poses

    return load_key_poses()[0].keypoints


@pytest.mark.parametrize("order", ["mano", "biomech", "interhand"])
def test_check_names_a_likely_joint_order_and_refuses_to_fix_in_the_wrong_one(
    tmp_path, monkeypatch, capsys, order: str
) -> None:
    from halohand.skeleton import from_openpose

    path = tmp_path / "kp.npy"
    np.save(path, from_openpose(_key_hand(), order))
    out, _ = _run_ok(monkeypatch, capsys, "check", str(path))
    assert f"pass --format {order}" in out
    fixed = tmp_path / "fixed.npy"
    code, err = _run(monkeypatch, capsys, "check", str(path), "--fix-skeleton", str(fixed))
    assert code == 2 and f"pass --format {order}" in err and not fixed.exists()


def _run_ok(monkeypatch, capsys, *args: str) -> tuple[str, str]:
    monkeypatch.setattr("sys.argv", ["halohand", *args])
    try:
        cli.main()
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_check_hint_is_printed(tmp_path, monkeypatch, capsys) -> None:
    from halohand.skeleton import from_openpose

    path = tmp_path / "kp.npy"
    np.save(path, from_openpose(_key_hand(), "mano"))
    out, _ = _run_ok(monkeypatch, capsys, "check", str(path))
    assert "hint: the joints look like mano order" in out
    out, _ = _run_ok(monkeypatch, capsys, "check", str(path), "--format", "mano")
    assert "hint:" not in out and "plausible: no findings" in out


def test_occupancy_warns_about_a_mirrored_hand_like_reconstruct(
    tmp_path, monkeypatch, capsys
) -> None:
    from halohand.skeleton import mirror

    path = tmp_path / "left_as_right.npy"
    np.save(path, mirror(_key_hand()))
    points = tmp_path / "p.npy"
    np.save(points, np.zeros((4, 3)))
    _, err = _run_ok(monkeypatch, capsys, "occupancy", str(path), str(points), "--out",
                     str(tmp_path / "o.npy"))  # fmt: skip
    assert "looks mirrored" in err
    _, err = _run_ok(monkeypatch, capsys, "occupancy", str(path), str(points), "--side", "left",
                     "--out", str(tmp_path / "o2.npy"))  # fmt: skip
    assert "mirrored" not in err


@pytest.mark.parametrize("name", ["mps", "meta", "xpu", "CPU ", "gpu"])
def test_devices_other_than_cpu_and_cuda_are_refused_in_the_library(name: str) -> None:
    from halohand.core.device import select_device
    from halohand.core.errors import HalohandInputError
    from halohand.inference.halo import HALO

    with pytest.raises(HalohandInputError, match="unknown device"):
        select_device(name)
    with pytest.raises(HalohandInputError, match="unknown device"):
        HALO.pretrained(device=name)
    assert str(select_device("cpu")) == "cpu"
