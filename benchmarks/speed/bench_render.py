"""Speed of ``halohand data render`` per image: the full look of format 3 against every
realism switch off (about format 2's renders), the two interleaved scene by scene in one
process so that a shared machine's load falls on both alike.

Prints one JSON object (and writes it with ``--json``): per look the median and mean
seconds per image (scene sampling, drawing, background, compositing; no file writing) and
images per second, plus the machine (``benchmarks/_report.py``).

    .venv/bin/python benchmarks/speed/bench_render.py [--n 20] [--size 512] [--json OUT]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=777001)
    parser.add_argument("--renderer", default="auto")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from halohand.apps.synthetic import Look, make_renderer, render_scene, sample_scene

    gl, name = make_renderer(args.renderer, args.size)
    looks = {"full": Look(), "all_off": Look(**{f.name: False for f in fields(Look)})}
    begin()
    times: dict[str, list[float]] = {key: [] for key in looks}
    for i in range(-1, args.n):  # scene -1: warm-up (imports, shader compile), not timed
        for key, look in looks.items():
            t0 = time.perf_counter()
            scene, hand = sample_scene(args.seed, max(i, 0), args.size, look)
            render_scene(scene, hand, gl, look)
            if i >= 0:
                times[key].append(time.perf_counter() - t0)
    report = {
        "benchmark": "bench_render",
        "renderer": name,
        "size": args.size,
        "images": args.n,
        "seconds_per_image": {
            key: {
                "median": round(statistics.median(v), 3),
                "mean": round(statistics.fmean(v), 3),
                "images_per_second": round(1.0 / statistics.fmean(v), 2),
            }
            for key, v in times.items()
        },
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
