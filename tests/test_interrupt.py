"""Interruption and corruption: SIGKILL at random moments, resume, damaged files.

``halohand data generate`` and ``halohand train`` run as subprocesses and are killed after a
delay drawn from a seeded RNG (the moment in the run still varies with machine load; the
assertions hold for any moment). After each kill: every file present is complete (shards
byte-identical to an uninterrupted run, the checkpoint loadable) and nothing is lost beyond
the last checkpoint; the resumed run ends byte-identical (shards) or with identical weights
and log rows (training). Damaged or foreign checkpoints, model files and shards give one
line naming the file, exit 2. (The single-kill generate test lives in test_data_engine.py,
corrupt-checkpoint basics in test_training.py.)
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from halo_fakes import hand_keypoints
from test_fuzz import assert_cli_error, run_cli

from halohand.core.checkpoint import load_checkpoint
from halohand.data.engine import generate
from halohand.handmodel.toy import ToyHandSource
from halohand.training import TrainConfig
from halohand.training.trainer import train

CLI = [sys.executable, "-m", "halohand.apps.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
RNG = random.Random(20240611)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def _kill_after(cmd: list[str], delay: float) -> int | None:
    """Start ``cmd`` in its own process group; SIGKILL the group after ``delay`` seconds.
    Returns the exit status when it finished first, else ``None``."""
    proc = subprocess.Popen(
        cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        return proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


# ---------------------------------------------------------------- data generate

GEN_COUNTS = {"train": 4, "val": 1, "test": 1}
GEN_SETTINGS = {"seed": 11, "side": "both", "hands_per_shard": 1}


@pytest.mark.slow
def test_generate_killed_at_random_moments_resumes_byte_identical(tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    generate(ref, GEN_COUNTS, source=ToyHandSource(), workers=1, progress=False, **GEN_SETTINGS)
    expected = _files(ref)
    out = tmp_path / "killed"
    cmd = [*CLI, "data", "generate", "--out", str(out), "--source", "toy", "--workers", "1",
           "--n-train", "4", "--n-val", "1", "--n-test", "1", "--seed", "11", "--side", "both",
           "--hands-per-shard", "1", "--no-progress"]  # fmt: skip
    for _ in range(2):
        status = _kill_after(cmd, RNG.uniform(1.5, 4.0))
        if status is not None:
            assert status == 0
            break
        # every shard present is complete and identical to the uninterrupted run's
        for name, blob in _files(out).items():
            if name.endswith(".npz"):
                assert blob == expected[name], name
    # the final (uninterrupted) resume completes the folder
    generate(out, GEN_COUNTS, source=ToyHandSource(), workers=1, progress=False, **GEN_SETTINGS)
    assert _files(out) == expected
    assert not list(out.rglob("*.tmp"))


# ---------------------------------------------------------------- train


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("interrupt_data") / "hands"
    generate(out, {"train": 3, "val": 1, "test": 0}, seed=5, source=ToyHandSource(),
             side="both", workers=1, progress=False)  # fmt: skip
    return out


TRAIN_KEYS = ("step", "loss", "loss_occ", "loss_skin", "skin_weight", "val_iou_mixed", "lr")


def _config_text(data: Path, max_steps: int) -> str:
    return (
        f'data = "{data}"\nbatch_size = 2\npoints_per_hand = 128\nsurface_per_hand = 32\n'
        f"lr = 3e-3\nmax_steps = {max_steps}\nvalidate_every = 4\nval_hands = 1\n"
        "val_points = 500\nlog_every = 1\ncheckpoint_minutes = 1e-9\nthreads = 1\n"
        "progress = false\nskinning_off_iou = 0.0\n"
    )


def _log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return [{k: r[k] for k in TRAIN_KEYS if k in r} for r in csv.DictReader(fh)]


@pytest.mark.slow
def test_train_killed_at_random_moments_resumes_identically(data: Path, tmp_path: Path) -> None:
    steps = 12
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(_config_text(data, steps))
    from halohand.training import load_config

    train(load_config(cfg_path, out=str(tmp_path / "ref")))
    ref_ckpt = load_checkpoint(tmp_path / "ref" / "checkpoint.pt")
    out = tmp_path / "run"
    base = [*CLI, "train", "--config", str(cfg_path), "--out", str(out)]
    last_step = 0
    for _ in range(2):
        resume = (out / "checkpoint.pt").exists()
        status = _kill_after(base + (["--resume"] if resume else []), RNG.uniform(2.0, 5.0))
        if status is not None:
            assert status == 0
            break
        if (out / "checkpoint.pt").exists():
            doc = load_checkpoint(out / "checkpoint.pt")  # never a torn checkpoint
            assert last_step <= doc["step"] <= steps  # nothing before it is lost
            last_step = doc["step"]
            logged = [int(r["step"]) for r in _log(out / "log.csv")] if (
                out / "log.csv"
            ).exists() else []  # fmt: skip
            # the log may run ahead of the checkpoint (trimmed on resume), never behind
            assert set(range(1, last_step + 1)) <= set(logged)
    cfg = load_config(cfg_path, out=str(out))
    result = train(cfg, resume=(out / "checkpoint.pt").exists())
    assert result.finished and result.step == steps
    got = load_checkpoint(out / "checkpoint.pt")
    for k, v in ref_ckpt["model"].items():
        assert torch.equal(v, got["model"][k]), k
    assert _log(out / "log.csv") == _log(tmp_path / "ref" / "log.csv")
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


# ---------------------------------------------------------------- corrupt / foreign files


def _foreign_files(folder: Path, good_ckpt: bytes) -> dict[str, Path]:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "truncated": good_ckpt[: len(good_ckpt) // 3],
        "random_bytes": np.random.default_rng(1).bytes(4096),
        "empty": b"",
    }
    paths = {}
    for name, blob in made.items():
        (folder / name).write_bytes(blob)
        paths[name] = folder / name
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, folder / "other_program")
    paths["other_program"] = folder / "other_program"
    torch.save(torch.nn.Linear(2, 2), folder / "pickled_module")
    paths["pickled_module"] = folder / "pickled_module"
    save_file({"encoder.weight": torch.zeros(3, 3)}, str(folder / "safetensors_wrong_keys"))
    paths["safetensors_wrong_keys"] = folder / "safetensors_wrong_keys"
    return paths


@pytest.fixture(scope="module")
def good_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("interrupt_run") / "run"
    train(TrainConfig(**{  # one step: a real checkpoint and model files
        "data": str(data), "out": str(out), "batch_size": 2, "points_per_hand": 64,
        "surface_per_hand": 16, "max_steps": 1, "val_hands": 1, "val_points": 200,
        "threads": 1, "progress": False,
    }))  # fmt: skip
    return out


def test_corrupt_or_foreign_checkpoint_on_resume(data: Path, good_run: Path, tmp_path: Path):
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(_config_text(data, 2))
    foreign = _foreign_files(tmp_path / "f", (good_run / "checkpoint.pt").read_bytes())
    for name, src in foreign.items():
        out = tmp_path / f"run_{name}"
        out.mkdir()
        shutil.copy(src, out / "checkpoint.pt")
        code, _, err = run_cli("train", "--config", cfg_path, "--out", out, "--resume")
        line = assert_cli_error(code, err)
        assert str(out / "checkpoint.pt") in line, (name, line)
        assert "\x1b" not in line and "weights_only" not in line, line  # no torch lecture


@pytest.mark.parametrize("command", ["evaluate", "reconstruct"])
def test_corrupt_or_foreign_model_file(
    data: Path, good_run: Path, tmp_path: Path, command: str
) -> None:
    foreign = _foreign_files(tmp_path / "f", (good_run / "best.safetensors").read_bytes())
    np.save(tmp_path / "kp.npy", hand_keypoints("spread"))
    for name, path in foreign.items():
        for suffix in (".safetensors", ".pt"):
            model = path.with_suffix(suffix)
            shutil.copy(path, model)
            if command == "evaluate":
                args = ["evaluate", "--checkpoint", model, "--data", data, "--json",
                        tmp_path / "o" / "e.json", "--device", "cpu", "--no-progress"]  # fmt: skip
            else:
                args = ["reconstruct", tmp_path / "kp.npy", "--out-dir", tmp_path / "o",
                        "--checkpoint", model, "--resolution", "16"]  # fmt: skip
            code, _, err = run_cli(*args)
            line = assert_cli_error(code, err, tmp_path / "o")
            assert str(model) in line, (name, line)
            assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign_npz", "empty"])
def test_corrupt_shard_in_train_evaluate_verify(
    data: Path, good_run: Path, tmp_path: Path, damage: str
) -> None:
    bad = tmp_path / "data"
    shutil.copytree(data, bad)
    shard = bad / "train" / "shard_00000.npz"
    blob = shard.read_bytes()
    if damage == "truncate":
        shard.write_bytes(blob[: len(blob) // 2])
    elif damage == "garbage":
        shard.write_bytes(np.random.default_rng(2).bytes(len(blob)))
    elif damage == "foreign_npz":
        np.savez(shard, points=np.zeros((4, 3)))
    else:
        shard.write_bytes(b"")
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(_config_text(bad, 2))
    runs = [
        ("train", "--config", cfg_path, "--out", tmp_path / "run"),
        ("evaluate", "--checkpoint", good_run / "best.safetensors", "--data", bad,
         "--split", "train", "--json", tmp_path / "e.json", "--device", "cpu", "--no-progress",
         "--resolution", "8", "--coarse-resolution", "8"),
        ("data", "verify", bad),
    ]  # fmt: skip
    for args in runs:
        code, _, err = run_cli(*args)
        line = assert_cli_error(code, err)
        assert "train/shard_00000.npz" in line, (args[0], line)
    assert not (tmp_path / "e.json").exists()
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
