"""One hand of a scene: keypoints with their joint order, unit and side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.core.units import UNIT_SCALE
from halohand.skeleton.orders import to_openpose
from halohand.skeleton.sides import parse_side
from halohand.skeleton.validation import check_format, check_keypoints, resolve_units


@dataclass(frozen=True, eq=False)
class Hand:
    """A hand given by its keypoints.

    Attributes:
        keypoints: ``[J, 3]`` float64 as given: the joint order ``convention`` (``J`` = 21,
            25 for ``webxr``, 26 for ``openxr``), in ``units``, in the scene's world frame.
        side: ``"right"`` or ``"left"``.
        units: ``"m"``, ``"cm"`` or ``"mm"`` (resolved: never ``"auto"``).
        convention: the keypoint format (``halohand.skeleton.FORMATS``).
    """

    keypoints: np.ndarray
    side: str = "right"
    units: str = "m"
    convention: str = "openpose"

    @classmethod
    def from_keypoints(
        cls, keypoints: Any, side: str = "right", units: str = "auto", convention: str = "openpose"
    ) -> Hand:
        """Validate one hand: shape, finiteness, joint order, side; ``units="auto"`` reads
        the unit off the hand's size.

        Raises:
            HalohandInputError: with a one-line reason (wrong shape, NaN, unknown format,
                a size that fits no unit, a batch instead of one hand).
        """
        fmt = check_format(convention)
        arr, seq = check_keypoints(keypoints, fmt)
        if seq:
            raise HalohandInputError(
                f"a Hand holds one skeleton, got {arr.shape[0]}: make one Hand per skeleton"
            )
        parsed = parse_side(side)
        if not isinstance(parsed, str):
            raise HalohandInputError(f"side must be 'right' or 'left', got {side!r}")
        unit = resolve_units(units, arr, fmt)
        return cls(arr[0], parsed, unit, fmt)

    @property
    def keypoints_m(self) -> np.ndarray:
        """``[21, 3]`` metres, the project's (OpenPose) order, world frame."""
        return to_openpose(self.keypoints, self.convention) * UNIT_SCALE[self.units]

    @property
    def is_left(self) -> bool:
        return self.side == "left"
