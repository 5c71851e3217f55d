"""Keypoint arrays checked before any work: joint format, shape, finiteness, length unit.

Every failure raises :class:`~halohand.core.errors.HalohandInputError` with a one-line
message that says how to fix the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.core.units import HAND_LENGTH_RANGE_M, check_unit, unit_for_size
from halohand.skeleton.bones import hand_length
from halohand.skeleton.orders import FORMATS, num_joints, to_openpose

#: Largest accepted keypoint coordinate in any unit (1e6 mm = 1 km): beyond it the arithmetic
#: of bone lengths and frames would overflow or lose all precision long before a unit could
#: be detected.
MAX_COORDINATE = 1e6

#: What an array of a non-numeric dtype kind holds, for messages.
_KIND_NAMES = {"U": "text", "S": "bytes", "M": "dates", "m": "time spans", "V": "records"}


def check_format(fmt: str) -> str:
    """Lower-cased keypoint format name; raises with the list of known formats."""
    key = str(fmt).lower()
    if key not in FORMATS:
        raise HalohandInputError(
            f"unknown keypoint format {fmt!r}; use one of {', '.join(FORMATS)}"
        )
    return key


def check_keypoints(
    keypoints: Any, fmt: str = "openpose", name: str = "keypoints"
) -> tuple[np.ndarray, bool]:
    """Validate a keypoint array: shape ``[J, 3]`` or ``[N, J, 3]``, numeric, finite.

    Args:
        keypoints: array-like (numpy, torch tensor, nested lists).
        fmt: keypoint format, which fixes ``J``.
        name: what to call the input in messages (usually the file name).

    Returns:
        ``([N, J, 3] float64, is_sequence)``.
    """
    fmt = check_format(fmt)
    j = num_joints(fmt)
    if hasattr(keypoints, "detach"):
        keypoints = keypoints.detach().cpu().numpy()
    try:
        arr = np.asarray(keypoints)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.dtype.kind not in "biufc":  # timedelta64 is a numpy "number"
        what = _KIND_NAMES.get(arr.dtype.kind, "") if arr is not None else ""
        raise HalohandInputError(
            f"{name}: keypoints must be numbers in a [{j}, 3] or [N, {j}, 3] array"
            + (f", got {what}" if what else "")
        )
    if np.iscomplexobj(arr) or arr.dtype == bool:
        raise HalohandInputError(f"{name}: keypoints must be real numbers, got {arr.dtype}")
    shape = list(arr.shape)
    if arr.size == 0:
        raise HalohandInputError(f"{name}: holds no keypoints (shape {shape})")
    if arr.ndim == 2 and arr.shape == (j, 3):
        seq = False
        arr = arr[None]
    elif arr.ndim == 3 and arr.shape[1:] == (j, 3):
        seq = True
    else:
        hint = _shape_hint(arr.shape, j)
        raise HalohandInputError(
            f"{name}: keypoints must have shape [{j}, 3] or [N, {j}, 3] for format {fmt}, "
            f"got {shape}{hint}"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # float128 / huge ints: caught below
        arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr).all(-1)
    if bad.any():
        hand, joint = (int(i) for i in np.argwhere(bad)[0])
        where = f"hand {hand}, " if seq else ""
        raise HalohandInputError(
            f"{name}: {int(bad.sum())} keypoint(s) are NaN or inf (first: {where}joint "
            f"{joint}); fill in or drop missing joints"
        )
    largest = float(np.abs(arr).max())
    if largest > MAX_COORDINATE:
        raise HalohandInputError(
            f"{name}: keypoint coordinates up to {largest:.3g}: no hand is that large in m, cm "
            f"or mm (limit {MAX_COORDINATE:g}); check the file and its units"
        )
    return arr, seq


def _shape_hint(shape: tuple[int, ...], j: int) -> str:
    """Why an array of ``shape`` is not ``[J, 3]`` / ``[N, J, 3]``, when that can be told."""
    last = shape[-1] if shape else 0
    rows = shape[-2] if len(shape) >= 2 else 0
    if len(shape) in (2, 3) and last == 3 and rows == 2 * j:
        return (
            f" (two hands in one array? store them as an [N, {j}, 3] sequence or one file per hand)"
        )
    if len(shape) in (2, 3) and last == 3 and rows in (21, 25, 26) and rows != j:
        return f" (a {rows}-joint skeleton: pass the matching --format)"
    if len(shape) in (2, 3) and last in (2, 4):
        return " (keypoints need x, y, z: 2D or homogeneous points are not accepted)"
    if len(shape) in (2, 3) and last == j and rows == 3:
        return " (transposed? pass the array with one row per joint, [J, 3])"
    if len(shape) in (1, 2) and last == 3 * j:
        return f" (flattened? reshape it to [{j}, 3] or [N, {j}, 3])"
    return ""


def detect_units(keypoints: Any, fmt: str = "openpose") -> str:
    """The length unit of a skeleton, from its size: ``"m"``, ``"cm"`` or ``"mm"``.

    Uses the hand length (wrist to middle fingertip along the finger, median over a batch):
    the unit is the one in which it falls in
    :data:`~halohand.core.units.HAND_LENGTH_RANGE_M`.

    Args:
        keypoints: ``[J, 3]`` or ``[N, J, 3]`` keypoints (numpy, tensor or lists).
        fmt: their keypoint format.

    Raises:
        HalohandInputError: when the size fits no unit (e.g. a hand length of 3.1 units).
    """
    arr, _ = check_keypoints(keypoints, fmt)
    length = float(np.median(hand_length(to_openpose(arr, check_format(fmt)))))
    if not length > 1e-12:
        raise HalohandInputError(
            "degenerate skeleton: the wrist and the middle-finger joints coincide (hand "
            "length 0); check the keypoints and their --format"
        )
    return unit_for_size(length, HAND_LENGTH_RANGE_M, "hand length (wrist to middle fingertip)")


def resolve_units(units: str, keypoints: Any, fmt: str = "openpose") -> str:
    """``units`` checked, or detected with :func:`detect_units` when ``"auto"``."""
    key = check_unit(units)
    return detect_units(keypoints, fmt) if key == "auto" else key
