"""Paired comparison of ``halohand evaluate`` results on the same hands.

Usage::

    .venv/bin/python benchmarks/studies/compare_evaluations.py BASE.csv OTHER.csv [OTHER.csv ...]
        [--json OUT]

The per-hand CSVs that ``halohand evaluate`` writes beside its JSON (same data, split and
hands). For every other file against the first: the mean of each metric, the mean and
median of the per-hand differences (other - base), and the share of hands on which the
other is better (higher IoU and normal consistency, lower Chamfer-L1). Pairing each hand
with itself takes out the hand-to-hand spread, which dominates the means' uncertainty.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit, repo_path  # noqa: E402

#: metric -> whether higher is better
METRICS = {
    "iou_uniform": True,
    "iou_mixed": True,
    "chamfer_l1_mm": False,
    "normal_consistency": True,
}


def _read(path: str) -> dict[str, dict[str, float]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    # the last row of an evaluate CSV is the mean over the hands
    return {
        row["hand"]: {m: float(row[m]) for m in METRICS} for row in rows if row["hand"] != "mean"
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("others", nargs="+")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    base = _read(args.base)
    if not base:
        raise SystemExit(f"{args.base}: no hands")
    report: dict[str, object] = {
        "benchmark": "compare_evaluations",
        "base": repo_path(args.base),
        "hands": len(base),
        "base_mean": {m: statistics.fmean(h[m] for h in base.values()) for m in METRICS},
        "others": {},
    }
    for path in args.others:
        other = _read(path)
        if set(other) != set(base):
            raise SystemExit(f"{path}: not the same hands as {args.base}")
        result = {"mean": {}, "diff_mean": {}, "diff_median": {}, "better_share": {}}
        for metric, higher in METRICS.items():
            diffs = [other[h][metric] - base[h][metric] for h in base]
            result["mean"][metric] = statistics.fmean(o[metric] for o in other.values())
            result["diff_mean"][metric] = statistics.fmean(diffs)
            result["diff_median"][metric] = statistics.median(diffs)
            better = sum(d > 0 if higher else d < 0 for d in diffs)
            result["better_share"][metric] = better / len(diffs)
        report["others"][repo_path(path)] = result  # type: ignore[index]
    emit(report, args.json)


if __name__ == "__main__":
    main()
