"""One resumable training run: the folder, its files and the bookkeeping of its sessions.

Every training recipe (the occupancy network's :class:`~halohand.training.trainer.Trainer`,
the grasp VAE's :func:`~halohand.training.grasp_vae.train_vae`) keeps its state in a
:class:`Run`. The recipe owns the model, the optimizer, its random generators and the loop;
the run owns what is the same for all of them:

* the folder and its files: ``config.json`` (written atomically at the start of each
  session), ``log.csv`` (one header, appended rows) and ``checkpoint.pt``
  (:mod:`halohand.core.checkpoint`, atomic, tagged with the recipe's format);
* fresh start or resume: a fresh run refuses a folder that holds a checkpoint; a resumed one
  reads it (the step, the training wall time of the earlier sessions and the partial log
  window) and rewrites ``log.csv`` atomically without rows newer than the checkpoint or a
  torn last line, so the log always matches the trajectory;
* the step counter and the training wall time over all sessions (:meth:`Run.elapsed`);
* periodic checkpoints (:meth:`Run.checkpoint_due` every ``checkpoint_every_s``);
* a lock on the folder for the session (:meth:`Run.start` / :meth:`Run.close`): a second
  run on the same folder is refused while the first lives;
* the stop signals (:meth:`Run.stop_signals`): the first SIGINT/SIGTERM sets
  :attr:`Run.stop_requested`, the recipe finishes its step, writes a checkpoint and returns;
  a second one raises ``KeyboardInterrupt``;
* the learning-rate schedule (:func:`lr_schedule`, applied by :meth:`Run.set_lr`);
* the log window: sums of per-step values since the last log row (:meth:`Run.add`,
  :meth:`Run.take_window`). It travels in the checkpoint (key ``log_window``), so the first
  row after a resume averages the same steps as an uninterrupted run's.

Under ``torchrun`` every process holds a run; only the main one (``main=True``) writes files.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import torch

from halohand.core.atomic import remove_temporaries, write_text_atomic
from halohand.core.checkpoint import load_checkpoint, save_checkpoint
from halohand.core.errors import HalohandInputError
from halohand.core.schedule import cosine

__all__ = ["LR_SCHEDULES", "Run", "StopSignal", "lr_schedule", "trim_log"]

#: Learning-rate schedules of :func:`lr_schedule`.
LR_SCHEDULES = ("constant", "cosine")


def lr_schedule(kind: str, lr: float, lr_min: float, total: int) -> Callable[[int], float]:
    """The learning rate of optimizer step ``s`` (0-based) as a function of ``s`` alone, so a
    resumed run follows the same curve.

    ``constant``: ``lr``. ``cosine``: from ``lr`` at step 0 to ``lr_min`` at step ``total``
    (:func:`~halohand.core.schedule.cosine`); the last step of a ``total``-step run uses the
    value one step before ``lr_min``.
    """
    if kind == "constant":
        return lambda step: lr
    if kind == "cosine":
        return lambda step: cosine(step, total, lr, lr_min)
    raise HalohandInputError(f"unknown learning-rate schedule {kind!r}; use one of {LR_SCHEDULES}")


def text_logger(out: str | os.PathLike[str], log: Callable[[str], None]) -> Callable[[str], None]:
    """A ``say(line)`` that appends ``HH:MM:SS line`` to ``out/train.log`` and passes the
    line to ``log`` (the small recipes' progress log, beside their checkpoint)."""
    path = Path(out) / "train.log"

    def say(line: str) -> None:
        with open(path, "a") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        log(line)

    return say


def trim_log(path: str | os.PathLike[str], columns: Sequence[str], max_step: int) -> None:
    """Rewrite a CSV log (atomically) with the header ``columns`` and its complete rows up
    to step ``max_step`` (the first column); creates the file when missing.

    Dropped: rows of later steps, a torn last line (no newline: a crash while appending),
    rows with another number of fields and rows whose step is not an integer.
    """
    path = Path(path)
    rows: list[list[str]] = []
    if path.is_file():
        with open(path, encoding="utf-8", newline="") as fh:
            lines = fh.read().split("\n")
        if lines and lines[-1] != "":
            lines = lines[:-1]  # a partial last line from a crash
        lines = [line.removesuffix("\r") for line in lines[1:]]
        for row in csv.reader(lines):
            if len(row) == len(columns):
                try:
                    if int(row[0]) <= max_step:
                        rows.append(row)
                except ValueError:
                    continue
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


class StopSignal:
    """While entered: SIGINT/SIGTERM set :attr:`raised` (stop after the running step); a
    second signal raises ``KeyboardInterrupt``. Handlers are restored on exit. Outside the
    main thread (where Python delivers no signals) it installs nothing."""

    def __init__(self) -> None:
        self.raised = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.raised:  # second signal: give up immediately
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


def _plain(value: Any) -> str:
    return "" if value is None else str(value)


def _lock_folder(path: Path) -> IO[str]:
    """Hold an exclusive lock on ``path`` (created) for as long as the returned file is open.

    The lock is an ``flock``: the kernel drops it when its holder exits, however it exits, so
    a lock file left by a killed run is simply taken over. The holder's pid is written into
    the file for the message of a refused second run.
    """
    fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the session
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise HalohandInputError(
            f"{path.parent} is in use by another training run (pid {holder}); wait for it to "
            "finish or choose another output folder"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


class Run:
    """The folder and session bookkeeping of one resumable training run (module docstring).

    Args:
        folder: the run's folder (created by :meth:`start`).
        config: the recipe's configuration as a JSON-serialisable dict (``config.json``).
        columns: ``log.csv`` columns; the first is the step.
        format_tag: the checkpoint's format tag (one per recipe).
        required: keys a checkpoint of this recipe must hold.
        learning_rate: step -> learning rate (:func:`lr_schedule`).
        checkpoint_every_s: seconds between periodic checkpoints.
        main: this process writes the files (rank 0 of a ``torchrun`` launch).
        format_value: a log value -> its CSV text (default: ``str``, ``None`` as empty).

    Attributes:
        step: optimizer steps done (all sessions).
        elapsed_prev: training wall time of the earlier sessions (seconds).
        window: per-step sums since the last log row (:meth:`add`).
    """

    checkpoint_name = "checkpoint.pt"
    log_name = "log.csv"
    config_name = "config.json"
    lock_name = "run.lock"

    def __init__(
        self,
        folder: str | os.PathLike[str],
        config: dict[str, Any],
        *,
        columns: Sequence[str],
        format_tag: str,
        required: tuple[str, ...],
        learning_rate: Callable[[int], float],
        checkpoint_every_s: float,
        main: bool = True,
        format_value: Callable[[Any], str] = _plain,
    ) -> None:
        self.folder = Path(folder)
        self.checkpoint_path = self.folder / self.checkpoint_name
        self.log_path = self.folder / self.log_name
        self.config_path = self.folder / self.config_name
        self.config = config
        self.columns = tuple(columns)
        self.format_tag = format_tag
        self.required = tuple(required)
        self.learning_rate = learning_rate
        self.checkpoint_every_s = float(checkpoint_every_s)
        self.main = main
        self.format_value = format_value
        self.step = 0
        self.elapsed_prev = 0.0
        self.window: dict[str, float] = {}
        self._session_start = time.monotonic()
        self._last_checkpoint = self._session_start
        self._stop: StopSignal | None = None
        self._lock: IO[str] | None = None

    # ------------------------------------------------------------------ start / resume

    def open(self, resume: bool, fresh_if_missing: bool = False) -> dict[str, Any] | None:
        """Start fresh or read the checkpoint to resume from.

        Args:
            resume: continue from ``checkpoint.pt``.
            fresh_if_missing: with ``resume``, start fresh when there is no checkpoint
                (instead of the error).

        Returns:
            The checkpoint (its ``step``, ``elapsed_s`` and log window are taken over; the
            recipe restores the rest), or ``None`` for a fresh run.

        Raises:
            HalohandInputError: a fresh run in a folder that holds a checkpoint.
            CorruptFileError: resuming from a missing, damaged or foreign checkpoint.
        """
        if not resume or (fresh_if_missing and not self.checkpoint_path.exists()):
            if self.checkpoint_path.exists():
                raise HalohandInputError(
                    f"{self.checkpoint_path} exists: pass --resume to continue that run, or "
                    "choose another output folder"
                )
            return None
        doc = load_checkpoint(
            self.checkpoint_path, format_tag=self.format_tag, required=self.required
        )
        self.step = int(doc["step"])
        self.elapsed_prev = float(doc["elapsed_s"])
        window = doc.get("log_window") or {}
        self.window = {str(k): float(v) for k, v in window.items()} if self.main else {}
        return doc

    def start(self) -> None:
        """Begin a session: create the folder, take its lock, remove temp files a killed
        session left, write ``config.json``, trim ``log.csv`` to the step (main process),
        and start the session clock.

        Raises:
            HalohandInputError: another process holds the folder's lock (a run in progress).
        """
        if self.main:
            self.folder.mkdir(parents=True, exist_ok=True)
            if self._lock is None:  # a later session of the same run keeps its lock
                self._lock = _lock_folder(self.folder / self.lock_name)
            # leftovers of a killed session (a SIGKILL during a checkpoint write); the lock
            # says nobody else is writing here
            remove_temporaries(self.folder)
            write_text_atomic(self.config_path, json.dumps(self.config, indent=1))
            trim_log(self.log_path, self.columns, self.step)
        self._session_start = self._last_checkpoint = time.monotonic()

    def close(self) -> None:
        """End the session: release the folder's lock (the operating system releases it too
        when the process dies, so a killed run never leaves the folder locked)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()

    def elapsed(self) -> float:
        """Training wall time over all sessions (seconds)."""
        return self.elapsed_prev + (time.monotonic() - self._session_start)

    # ------------------------------------------------------------------ the step

    def lr(self, step: int) -> float:
        """The learning rate of (0-based) optimizer step ``step``."""
        return self.learning_rate(step)

    def set_lr(self, optimizer: torch.optim.Optimizer, step: int | None = None) -> float:
        """Set every parameter group's rate to that of ``step`` (default: the next step,
        :attr:`step`); returns it."""
        lr = self.lr(self.step if step is None else step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def stop_signals(self) -> StopSignal:
        """Context manager catching SIGINT/SIGTERM for the session (:attr:`stop_requested`)."""
        self._stop = StopSignal()
        return self._stop

    @property
    def stop_requested(self) -> bool:
        """A stop signal arrived (inside :meth:`stop_signals`)."""
        return self._stop is not None and self._stop.raised

    def add(self, **values: float) -> None:
        """Add one step's values to the log window's sums."""
        for key, value in values.items():
            self.window[key] = self.window.get(key, 0.0) + value

    def take_window(self) -> dict[str, float]:
        """The log window's sums (for a row); the window starts over."""
        window, self.window = self.window, {}
        return window

    # ------------------------------------------------------------------ files

    def checkpoint_due(self) -> bool:
        """``checkpoint_every_s`` have passed since the last checkpoint (or the start)."""
        return time.monotonic() - self._last_checkpoint >= self.checkpoint_every_s

    def save(
        self,
        state: dict[str, Any],
        elapsed: float | None = None,
        window: dict[str, float] | None = None,
    ) -> None:
        """Write ``checkpoint.pt`` (main process): the recipe's ``state`` plus ``step``,
        ``elapsed_s`` (default :meth:`elapsed`) and ``log_window`` (default :attr:`window`;
        under ``torchrun`` the sums over all processes)."""
        if self.main:
            doc = {
                **state,
                "step": self.step,
                "elapsed_s": self.elapsed() if elapsed is None else float(elapsed),
                "log_window": dict(self.window if window is None else window),
            }
            save_checkpoint(self.checkpoint_path, doc, format_tag=self.format_tag)
        self._last_checkpoint = time.monotonic()

    def log(self, values: dict[str, Any]) -> None:
        """Append a row to ``log.csv`` (main process; missing columns are empty)."""
        if not self.main:
            return
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(
            [self.format_value(values.get(c)) for c in self.columns]
        )
        with open(self.log_path, "a", encoding="utf-8", newline="") as fh:
            fh.write(buf.getvalue())
            fh.flush()
