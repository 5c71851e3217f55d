"""Train / validation / test gap of an occupancy model: underfitting or overfitting?

Usage::

    .venv/bin/python benchmarks/studies/fit_gap.py [--checkpoint FILE] [--data data/webxr_s0]
        [--hands 16] [--threads 2] [--json OUT]

IoU of the model's inside/outside decisions (probability >= its mesh level, ``iso_level``:
0.5 unless calibrated) against the data's
labels, directly on the stored query points (no meshing): the 100k uniform points of the
padded box (``iou_uniform``) and uniform + near-surface points together (``iou_mixed``),
for ``--hands`` hands of each split (training hands evenly spaced over the split, the
first ones of val and test). Alike numbers on all three splits mean the model has not
memorised its training hands, so more capacity or optimisation (not more data) is what
would raise them. Prints one JSON object (and writes it with ``--json``).
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


def _iou(pred: np.ndarray, label: np.ndarray) -> float:
    union = np.logical_or(pred, label).sum()
    return float(np.logical_and(pred, label).sum() / union) if union else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="model file (default: shipped)")
    parser.add_argument("--data", default="data/webxr_s0")
    parser.add_argument("--hands", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from halohand.data.dataset import OccupancyDataset

    torch.set_num_threads(args.threads)
    checkpoint, net = model_or_shipped(args.checkpoint)
    report: dict[str, object] = {
        "benchmark": "fit_gap",
        "checkpoint": repo_path(checkpoint),
        "data": args.data,
        "hands_per_split": args.hands,
        "splits": {},
    }
    report["iso_level"] = net.config.iso_level
    t0 = time.perf_counter()
    for split in ("train", "val", "test"):
        ds = OccupancyDataset(args.data, split, n_points=1, n_surface=1, seed=0)
        indices = hand_indices(split, len(ds), args.hands)
        uniform, mixed = [], []
        for i in indices:
            hand, item = ds.hand(i), ds[i]
            preds, labels = [], []
            for key in ("uniform", "near"):
                _, pred, label = stored_decisions(net, hand, item, key)
                preds.append(pred)
                labels.append(label)
            uniform.append(_iou(preds[0], labels[0]))
            mixed.append(_iou(np.concatenate(preds), np.concatenate(labels)))
        report["splits"][split] = {
            "hands": len(indices),
            "hand_indices": indices,
            "iou_uniform_mean": float(np.mean(uniform)),
            "iou_mixed_mean": float(np.mean(mixed)),
        }
    report["seconds"] = time.perf_counter() - t0
    emit(report, args.json)


if __name__ == "__main__":
    main()
