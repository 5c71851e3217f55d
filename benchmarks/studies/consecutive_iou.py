"""How smoothly the surface follows a moving hand: consecutive-frame IoU of the default model
and of the original HALO checkpoint, on the same real frames.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/studies/consecutive_iou.py \
        [--points 20000] [--json benchmarks/results/studies/consecutive_iou.json]

The 85 real HO3D-derived frames of ``../shared/reference/halo-original`` (reference data,
never shipped; the study skips when they or the original checkpoint are absent) are a slowly
moving sequence. For every pair of consecutive frames, ``--points`` points are drawn
uniformly in the union of the two frames' keypoint boxes (padded by the model's extraction
padding); a point is inside a frame's hand where that model's occupancy reaches its level
(the default model: its calibrated ``iso_level``, keypoints read with ``convention="auto"``;
the original: 0.5, its own conditioning, :func:`halohand.inference.original.original_occupancy`).
The IoU of the two frames' inside sets is the pair's score; the same points serve both
models. The HALO v2 issue asks for this number beside the original model's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report

from _reference import ORIGINAL_CHECKPOINT, REAL_FRAMES  # noqa: E402
from _report import emit  # noqa: E402


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _stats(x: list[float]) -> dict[str, float]:
    arr = np.asarray(x)
    return {
        "median": float(np.median(arr)),
        "p10": float(np.percentile(arr, 10)),
        "min": float(arr.min()),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if not (REAL_FRAMES.exists() and ORIGINAL_CHECKPOINT.exists()):
        print(f"skipped: {REAL_FRAMES} or {ORIGINAL_CHECKPOINT} is absent")
        return {}

    import torch

    from halohand.inference.halo import HALO, keypoint_box
    from halohand.inference.original import load_original_checkpoint, original_occupancy

    frames = np.load(REAL_FRAMES).astype(np.float64)
    halo = HALO.pretrained()
    original = load_original_checkpoint(ORIGINAL_CHECKPOINT)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    ours, theirs = [], []
    for a, b in zip(frames[:-1], frames[1:], strict=True):
        lo_a, hi_a = keypoint_box(a, halo.padding_m)
        lo_b, hi_b = keypoint_box(b, halo.padding_m)
        pts = rng.uniform(np.minimum(lo_a, lo_b), np.maximum(hi_a, hi_b), (args.points, 3))
        mine = [
            halo.occupancy(pts, kp, units="m", convention="auto") >= halo.iso_level
            for kp in (a, b)
        ]  # fmt: skip
        ours.append(_iou(*(np.asarray(m) for m in mine)))
        orig = [
            original_occupancy(original, torch.as_tensor(kp), torch.as_tensor(pts))[0].numpy()
            >= 0.5
            for kp in (a, b)
        ]  # fmt: skip
        theirs.append(_iou(*orig))
    report = {
        "study": "consecutive_iou",
        "frames": len(frames),
        "points_per_pair": args.points,
        "default_model_auto": _stats(ours),
        "original_checkpoint": _stats(theirs),
        "pairs_default_above_original": int((np.asarray(ours) > np.asarray(theirs)).sum()),
        "per_pair": {"default_model_auto": ours, "original_checkpoint": theirs},
        "seconds": time.perf_counter() - t0,
    }
    print({k: v for k, v in report.items() if k != "per_pair"})
    emit(report, args.json)
    return report


if __name__ == "__main__":
    main()
