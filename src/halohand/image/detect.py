"""Palm detection: where the hands of a photo are, as rotated square regions for the
landmark model.

The detector sees the photo letterboxed into 192x192 (aspect kept, black bars) and scores
2016 fixed anchors (SSD-style: a 24x24 grid of stride 8 with 2 anchors per cell, a 12x12
grid of stride 16 with 6); each anchor regresses a palm box and 7 palm keypoints relative
to its centre. Overlapping candidates are merged by weighted non-maximum suppression (the
score-weighted mean of a cluster is steadier than its best member alone). A palm then
gives the hand region: rotated so that wrist -> middle-finger base points up, shifted
toward the fingers and enlarged to hold the whole hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from halohand.image.models import TFLiteModel, palm_model

#: Detector input side (pixels).
INPUT_SIZE = 192
#: Anchor grids: strides of the detector's output layers; consecutive layers of one stride
#: share a grid (2 anchors per layer and cell).
STRIDES = (8, 16, 16, 16)
#: Palm keypoints the region's rotation is measured between: wrist centre -> middle MCP.
WRIST_KEYPOINT, MIDDLE_KEYPOINT = 0, 2
#: A palm box is enlarged this much (square, longer side) to hold the whole hand, after
#: its centre moves half a box height toward the fingers.
HAND_SCALE = 2.6
HAND_SHIFT = 0.5
#: Candidates below this score are dropped; overlaps above this IoU are one palm.
MIN_SCORE = 0.5
NMS_IOU = 0.3


@dataclass(frozen=True, eq=False)
class PalmDetection:
    """One palm, in the photo's pixel coordinates (``x`` right, ``y`` down, pixel centres
    at ``i + 0.5``).

    Attributes:
        score: detector confidence in ``[0, 1]``.
        box: ``[4]`` ``(x_min, y_min, x_max, y_max)`` of the palm.
        keypoints: ``[7, 2]`` palm keypoints (wrist centre, index/middle/ring/pinky bases,
            thumb joints).
    """

    score: float
    box: np.ndarray
    keypoints: np.ndarray

    def hand_region(self) -> HandRegion:
        """The rotated square the landmark model looks at."""
        w, h = self.box[2] - self.box[0], self.box[3] - self.box[1]
        center = 0.5 * (self.box[:2] + self.box[2:])
        d = self.keypoints[MIDDLE_KEYPOINT] - self.keypoints[WRIST_KEYPOINT]
        rotation = _wrap(np.pi / 2 - np.arctan2(-d[1], d[0]))
        center = center + rotation_matrix(rotation) @ np.array([0.0, -HAND_SHIFT * h])
        return HandRegion(center, float(max(w, h) * HAND_SCALE), float(rotation))


@dataclass(frozen=True, eq=False)
class HandRegion:
    """A rotated square of the photo (pixels).

    Attributes:
        center: ``[2]`` pixel coordinates of its centre.
        size: side length in pixels.
        rotation: radians; a point ``d`` from the centre in the region's own frame (``y``
            toward the fingers is ``-y``) lies at ``center + R(rotation) @ d`` in the photo.
    """

    center: np.ndarray
    size: float
    rotation: float

    def to_image(self, uv: np.ndarray, side: int) -> np.ndarray:
        """``[..., 2]`` pixel coordinates of a ``side``-pixel crop of this region -> photo
        pixel coordinates."""
        d = (np.asarray(uv, dtype=np.float64) / side - 0.5) * self.size
        return d @ rotation_matrix(self.rotation).T + self.center


def rotation_matrix(angle: float) -> np.ndarray:
    """``[2, 2]`` rotation by ``angle`` radians in image coordinates (``y`` down)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def anchors(input_size: int = INPUT_SIZE, strides: tuple[int, ...] = STRIDES) -> np.ndarray:
    """``[2016, 2]`` anchor centres in ``[0, 1]`` of the detector input, in its output
    order (grid by grid, row-major, anchors of a cell together)."""
    out = []
    i = 0
    while i < len(strides):
        stride = strides[i]
        layers = 1
        while i + layers < len(strides) and strides[i + layers] == stride:
            layers += 1
        n = int(np.ceil(input_size / stride))
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, 2 * layers, axis=0))
        i += layers
    return np.concatenate(out)


ANCHORS = anchors()


@dataclass(frozen=True, eq=False)
class Letterbox:
    """How a photo sits in the square detector input: ``input = photo * scale + pad``."""

    scale: float
    pad: np.ndarray

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """``[..., 2]`` detector-input pixels -> photo pixels."""
        return (np.asarray(xy) - self.pad) / self.scale


def letterbox(rgb: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """The photo scaled to fit ``size x size`` (aspect kept, centred, black bars) as float32
    ``[size, size, 3]`` in ``[0, 1]``, and the mapping back."""
    h, w = rgb.shape[:2]
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR))
    out = np.zeros((size, size, 3), dtype=np.float32)
    x0, y0 = (size - nw) // 2, (size - nh) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = small / np.float32(255.0)
    # the exact scale of each axis after rounding, so that boxes map back without drift
    return out, Letterbox(float(nw / w), np.array([x0, y0], dtype=np.float64))


def decode(
    raw: np.ndarray, logits: np.ndarray, min_score: float = MIN_SCORE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates above ``min_score``: scores ``[N]``, boxes ``[N, 4]`` (x_min, y_min,
    x_max, y_max) and keypoints ``[N, 7, 2]``, in detector-input pixels.

    ``raw`` ``[2016, 18]``: box centre offset, size, then 7 keypoint offsets (input pixels,
    relative to the anchor centre); ``logits`` ``[2016]``.
    """
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100.0, 100.0)))
    keep = scores >= min_score
    raw = raw[keep].astype(np.float64)
    centre = ANCHORS[keep] * INPUT_SIZE
    cxy = raw[:, :2] + centre
    half = 0.5 * raw[:, 2:4]
    boxes = np.concatenate([cxy - half, cxy + half], axis=1)
    keypoints = raw[:, 4:18].reshape(-1, 7, 2) + centre[:, None, :]
    return scores[keep], boxes, keypoints


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU ``[N]`` of one ``[4]`` box with ``[N, 4]`` boxes (x_min, y_min, x_max, y_max)."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=1)
    area = np.prod(np.clip(box[2:] - box[:2], 0.0, None))
    areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0.0, None), axis=1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(
    scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, iou: float = NMS_IOU
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Merge overlapping candidates, best first: each cluster (IoU above ``iou`` with its
    best remaining candidate) becomes the score-weighted mean of its boxes and keypoints,
    with the best score."""
    order = np.argsort(-scores, kind="stable")
    remaining = order
    merged = []
    while len(remaining):
        best = remaining[0]
        overlap = box_iou(boxes[best], boxes[remaining]) > iou
        overlap[0] = True  # a degenerate box overlaps nothing, not even itself
        cluster = remaining[overlap]
        w = scores[cluster] / scores[cluster].sum()
        merged.append(
            (
                float(scores[best]),
                np.einsum("n,nk->k", w, boxes[cluster]),
                np.einsum("n,nkc->kc", w, keypoints[cluster]),
            )
        )
        remaining = remaining[~overlap]
    return merged


def detect_palms(
    rgb: np.ndarray,
    max_palms: int | None = None,
    min_score: float = MIN_SCORE,
    model: TFLiteModel | None = None,
    weak_score: float | None = None,
    max_weak: int = 0,
) -> list[PalmDetection]:
    """Palms of an ``[H, W, 3]`` uint8 RGB photo, best first (at most ``max_palms``).

    With ``weak_score``, up to ``max_weak`` *weak* palms, scored in ``[weak_score,
    min_score)``, follow the confident ones (best first; merged among themselves, and
    dropped where they overlap a confident palm): candidates for the caller to verify with
    the landmark model, from the same detector run. The confident palms are those of a call
    without it."""
    tensor, box = letterbox(rgb)
    raw, logits = (model or palm_model())(tensor[None])
    lowest = min_score if weak_score is None else min(weak_score, min_score)
    scores, boxes, kps = decode(raw[0], logits[0, :, 0], lowest)
    strong = scores >= min_score
    confident = weighted_nms(scores[strong], boxes[strong], kps[strong])
    if max_palms is not None:
        confident = confident[:max_palms]
    weak = []
    if weak_score is not None and max_weak > 0:
        kept = np.array([b for _, b, _ in confident]).reshape(-1, 4)
        for candidate in weighted_nms(scores[~strong], boxes[~strong], kps[~strong]):
            if len(kept) and (box_iou(candidate[1], kept) > NMS_IOU).any():
                continue
            weak.append(candidate)
            if len(weak) >= max_weak:
                break
    return [
        PalmDetection(score, box.to_image(b.reshape(2, 2)).reshape(4), box.to_image(k))
        for score, b, k in confident + weak
    ]
