"""Keypoints -> mesh with touching parts merged or kept apart: what ``touching="apart"``
costs, and what it does to the meshes' topology.

Usage::

    .venv/bin/python benchmarks/speed/bench_touching.py [--hands 8] [--rounds 3]
        [--threads 2] [--resolution 256] [--json OUT]

The hands: the demo's 8 key poses (a fist, a pinch, an OK sign, thumbs up: fingers that
touch) and the first ``--hands`` test hands of ``data/webxr_s0`` (or sampled hands without
it). Each hand is meshed by ``HALO.reconstruct`` with the shipped model, ``touching``
``"merge"`` and ``"apart"`` one after the other, the order alternating from hand to hand,
after one warm-up call each. Reported per mode and hand set: median seconds per hand, the
median of the per-hand ratios apart / merge (each hand against itself in the same round)
with quartiles, and how many meshes are one body of genus 0; with the machine and a matmul
calibration before and after the rounds (``benchmarks/_report.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_extraction's hands
from _report import begin, emit  # noqa: E402
from bench_extraction import _hands  # noqa: E402

MODES = ("merge", "apart")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hands", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--data", default="data/webxr_s0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    from halohand.handmodel.keyposes import load_key_poses
    from halohand.inference.bodies import body_stats
    from halohand.inference.halo import HALO

    torch.set_num_threads(args.threads)
    model = HALO.pretrained()
    sets = {
        "key_poses": [(p.keypoints, p.side) for p in load_key_poses()],
        "test_hands": _hands(args.data, args.hands, args.seed),
    }
    kp0, side0 = sets["key_poses"][0]
    for mode in MODES:  # warm-up
        model.reconstruct(kp0, side=side0, units="m", resolution=args.resolution, touching=mode)
    begin()
    report: dict[str, object] = {
        "benchmark": "touching",
        "rounds": args.rounds,
        "threads": args.threads,
        "resolution": args.resolution,
        "sets": {},
    }
    for set_name, hands in sets.items():
        times: dict[str, list[float]] = {m: [] for m in MODES}
        genus0: dict[str, list[bool]] = {m: [] for m in MODES}
        order = list(MODES)
        for r in range(args.rounds):
            for kp, side in hands:
                for mode in order:
                    t0 = time.perf_counter()
                    mesh = model.reconstruct(
                        kp, side=side, units="m", resolution=args.resolution, touching=mode
                    )
                    times[mode].append(time.perf_counter() - t0)
                    if r == 0:
                        stats = body_stats(mesh)
                        genus0[mode].append(stats.count == 1 and int(stats.genus[0]) == 0)
                order.reverse()
        ratios = [a / m for a, m in zip(times["apart"], times["merge"], strict=True)]
        report["sets"][set_name] = {
            "hands": len(hands),
            "median_s": {m: statistics.median(times[m]) for m in MODES},
            "per_hand_ratio_apart_to_merge_median": statistics.median(ratios),
            "per_hand_ratio_quartiles": [float(q) for q in np.quantile(ratios, [0.25, 0.75])],
            "one_body_genus_0": {m: int(sum(genus0[m])) for m in MODES},
        }
    emit(report, args.json)
    return report


if __name__ == "__main__":
    main()
