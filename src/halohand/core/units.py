"""Length units: the one table of metres per unit, the network's unit, and the unit detector.

Every public entry point takes lengths in metres, centimetres or millimetres and converts
them with :data:`UNIT_SCALE`; the occupancy network works in HALO units
(:data:`HALO_UNIT_M` metres). :func:`unit_for_size` is the one detector: given a size
measured in unknown units and the range that size has in metres, it returns the unit in
which the size is plausible. Hands (:func:`halohand.skeleton.detect_units`, by hand
length) and objects (:func:`halohand.objects.registry.object_from_mesh`, by bounding-box
diagonal) both call it with their own ranges.
"""

from __future__ import annotations

import math
from typing import Final

from halohand.core.errors import HalohandInputError

#: Metres per unit (``"m"``, ``"cm"``, ``"mm"``), in detection order.
UNIT_SCALE: Final[dict[str, float]] = {"m": 1.0, "cm": 0.01, "mm": 0.001}

#: Names accepted where a unit is asked for; ``"auto"`` detects it from the data's size.
UNIT_CHOICES: Final[tuple[str, ...]] = ("auto", *UNIT_SCALE)

#: HALO's length unit in metres: network coordinates are metres / 0.4.
HALO_UNIT_M: Final = 0.4

#: Hand lengths (wrist to middle fingertip along the finger) accepted when detecting the
#: unit of a skeleton, in metres. Adult hands measure 0.13-0.25 m; the range leaves room
#: for children, tracking noise and bent fingers, and stays disjoint across m / cm / mm.
HAND_LENGTH_RANGE_M: Final[tuple[float, float]] = (0.05, 0.45)


def check_unit(units: str, *, allow_auto: bool = True) -> str:
    """``units`` lower-cased and checked against :data:`UNIT_CHOICES`.

    Raises:
        HalohandInputError: for an unknown name.
    """
    key = str(units).lower()
    choices = UNIT_CHOICES if allow_auto else tuple(UNIT_SCALE)
    if key not in choices:
        raise HalohandInputError(f"unknown units {units!r}; use {', '.join(choices)}")
    return key


def units_fitting(size: float, range_m: tuple[float, float]) -> list[str]:
    """Every unit in which ``size`` (a length in unknown units) lies in ``range_m`` metres,
    in :data:`UNIT_SCALE` order; empty for a non-finite or non-positive size."""
    if not (math.isfinite(size) and size > 0.0):
        return []
    lo, hi = range_m
    return [u for u, scale in UNIT_SCALE.items() if lo <= size * scale <= hi]


def unit_for_size(size: float, range_m: tuple[float, float], what: str) -> str:
    """The first unit of :data:`UNIT_SCALE` in which ``size`` lies in ``range_m`` metres.

    Args:
        size: a length measured in the unknown unit (a hand length, a box diagonal).
        range_m: ``(lo, hi)`` plausible values of that length in metres.
        what: how the message names the length, e.g. ``"hand length (wrist to middle
            fingertip)"``.

    Raises:
        HalohandInputError: when the size fits no unit (it says which range was expected).
    """
    fits = units_fitting(size, range_m)
    if fits:
        return fits[0]
    lo, hi = range_m
    shown = f"{size:.4g}" if math.isfinite(size) else "non-finite"
    raise HalohandInputError(
        f"{what} {shown} units fits none of m/cm/mm (accepted: {lo:g}-{hi:g} m); pass the "
        f"unit explicitly (units= / --units)"
    )
