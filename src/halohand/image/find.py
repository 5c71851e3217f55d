"""All hands of a photo: palm detection, landmarks, duplicates removed, occluded hands
looked for again, weak palms verified, and two more views of a photo without a hand.

A hand partly hidden behind another often shows too little palm for the detector while
the front hand is visible (two overlapping thumbs-up: one palm found). So once hands are
found, their pixels are blacked out and the detector runs again on what is left, until
``max_hands`` are found or a pass finds nothing new; the landmark model always sees the
unmasked photo.

The detector's own threshold (0.5) misses palms it sees but doubts: fists and curled hands
from the back, hands over wood. Its weaker palms (score down to :data:`WEAK_SCORE`) are
kept only when the landmark model, looking at the region, is sure of a hand (presence
:data:`WEAK_PRESENCE` instead of 0.5): the second model verifies the first.

A close-up palm can be larger than anything the detector was made to find (on rendered
hands, 37 % of hands spanning over 70 % of the image were found against 82 % of those
spanning 30-50 %). When a photo yields no hand, it is searched once more zoomed out: centred
in a square of its mean colour :data:`ZOOM_OUT` times its longer side (2.5 of
1.5, 1.8, 2.5 and 3.5 found the most rendered hands; on a second rendered set, 80 images
of another seed, it took the found hands from 61 to 69).

A hand over a skin-coloured surface (a wooden floor) can draw the detector to the surface:
on the real V-sign photo it scores wood grain 0.74 and the hand nothing, while in grey the
hand scores 0.17 and the landmark model gives it presence 1.0. So the last view is the
photo in grey (ITU-R 601 luma, through Pillow), squared with its mean as the zoomed view
is; there the landmark model, too, sees the grey image (in colour it gives that hand
presence 0.003).

The thresholds were chosen on the tuning renders only (``render_detection.py``, seed
777001: 139 -> 147 of 150 found; 3 of 400 hand-free backgrounds now give a hand).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from halohand.image.detect import MIN_SCORE, PalmDetection, box_iou, detect_palms
from halohand.image.landmarks import MIN_PRESENCE, HandLandmarks, PhotoSource, hand_landmarks

#: Two hands whose joint boxes overlap more than this are one hand seen twice.
DUPLICATE_IOU = 0.5
#: Masked detection passes after the first (each costs one detector run, ~20 ms).
MAX_EXTRA_PASSES = 3
#: Weak palms (detector score in ``[WEAK_SCORE, MIN_SCORE)``) looked at per pass, and the
#: landmark presence one needs to count as a hand.
WEAK_SCORE = 0.05
MAX_WEAK = 3
WEAK_PRESENCE = 0.7
#: The zoomed-out view of a photo without a hand is this many times its size per side.
ZOOM_OUT = 2.5
#: The zoomed-out and grey views are made from the photo scaled to at most this many pixels
#: along its longer side (the detector sees 192, the landmark model a 224-pixel crop).
MAX_VIEW_SIDE = 1280


def _is_new(hand: HandLandmarks, found: list[HandLandmarks]) -> bool:
    if not found:
        return True
    boxes = np.stack([h.box() for h in found])
    return bool((box_iou(hand.box(), boxes) <= DUPLICATE_IOU).all())


def _masked(rgb: np.ndarray, hands: list[HandLandmarks]) -> np.ndarray:
    out = rgb.copy()
    h, w = rgb.shape[:2]
    for hand in hands:
        x0, y0, x1, y1 = hand.box()
        out[
            int(np.clip(np.floor(y0), 0, h)) : int(np.clip(np.ceil(y1), 0, h)),
            int(np.clip(np.floor(x0), 0, w)) : int(np.clip(np.ceil(x1), 0, w)),
        ] = 0
    return out


def find_hands(rgb: np.ndarray, max_hands: int = 2) -> list[HandLandmarks]:
    """Up to ``max_hands`` hands of an ``[H, W, 3]`` uint8 RGB photo, in the order found
    (most confident palm first); a photo without a hand is searched again zoomed out, then
    in grey."""
    return (
        _find(rgb, max_hands)
        or _framed(rgb, max_hands, ZOOM_OUT, grey=False)
        or _framed(rgb, max_hands, 1.0, grey=True)
    )


def _framed(rgb: np.ndarray, max_hands: int, zoom: float, grey: bool) -> list[HandLandmarks]:
    """Hands found with the photo centred in a square of its mean colour, ``zoom`` times its
    longer side, in grey if ``grey``. The square is built from the photo scaled down to
    :data:`MAX_VIEW_SIDE` (a 12-megapixel photo would make a 10,000-pixel square); pixels
    are the photo's."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = min(1.0, MAX_VIEW_SIDE / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))
        h, w = rgb.shape[:2]
    side = int(round(zoom * max(h, w)))
    x0, y0 = (side - w) // 2, (side - h) // 2
    mean = rgb.reshape(-1, rgb.shape[-1]).mean(0).round().astype(rgb.dtype)
    square = np.empty((side, side, rgb.shape[-1]), dtype=rgb.dtype)
    square[:] = mean
    square[y0 : y0 + h, x0 : x0 + w] = rgb
    if grey:
        luma = np.asarray(Image.fromarray(square).convert("L"))
        square = np.repeat(luma[..., None], 3, axis=2)
    offset = np.array([x0, y0], dtype=np.float64)
    return [
        replace(
            hand,
            pixels=(hand.pixels - offset) / scale,
            region=replace(
                hand.region,
                center=(hand.region.center - offset) / scale,
                size=hand.region.size / scale,
            ),
        )
        for hand in _find(square, max_hands)
    ]


def _verified(rgb: PhotoSource, palm: PalmDetection) -> HandLandmarks | None:
    """The landmarks of a palm's hand, or ``None`` where the landmark model sees no hand
    there: a confident palm needs presence :data:`MIN_PRESENCE` at the first look, a weak
    one :data:`WEAK_PRESENCE` at the better of two looks (its own box frames the hand worse
    than the joints of the first look do)."""
    first = hand_landmarks(rgb, palm.hand_region())
    if palm.score >= MIN_SCORE:
        if first.presence < MIN_PRESENCE:
            return None
        again = hand_landmarks(rgb, first.refined_region())
        return again if again.presence >= MIN_PRESENCE else first
    again = hand_landmarks(rgb, first.refined_region())
    best = again if again.presence >= first.presence else first
    return best if best.presence >= WEAK_PRESENCE else None


def _find(rgb: np.ndarray, max_hands: int) -> list[HandLandmarks]:
    found: list[HandLandmarks] = []
    image, source = rgb, PhotoSource(rgb)  # the landmark model's crops share one source
    for _ in range(1 + MAX_EXTRA_PASSES):
        added = False
        palms = detect_palms(image, max_palms=max_hands, weak_score=WEAK_SCORE, max_weak=MAX_WEAK)
        for palm in palms:
            hand = _verified(source, palm)
            if hand is not None and _is_new(hand, found):
                found.append(hand)
                added = True
            if len(found) >= max_hands:
                return found
        if not added:
            break
        image = _masked(rgb, found)
    return found
