"""Tuning the photo fit's weights on a validation set of rendered photos (not the held-out
seed of ``photo_benchmark.py``).

The photo path runs once per image without the fit (detection, landmarks, placement; the
true focal length, one hand); then the fit (:func:`halohand.image.fit.fit_landmarks`) runs
on those landmarks under each setting of ``pose_prior_weight`` and ``metric_sigma_m``. Per
setting, over the hands found on the right hand (2D error under half the hand's size): the
fit's PA-MPJPE (mm, median / mean), its mean reprojection error onto the landmarks (px,
median), the hands with an angle beyond the joint limits or a bone outside the identity
prior's range (:func:`halohand.image.fit.plausibility`) and the fit's seconds per hand.

    python benchmarks/studies/photo_fit_tuning.py --data /tmp/photo_val --seed 777002 \
        --n 60 --json benchmarks/results/studies/photo_fit_tuning.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from halohand.core.alignment import procrustes_align

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402

#: (pose_prior_weight, metric_sigma_m) settings tried; the first is the previous default.
SETTINGS = ((1.0, 0.012), (3.0, 0.012), (4.0, 0.012), (6.0, 0.012), (8.0, 0.012),
            (4.0, 0.015), (6.0, 0.015))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/halohand_photo_val"))
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seed", type=int, default=777002)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from PIL import Image

    from halohand.apps.synthetic import read_labels, render_set
    from halohand.image import from_image
    from halohand.image.fit import FitSettings, fit_landmarks, plausibility

    render_set(args.data, args.n, args.seed, args.size, "auto", log=None)
    hands = []
    for i in range(args.n):
        labels = read_labels(args.data, i)
        image = np.asarray(Image.open(args.data / "images" / f"{i:06d}.png").convert("RGB"))
        k = labels["intrinsics"]
        result = from_image(image, max_hands=1, focal_px=float(k[0, 0]), fit=False)
        if not result.hands:
            continue
        hand = result.hands[0]
        gt2 = labels["keypoints_2d"]
        size_px = np.linalg.norm(np.diff(gt2[[0, 9, 10, 11, 12]], axis=0), axis=1).sum()
        if np.linalg.norm(hand.landmarks.pixels - gt2, axis=1).mean() > 0.5 * size_px:
            continue
        hands.append((hand, result.camera.intrinsics, labels["keypoints_3d"]))

    rows = []
    for weight, sigma in SETTINGS:
        cfg = FitSettings(pose_prior_weight=weight, metric_sigma_m=sigma)
        pa, px, secs, outside = [], [], [], 0
        for hand, k, gt in hands:
            (fit,) = fit_landmarks(hand.landmarks.pixels[None], hand.landmarks.world[None],
                                   hand.keypoints[None], [hand.side], k, cfg)  # fmt: skip
            pa.append(np.linalg.norm(procrustes_align(fit.keypoints, gt) - gt, axis=1).mean())
            px.append(fit.reprojection_px.mean())
            secs.append(fit.seconds)
            p = plausibility(fit.keypoints, hand.side)
            outside += int(p["limit_violations"] > 0 or p["bones_outside"] > 0)
        rows.append(
            {
                "pose_prior_weight": weight,
                "metric_sigma_m": sigma,
                "pa_mpjpe_mm_median": round(float(np.median(pa)) * 1e3, 2),
                "pa_mpjpe_mm_mean": round(float(np.mean(pa)) * 1e3, 2),
                "reprojection_px_median": round(float(np.median(px)), 2),
                "hands_outside_prior": outside,
                "fit_seconds_median": round(float(np.median(secs)), 3),
            }
        )
    placed = [
        np.linalg.norm(procrustes_align(h.keypoints, gt) - gt, axis=1).mean() for h, _, gt in hands
    ]
    report = {
        "study": "photo_fit_tuning",
        "data": str(args.data),
        "seed": args.seed,
        "images": args.n,
        "hands": len(hands),
        "pa_mpjpe_mm_median_placed": round(float(np.median(placed)) * 1e3, 2),
        "settings": rows,
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
