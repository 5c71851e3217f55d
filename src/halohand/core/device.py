"""Torch devices by name: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``."""

from __future__ import annotations

import torch

from halohand.core.errors import HalohandInputError


def select_device(name: str | torch.device, local_rank: int = 0) -> torch.device:
    """The device called ``name``; ``"auto"`` is CUDA (device ``local_rank``) when available,
    else the CPU, and a bare ``"cuda"`` means ``cuda:<local_rank>``.

    Raises:
        HalohandInputError: for an unknown name, or CUDA asked for where there is none.
    """
    name = str(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise HalohandInputError(f"device {name!r} requested but CUDA is not available")
    if name != "cpu" and not name.startswith("cuda"):  # mps, meta, xpu...: not supported here
        raise HalohandInputError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    try:
        return torch.device(name)
    except RuntimeError:  # torch.device's "Expected one of cpu, cuda, ..."
        raise HalohandInputError(
            f"unknown device {name!r}; use auto, cpu, cuda or cuda:N"
        ) from None
