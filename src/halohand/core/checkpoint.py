"""Training checkpoints (``checkpoint.pt``): atomic writes, validated reads.

One file format for every resumable run (the occupancy trainer, the grasp VAE); what a
kind of run stores is named by its ``format`` tag. The occupancy trainer's contents:

A checkpoint is a ``torch.save`` archive of plain tensors, numbers, strings and dicts (read
back with ``weights_only=True``: no arbitrary pickle code runs on load):

* ``format`` / ``version``: ``"halohand.train-checkpoint"`` / 1;
* ``step``: optimizer steps done; ``elapsed_s``: training wall time over all sessions;
* ``model``: the network's ``state_dict``; ``model_config``: its ``OccupancyConfig`` dict;
* ``optimizer``: Adam's ``state_dict``;
* ``rng``: torch CPU (and CUDA) generator states;
* ``skinning``: the skinning-loss schedule (:class:`~halohand.training.trainer.SkinningSchedule`);
* ``best``: best validation metric and its step; ``last_val``: latest validation result;
* ``config``: the :class:`~halohand.training.config.TrainConfig` as a dict;
* ``log_window`` (optional, newer checkpoints): sums of the steps since the last log row
  (:class:`~halohand.training.run.Run`), so the first row after a resume matches.

Writes go to a temporary file in the same folder, are fsynced and renamed over the old
checkpoint with ``os.replace``: a crash leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from halohand.core.atomic import atomic_open
from halohand.core.errors import CorruptFileError

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_KEYS", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "halohand.train-checkpoint"
CHECKPOINT_VERSION = 1
#: Keys every occupancy-trainer checkpoint holds.
CHECKPOINT_KEYS = ("step", "elapsed_s", "model", "model_config", "optimizer", "config", "skinning")


def save_checkpoint(
    path: str | os.PathLike[str], state: dict[str, Any], format_tag: str = CHECKPOINT_FORMAT
) -> Path:
    """Write ``state`` (plus the format tag) to ``path`` atomically; returns the path.

    ``format_tag`` names the kind of run (the occupancy trainer's by default) so that
    :func:`load_checkpoint` refuses a checkpoint of another kind.
    """
    path = Path(path)
    doc = {"format": format_tag, "version": CHECKPOINT_VERSION, **state}
    with atomic_open(path, "wb") as fh:
        torch.save(doc, fh)
    return path


def load_checkpoint(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    format_tag: str = CHECKPOINT_FORMAT,
    required: tuple[str, ...] = CHECKPOINT_KEYS,
) -> dict[str, Any]:
    """Read and validate a checkpoint written by :func:`save_checkpoint` with ``format_tag``
    that holds the keys ``required``.

    Raises:
        CorruptFileError: naming the file, when it is missing, truncated, corrupt, foreign or
            incomplete.
    """
    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(f"{path}: checkpoint not found")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":  # torch.save writes a zip archive
            raise CorruptFileError(
                f"{path}: not a halohand training checkpoint (not a torch.save archive; "
                f"empty, damaged or from another program)"
            )
    try:
        doc = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - zip, pickle and tensor errors all mean "corrupt"
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights only load failed" in msg.lower():  # torch's long, multi-part message
            msg = "holds Python objects other than tensors: a file from another program?"
        raise CorruptFileError(
            f"{path}: corrupt or unreadable training checkpoint ({msg})"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != format_tag:
        raise CorruptFileError(f"{path}: not a halohand training checkpoint")
    if doc.get("version") != CHECKPOINT_VERSION:
        raise CorruptFileError(f"{path}: unsupported checkpoint version {doc.get('version')}")
    missing = [k for k in required if k not in doc]
    if missing:
        raise CorruptFileError(f"{path}: incomplete checkpoint (missing {', '.join(missing)})")
    return doc
