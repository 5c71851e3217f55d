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
    if (
        arr is None
        or arr.dtype == object
        or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool)
    ):
        raise HalohandInputError(
            f"{name}: keypoints must be numbers in a [{j}, 3] or [N, {j}, 3] array"
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
        hint = ""
        if arr.ndim in (2, 3) and arr.shape[-1] == 3 and arr.shape[-2] in (21, 25, 26, 42):
            hint = f" (a {arr.shape[-2]}-joint skeleton: pass the matching --format)"
        elif arr.ndim in (2, 3) and arr.shape[-1] in (2, 4):
            hint = " (keypoints need x, y, z: 2D or homogeneous points are not accepted)"
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
