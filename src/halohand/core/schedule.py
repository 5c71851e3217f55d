"""The cosine schedule shared by training learning rates and iterative optimisers, and the
smoothstep ease curve (key-pose sequences, the hand's soft-tissue fields).

:func:`cosine` goes from ``start`` at step 0 to ``end`` at step ``total`` along half a
cosine period::

    value(s) = end + (start - end) * 0.5 * (1 + cos(pi * f)),   f = clip(s / total, 0, 1)

Callers that decay to a fraction of a peak pass ``start=1.0, end=fraction`` and multiply by
the peak; whether the last step reaches ``end`` is the caller's choice of ``total`` (the
training loops use the step count, so the last step is one before ``end``; the fitting loops
use the step count - 1, so it lands on ``end``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["cosine", "smoothstep"]


def cosine(step: float, total: float, start: float, end: float) -> float:
    """Value of a half-cosine decay from ``start`` (step 0) to ``end`` (step ``total``).

    Args:
        step: the step (0-based); outside ``[0, total]`` it is clipped.
        total: steps from ``start`` to ``end``; values below 1 count as 1.
        start: value at step 0.
        end: value at step ``total`` and after.

    Returns:
        ``end + (start - end) * 0.5 * (1 + cos(pi * clip(step / max(total, 1), 0, 1)))``.
    """
    frac = min(max(step / max(total, 1), 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * frac))


def smoothstep(u: np.ndarray | float) -> np.ndarray:
    """``3u^2 - 2u^3`` of ``u`` clipped to [0, 1]: 0 below 0, 1 above 1, zero slope at both
    ends, so what it weights eases in and out instead of changing abruptly."""
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)
