"""Paired comparison of training runs that saw the same batches (same data, seed, steps).

Usage::

    .venv/bin/python benchmarks/studies/compare_runs.py CONTROL_LOG RUN_LOG [RUN_LOG ...]
        [--from-step 1000] [--json OUT]

Runs with the same seed draw the same hands and points at every step, so the difference
of their logged training losses (the occupancy term, ``loss_occ``) at equal steps is free
of batch-to-batch noise. For every
run against the control: the mean of those differences over the logged steps from
``--from-step`` on, its standard error, the number of steps, and both runs' last and best
validation IoU (mixed / uniform; the runs' own 8-hand validation). Logs are the trainers'
``log.csv`` files.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402


def _read(path: str) -> tuple[dict[int, float], list[tuple[int, float, float]]]:
    losses: dict[int, float] = {}
    vals: list[tuple[int, float, float]] = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            step = int(row["step"])
            if row["val_iou_mixed"]:
                vals.append((step, float(row["val_iou_mixed"]), float(row["val_iou_uniform"])))
            else:
                # the occupancy loss: a run with the part loss on logs its sum in "loss"
                losses[step] = float(row.get("loss_occ") or row["loss"])
    return losses, vals


def _val_summary(vals: list[tuple[int, float, float]]) -> dict[str, object]:
    if not vals:
        return {}
    best = max(vals, key=lambda v: v[1])
    return {
        "last": {"step": vals[-1][0], "iou_mixed": vals[-1][1], "iou_uniform": vals[-1][2]},
        "best_mixed": {"step": best[0], "iou_mixed": best[1], "iou_uniform": best[2]},
    }


def _name(path: str) -> str:
    """A run's name: its folder's for a trainer's ``log.csv`` (``docs/results/experiments/
    point_scale/cycle3_s10/log.csv`` -> ``cycle3_s10``), else the file's stem."""
    p = Path(path)
    return p.parent.name if p.name == "log.csv" and p.parent.name else p.stem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("control")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--from-step", type=int, default=1000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    control, control_vals = _read(args.control)
    report: dict[str, object] = {
        "benchmark": "compare_runs",
        "control": args.control,
        "from_step": args.from_step,
        "control_loss_mean": statistics.mean(v for s, v in control.items() if s >= args.from_step),
        "control_validation": _val_summary(control_vals),
        "runs": {},
    }
    for path in args.runs:
        losses, vals = _read(path)
        steps = sorted(s for s in losses if s in control and s >= args.from_step)
        if len(steps) < 2:
            raise SystemExit(f"{path}: fewer than 2 logged steps shared with the control")
        diffs = [losses[s] - control[s] for s in steps]
        report["runs"][_name(path)] = {
            "log": path,
            "steps": len(steps),
            "last_step": steps[-1],
            "loss_diff_mean": statistics.mean(diffs),
            "loss_diff_stderr": statistics.stdev(diffs) / len(diffs) ** 0.5,
            "validation": _val_summary(vals),
        }
    emit(report, args.json)


if __name__ == "__main__":
    main()
