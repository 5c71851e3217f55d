"""HALO.occupancy with gradients: the chunked differentiable query it used vs the sparse one,
forward + backward points/s and peak memory.

Usage::

    .venv/bin/python benchmarks/speed/bench_occupancy_grad.py [--hands 4] [--points 200000]
        [--rounds 5] [--threads 2] [--memory 8x100000,1x1000000] [--seed 0]
        [--checkpoint FILE] [--json OUT]

Query points are uniform in each hand's box (the keypoints' bounding cube + 4 cm, as for
meshes), hands from the embedded hand model (``--seed``; every third a left hand), metres.
One timed call: ``occ = HALO.occupancy(points, keypoints)`` with points and keypoints
requiring grad, then ``occ.sum().backward()``. Configurations, alternating in one process
(the order reversed every round, one warm-up call each first), all at ``--threads`` torch
threads:

* ``chunked`` (baseline): the query ``HALO.occupancy`` ran with gradients before,
  :func:`halohand.inference.query.query_occupancy` (4096 points per network call, the
  masked network on the supports' pairs);
* ``sparse`` (candidate): ``HALO.occupancy`` as it is, i.e.
  :func:`halohand.inference.query.sparse_query` in ``--threads`` worker threads;

each with the network's parameters frozen (``frozen``: as grasp refinement runs it) and
requiring grad (``params``: the model as loaded, weight gradients computed too, the grid
table's included). The model is the shipped one, or ``--checkpoint``.

Reported per configuration: median (and min) seconds per call of ``--points`` points of one
hand, forward + backward points/s per hand from the median, and the speed ratio to the
baseline's (of medians and of minima). Peak memory: each configuration (frozen) once more in
its own subprocess for each ``--memory`` shape (hands x points per hand), as the resident
set's peak during the call (forward and backward) above the resident set before it (Linux).
With the machine and a matmul calibration before and after (``benchmarks/_report.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_occupancy's helpers
from _report import begin, emit, repo_path  # noqa: E402
from bench_occupancy import PADDING_M, _hands, _status_mb, _uniform  # noqa: E402

CONFIGS = ("chunked_frozen", "sparse_frozen", "chunked_params", "sparse_params")


def _call(config: str, model, kp: np.ndarray, side: str, points: np.ndarray) -> torch.Tensor:  # noqa: ANN001
    """One forward + backward of ``config``; returns the points' gradient."""
    from halohand.inference import halo as halo_module

    frozen = config.endswith("_frozen")
    for p in model.network.parameters():
        p.requires_grad_(not frozen)
        p.grad = None
    saved = halo_module.can_query_sparse_grad
    if config.startswith("chunked"):
        halo_module.can_query_sparse_grad = lambda *a, **k: False
    try:
        pts = torch.tensor(points, requires_grad=True)
        k = torch.tensor(kp, requires_grad=True)
        model.occupancy(pts, k, side=side, units="m").sum().backward()
    finally:
        halo_module.can_query_sparse_grad = saved
    return pts.grad


def _memory_worker(args: argparse.Namespace) -> dict:
    """One call of a configuration on ``hands x points``: the resident set's peak during
    it above the resident set before it (the high-water mark is reset just before)."""
    from halohand.inference.halo import HALO

    torch.set_num_threads(args.threads)
    model = HALO.pretrained(args.checkpoint)
    hands_n, n = (int(x) for x in args.memory_shape.split("x"))
    hands = _hands(hands_n, args.seed + 99)
    kp = np.stack([h[0] for h in hands])
    side = [h[1] for h in hands]
    _call(args.memory_worker, model, kp[:1], side[:1], _uniform(kp[0], 20_000, 0)[None])
    pts = np.stack([_uniform(kp[i], n, i) for i in range(hands_n)])
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set
    before = _status_mb("VmRSS")
    t0 = time.perf_counter()
    grad = _call(args.memory_worker, model, kp, side, pts)
    seconds = time.perf_counter() - t0
    peak = _status_mb("VmHWM")
    assert grad.shape == pts.shape
    return {
        "hands": hands_n,
        "points_per_hand": n,
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_above_rss_before_mb": round(peak - before, 1),
        "inputs_and_gradient_mb": round(2 * pts.nbytes / 2**20, 1),
        "seconds": round(seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hands", type=int, default=4, help="hands timed per round")
    parser.add_argument("--points", type=int, default=200_000, help="points per timed call")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory", default="8x100000,1x1000000", help="hands x points runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None, help="model file (default: shipped)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--memory-shape", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        print(json.dumps(_memory_worker(args)))
        return

    from halohand.inference.halo import HALO

    torch.set_num_threads(args.threads)
    model = HALO.pretrained(args.checkpoint)
    hands = _hands(args.hands, args.seed)
    points = [_uniform(kp, args.points, args.seed + i) for i, (kp, _) in enumerate(hands)]
    begin()
    for config in CONFIGS:  # warm-up
        _call(config, model, *hands[0], points[0][:20_000])
    times: dict[str, list[float]] = {c: [] for c in CONFIGS}
    for rnd in range(args.rounds):
        for config in CONFIGS if rnd % 2 == 0 else CONFIGS[::-1]:
            for (kp, side), pts in zip(hands, points, strict=True):
                t0 = time.perf_counter()
                _call(config, model, kp, side, pts)
                times[config].append(time.perf_counter() - t0)
    timing = {}
    for config, ts in times.items():
        base = times["chunked_" + config.split("_")[1]]
        med = statistics.median(ts)
        timing[config] = {
            "s_per_call_median": med,
            "s_per_call_min": min(ts),
            "points_per_s_per_hand": args.points / med,
            "points_per_s_per_hand_best": args.points / min(ts),
            "speed_ratio_to_chunked": statistics.median(base) / med,
            "speed_ratio_to_chunked_of_minima": min(base) / min(ts),
            "calls": len(ts),
        }
    memory: dict[str, list[dict]] = {}
    for shape in args.memory.split(","):
        for config in ("chunked_frozen", "sparse_frozen"):
            cmd = [
                sys.executable, __file__, "--memory-worker", config, "--memory-shape", shape,
                "--threads", str(args.threads), "--seed", str(args.seed),
                *(["--checkpoint", args.checkpoint] if args.checkpoint else []),
            ]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.exit(f"memory run of {config} failed:\n{proc.stderr}")
            memory.setdefault(config, []).append(json.loads(proc.stdout.strip().splitlines()[-1]))
    report = {
        "benchmark": "occupancy_grad_points_per_s",
        "checkpoint": repo_path(args.checkpoint) if args.checkpoint else "shipped",
        "points_per_call": args.points,
        "box": f"keypoints' bounding cube + {PADDING_M * 100:g} cm, uniform",
        "call": "occ = HALO.occupancy(points, keypoints) (both requiring grad); "
        "occ.sum().backward()",
        "hands_timed": args.hands,
        "rounds": args.rounds,
        "threads": args.threads,
        "timing": timing,
        "peak_memory": memory,
    }
    emit(report, args.json, indent=2)


if __name__ == "__main__":
    main()
