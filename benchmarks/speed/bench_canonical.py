"""Benchmark the canonicalization layer: a batch of hands, forward and forward+backward.

Prints one JSON object (and writes it with ``--json``): per dtype and mode the median / min
time per batch (ms) and per hand (us), plus the machine (``benchmarks/_report.py``).

    .venv/bin/python benchmarks/speed/bench_canonical.py [--batch 1024] [--repeats 20]
        [--threads N] [--json OUT]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from halohand.canonical import canonicalize, skeleton_from_angles

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit  # noqa: E402


def make_batch(n: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """``[n, 21, 3]`` plausible right hands in metres with random rigid motions."""
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    flex = torch.rand(n, 15, generator=g, dtype=f64) * 1.6 - 0.3
    abd = (torch.rand(n, 15, generator=g, dtype=f64) - 0.5) * 0.4
    lengths = 0.02 + 0.06 * torch.rand(n, 20, generator=g, dtype=f64)
    kp = skeleton_from_angles(flex, abd, lengths)
    kp = kp + 0.003 * torch.randn(n, 21, 3, generator=g, dtype=f64)
    q, _ = torch.linalg.qr(torch.randn(n, 3, 3, generator=g, dtype=f64))
    q = q * torch.linalg.det(q)[:, None, None]  # proper rotations
    kp = kp @ q.transpose(-1, -2) + torch.randn(n, 1, 3, generator=g, dtype=f64)
    return kp.to(dtype)


def time_it(fn, repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    begin()
    results = {}
    for dtype in (torch.float32, torch.float64):
        kp = make_batch(args.batch, dtype)

        def forward(kp=kp) -> None:
            with torch.no_grad():
                canonicalize(kp)

        def forward_backward(kp=kp) -> None:
            x = kp.clone().requires_grad_(True)
            c = canonicalize(x)
            (c.part_transforms.sum() + c.canonical_keypoints.sum()).backward()

        for mode, fn in (("forward", forward), ("forward_backward", forward_backward)):
            times = time_it(fn, args.repeats)
            med, best = statistics.median(times), min(times)
            results[f"{str(dtype).removeprefix('torch.')}/{mode}"] = {
                "ms_per_batch_median": round(med * 1e3, 3),
                "ms_per_batch_min": round(best * 1e3, 3),
                "us_per_hand_median": round(med * 1e6 / args.batch, 3),
            }

    report = {
        "benchmark": "halohand.canonical.canonicalize",
        "batch": args.batch,
        "repeats": args.repeats,
        "backward_loss": "part_transforms.sum() + canonical_keypoints.sum()",
        "results": results,
        "machine": {"device": "cpu"},
    }
    emit(report, args.json, indent=2)


if __name__ == "__main__":
    main()
