"""What a wider part MLP costs at extraction, with the surface held fixed.

Usage::

    .venv/bin/python benchmarks/speed/bench_width.py [--widths 64,72,80,96,128] [--hands 5]
        [--rounds 3] [--threads 2] [--checkpoint FILE] [--json OUT]

The plain-MLP baseline ``benchmarks/baselines/halo_mlp_v1.safetensors`` (or
``--checkpoint``) is widened to each width by
:func:`halohand.training.widen.widen_network`, which keeps its function: every width extracts
the same surface from the same part evaluations, so the time difference is the cost of the
width alone (a trained wider model would differ only by its own surface). Each round times
``HALO.reconstruct`` (256^3, default settings) on the first ``--hands`` test hands of
``data/webxr_s0`` (or sampled hands without it) for every width in turn, after one warm-up
call per width; reported: median and min seconds per hand, and the ratios of the medians
and of the minima to the first width's (on a shared machine the minima are steadier), with
the machine and a matmul calibration before and after the rounds (``benchmarks/_report.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report, _scoring
from _report import begin, emit, repo_path  # noqa: E402
from _scoring import MLP_BASELINE, model_or_shipped  # noqa: E402
from bench_extraction import _hands  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", default="64,72,80,96,128")
    parser.add_argument("--hands", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--checkpoint", default=None, help="model file (default: the plain-MLP baseline)"
    )
    parser.add_argument("--data", default="data/webxr_s0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from halohand.inference.halo import HALO
    from halohand.training.widen import widen_network

    torch.set_num_threads(args.threads)
    checkpoint, source = model_or_shipped(args.checkpoint or str(MLP_BASELINE))
    base = source.config.hidden[0]
    widths = [int(w) for w in args.widths.split(",")]
    models = {}
    for width in widths:
        net = source if width == base else widen_network(source, width, torch.Generator())
        models[width] = HALO(net)
    hands = _hands(args.data, args.hands, args.seed)
    times: dict[int, list[float]] = {w: [] for w in widths}
    faces: dict[int, list[int]] = {w: [] for w in widths}
    for model in models.values():  # warm-up
        model.reconstruct(hands[0][0], side=hands[0][1], units="m")
    begin()
    for _ in range(args.rounds):
        for kp, side in hands:
            for width, model in models.items():
                t0 = time.perf_counter()
                mesh = model.reconstruct(kp, side=side, units="m")
                times[width].append(time.perf_counter() - t0)
                faces[width].append(len(mesh.faces))
    first = statistics.median(times[widths[0]])
    report: dict[str, object] = {
        "benchmark": "width_cost",
        "checkpoint": repo_path(checkpoint),
        "source_width": base,
        "hands": len(hands),
        "rounds": args.rounds,
        "threads": args.threads,
        "widths": {
            str(w): {
                "median_s": statistics.median(times[w]),
                "min_s": min(times[w]),
                "ratio_to_first": statistics.median(times[w]) / first,
                "min_ratio_to_first": min(times[w]) / min(times[widths[0]]),
                "faces_mean": float(np.mean(faces[w])),
            }
            for w in widths
        },
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
