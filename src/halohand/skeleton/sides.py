"""Hand-side arguments: ``"right"`` / ``"left"``, per-hand names, or booleans (True = left)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from halohand.core.errors import HalohandInputError


def parse_side(side: Any) -> str | np.ndarray:
    """Normalize a side argument without fixing its shape.

    Args:
        side: ``"right"``/``"left"`` (any case), or an array / list / tensor of such names
            or of booleans (True = left).

    Returns:
        the lower-cased name for a single string; otherwise a numpy array, ``bool`` when it
        held names. Other dtypes are returned as they are: callers check dtype and shape
        against their batch and word their own error.

    Raises:
        HalohandInputError: an unknown name.
    """
    if isinstance(side, str):
        key = side.lower()
        if key not in ("right", "left"):
            raise HalohandInputError(f"side must be 'right' or 'left', got {side!r}")
        return key
    if isinstance(side, Tensor):
        side = side.detach().cpu().numpy()
    arr = np.asarray(side)
    if arr.dtype.kind in "US":
        bad = [s for s in arr.reshape(-1).tolist() if s not in ("right", "left")]
        if bad:
            raise HalohandInputError(f"side must be 'right' or 'left', got {bad[0]!r}")
        arr = arr == "left"
    return arr
