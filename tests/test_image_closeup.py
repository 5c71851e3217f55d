"""A close-up hand, larger than the palm detector finds, is found by the zoomed-out search,
with its landmarks in the photo's own pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import halohand.image.find as find
from halohand.image import from_image, load_photo

PHOTO = Path(__file__).parents[1] / "examples" / "photos" / "mpsamples_thumbs-up.png"


def test_close_up_is_found_zoomed_out() -> None:
    photo = load_photo(PHOTO)
    (hand,) = from_image(photo, max_hands=1, fit=False).hands
    px = hand.landmarks.pixels
    (x0, y0), (x1, y1) = px.min(0), px.max(0)
    half = 0.5 * max(x1 - x0, y1 - y0)
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    top, left = int(max(cy - half, 0)), int(max(cx - half, 0))
    crop = np.ascontiguousarray(photo.rgb[top : int(cy + half), left : int(cx + half)])
    assert find._find(crop, 1) == []  # the hand fills the crop: the detector misses it
    (close,) = find.find_hands(crop, 1)
    # the same joints, in the crop's pixels (within 4 % of the hand's size)
    size = np.linalg.norm(np.diff(px[[0, 9, 10, 11, 12]], axis=0), axis=1).sum()
    err = np.linalg.norm(close.pixels - (px - [left, top]), axis=1)
    assert err.mean() < 0.04 * size
    assert close.side == hand.side


def test_views_made_from_a_scaled_down_photo_give_its_own_pixels(monkeypatch) -> None:
    photo = load_photo(PHOTO)
    rgb = np.ascontiguousarray(photo.rgb[::2, ::2])  # 960 x 640
    (full,) = find._framed(rgb, 1, find.ZOOM_OUT, grey=False)
    monkeypatch.setattr(find, "MAX_VIEW_SIDE", 480)  # the views at half this photo's size
    (half,) = find._framed(rgb, 1, find.ZOOM_OUT, grey=False)
    size = np.linalg.norm(np.diff(full.pixels[[0, 9, 10, 11, 12]], axis=0), axis=1).sum()
    assert np.linalg.norm(half.pixels - full.pixels, axis=1).mean() < 0.04 * size
    assert abs(half.region.size / full.region.size - 1.0) < 0.1
