"""Cost of the pose-space grasp refinement (``grasp.pose_refine.refine_poses``, default
settings) with the engine's near-point subset of the object-in-hand term
(``synthesis.NEAR_MARGIN_M``, the candidate) against every object point at every step (the
margin set to infinity, the baseline), alternately, on one torch thread.

Per object of ``--objects``: ``--samples`` HALO-VAE samples of the shipped model (seed 0,
translation-refined as ``generate_grasps`` does), refined ``--rounds`` times by each
configuration in alternating order. Reported: median seconds per grasp of each, their ratio,
and how far the two configurations' outputs lie apart (the refinement is chaotic at the
level of rounding: a 1e-12 m change of the input moves its output by up to millimetres, so
the outputs are compared by their energies, not their keypoints).

    PYTHONPATH=src .venv/bin/python benchmarks/speed/bench_pose_refine.py \\
        --json benchmarks/results/speed/bench_pose_refine.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", default="bottle_5,mug_5")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    from halohand.grasp import synthesis
    from halohand.grasp.generate import generate_grasps, grasp_halo, shipped_model_path
    from halohand.grasp.pose_refine import refine_poses
    from halohand.grasp.vae import load_vae
    from halohand.objects.registry import load_object

    torch.set_num_threads(1)
    begin()
    halo = grasp_halo()
    vae, _ = load_vae(str(shipped_model_path()))
    margins = {"all_points": float("inf"), "near_points": synthesis.NEAR_MARGIN_M}
    rows = []
    for oid in args.objects.split(","):
        obj = load_object(oid)
        kp = generate_grasps(vae, obj, args.samples, 0, refine=True, halo=halo).keypoints
        times: dict[str, list[float]] = {k: [] for k in margins}
        energy: dict[str, np.ndarray] = {}
        for rnd in range(args.rounds):
            for name in margins if rnd % 2 == 0 else list(margins)[::-1]:
                synthesis.NEAR_MARGIN_M = margins[name]
                t0 = time.perf_counter()
                out = refine_poses(obj, kp, seed=0)
                times[name].append((time.perf_counter() - t0) / args.samples)
                energy[name] = out["energy"]
        synthesis.NEAR_MARGIN_M = margins["near_points"]
        row = {
            "object": oid,
            "samples": args.samples,
            **{f"{k}_s_per_grasp": statistics.median(v) for k, v in times.items()},
            "speedup": statistics.median(times["all_points"])
            / statistics.median(times["near_points"]),
            "energy_median": {k: float(np.median(v)) for k, v in energy.items()},
        }
        print(f"{oid}: all points {row['all_points_s_per_grasp']:.2f} s, near points "
              f"{row['near_points_s_per_grasp']:.2f} s per grasp "
              f"({row['speedup']:.2f}x)", flush=True)  # fmt: skip
        rows.append(row)
    emit({
        "benchmark": "bench_pose_refine",
        "near_margin_m": margins["near_points"],
        "rounds": args.rounds,
        "threads": 1,
        "objects": rows,
        "speedup_median": statistics.median(r["speedup"] for r in rows),
    }, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
