"""The best scores any keypoint-only model can reach on the project's data, in its metrics.

Usage::

    .venv/bin/python benchmarks/studies/keypoint_ceiling.py [--hands 20] [--seed 7] [--json OUT]

The data's hands have per-part thickness offsets that keypoints do not determine
(``docs/hand_model.md``, "Identity"). A perfect keypoint-driven model can at best predict
the hand with those offsets at their mean (zero). Per sampled hand (the data source's own
priors, a seed the data does not use): the ground truth is stored exactly as the data
engine stores it (:func:`halohand.data.engine.sample_hand`), and two meshes are scored as
``halohand evaluate`` scores a prediction (:func:`halohand.evaluation.mesh_metrics`, IoU on
the 100k uniform points and on uniform + near-surface points, Chamfer-L1 and normal
consistency against the stored 100k surface samples, 100k samples on the mesh):

* ``mean_thickness``: the same identity and pose with zero offsets (same keypoints): the
  ceiling of a keypoint-only model;
* ``ground_truth``: the ground-truth mesh itself: the floor of the metrics (finite
  sampling; IoU exactly 1 up to the winding-number test).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hands", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import trimesh

    from halohand.data.engine import dequantize, sample_hand
    from halohand.evaluation.metrics import mesh_metrics
    from halohand.handmodel import WebXRHandSource

    source = WebXRHandSource()
    rng = np.random.default_rng(args.seed)
    rows: dict[str, list[dict[str, float]]] = {"mean_thickness": [], "ground_truth": []}
    t0 = time.perf_counter()
    for _ in range(args.hands):
        identity = source.identity_prior.sample(rng)
        pose = source.pose_prior.sample(rng, identity, source.model)
        real = source.model.pose(pose, identity)
        mean = source.model.pose(
            pose, dataclasses.replace(identity, thickness_offsets=np.zeros(16))
        )
        if not np.allclose(real.keypoints, mean.keypoints):
            raise RuntimeError("thickness offsets moved the keypoints")
        arrays, _ = sample_hand(real, rng)
        uniform = dequantize(arrays["points_uniform"])
        near = dequantize(arrays["points_near"])
        n_u = len(uniform)
        occ = np.concatenate(
            [
                np.unpackbits(arrays["occ_uniform"])[:n_u],
                np.unpackbits(arrays["occ_near"])[: len(near)],
            ]
        ).astype(bool)
        pts = np.concatenate([uniform, near])
        gt_pc = dequantize(arrays["pointcloud"])
        gt_n = arrays["pointcloud_normals"].astype(np.float64)
        for name, hand in (("mean_thickness", mean), ("ground_truth", real)):
            mesh = trimesh.Trimesh(hand.vertices, hand.faces, process=False)
            mixed = mesh_metrics(mesh, pts, occ, gt_pc, gt_n)
            uni = mesh_metrics(mesh, uniform, occ[:n_u], gt_pc, gt_n, n_samples=1)
            rows[name].append(
                {
                    "iou_uniform": uni.iou,
                    "iou_mixed": mixed.iou,
                    "chamfer_l1_mm": mixed.chamfer_l1_mm,
                    "normal_consistency": mixed.normal_consistency,
                }
            )
    report: dict[str, object] = {
        "benchmark": "keypoint_ceiling",
        "hands": args.hands,
        "seed": args.seed,
        "seconds": time.perf_counter() - t0,
    }
    for name, per_hand in rows.items():
        report[name] = {
            key: {
                "mean": float(np.mean([r[key] for r in per_hand])),
                "min": float(np.min([r[key] for r in per_hand])),
                "max": float(np.max([r[key] for r in per_hand])),
            }
            for key in per_hand[0]
        }
    emit(report, args.json)


if __name__ == "__main__":
    main()
