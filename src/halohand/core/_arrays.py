"""numpy / torch dispatch for the pure math in :mod:`halohand.core`.

The rotation and skinning functions are written once against the few array operations
below; :func:`namespace` picks torch when any argument is a tensor, numpy otherwise. numpy
callers therefore never import torch, torch callers keep autograd, dtype and device, and
both run the same formula. Each torch operation here is the one the formulas used before
they were shared, so their torch results are unchanged to the bit.

Not a general array API: only what :mod:`~halohand.core.rotations` and
:mod:`~halohand.core.skinning` need, with positional axes (``stack(seq, -1)``) and torch's
names where numpy's differ.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np


def is_tensor(x: Any) -> bool:
    """True for a ``torch.Tensor`` (without importing torch: no tensor exists before it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


#: Operations numpy and torch spell alike (with positional axes).
_COMMON = (
    "stack", "einsum", "sin", "cos", "sqrt", "sinc", "where", "zeros_like", "ones_like",
    "broadcast_to",
)  # fmt: skip


class _Numpy:
    """numpy implementations; array-likes (lists, scalars) are taken as float arrays."""

    def __init__(self) -> None:
        for name in _COMMON:
            setattr(self, name, getattr(np, name))
        self.concat, self.atan2, self.cross = np.concatenate, np.arctan2, np.cross

    @staticmethod
    def asarray(x: Any) -> np.ndarray:
        a = np.asarray(x)
        return a if a.dtype.kind in "fc" else a.astype(np.float64)

    @staticmethod
    def norm(v: Any, keepdim: bool = False) -> Any:
        return np.linalg.norm(v, axis=-1, keepdims=keepdim)

    @staticmethod
    def clamp_min(x: Any, lo: float) -> Any:
        return np.maximum(x, lo)

    @staticmethod
    def eye(n: int, like: Any) -> np.ndarray:
        return np.eye(n, dtype=np.result_type(like, np.float64))

    @staticmethod
    def zeros(shape: tuple[int, ...], like: Any) -> np.ndarray:
        return np.zeros(shape, dtype=np.result_type(like, np.float64))

    @staticmethod
    def transpose(x: Any) -> Any:
        return np.swapaxes(x, -1, -2)


class _Torch:
    """torch implementations (imported on first use, when a tensor already exists)."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        for name in _COMMON:
            setattr(self, name, getattr(torch, name))
        self.concat, self.atan2, self.cross = torch.cat, torch.atan2, torch.linalg.cross

    def asarray(self, x: Any) -> Any:
        return x if is_tensor(x) else self.torch.as_tensor(x)

    def norm(self, v: Any, keepdim: bool = False) -> Any:
        return self.torch.linalg.vector_norm(v, dim=-1, keepdim=keepdim)

    @staticmethod
    def clamp_min(x: Any, lo: float) -> Any:
        return x.clamp_min(lo)

    def eye(self, n: int, like: Any) -> Any:
        return self.torch.eye(n, dtype=like.dtype, device=like.device)

    def zeros(self, shape: tuple[int, ...], like: Any) -> Any:
        return like.new_zeros(shape)

    @staticmethod
    def transpose(x: Any) -> Any:
        return x.transpose(-1, -2)


NUMPY = _Numpy()
_TORCH: list[_Torch] = []


def namespace(*arrays: Any) -> Any:
    """The operations for these arguments: torch's if any is a tensor, else numpy's."""
    if any(is_tensor(a) for a in arrays):
        if not _TORCH:
            _TORCH.append(_Torch())
        return _TORCH[0]
    return NUMPY
