"""The hand search's cascade: weak palms verified by the landmark model, and the views of a
photo without a hand (as it is, zoomed out, grey), in that order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import halohand.image.find as find
from halohand.image import load_photo
from halohand.image.detect import (
    MIN_SCORE,
    NMS_IOU,
    HandRegion,
    PalmDetection,
    box_iou,
    detect_palms,
)
from halohand.image.landmarks import HandLandmarks, PhotoSource

PHOTO = Path(__file__).parents[1] / "examples" / "photos" / "mpsamples_hand_thumb_up.jpg"


def test_weak_palms_follow_the_confident_ones_unchanged() -> None:
    rgb = load_photo(PHOTO).rgb
    confident = detect_palms(rgb)
    both = detect_palms(rgb, weak_score=0.001, max_weak=4)
    assert len(confident) >= 1 and len(both) > len(confident)
    for a, b in zip(confident, both, strict=False):  # same palms, same merge
        assert (
            a.score == b.score
            and np.allclose(a.box, b.box)
            and np.allclose(a.keypoints, b.keypoints)
        )
    weak = both[len(confident) :]
    assert len(weak) <= 4
    boxes = np.stack([p.box for p in confident])
    scores = [p.score for p in weak]
    assert all(0.001 <= s < MIN_SCORE for s in scores) and scores == sorted(scores, reverse=True)
    for palm in weak:
        assert (box_iou(palm.box, boxes) <= NMS_IOU).all()


def _palm(score: float) -> PalmDetection:
    kps = np.array(
        [[100.0, 120.0], [90, 90], [100, 88], [110, 90], [118, 94], [85, 110], [80, 100]]
    )
    return PalmDetection(score, np.array([80.0, 80.0, 120.0, 120.0]), kps)


@pytest.mark.parametrize(
    ("score", "presences", "kept"),
    [
        (0.9, (0.6, 0.2), 0.6),  # confident: 0.5 at the first look suffices
        (0.9, (0.4, 0.99), None),  # confident but no hand at the first look
        (0.2, (0.6, 0.65), None),  # weak: 0.7 needed
        (0.2, (0.3, 0.95), 0.95),  # weak: the second, better framed look counts
        (0.2, (0.8, 0.1), 0.8),
    ],
)
def test_a_weak_palm_needs_a_surer_landmark_model(monkeypatch, score, presences, kept) -> None:
    looks = iter(presences)

    def fake_landmarks(rgb, region):
        return HandLandmarks(
            np.zeros((21, 2)),
            np.zeros((21, 3)),
            next(looks),
            0.9,
            HandRegion(np.zeros(2), 10.0, 0.0),
        )

    monkeypatch.setattr(find, "hand_landmarks", fake_landmarks)
    monkeypatch.setattr(HandLandmarks, "refined_region", lambda self: self.region)
    hand = find._verified(PhotoSource(np.zeros((8, 8, 3), np.uint8)), _palm(score))
    assert (None if hand is None else hand.presence) == kept


def test_views_of_a_photo_without_a_hand_in_order(monkeypatch) -> None:
    seen = []

    def nothing(image, max_hands):
        grey = bool(
            (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
        )
        seen.append((image.shape[:2], grey))
        return []

    monkeypatch.setattr(find, "_find", nothing)
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    assert find.find_hands(photo, 2) == []
    assert seen == [((40, 60), False), ((150, 150), False), ((60, 60), True)]


def test_a_photo_source_crops_as_the_photo_and_reduces_once() -> None:
    from halohand.image.landmarks import crop

    rgb = load_photo(PHOTO).rgb
    source = PhotoSource(rgb)
    for size in (60.0, 500.0, 1500.0):  # sampling steps below and above the box filter's
        region = HandRegion(np.array([320.0, 260.0]), size, 0.4)
        np.testing.assert_array_equal(crop(source, region), crop(rgb, region))
    assert source.reduced(3) is source.reduced(3) and source.reduced(1).size == (640, 521)
