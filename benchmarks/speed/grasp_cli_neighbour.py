"""``halohand grasp --refine`` end to end, quiet and next to one busy neighbour process, for
the library as it is and (optionally) at another git revision, in one run.

Usage::

    .venv/bin/python benchmarks/speed/grasp_cli_neighbour.py [--baseline-rev REV]
        [--rounds 2] [--n 20] [--json OUT]

The command (``python -m halohand grasp cylinder_mm.stl --n N --refine --out-dir ...``:
the registry's ``cylinder_4`` exported in millimetres, as ``grasp_speed.py --cli`` runs
it) runs in a fresh interpreter for each code version (``candidate``: this checkout's
``src``; ``baseline``: ``src`` of ``--baseline-rev`` extracted with ``git archive``), with
``OMP_WAIT_POLICY`` removed from its environment (the command sets its own). Conditions
alternate every round: ``quiet`` and ``loaded`` (one unpinned ``python -c 'while True:
pass'`` started 0.3 s before and killed after); the code order is reversed every other
round. Reported per version and condition: the wall times, the command's own stage times
(``grasps.json``), the runnable threads of other processes at the start and end of each
run (``/proc/loadavg`` less this process's; the neighbour counts), and the slowdown
(loaded / quiet medians). With the machine and a matmul calibration before and after
(``benchmarks/_report.py``).
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


def _checkout(rev: str, where: Path) -> Path:
    """``src`` of the repository at ``rev`` as plain files (``git archive``)."""
    import tarfile
    from io import BytesIO

    tar = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(tar)) as archive:
        archive.extractall(where, filter="data")
    return where / "src"


def _others() -> int:
    with open("/proc/loadavg", encoding="ascii") as f:
        running = int(f.read().split()[3].split("/")[0])
    return max(0, running - 1)  # this (single-threaded) script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-rev", default=None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "src"))
    from halohand.objects.registry import load_object

    tmp = Path(tempfile.mkdtemp(prefix="grasp_cli_neighbour_"))
    mesh_path = tmp / "cylinder_mm.stl"
    load_object("cylinder_4").mesh.copy().apply_scale(1000.0).export(mesh_path)
    versions = {"candidate": REPO / "src"}
    if args.baseline_rev:
        versions = {"baseline": _checkout(args.baseline_rev, tmp / "base"), **versions}
    begin()
    runs: dict[str, dict[str, list[dict]]] = {v: {"quiet": [], "loaded": []} for v in versions}
    for rnd in range(args.rounds):
        for cond in ("quiet", "loaded") if rnd % 2 == 0 else ("loaded", "quiet"):
            neighbour = None
            if cond == "loaded":
                neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                time.sleep(0.3)
            try:
                order = list(versions) if rnd % 2 == 0 else list(versions)[::-1]
                for version in order:
                    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
                    env["PYTHONPATH"] = str(versions[version])
                    out = tmp / f"out_{rnd}_{cond}_{version}"
                    cmd = [sys.executable, "-m", "halohand", "grasp", str(mesh_path),
                           "--n", str(args.n), "--out-dir", str(out), "--refine"]  # fmt: skip
                    before = _others()
                    t0 = time.perf_counter()
                    subprocess.run(cmd, env=env, check=True, capture_output=True)
                    wall = time.perf_counter() - t0
                    summary = json.loads((out / "grasps.json").read_text())
                    runs[version][cond].append({
                        "wall_s": round(wall, 3),
                        "stages_s": {k: round(v, 3) for k, v in summary["seconds"].items()},
                        "others_running_start_end": [before, _others()],
                    })  # fmt: skip
            finally:
                if neighbour is not None:
                    neighbour.kill()
                    neighbour.wait()
    result: dict = {}
    for version, conds in runs.items():
        med = {c: statistics.median(r["wall_s"] for r in rs) for c, rs in conds.items()}
        refine = {
            c: statistics.median(r["stages_s"]["refine"] for r in rs) for c, rs in conds.items()
        }
        result[version] = {
            "quiet_wall_s_median": med["quiet"],
            "loaded_wall_s_median": med["loaded"],
            "slowdown": med["loaded"] / med["quiet"],
            "refine_s_median": refine,
            "runs": conds,
        }
    report = {
        "benchmark": "grasp_cli_neighbour",
        "command": f"halohand grasp cylinder_mm.stl --n {args.n} --refine",
        "baseline_rev": args.baseline_rev,
        "rounds": args.rounds,
        "neighbour": "one unpinned `python -c 'while True: pass'`",
        "versions": result,
    }
    emit(report, args.json, indent=2)


if __name__ == "__main__":
    main()
