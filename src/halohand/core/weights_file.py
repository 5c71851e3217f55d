"""Small models' weights as one safetensors file with string metadata (no pickle).

The keypoint refiner and the grasp VAE store their weights with a ``format`` tag and their
config's JSON in the metadata; this module does the file part once: atomic writes of CPU
tensors, and reads that turn any failure into one :class:`CorruptFileError` naming the file.
Each model checks its own tag and config. (The occupancy network's files, which carry a
format version and are validated further, have their own reader in
:mod:`halohand.fields.io`.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import torch

from halohand.core.atomic import atomic_path
from halohand.core.errors import CorruptFileError, HalohandInputError

__all__ = [
    "load_model_file", "read_model", "read_weights", "save_model", "shipped_weights",
    "write_weights",
]  # fmt: skip


def write_weights(
    path: str | os.PathLike[str], state: dict[str, torch.Tensor], metadata: dict[str, str]
) -> Path:
    """Write ``state`` (moved to the CPU, contiguous) with ``metadata`` to ``path``
    atomically; returns the path."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def read_weights(
    path: str | os.PathLike[str], what: str
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of a file of :func:`write_weights` (CPU tensors).

    Raises:
        CorruptFileError: ``"{path}: cannot read {what} ({reason})"`` for a missing,
            truncated or foreign file.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open API
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CorruptFileError(f"{path}: cannot read {what} ({exc})") from None
    return tensors, metadata


def save_model(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    fmt: str,
    config: Any,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights with metadata ``format`` = ``fmt``, ``config`` = the JSON of
    the dataclass ``config`` and, if given, ``extra`` (JSON), atomically; returns the path."""
    meta = {"format": fmt, "config": json.dumps(asdict(config))}
    if extra:
        meta["extra"] = json.dumps(extra)
    return write_weights(path, model.state_dict(), meta)


def shipped_weights(name: str) -> Path | None:
    """The weights file ``name`` shipped in the package's ``weights`` folder, or ``None``
    when this build ships none."""
    path = Path(str(resources.files("halohand") / "weights" / name))
    return path if path.is_file() else None


def read_model(
    path: str | os.PathLike[str], fmt: str, what: str
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of a file of :func:`save_model` with format tag ``fmt``.

    Raises:
        CorruptFileError: ``"{path}: {what} weights not found"``, an unreadable file
            (:func:`read_weights`) or ``"{path}: not a halohand {what} file"``.
    """
    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(f"{path}: {what} weights not found")
    state, meta = read_weights(path, f"{what} weights")
    if meta.get("format") != fmt:
        raise CorruptFileError(f"{path}: not a halohand {what} file")
    return state, meta


Model = TypeVar("Model", bound=torch.nn.Module)


def load_model_file(
    path: str | os.PathLike[str], fmt: str, what: str, build: Callable[[dict[str, Any]], Model]
) -> Model:
    """The model in a file of :func:`save_model` with format tag ``fmt``: ``build`` makes
    it from the file's JSON config, the weights are loaded, and it is put in eval mode.

    Raises:
        CorruptFileError: the errors of :func:`read_model`, or ``"{path}: weights do not fit
            the {what} (...)"`` when the config or the weights do not fit ``build``'s model.
    """
    state, meta = read_model(path, fmt, what)
    try:
        model = build(json.loads(meta["config"]))
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError, KeyError, HalohandInputError) as exc:
        raise CorruptFileError(f"{path}: weights do not fit the {what} ({exc})") from None
    return model.eval()
