"""Template fitting baseline (HALO Table 2 idea): fit the rigged hand model to keypoints.

For the first ``--n`` hands of a data split, fit :mod:`halohand.fitting` to the ground-truth
keypoints (and, with ``--noise-mm > 0``, to keypoints with per-coordinate uniform noise in
[-noise, +noise] mm) and score the posed template mesh like ``halohand evaluate`` does:
IoU on the hand's 100k uniform points (``iou_uniform``) and on uniform + near-surface points
(``iou_mixed``), Chamfer-L1 (mm) and normal consistency on 100k surface samples
(:func:`halohand.evaluation.mesh_metrics`, :func:`halohand.inference.contains`).
Keypoint error: mean Euclidean distance over the 21 joints to the clean GT keypoints (and to
the fitted targets). Time per hand: the batch fit divided by the hands, plus single-hand
fits of the first ``--single`` hands.

    nice -n 10 .venv/bin/python benchmarks/studies/template_fitting.py \
        --json benchmarks/results/studies/template_fitting.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from halohand.data.dataset import OccupancyDataset
from halohand.evaluation import iou, mesh_metrics
from halohand.fitting import FitConfig, fit_template, fit_templates
from halohand.objects.inside import contains

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import write  # noqa: E402

_MEAN_KEYS = (
    "keypoint_error_mm", "keypoint_error_to_target_mm", "max_keypoint_error_mm",
    "iou_uniform", "iou_mixed", "chamfer_l1_mm", "normal_consistency",
)  # fmt: skip


def _score(result: Any, hand: dict[str, Any], n_samples: int) -> dict[str, float]:
    """Metrics of one fitted mesh against the hand's ground truth (evaluate.py protocol)."""
    mesh = result.mesh
    pts_all = np.concatenate([hand["points_uniform"], hand["points_near"]])
    occ_all = np.concatenate([hand["occ_uniform"], hand["occ_near"]])
    m = mesh_metrics(
        mesh, pts_all, occ_all, hand["pointcloud"], hand["pointcloud_normals"], n_samples
    )
    inside = contains(mesh.vertices, mesh.faces, hand["points_uniform"])
    err = np.linalg.norm(result.keypoints - hand["keypoints"], axis=-1) * 1e3
    return {
        "keypoint_error_mm": float(err.mean()),
        "keypoint_error_to_target_mm": result.keypoint_error_mm,
        "max_keypoint_error_mm": float(err.max()),
        "iou_uniform": iou(inside, hand["occ_uniform"]),
        "iou_mixed": m.iou,
        "chamfer_l1_mm": m.chamfer_l1 * 1e3,
        "normal_consistency": m.normal_consistency,
    }


def run_variant(
    hands: list[dict[str, Any]],
    targets: np.ndarray,
    cfg: FitConfig,
    n_samples: int,
    single: int,
) -> dict[str, Any]:
    """Fit all hands in one batch, score them, and time single-hand fits."""
    sides = [h["side"] for h in hands]
    t0 = time.perf_counter()
    results = fit_templates(targets, sides, cfg)
    batch_s = time.perf_counter() - t0
    rows = []
    for i, (res, hand) in enumerate(zip(results, hands, strict=True)):
        row = {"hand": i, "side": res.side, "start": res.start, **_score(res, hand, n_samples)}
        rows.append(row)
        print(
            f"  hand {i:3d}: kp {row['keypoint_error_mm']:.2f} mm, IoU {row['iou_uniform']:.4f}, "
            f"CD {row['chamfer_l1_mm']:.3f} mm, start {res.start}",
            file=sys.stderr,
        )
    single_s = [
        fit_template(targets[i], sides[i], cfg).seconds for i in range(min(single, len(hands)))
    ]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in _MEAN_KEYS}
    mean["iou_uniform_min"] = float(np.min([r["iou_uniform"] for r in rows]))
    return {
        "mean": mean,
        "seconds_per_hand_batched": batch_s / len(hands),
        "seconds_per_hand_single": float(np.mean(single_s)) if single_s else None,
        "per_hand": rows,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/webxr_s0")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n", type=int, default=20, help="first N hands of the split")
    ap.add_argument("--noise-mm", type=float, default=2.0, help="uniform noise; 0 skips")
    ap.add_argument("--iterations", type=int, default=FitConfig.iterations)
    ap.add_argument("--starts", default=",".join(FitConfig.starts))
    ap.add_argument("--keypoint-sigma-mm", type=float, default=FitConfig.keypoint_sigma_mm)
    ap.add_argument("--surface-samples", type=int, default=100_000)
    ap.add_argument("--single", type=int, default=3, help="hands timed one at a time")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (shared machine)")
    ap.add_argument("--seed", type=int, default=0, help="noise seed")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    ds = OccupancyDataset(args.data, args.split, n_points=1, n_surface=1, seed=0)
    n = min(args.n, len(ds))
    hands = [ds.hand(i) for i in range(n)]
    clean = np.stack([h["keypoints"] for h in hands])
    cfg = FitConfig(
        iterations=args.iterations,
        starts=tuple(args.starts.split(",")),
        keypoint_sigma_mm=args.keypoint_sigma_mm,
    )
    doc: dict[str, Any] = {
        "data": args.data,
        "split": args.split,
        "hands": n,
        "config": {
            "iterations": cfg.iterations,
            "lr": cfg.lr,
            "starts": list(cfg.starts),
            "keypoint_sigma_mm": cfg.keypoint_sigma_mm,
            "fit_identity": cfg.fit_identity,
            "pose_prior_weight": cfg.pose_prior_weight,
            "identity_prior_weight": cfg.identity_prior_weight,
        },  # fmt: skip
        "torch_threads": args.threads,
        "surface_samples": args.surface_samples,
        "units": {
            "keypoint_error_mm": "mean over 21 joints of |fit - clean GT| (mm)",
            "keypoint_error_to_target_mm": "mean over 21 joints of |fit - fitted target| (mm)",
            "chamfer_l1_mm": "millimetres",
            "seconds_per_hand_batched": "wall time of one batched fit / hands",
            "seconds_per_hand_single": "wall time of a fit of one hand alone",
        },
        "variants": {},
    }
    print(f"clean keypoints ({n} hands)", file=sys.stderr)
    doc["variants"]["clean"] = run_variant(hands, clean, cfg, args.surface_samples, args.single)
    if args.noise_mm > 0:
        rng = np.random.default_rng(args.seed)
        noisy = clean + rng.uniform(-args.noise_mm, args.noise_mm, clean.shape) * 1e-3
        print(f"keypoints + uniform noise +-{args.noise_mm} mm", file=sys.stderr)
        variant = run_variant(hands, noisy, cfg, args.surface_samples, args.single)
        variant["noise"] = f"per-coordinate uniform in [-{args.noise_mm}, {args.noise_mm}] mm"
        variant["noise_rms_mm"] = float(np.linalg.norm(noisy - clean, axis=-1).mean() * 1e3)
        doc["variants"][f"noise_{args.noise_mm:g}mm"] = variant
    if args.json is not None:
        write(doc, args.json, indent=1)
    summary = {k: {**v["mean"], "s_batched": v["seconds_per_hand_batched"],
                   "s_single": v["seconds_per_hand_single"]}
               for k, v in doc["variants"].items()}  # fmt: skip
    print(json.dumps(summary, indent=1))
    return doc


if __name__ == "__main__":
    main()
