"""Residual penetration of the two-hand ground truth: how deep and how much the sampler's
placed pairs still overlap, per interaction (docs/two_hands.md).

    PYTHONPATH=src .venv/bin/python benchmarks/studies/two_hand_penetration.py \
        [--per-kind 10] [--seed 0] [--voxel-mm 0.5] [--tolerance-mm T] [--json OUT]

Pair ``i`` of interaction ``k`` comes from ``default_rng([seed, k, i])``
(:class:`halohand.data.pairs.PairSampler`). Per pair, recomputed here from the placed
ground-truth meshes (not the sampler's own record):

* vertex penetration (libigl exact signed distance, winding-number sign, both directions):
  the deepest vertex, the mean depth over the penetrating vertices, their count;
* the penetration volume: voxel centres (``--voxel-mm``) of the two meshes' common bounding
  box inside both (fast winding number >= 0.5);
* the smallest vertex distance (``near`` pairs: the gap).

Reported: per interaction and over all touching pairs (every kind but ``near``), the mean,
median, 90th percentile and max of each, the sampling time per pair, and the share of
pairs in contact. InterHand2.6M's own ground truth has ~0.17 mm mean penetration depth
(the two-hand issue).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402


def _summary(values: list[float], scale: float, digits: int = 4) -> dict:
    a = np.asarray(values, dtype=np.float64) * scale
    return {
        "mean": round(float(a.mean()), digits),
        "median": round(float(np.median(a)), digits),
        "p90": round(float(np.percentile(a, 90)), digits),
        "max": round(float(a.max()), digits),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-kind", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voxel-mm", type=float, default=0.5)
    # the sampler's contact tolerance, the largest vertex depth it leaves (default: its own)
    parser.add_argument("--tolerance-mm", type=float, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from halohand.data.pairs import INTERACTIONS, PairSampler, penetration, penetration_volume

    sampler = (
        PairSampler()
        if args.tolerance_mm is None
        else PairSampler(tolerance_m=args.tolerance_mm / 1000.0)
    )
    rows = []
    for k, kind in enumerate(INTERACTIONS):
        for i in range(args.per_kind):
            t0 = time.perf_counter()
            pair = sampler.sample(np.random.default_rng([args.seed, k, i]), kind)
            seconds = time.perf_counter() - t0
            r, lf = pair.right, pair.left
            fr, fl = r.faces.astype(np.int64), lf.faces.astype(np.int64)
            pen = penetration(r.vertices, fr, lf.vertices, fl)
            vol = penetration_volume(r.vertices, fr, lf.vertices, fl, args.voxel_mm / 1000.0)
            rows.append({
                "interaction": kind, "max_depth_m": pen.max_depth,
                "mean_depth_m": pen.mean_depth, "penetrating_vertices": pen.count,
                "volume_m3": vol, "min_distance_m": pen.min_distance, "sample_s": seconds,
            })  # fmt: skip
            print(f"{kind:15s} {i:3d}  max {pen.max_depth * 1e3:.3f} mm  mean "
                  f"{pen.mean_depth * 1e3:.3f} mm  vol {vol * 1e9:7.1f} mm^3  "
                  f"{seconds:.2f} s", file=sys.stderr)  # fmt: skip

    def block(sel: list[dict]) -> dict:
        touching = [r for r in sel if r["penetrating_vertices"] > 0]
        return {
            "pairs": len(sel),
            "in_contact": len(touching),
            "max_depth_mm": _summary([r["max_depth_m"] for r in sel], 1e3),
            # mean depth of the penetrating vertices, over pairs that have any
            "mean_depth_mm": _summary([r["mean_depth_m"] for r in touching] or [0.0], 1e3),
            "penetrating_vertices": _summary([r["penetrating_vertices"] for r in sel], 1, 1),
            "volume_mm3": _summary([r["volume_m3"] for r in sel], 1e9, 2),
            "min_distance_mm": _summary([r["min_distance_m"] for r in sel], 1e3),
            "sample_s": _summary([r["sample_s"] for r in sel], 1, 3),
        }

    report = {
        "study": "two_hand_penetration",
        "seed": args.seed,
        "per_kind": args.per_kind,
        "voxel_mm": args.voxel_mm,
        "tolerance_mm": sampler.tolerance_m * 1e3,
        "touching_kinds": block([r for r in rows if r["interaction"] != "near"]),
        "by_interaction": {
            k: block([r for r in rows if r["interaction"] == k]) for k in INTERACTIONS
        },  # fmt: skip
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
