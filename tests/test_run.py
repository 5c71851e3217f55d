"""The resumable training run (``halohand.training.run``) and the shared cosine schedule:
log trimming and config.json written atomically, checkpoints, resume, wall time, stop
signals (in a bare loop, the occupancy trainer and the grasp VAE), learning rates."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

import halohand.core.atomic
from halohand.core.checkpoint import load_checkpoint
from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.schedule import cosine
from halohand.training.run import Run, StopSignal, lr_schedule, trim_log

COLUMNS = ("step", "loss", "lr")


def _run(folder: Path, **changes: object) -> Run:
    args: dict = dict(
        columns=COLUMNS, format_tag="halohand.test-run", required=("weights",),
        learning_rate=lr_schedule("cosine", 1e-2, 1e-4, 10), checkpoint_every_s=3600.0,
    )  # fmt: skip
    args.update(changes)
    return Run(folder, {"seed": 3, "nested": {"a": [1, 2]}}, **args)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _rows_but(path: Path, timing: tuple[str, ...]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in timing} for r in _rows(path)]


def _doc(path: Path) -> dict:
    return load_checkpoint(path, format_tag="halohand.test-run", required=("weights",))


def _no_temporaries(folder: Path) -> None:
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


@pytest.fixture
def failing_replace(monkeypatch: pytest.MonkeyPatch):
    """Make the rename that publishes an atomic write fail (a crash at the last moment)."""

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(halohand.core.atomic.os, "replace", fail)


# ---------------------------------------------------------------- the cosine schedule


def test_cosine_closed_form() -> None:
    start, end, total = 3.0, 0.5, 8
    for step in range(total + 1):
        want = end + (start - end) * (1 + math.cos(math.pi * step / total)) / 2
        assert cosine(step, total, start, end) == pytest.approx(want, rel=1e-15)
    assert cosine(0, total, start, end) == start
    assert cosine(total, total, start, end) == end
    assert cosine(total / 2, total, start, end) == pytest.approx((start + end) / 2)
    # clipped outside [0, total]; total < 1 counts as 1
    assert cosine(-5, total, start, end) == start and cosine(99, total, start, end) == end
    assert cosine(0, 0, start, end) == start and cosine(1, 0, start, end) == end
    # the forms the optimisers wrote before, to the last bit
    for n in (1, 2, 10, 50, 300):
        for s in range(n):
            f = s / max(n - 1, 1)
            assert 0.7 * cosine(s, n - 1, 1.0, 0.05) == 0.7 * (
                0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * f))
            )
            assert 0.7 * cosine(s, n - 1, 1.0, 0.01) == 0.7 * (
                0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * f))
            )
            t = min(s / max(n, 1), 1.0)
            assert cosine(s, n, 5e-4, 1e-5) == 1e-5 + 0.5 * (5e-4 - 1e-5) * (
                1.0 + math.cos(math.pi * t)
            )


def test_learning_rate_schedules() -> None:
    assert [lr_schedule("constant", 1e-3, 0.0, 5)(s) for s in (0, 4, 99)] == [1e-3] * 3
    lr = lr_schedule("cosine", 1e-2, 1e-4, 10)
    assert lr(0) == 1e-2 and lr(10) == 1e-4
    np.testing.assert_allclose(
        [lr(s) for s in range(10)],
        [1e-4 + (1e-2 - 1e-4) * 0.5 * (1 + np.cos(np.pi * s / 10)) for s in range(10)],
        rtol=1e-14,
    )
    with pytest.raises(HalohandInputError, match="schedule"):
        lr_schedule("linear", 1e-3, 0.0, 5)
    run = _run(Path("unused"))
    opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)] * 1, lr=1.0)
    run.step = 3
    assert run.set_lr(opt) == lr(3) == opt.param_groups[0]["lr"]
    assert run.set_lr(opt, 7) == lr(7) == opt.param_groups[0]["lr"]


# ---------------------------------------------------------------- files


def test_log_is_trimmed_to_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    rows = [f"{s},0.{s},1e-3" for s in range(1, 6)]
    # a row with a field too many, a non-integer step, CRLF rows (older logs), a torn line
    path.write_bytes(
        (",".join(COLUMNS) + "\n" + "\n".join(rows[:3]) + "\n2,1,1,1\nx,1,1\r\n"
         + "\r\n".join(rows[3:]) + "\r\n6,0.6").encode()
    )  # fmt: skip
    trim_log(path, COLUMNS, 4)
    assert path.read_text() == "step,loss,lr\n1,0.1,1e-3\n2,0.2,1e-3\n3,0.3,1e-3\n4,0.4,1e-3\n"
    trim_log(tmp_path / "new.csv", COLUMNS, 0)
    assert (tmp_path / "new.csv").read_text() == "step,loss,lr\n"
    _no_temporaries(tmp_path)


def test_trimming_is_atomic(tmp_path: Path, failing_replace: None) -> None:
    path = tmp_path / "log.csv"
    text = "step,loss,lr\n1,0.1,1e-3\n2,0.2,1e-3\n3,0.3,1e-3\n4,0.4"
    path.write_text(text)
    with pytest.raises(OSError, match="disk full"):
        trim_log(path, COLUMNS, 2)
    assert path.read_text() == text  # the old log, whole: never a half-written one
    _no_temporaries(tmp_path)


def test_config_json_is_written_atomically(tmp_path: Path, monkeypatch) -> None:
    run = _run(tmp_path / "run")
    run.start()
    written = (tmp_path / "run" / "config.json").read_text()
    assert json.loads(written) == {"seed": 3, "nested": {"a": [1, 2]}}
    assert written == json.dumps(run.config, indent=1)
    assert (tmp_path / "run" / "log.csv").read_text() == "step,loss,lr\n"

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(halohand.core.atomic.os, "replace", fail)
    run.config = {"seed": 4}
    with pytest.raises(OSError, match="disk full"):
        run.start()
    assert (tmp_path / "run" / "config.json").read_text() == written
    _no_temporaries(tmp_path / "run")


def test_a_session_removes_the_temp_files_a_killed_one_left(tmp_path: Path) -> None:
    """A SIGKILL during a checkpoint write leaves ``.checkpoint.pt.XXXX.tmp``; the next
    session (holding the folder's lock) removes it and keeps every real file."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".checkpoint.pt.04_jviub.tmp").write_bytes(b"torn")
    (folder / "keep.txt").write_text("mine")
    _run(folder).start()
    assert not list(folder.glob(".*.tmp"))
    assert (folder / "keep.txt").read_text() == "mine"


def test_log_rows_and_checkpoint_round_trip(tmp_path: Path) -> None:
    run = _run(tmp_path / "run")
    assert run.open(resume=False) is None
    run.start()
    for step in range(1, 6):
        run.step = step
        run.add(loss=0.5 * step, steps=1.0)
        if step % 2 == 0:
            w = run.take_window()
            run.log({"step": step, "loss": w["loss"] / w["steps"], "lr": run.lr(step - 1)})
        if step == 3:
            run.save({"weights": torch.full((2,), float(step))}, elapsed=12.5)
    assert [r["step"] for r in _rows(run.log_path)] == ["2", "4"]
    assert _rows(run.log_path)[0]["loss"] == "0.75"
    doc = _doc(run.checkpoint_path)
    assert doc["step"] == 3 and doc["elapsed_s"] == 12.5
    assert doc["log_window"] == {"loss": 1.5, "steps": 1.0}  # step 3: after the row of step 2
    # a fresh run refuses the folder; resuming restores step, wall time and window, and
    # trims the log back to the checkpoint
    with pytest.raises(HalohandInputError, match="--resume"):
        _run(tmp_path / "run").open(resume=False)
    run.close()  # the first session ends (its folder lock is released)
    again = _run(tmp_path / "run")
    assert torch.equal(again.open(resume=True)["weights"], torch.full((2,), 3.0))
    assert (again.step, again.elapsed_prev, again.window) == (3, 12.5, {"loss": 1.5, "steps": 1.0})
    again.start()
    assert [r["step"] for r in _rows(run.log_path)] == ["2"]
    assert 12.5 <= again.elapsed() < 12.5 + 60  # wall time continues over sessions
    # another process of a torchrun launch starts with an empty window and writes nothing
    other = _run(tmp_path / "run", main=False)
    other.open(resume=True)
    assert other.window == {} and other.step == 3
    other.log({"step": 9})
    other.save({"weights": torch.zeros(2)})
    assert _doc(run.checkpoint_path)["step"] == 3
    # another recipe's checkpoint, a missing one
    with pytest.raises(CorruptFileError, match="not a halohand training checkpoint"):
        _run(tmp_path / "run", format_tag="halohand.other").open(resume=True)
    with pytest.raises(CorruptFileError, match="not found"):
        _run(tmp_path / "none").open(resume=True)
    fresh = _run(tmp_path / "none")
    assert fresh.open(resume=True, fresh_if_missing=True) is None and fresh.step == 0


def test_periodic_checkpoints(tmp_path: Path) -> None:
    run = _run(tmp_path / "run", checkpoint_every_s=0.0)
    run.start()
    assert run.checkpoint_due()
    assert not _run(tmp_path / "run").checkpoint_due()  # an hour apart


# ---------------------------------------------------------------- stop signals


def test_stop_signal_finishes_the_step_and_checkpoints(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGINT)
    run = _run(tmp_path / "run")
    run.open(resume=False)
    run.start()
    done = []
    with run.stop_signals():
        while run.step < 10:
            if run.step == 3:
                os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of step 4
            done.append(run.step)
            run.step += 1
            if run.stop_requested:
                break
        run.save({"weights": torch.zeros(1)})
    assert done == [0, 1, 2, 3] and run.step == 4
    assert _doc(run.checkpoint_path)["step"] == 4
    assert signal.getsignal(signal.SIGINT) is before
    assert not _run(tmp_path / "x").stop_requested


def test_a_second_signal_aborts() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), StopSignal() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.raised
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


# ---------------------------------------------------------------- the recipes


@pytest.fixture(scope="module")
def hands(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from halohand.data.engine import generate
    from halohand.handmodel.toy import ToyHandSource

    out = tmp_path_factory.mktemp("run_data") / "hands"
    generate(out, {"train": 3, "val": 1, "test": 0}, seed=5, source=ToyHandSource(),
             side="both", workers=1, progress=False)  # fmt: skip
    return out


def test_occupancy_training_stopped_by_a_signal_resumes_with_the_same_log(
    hands: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM mid-window (log_every 4, stopped after step 5): the checkpoint carries the
    steps since the last row, so after --resume every row equals the uninterrupted run's
    but for the timings (wall_s, steps_per_s), and so do the weights."""
    from halohand.training import TrainConfig
    from halohand.training.trainer import Trainer, train

    def cfg(out: str) -> TrainConfig:
        return TrainConfig(
            data=str(hands), out=str(tmp_path / out), batch_size=2, points_per_hand=128,
            surface_per_hand=32, lr=3e-3, max_steps=9, validate_every=3, val_hands=1,
            val_points=500, log_every=4, checkpoint_minutes=60.0, threads=1, progress=False,
        )  # fmt: skip

    assert train(cfg("a")).finished
    step = Trainer.train_step

    def signalled_step(self: Trainer, batch: dict) -> tuple[float, float]:
        out = step(self, batch)
        if self.step == 4:  # the fifth step
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(Trainer, "train_step", signalled_step)
    before = signal.getsignal(signal.SIGTERM)
    stopped = train(cfg("b"))
    assert not stopped.finished and stopped.step == 5
    assert signal.getsignal(signal.SIGTERM) is before
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 5
    assert [r["step"] for r in _rows(tmp_path / "b" / "log.csv")] == ["3", "4"]
    monkeypatch.setattr(Trainer, "train_step", step)
    assert train(cfg("b"), resume=True).finished

    def rows(out: str) -> list[dict[str, str]]:
        return _rows_but(tmp_path / out / "log.csv", ("wall_s", "steps_per_s"))

    assert [r["step"] for r in rows("a")] == ["3", "4", "6", "8", "9"]
    assert rows("b") == rows("a")
    assert all(r["steps_per_s"] for r in _rows(tmp_path / "b" / "log.csv") if r["loss"])
    wa = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["model"]
    wb = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["model"]
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_grasp_vae_stopped_by_a_signal_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_grasp_vae import TINY, _grasp_near

    from halohand.grasp.vae import VAEConfig, load_vae
    from halohand.training.grasp_vae import GraspData, VAETrainConfig, train_vae

    root = tmp_path / "grasps"
    for oid in ("box_0", "sphere_0"):
        kp = np.stack([_grasp_near(oid, g, 0.02) for g in ("relaxed", "sphere", "pinch")])
        (root / oid).mkdir(parents=True)
        np.savez(root / oid / "batch_00000.npz", keypoints=kp.astype(np.float32),
                 accepted=np.ones(3, bool), side=np.array(["right"] * 3),
                 object_id=np.array(oid))  # fmt: skip
    data = GraspData(root, object_points=32, clouds_per_object=2, interior_bank=8)

    def cfg(out: str) -> VAETrainConfig:
        return VAETrainConfig(
            grasps=str(root), out_dir=str(tmp_path / out), model=VAEConfig(**TINY), steps=5,
            objects_per_batch=2, grasps_per_object=2, object_points=32, interior_points=0,
            w_interpenetration=0.0, warmup_fraction=0.4, log_every=1, checkpoint_every_s=1e9,
        )  # fmt: skip

    assert train_vae(cfg("a"), progress=False, data=data)["finished"]
    batch, calls = data.batch, []

    def signalled_batch(*args: object, **kwargs: object) -> dict:
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return batch(*args, **kwargs)

    monkeypatch.setattr(data, "batch", signalled_batch)
    stopped = train_vae(cfg("b"), progress=False, data=data)
    assert not stopped["finished"] and stopped["steps"] == 3 and "wall_s" in stopped
    monkeypatch.setattr(data, "batch", batch)
    assert train_vae(cfg("b"), resume=True, progress=False, data=data)["finished"]
    a, _ = load_vae(tmp_path / "a" / "model.safetensors")
    b, _ = load_vae(tmp_path / "b" / "model.safetensors")
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(va, vb), ka

    def rows(out: str) -> list[dict[str, str]]:
        return _rows_but(tmp_path / out / "log.csv", ("wall_s",))

    assert len(rows("a")) == 5 and rows("b") == rows("a")
    assert json.loads((tmp_path / "b" / "config.json").read_text()) == json.loads(
        json.dumps(cfg("b").to_dict())
    )
