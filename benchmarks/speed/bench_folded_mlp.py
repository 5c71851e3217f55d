"""The folded part MLP on one thread: layer by layer (every part through one layer, then the
next) against part by part (each part through the whole MLP), in GFLOP/s of its GEMMs.

Usage::

    .venv/bin/python benchmarks/speed/bench_folded_mlp.py [--pairs 12000] [--repeats 40]
        [--rounds 4] [--json OUT]

One call evaluates ``--pairs`` (point, part) pairs spread evenly over the 16 parts of the
shipped network's shape (3 -> 64 x 4 -> 1, residual before the activation, folded first
layer), as one lattice batch of mesh extraction does (~12k pairs for 8,192 points). The two
orders alternate, ``--rounds`` times ``--repeats`` calls each; reported per order: median
and minimum milliseconds per call and the GEMMs' GFLOP/s at the minimum (25,088 FLOP per
pair), with the float32 matmul calibration of the same process
(``benchmarks/_report.py``). ``part_major`` is what
:meth:`halohand.fields.OccupancyNetwork.folded_logits` runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit  # noqa: E402

K, H, SLOPE = 16, 64, 0.1
FLOP_PER_PAIR = 2 * (3 * H + 3 * H * H + H)


def _weights(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "w0": torch.randn(K, 3, H, generator=g),
        "b0": torch.randn(K, H, generator=g),
        "w": [torch.randn(K, H, H, generator=g) * 0.1 + torch.eye(H) for _ in range(3)],
        "b": [torch.randn(K, H, generator=g) for _ in range(3)],
        "wl": torch.randn(K, H, 1, generator=g),
        "bl": torch.randn(K, 1, generator=g),
    }


def layer_major(pts: torch.Tensor, spans: list, p: dict) -> torch.Tensor:
    h = pts.new_empty(pts.shape[0], H)
    for k, s0, s1 in spans:
        torch.addmm(p["b0"][k], pts[s0:s1], p["w0"][k], out=h[s0:s1])
    F.leaky_relu_(h, SLOPE)
    for w, b in zip(p["w"], p["b"], strict=True):
        y = h.new_empty(pts.shape[0], H)
        for k, s0, s1 in spans:
            torch.addmm(b[k], h[s0:s1], w[k], out=y[s0:s1])
        h = F.leaky_relu_(y, SLOPE)
    out = h.new_empty(pts.shape[0], 1)
    for k, s0, s1 in spans:
        torch.addmm(p["bl"][k], h[s0:s1], p["wl"][k], out=out[s0:s1])
    return out


def part_major(pts: torch.Tensor, spans: list, p: dict) -> torch.Tensor:
    out = pts.new_empty(pts.shape[0], 1)
    for k, s0, s1 in spans:
        h = F.leaky_relu_(torch.addmm(p["b0"][k], pts[s0:s1], p["w0"][k]), SLOPE)
        for w, b in zip(p["w"], p["b"], strict=True):
            h = F.leaky_relu_(torch.addmm(b[k], h, w[k]), SLOPE)
        torch.addmm(p["bl"][k], h, p["wl"][k], out=out[s0:s1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=12000)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    begin()
    params = _weights(0)
    pts = torch.randn(args.pairs, 3, generator=torch.Generator().manual_seed(1))
    per = args.pairs // K
    spans = [(k, k * per, (k + 1) * per if k < K - 1 else args.pairs) for k in range(K)]
    orders = {"layer_major": layer_major, "part_major": part_major}
    same = torch.allclose(layer_major(pts, spans, params), part_major(pts, spans, params),
                          rtol=1e-4, atol=1e-3)  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in orders}
    for rnd in range(args.rounds):
        for name in orders if rnd % 2 == 0 else list(orders)[::-1]:
            fn = orders[name]
            fn(pts, spans, params)
            for _ in range(args.repeats):
                t = time.perf_counter()
                fn(pts, spans, params)
                times[name].append(time.perf_counter() - t)
    flop = FLOP_PER_PAIR * args.pairs
    results = {
        name: {
            "ms_median": 1e3 * statistics.median(ts),
            "ms_min": 1e3 * min(ts),
            "gemm_gflops_at_min": flop / min(ts) / 1e9,
        }
        for name, ts in times.items()
    }
    emit({
        "benchmark": "bench_folded_mlp",
        "pairs": args.pairs,
        "threads": 1,
        "same_logits": bool(same),
        "orders": results,
        "part_major_speedup_median": results["layer_major"]["ms_median"]
        / results["part_major"]["ms_median"],
    }, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
