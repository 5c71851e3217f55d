"""Hand landmarks: the 21 joints of a hand region, in photo pixels and in metres.

The landmark model sees the region as an upright 224x224 crop (fingers up). It returns the
joints in crop pixels (with a relative depth), a presence score, a handedness score and
the joints in metres around the hand's centre, in the crop's axes. Both are turned back
into the photo's axes here: the pixel joints through the crop's affine map, the metric
joints by the region's rotation about the viewing axis. Joint order: wrist, then thumb,
index, middle, ring, little finger from base to tip (the project's ``openpose`` order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from halohand.image.detect import HandRegion, rotation_matrix
from halohand.image.models import TFLiteModel, landmark_model

#: Landmark model input side (pixels).
CROP_SIZE = 224
#: The second look: the joints that frame the hand (wrist, palm and thumb bases: steadier
#: than the fingertips), their rotated box enlarged and shifted toward the fingers.
FRAME_JOINTS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)
FRAME_SCALE = 2.0
FRAME_SHIFT = 0.1
#: Regions scored below this hold no hand.
MIN_PRESENCE = 0.5
#: A crop is sampled from a box-filtered copy of the photo when the region has more than
#: this many photo pixels per crop pixel (bilinear sampling alone would alias).
MAX_SAMPLING_STEP = 1.5


@dataclass(frozen=True, eq=False)
class HandLandmarks:
    """One hand found in a photo.

    Attributes:
        pixels: ``[21, 2]`` joint positions in photo pixels (``x`` right, ``y`` down).
        world: ``[21, 3]`` joints in metres around the hand's centre, axes of the camera
            (``x`` right, ``y`` down, ``z`` away from the camera).
        presence: the model's confidence in ``[0, 1]`` that the region holds a hand.
        right_score: in ``[0, 1]``, the probability the hand is a right hand.
        region: the region it was found in.
    """

    pixels: np.ndarray
    world: np.ndarray
    presence: float
    right_score: float
    region: HandRegion

    @property
    def side(self) -> str:
        return "right" if self.right_score >= 0.5 else "left"

    def refined_region(self) -> HandRegion:
        """A region framed on these joints, for a second, better-centred look: rotated so
        that wrist -> middle-finger base points up, around the rotated box of
        :data:`FRAME_JOINTS`."""
        d = self.pixels[9] - self.pixels[0]
        rotation = float((np.pi / 2 - np.arctan2(-d[1], d[0]) + np.pi) % (2 * np.pi) - np.pi)
        rot = rotation_matrix(rotation)
        local = self.pixels[list(FRAME_JOINTS)] @ rot  # photo -> region axes (R^T p)
        lo, hi = local.min(0), local.max(0)
        size = hi - lo
        centre = rot @ (0.5 * (lo + hi) + np.array([0.0, -FRAME_SHIFT * size[1]]))
        return HandRegion(centre, float(size.max() * FRAME_SCALE), rotation)

    def box(self) -> np.ndarray:
        """``[4]`` ``(x_min, y_min, x_max, y_max)`` of the joints in pixels."""
        return np.concatenate([self.pixels.min(0), self.pixels.max(0)])


class PhotoSource:
    """A photo prepared for many crops: its Pillow image and box-filtered copies, each made
    once (on a 12-megapixel photo, making them took most of a landmark look's time).

    Attributes:
        rgb: ``[H, W, 3]`` uint8 RGB.
    """

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self._reduced: dict[int, Image.Image] = {}

    def reduced(self, factor: int) -> Image.Image:
        """The photo box-filtered by ``factor`` (1: as it is)."""
        if 1 not in self._reduced:
            self._reduced[1] = Image.fromarray(self.rgb)
        if factor not in self._reduced:
            self._reduced[factor] = self._reduced[1].reduce(factor)
        return self._reduced[factor]


def crop(rgb: np.ndarray | PhotoSource, region: HandRegion, side: int = CROP_SIZE) -> np.ndarray:
    """``[side, side, 3]`` float32 in ``[0, 1]``: the region of the photo, upright; outside
    the photo is black."""
    source = rgb if isinstance(rgb, PhotoSource) else PhotoSource(rgb)
    step = region.size / side
    factor = max(1, int(step // MAX_SAMPLING_STEP))
    # box-filter first (factor > 1): the affine sampling below does not anti-alias
    img = source.reduced(factor)
    # Photo pixel p = M @ (u, v, 1) for crop pixel (u, v); Pillow's affine takes that map.
    rot = rotation_matrix(region.rotation) * step
    offset = region.center - rot @ np.full(2, 0.5 * side)
    coeffs = np.concatenate([rot[0], [offset[0]], rot[1], [offset[1]]]) / factor
    out = img.transform(
        (side, side), Image.Transform.AFFINE, tuple(coeffs), Image.Resampling.BILINEAR
    )
    return np.asarray(out, dtype=np.float32) / np.float32(255.0)


def hand_landmarks(
    rgb: np.ndarray | PhotoSource, region: HandRegion, model: TFLiteModel | None = None
) -> HandLandmarks:
    """The landmarks of the hand in ``region`` of an ``[H, W, 3]`` uint8 RGB photo (or a
    :class:`PhotoSource` of it, for several regions; the caller judges ``presence``)."""
    screen, presence, handedness, world = (model or landmark_model())(crop(rgb, region)[None])
    uv = screen.reshape(21, 3)[:, :2].astype(np.float64)
    pixels = region.to_image(uv, CROP_SIZE)
    # world joints: rotate the crop's x/y axes back to the photo's (depth is unchanged)
    w = world.reshape(21, 3).astype(np.float64)
    w[:, :2] = w[:, :2] @ rotation_matrix(region.rotation).T
    return HandLandmarks(
        pixels, w, float(presence.ravel()[0]), float(handedness.ravel()[0]), region
    )
