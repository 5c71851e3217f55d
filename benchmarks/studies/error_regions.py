"""Where an occupancy model's wrong decisions are: by region of the hand.

Usage::

    .venv/bin/python benchmarks/studies/error_regions.py [--checkpoint FILE] [--data data/webxr_s0]
        [--split train] [--hands 16] [--threads 2] [--json OUT]

On the stored query points of each hand (``--points near``: the 100k near-surface points,
area-uniform on the surface plus 4 mm noise, where nearly all wrong decisions are;
``uniform``: the points of IoU uniform, ~250 of them inside a hand), the model's
decisions (probability >= its ``iso_level``) are compared with the labels. Every point
gets the region of its nearest keypoint when that is within ``--radius`` (12 mm):
``wrist``, ``knuckle`` (thumb CMC/MCP, finger MCPs), ``finger_joint`` (thumb IP, finger
PIP/DIP) or ``tip``; else ``between`` (palm and bone shafts). Per region: its share of all
wrong points (false inside + false outside), its share of the points (near points: of the
surface area) and its error rate. A region whose share of the errors is far above its
share of the hand is where accuracy is lost. On training hands this measures the model's
fit, not generalisation.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report, _scoring
from _report import emit, repo_path  # noqa: E402
from _scoring import hand_indices, model_or_shipped, stored_decisions  # noqa: E402

REGION_OF_KEYPOINT = (
    ["wrist"]
    + ["knuckle", "knuckle", "finger_joint", "tip"]
    + ["knuckle", "finger_joint", "finger_joint", "tip"] * 4
)
REGIONS = ("wrist", "knuckle", "finger_joint", "tip", "between")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="model file (default: shipped)")
    parser.add_argument("--data", default="data/webxr_s0")
    parser.add_argument("--split", default="train")
    parser.add_argument("--hands", type=int, default=16)
    parser.add_argument("--points", choices=("near", "uniform"), default="near")
    parser.add_argument("--radius", type=float, default=0.012, help="metres")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from halohand.data.dataset import OccupancyDataset

    torch.set_num_threads(args.threads)
    checkpoint, net = model_or_shipped(args.checkpoint)
    ds = OccupancyDataset(args.data, args.split, n_points=1, n_surface=1, seed=0)
    indices = hand_indices(args.split, len(ds), args.hands)
    region_index = np.array([REGIONS.index(r) for r in REGION_OF_KEYPOINT])
    counts = {k: np.zeros(len(REGIONS)) for k in ("points", "inside", "false_in", "false_out")}
    t0 = time.perf_counter()
    for i in indices:
        hand, item = ds.hand(i), ds[i]
        pts, pred, label = stored_decisions(net, hand, item, args.points)
        kp = item["keypoints"].to(torch.float32)
        dist = torch.cdist(pts, kp)  # [N, 21]
        near, which = dist.min(1)
        region = np.where(near.numpy() <= args.radius, region_index[which.numpy()], 4)
        for key, sel in (
            ("points", np.ones_like(label)),
            ("inside", label),
            ("false_in", pred & ~label),
            ("false_out", ~pred & label),
        ):
            counts[key] += np.bincount(region[sel], minlength=len(REGIONS))
    wrong = counts["false_in"] + counts["false_out"]
    union_proxy = counts["inside"].sum() + counts["false_in"].sum()
    report: dict[str, object] = {
        "benchmark": "error_regions",
        "checkpoint": repo_path(checkpoint),
        "data": args.data,
        "split": args.split,
        "points": args.points,
        "hands": len(indices),
        "iso_level": net.config.iso_level,
        "radius_m": args.radius,
        "iou_pooled": float((counts["inside"].sum() - counts["false_out"].sum()) / union_proxy),
        "error_rate": float(wrong.sum() / counts["points"].sum()),
        "regions": {
            name: {
                "share_of_errors": float(wrong[j] / wrong.sum()),
                "share_of_points": float(counts["points"][j] / counts["points"].sum()),
                "error_rate": float(wrong[j] / max(counts["points"][j], 1)),
                "false_inside": int(counts["false_in"][j]),
                "false_outside": int(counts["false_out"][j]),
            }
            for j, name in enumerate(REGIONS)
        },
        "seconds": time.perf_counter() - t0,
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
