"""Keypoints -> mesh with the library at two revisions, interleaved hand by hand: a library
change's effect on ``HALO.reconstruct``, for one model.

Usage::

    .venv/bin/python benchmarks/speed/bench_library_ab.py --baseline-rev REV
        [--checkpoint FILE] [--data data/webxr_thick15_s0] [--hands 8] [--rounds 5]
        [--threads 2] [--json OUT]

Two worker processes stay up for the whole run: one imports this checkout's ``src``, the
other the ``src`` of git revision ``REV`` (``git archive``, as ``bench_extraction.py
--baseline-rev`` does). Each loads the model (``--checkpoint``, or the revision's shipped
default) and the first ``--hands`` test hands of ``--data`` and meshes one hand as a warm-up.
Then, ``--rounds`` times over the hands, the main process asks both workers for the same
hand, one after the other, the order swapped from hand to hand; a worker times
``HALO.reconstruct`` (256^3, default settings, keypoints in metres) while the other waits on
its pipe. Unlike ``bench_extraction.py --baseline-rev``, which times each revision's whole
round in its own process, a slow phase of a shared machine falls on both sides of a pair.

Reported: median and minimum seconds per hand of each side, the median of the per-hand
ratios (this checkout over the baseline, each hand against itself in the same round) with
quartiles, and whether both sides made the same number of faces on every hand; with the
machine and a matmul calibration before and after the rounds (``benchmarks/_report.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
sys.path.insert(0, str(Path(__file__).resolve().parent))  # speed/: bench_extraction
from _report import REPO, begin, emit, repo_path  # noqa: E402


def _worker(args: argparse.Namespace) -> None:
    """Mesh the hands the main process names on stdin, one JSON line per hand on stdout."""
    import torch
    from bench_extraction import _hands

    from halohand.inference.halo import HALO

    torch.set_num_threads(args.threads)
    model = HALO.from_checkpoint(args.checkpoint) if args.checkpoint else HALO.pretrained()
    hands = _hands(args.data, args.hands, 0)
    model.reconstruct(hands[0][0], side=hands[0][1], units="m")  # warm-up
    print(json.dumps({"ready": len(hands)}), flush=True)
    for line in sys.stdin:
        kp, side = hands[int(line)]
        t0 = time.perf_counter()
        mesh = model.reconstruct(kp, side=side, units="m")
        seconds = time.perf_counter() - t0
        print(json.dumps({"s": seconds, "faces": len(mesh.faces)}), flush=True)


class _Side:
    """One worker process, importing the library from ``src``."""

    def __init__(self, src: Path, args: argparse.Namespace) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--data", args.data,
               "--hands", str(args.hands), "--threads", str(args.threads)]  # fmt: skip
        if args.checkpoint:
            cmd += ["--checkpoint", args.checkpoint]
        env = {**os.environ, "PYTHONPATH": str(src)}
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.hands = self._read()["ready"]

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"a worker stopped (exit status {self.proc.wait()})")
        return json.loads(line)

    def mesh(self, hand: int) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{hand}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-rev", default=None)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--data", default="data/webxr_thick15_s0")
    parser.add_argument("--hands", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    if not args.baseline_rev:
        parser.error("--baseline-rev is required")
    from bench_extraction import _checkout

    with tempfile.TemporaryDirectory() as scratch:
        tree = _checkout(args.baseline_rev, Path(scratch) / "baseline")
        sides = {"current": _Side(REPO / "src", args), "baseline": _Side(tree / "src", args)}
        try:
            times: dict[str, list[float]] = {name: [] for name in sides}
            faces: dict[str, list[int]] = {name: [] for name in sides}
            hands = sides["current"].hands
            begin()
            for rnd in range(args.rounds):
                for i in range(hands):
                    order = list(sides) if (rnd + i) % 2 == 0 else list(sides)[::-1]
                    for name in order:
                        result = sides[name].mesh(i)
                        times[name].append(result["s"])
                        faces[name].append(result["faces"])
        finally:
            for side in sides.values():
                side.close()
    ratios = [c / b for c, b in zip(times["current"], times["baseline"], strict=True)]
    report = {
        "benchmark": "library_ab",
        "baseline_rev": args.baseline_rev,
        "checkpoint": repo_path(args.checkpoint) if args.checkpoint else "shipped",
        "hands": hands,
        "rounds": args.rounds,
        "threads": args.threads,
        "resolution": 256,
        "sides": {
            name: {"median_s": statistics.median(ts), "min_s": min(ts)}
            for name, ts in times.items()
        },
        "per_hand_ratio_current_over_baseline_median": statistics.median(ratios),
        "per_hand_ratio_quartiles": [float(q) for q in np.quantile(ratios, [0.25, 0.75])],
        "same_faces": faces["current"] == faces["baseline"],
    }
    emit(report, args.json, indent=2)


if __name__ == "__main__":
    main()
