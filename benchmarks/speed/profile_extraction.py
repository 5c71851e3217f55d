"""Where the time of keypoints -> mesh goes: stage profile of ``HALO.reconstruct``, this
library against a baseline revision, at one and two threads.

Usage::

    .venv/bin/python benchmarks/speed/profile_extraction.py [--baseline-rev REV]
        [--hands 6] [--rounds 3] [--resolution 256] [--threads 1,2] [--seed 0] [--json OUT]

Hands are sampled from the embedded hand model (``--seed``; every third one a left hand).
Each (library, threads) pair runs in its own subprocess, the order alternating between
rounds; the baseline is the library of ``REV`` from ``git archive``, timed by this script.
Stages, per hand (seconds, medians over hands and rounds), from wrappers around the
library's own functions:

* ``lattice_evaluation``: inside ``halohand.inference.extract._evaluate`` (the network on
  the lattice points, in the worker threads, with whatever runs beside it);
* ``marching_cubes``: scikit-image's ``marching_cubes`` call;
* ``mesh_other``: the rest of ``mesh_from_grid`` (padding, orientation, vertex labels);
* ``bookkeeping_and_rest``: everything else in ``HALO.reconstruct`` (validation,
  canonicalization, the lattice levels' bookkeeping, part colours);
* ``total`` and ``cpu`` (process CPU time: ``cpu / total`` is the cores kept busy).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import REPO, begin, emit  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # speed/: the shared hand sampler
from bench_occupancy import _hands  # noqa: E402

STAGES = ("total", "cpu", "lattice_evaluation", "marching_cubes", "mesh_other",
          "bookkeeping_and_rest")  # fmt: skip


def _worker(args: argparse.Namespace) -> dict:
    import skimage.measure
    import torch

    import halohand.inference.extract as extract
    from halohand import HALO

    torch.set_num_threads(args.threads)
    model = HALO.pretrained()
    spent = dict.fromkeys((*STAGES, "mesh_from_grid"), 0.0)

    def timed(name: str, fn):  # noqa: ANN001, ANN202
        def wrapper(*a, **k):  # noqa: ANN002, ANN003, ANN202
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t

        return wrapper

    extract._evaluate = timed("lattice_evaluation", extract._evaluate)
    extract.mesh_from_grid = timed("mesh_from_grid", extract.mesh_from_grid)
    skimage.measure.marching_cubes = timed("marching_cubes", skimage.measure.marching_cubes)
    hands = _hands(args.hands, args.seed)
    model.reconstruct(hands[0][0], side=hands[0][1], units="m", resolution=args.resolution)
    rows = []
    for kp, side in hands:
        for key in list(spent):
            spent[key] = 0.0
        t, c = time.perf_counter(), time.process_time()
        model.reconstruct(kp, side=side, units="m", resolution=args.resolution)
        total, cpu = time.perf_counter() - t, time.process_time() - c
        rows.append({
            "total": total,
            "cpu": cpu,
            "lattice_evaluation": spent["lattice_evaluation"],
            "marching_cubes": spent["marching_cubes"],
            "mesh_other": spent["mesh_from_grid"] - spent["marching_cubes"],
            "bookkeeping_and_rest": total - spent["lattice_evaluation"] - spent["mesh_from_grid"],
        })  # fmt: skip
    return {"rows": rows}


def _checkout(rev: str, where: Path) -> Path:
    import shutil
    import tarfile
    from io import BytesIO

    tar = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "src"], capture_output=True, check=True
    ).stdout
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    with tarfile.open(fileobj=BytesIO(tar)) as archive:
        archive.extractall(where, filter="data")
    return where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-rev", default=None)
    parser.add_argument("--hands", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        print(json.dumps(_worker(args)))
        return
    begin()
    libraries = {"current": {}}
    if args.baseline_rev:
        tree = _checkout(args.baseline_rev, Path(tempfile.gettempdir()) / "halohand_profile_base")
        libraries[f"baseline_{args.baseline_rev}"] = {"PYTHONPATH": str(tree / "src")}
    jobs = [(lib, int(t)) for lib in libraries for t in args.threads.split(",")]
    rows: dict[str, list[dict]] = {f"{lib}_{t}thread": [] for lib, t in jobs}
    for rnd in range(args.rounds):
        for lib, threads in jobs if rnd % 2 == 0 else jobs[::-1]:
            cmd = [sys.executable, __file__, "--worker", "--hands", str(args.hands),
                   "--resolution", str(args.resolution), "--threads", str(threads),
                   "--seed", str(args.seed)]  # fmt: skip
            proc = subprocess.run(
                cmd, capture_output=True, text=True, check=False,
                env={**os.environ, **libraries[lib]},
            )  # fmt: skip
            if proc.returncode != 0:
                sys.exit(f"{lib} at {threads} threads failed:\n{proc.stderr}")
            got = json.loads(proc.stdout.strip().splitlines()[-1])["rows"]
            rows[f"{lib}_{threads}thread"] += got
            med = statistics.median(r["total"] for r in got)
            print(f"round {rnd}: {lib} {threads} thread(s): {med:.3f} s/hand", file=sys.stderr)
    profiles = {
        name: {stage: statistics.median(r[stage] for r in rs) for stage in STAGES}
        for name, rs in rows.items()
    }
    report = {
        "benchmark": "profile_extraction",
        "hands": args.hands,
        "rounds": args.rounds,
        "resolution": args.resolution,
        "baseline_rev": args.baseline_rev,
        "profiles_median_s_per_hand": profiles,
        "samples_per_profile": {name: len(rs) for name, rs in rows.items()},
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
