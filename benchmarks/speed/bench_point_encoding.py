"""What Fourier features or feature grids of the points cost at extraction, with the
surface held fixed.

Usage::

    .venv/bin/python benchmarks/speed/bench_point_encoding.py [--frequencies 6.25,12.5,25,50,100]
        [--grid RESOLUTION,CHANNELS] [--grid-frame palm|bone|finger] [--hands 8] [--rounds 5]
        [--threads 2]
        [--checkpoint FILE] [--json OUT]

The plain-MLP baseline ``benchmarks/baselines/halo_mlp_v1.safetensors`` (or ``--checkpoint``)
is given Fourier features of its canonical points
(``--frequencies``; an empty value for none) and, with ``--grid``, per-part feature grids
in ``--grid-frame``'s coordinates over the boxes of
``benchmarks/results/studies/part_grid_bounds{,_bone,_finger}.json``, by
:func:`halohand.training.widen.adapt_network` with zero weights: the same function, so
both models extract the same surface from the same part evaluations and the time
difference is the features' cost alone (a trained model differs only by its own
surface). Each round times ``HALO.reconstruct`` (256^3, default settings) on the first
``--hands`` test hands of ``data/webxr_s0`` (or sampled hands without it), the plain and
the encoded model one after the other on each hand, in alternating order, after one
warm-up call each; reported: the median and min seconds per hand, and the median of the
per-hand ratios (each hand against itself in the same round), with the machine and a
matmul calibration before and after the rounds (``benchmarks/_report.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report, _scoring
from _report import emit, repo_path  # noqa: E402
from _scoring import MLP_BASELINE, model_or_shipped  # noqa: E402
from bench_extraction import _hands  # noqa: E402
from bench_models import time_side_by_side  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frequencies", default="6.25,12.5,25,50,100")
    parser.add_argument("--grid", default="", help="RESOLUTION,CHANNELS of feature grids")
    parser.add_argument("--grid-frame", choices=("palm", "bone", "finger"), default="palm")
    parser.add_argument("--hands", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--checkpoint", default=None, help="model file (default: the plain-MLP baseline)"
    )
    parser.add_argument("--data", default="data/webxr_s0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from halohand.inference.halo import HALO
    from halohand.training.widen import adapt_network

    torch.set_num_threads(args.threads)
    checkpoint, source = model_or_shipped(args.checkpoint or str(MLP_BASELINE))
    frequencies = tuple(float(f) for f in args.frequencies.split(",") if f.strip())
    grid: dict[str, object] = {}
    if args.grid:
        resolution, channels = (int(v) for v in args.grid.split(","))
        suffix = "" if args.grid_frame == "palm" else f"_{args.grid_frame}"
        bounds_file = (
            Path(__file__).resolve().parents[1] / f"results/studies/part_grid_bounds{suffix}.json"
        )
        grid = {
            "grid_resolution": resolution,
            "grid_channels": channels,
            "grid_bounds": tuple(json.loads(bounds_file.read_text())["grid_bounds"]),
            "grid_frame": args.grid_frame,
        }
    encoded = adapt_network(
        source, dataclasses.replace(source.config, point_frequencies=frequencies, **grid)
    )
    models = {"plain": HALO(source), "encoded": HALO(encoded)}
    hands = _hands(args.data, args.hands, args.seed)
    times, faces = time_side_by_side(models, hands, args.rounds)
    ratios = [e / p for e, p in zip(times["encoded"], times["plain"], strict=True)]
    report: dict[str, object] = {
        "benchmark": "point_encoding_cost",
        "checkpoint": repo_path(checkpoint),
        "frequencies": list(frequencies),
        "grid": args.grid or None,
        "grid_frame": args.grid_frame if args.grid else None,
        "hands": len(hands),
        "rounds": args.rounds,
        "threads": args.threads,
        "models": {
            name: {
                "median_s": statistics.median(times[name]),
                "min_s": min(times[name]),
                "faces_mean": float(np.mean(faces[name])),
            }
            for name in models
        },
        "per_hand_ratio_median": statistics.median(ratios),
        "per_hand_ratio_quartiles": [float(q) for q in np.quantile(ratios, [0.25, 0.75])],
        "same_faces": faces["plain"] == faces["encoded"],
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
