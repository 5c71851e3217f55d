"""What a training step costs for each of several run configs, on the same batches.

Usage::

    .venv/bin/python benchmarks/speed/bench_train_step.py CONFIG.toml [CONFIG.toml ...]
        [--steps 40] [--warmup 3] [--threads 1] [--micro-batches 0,16] [--json OUT]

Each config (``halohand train`` TOML, e.g. the pairs in ``configs/experiments/fourier/``)
gets a trainer in a temporary run folder (its ``init_weights`` and model as configured,
nothing written next to the config's own ``out``). The configs must share data, seed and
batch settings, so they draw the same batches; every step's batch is run by each
trainer in turn, in alternating order, and timed (``Trainer.train_step``: forward,
backward and the optimizer step). Reported per config: the median and quartiles of the
step time, and the median of the per-step ratios to the first config (each batch against
itself, back to back), with the machine and a matmul calibration before and after the
steps (``benchmarks/_report.py``). The point is equal-CPU-time comparisons of training
runs whose logs count steps. With ``--micro-batches``, every config runs at each of those
``micro_batch`` values (0: the trainer's automatic choice), named ``<config>_mb<value>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit, repo_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--micro-batches", default="", help="comma-separated micro_batch values")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from halohand.training.config import load_config
    from halohand.training.trainer import Trainer

    micro = [int(v) for v in args.micro_batches.split(",") if v.strip()]
    runs = [
        (f"{Path(c).stem}_mb{m}" if micro else Path(c).stem, c, m)
        for c in args.configs
        for m in (micro or [None])
    ]
    names = [name for name, _, _ in runs]
    with tempfile.TemporaryDirectory() as tmp:
        trainers = []
        for name, path, m in runs:
            cfg = load_config(path)
            cfg = dataclasses.replace(
                cfg, out=str(Path(tmp) / name), threads=args.threads, progress=False
            )
            if m is not None:
                cfg = dataclasses.replace(cfg, micro_batch=m)
            trainers.append(Trainer(cfg))
        loader = iter(trainers[0]._loader(args.warmup + args.steps))
        times: dict[str, list[float]] = {name: [] for name in names}
        order = list(range(len(trainers)))
        begin()
        for step in range(args.warmup + args.steps):
            batch = next(loader)
            for i in order:
                t0 = time.perf_counter()
                trainers[i].train_step(trainers[i]._batch_to_device(batch))
                if step >= args.warmup:
                    times[names[i]].append(time.perf_counter() - t0)
            order.reverse()
        for trainer in trainers:
            trainer.close()
    first = times[names[0]]
    report: dict[str, object] = {
        "benchmark": "train_step_cost",
        "configs": [repo_path(Path(c)) for c in args.configs],
        "steps": args.steps,
        "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "runs": {
            name: {
                "median_s": statistics.median(times[name]),
                "quartiles_s": [float(q) for q in np.quantile(times[name], [0.25, 0.75])],
                "ratio_to_first_median": statistics.median(
                    t / f for t, f in zip(times[name], first, strict=True)
                ),
            }
            for name in names
        },
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
