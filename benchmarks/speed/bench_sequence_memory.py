"""Peak memory of ``halohand reconstruct`` on long sequences: it must not grow with length.

Usage::

    .venv/bin/python benchmarks/speed/bench_sequence_memory.py [--frames 100,500,2000]
        [--resolution 32] [--checkpoint FILE] [--json OUT]

For each length N, a ``[N, 21, 3]`` sequence (metres) is made by posing the embedded hand
model along a smooth random walk between pose-prior samples, saved as ``.npy``, and
reconstructed by the real CLI in a child process (``halohand reconstruct seq.npy --out-dir
D --resolution R``). Reported per length: the child's peak resident memory
(``ru_maxrss`` of the children), wall time and seconds per frame, and the number of mesh
files written. Meshes are streamed to disk one by one, so memory should stay flat while the
time grows linearly. Prints one JSON object (and writes it with ``--json``), with the machine
and a matmul calibration before and after (``benchmarks/_report.py``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit, repo_path  # noqa: E402


def make_sequence(n: int, seed: int = 0) -> np.ndarray:
    """``[n, 21, 3]`` keypoints (metres) of one identity moving smoothly between poses."""
    from halohand.handmodel.pose import HandPose
    from halohand.handmodel.prior import PosePrior
    from halohand.handmodel.webxr import default_model

    model = default_model()
    prior = PosePrior()
    rng = np.random.default_rng(seed)
    keys = [prior.sample(rng).as_array() for _ in range(max(2, n // 50 + 2))]
    out = np.empty((n, 21, 3))
    for i in range(n):
        u = i / max(n - 1, 1) * (len(keys) - 1)
        k = min(int(u), len(keys) - 2)
        w = u - k
        w = w * w * (3 - 2 * w)  # ease in/out between key poses
        angles = (1.0 - w) * keys[k] + w * keys[k + 1]  # joint limits are boxes: stays inside
        out[i] = model.pose(HandPose.from_array(angles)).keypoints
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", default="100,500,2000")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    halohand = str(Path(sys.executable).with_name("halohand"))
    begin()
    results = []
    for n in [int(x) for x in args.frames.split(",")]:
        work = Path(tempfile.mkdtemp(prefix="halohand_seq_"))
        try:
            np.save(work / "seq.npy", make_sequence(n))
            cmd = [
                halohand, "reconstruct", str(work / "seq.npy"), "--out-dir", str(work / "out"),
                "--resolution", str(args.resolution), "--units", "m",
            ]  # fmt: skip
            if args.checkpoint:
                cmd += ["--checkpoint", args.checkpoint]
            # Each length runs in a fresh grandchild so ru_maxrss(children) is its own.
            probe = (
                "import resource, subprocess, sys, json; "
                f"r = subprocess.run({cmd!r}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); "
                "print(json.dumps({'rc': r.returncode, 'err': r.stderr.decode()[-500:], "
                "'rss_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"
            )
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
            wall = time.perf_counter() - t0
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            if info["rc"] != 0:
                sys.exit(f"reconstruct failed for {n} frames: {info['err']}")
            files = sorted((work / "out").glob("*.ply"))
            results.append({
                "frames": n, "peak_rss_mb": info["rss_kb"] / 1024.0, "wall_s": wall,
                "s_per_frame": wall / n, "files_written": len(files),
            })  # fmt: skip
            print(f"{n} frames: {results[-1]['peak_rss_mb']:.0f} MB, {wall:.1f} s", file=sys.stderr)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    report = {
        "benchmark": "bench_sequence_memory",
        "resolution": args.resolution,
        "checkpoint": repo_path(args.checkpoint) if args.checkpoint else "shipped",
        "results": results,
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
