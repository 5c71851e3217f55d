"""Save / load our own occupancy networks: one safetensors file with the config inside.

The file is a plain safetensors archive (weights only, no pickle, safe to open from
untrusted sources). Its string metadata holds ``format`` (``halohand.occupancy``), a format
``version`` and the JSON of :class:`~halohand.fields.occupancy.OccupancyConfig`, so a
single file fully describes a model. Writes are atomic (temp file + ``os.replace``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from halohand.core.atomic import atomic_path
from halohand.core.checkpoint import load_checkpoint
from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.fields.occupancy import OccupancyConfig, OccupancyNetwork

FORMAT = "halohand.occupancy"
FORMAT_VERSION = "1"


def save_model(
    path: str | os.PathLike[str],
    model: OccupancyNetwork,
    extra_metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``model`` (weights + config) to ``path`` atomically.

    Args:
        path: destination, conventionally ``*.safetensors``.
        model: the network; weights are stored in their current dtype, on CPU.
        extra_metadata: optional string pairs stored alongside (e.g. training iteration).

    Returns:
        the path written.
    """
    path = Path(path)
    meta: dict[str, str] = dict(extra_metadata or {})
    meta.update({"format": FORMAT, "version": FORMAT_VERSION, "config": model.config.to_json()})
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The string metadata of a saved model, validated to be ours.

    Raises:
        CorruptFileError: unreadable, not safetensors, or not a halohand occupancy model.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) != 8:
                raise CorruptFileError(f"{path}: too short to be a safetensors file")
            n = int.from_bytes(head, "little")
            if n <= 0 or n > 100_000_000:
                raise CorruptFileError(f"{path}: not a safetensors file (bad header size)")
            header = json.loads(f.read(n))
    except CorruptFileError:
        raise
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"{path}: cannot read model file ({exc})") from exc
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CorruptFileError(f"{path}: not a halohand occupancy model (format tag missing)")
    if meta.get("version") != FORMAT_VERSION:
        raise CorruptFileError(f"{path}: unsupported model format version {meta.get('version')}")
    return meta


def load_model(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> OccupancyNetwork:
    """Load a model written by :func:`save_model` (returned in eval mode).

    Raises:
        CorruptFileError: naming the file, when it is truncated, corrupt, foreign, or its
            weights do not match its config.
    """
    path = Path(path)
    meta = read_metadata(path)
    try:
        config = OccupancyConfig.from_dict(json.loads(meta["config"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise CorruptFileError(f"{path}: invalid model config ({exc})") from exc
    try:
        tensors = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CorruptFileError(f"{path}: corrupt weights ({exc})") from exc
    model = OccupancyNetwork(config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CorruptFileError(f"{path}: weights do not match the stored config ({exc})") from exc
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CorruptFileError(f"{path}: non-finite values in {name}")
    return model.to(map_location).eval()


def model_from_checkpoint(path: str | os.PathLike[str], map_location: str = "cpu"):
    """The :class:`~halohand.fields.OccupancyNetwork` stored in a ``checkpoint.pt`` (eval mode).

    Raises:
        CorruptFileError: as :func:`load_checkpoint`, or when the weights do not fit the
            stored model config.
    """
    doc = load_checkpoint(path, map_location)
    try:
        config = OccupancyConfig.from_dict(dict(doc["model_config"]))
        net = OccupancyNetwork(config)
        net.load_state_dict(doc["model"], strict=True)
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        msg = str(exc).strip().splitlines()[0]
        raise CorruptFileError(
            f"{path}: model weights do not match the stored config ({msg})"
        ) from None
    return net.to(map_location).eval()


def load_any_model(path: str | os.PathLike[str], device: str | torch.device = "cpu"):
    """A model from ``best.safetensors``-style files or a training ``checkpoint.pt``.

    Raises:
        CorruptFileError: naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise HalohandInputError(f"{path}: model file not found")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"PK":  # torch.save zip archive
        return model_from_checkpoint(path, map_location=str(device))
    return load_model(path, map_location=device)
