"""Keypoints -> mesh with trained models side by side: what a candidate model costs against
the default one, each with its own surface.

Usage::

    .venv/bin/python benchmarks/speed/bench_models.py --model NAME=FILE [--model ...]
        [--hands 8] [--rounds 3] [--threads 2] [--json OUT]

The shipped model (``shipped``) and each ``--model`` time ``HALO.reconstruct`` (256^3,
default settings, keypoints in metres) on the first ``--hands`` test hands of
``data/webxr_s0`` (or sampled hands without it), one model after the other on each hand,
the order rotated from hand to hand, after one warm-up call each. Unlike
``bench_point_encoding.py`` (the same surface with and without the features, so the
features' cost alone), every model meshes its own surface here, so the ratio includes
what its surface costs (more or fewer lattice points near it): the number a user of the
model sees. Reported per model: median and minimum seconds per hand, the median of the
per-hand ratios to ``shipped`` (each hand against itself in the same round) with quartiles,
and the mean face count; with the machine and a matmul calibration before and after the
rounds (``benchmarks/_report.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_extraction's hands
from _report import begin, emit, repo_path  # noqa: E402
from bench_extraction import _hands  # noqa: E402


def time_side_by_side(
    models: dict[str, Any], hands: list[tuple[np.ndarray, str]], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    """Seconds and face counts of ``HALO.reconstruct`` (256^3, keypoints in metres) per
    model, ``rounds`` times over ``hands``: one model after the other on each hand, the
    order rotated from hand to hand, after one warm-up call each; ``begin()`` (the
    report's calibration) is taken after the warm-ups. Entries ``[round * len(hands) +
    hand]`` pair across models."""
    for model in models.values():  # warm-up
        model.reconstruct(hands[0][0], side=hands[0][1], units="m")
    times: dict[str, list[float]] = {name: [] for name in models}
    faces: dict[str, list[int]] = {name: [] for name in models}
    begin()
    order = list(models)
    for _ in range(rounds):
        for kp, side in hands:
            for name in order:
                t0 = time.perf_counter()
                mesh = models[name].reconstruct(kp, side=side, units="m")
                times[name].append(time.perf_counter() - t0)
                faces[name].append(len(mesh.faces))
            order = order[1:] + order[:1]
    return times, faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", default=[], help="NAME=FILE")
    parser.add_argument("--hands", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default="data/webxr_s0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from halohand.inference.halo import HALO, pretrained_path

    torch.set_num_threads(args.threads)
    files = {"shipped": str(pretrained_path())}
    for spec in args.model:
        name, _, path = spec.partition("=")
        if not name or not path or name in files:
            parser.error(f"--model wants a new NAME=FILE, got {spec!r}")
        files[name] = path
    models = {name: HALO.from_checkpoint(path) for name, path in files.items()}
    hands = _hands(args.data, args.hands, args.seed)
    times, faces = time_side_by_side(models, hands, args.rounds)
    report: dict[str, object] = {
        "benchmark": "models_side_by_side",
        "hands": len(hands),
        "rounds": args.rounds,
        "threads": args.threads,
        "resolution": 256,
        "models": {},
    }
    for name in models:
        ratios = [t / s for t, s in zip(times[name], times["shipped"], strict=True)]
        report["models"][name] = {
            "file": repo_path(files[name]),
            "median_s": statistics.median(times[name]),
            "min_s": min(times[name]),
            "per_hand_ratio_to_shipped_median": statistics.median(ratios),
            "per_hand_ratio_quartiles": [float(q) for q in np.quantile(ratios, [0.25, 0.75])],
            "faces_mean": float(np.mean(faces[name])),
        }
    emit(report, args.json)


if __name__ == "__main__":
    main()
