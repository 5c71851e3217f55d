"""Plot validation IoU and training loss against wall time from ``halohand train`` logs.

Usage::

    .venv/bin/python benchmarks/figures/plot_learning_curve.py LOG[=LABEL] [LOG[=LABEL] ...] OUT.png

Each ``LOG`` is a run's ``log.csv``; several runs share the axes (label: the run folder's
name unless given after ``=``).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from halohand.core.atomic import atomic_path  # noqa: E402


def _read(log_path: str) -> list[dict[str, str]]:
    with open(log_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not any(r.get("val_iou_mixed") for r in rows):
        raise SystemExit(f"{log_path}: no validation rows yet")
    return rows


def main(runs: list[tuple[str, str]], out_path: str) -> None:
    fig, (ax_iou, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    for i, (log_path, label) in enumerate(runs):
        rows = _read(log_path)
        val = [r for r in rows if r.get("val_iou_mixed")]
        hours = [float(r["wall_s"]) / 3600 for r in val]
        color = f"C{i}"
        ax_iou.plot(hours, [float(r["val_iou_mixed"]) for r in val], "o-", color=color,
                    ms=3, label=f"{label}: mixed (uniform+near)")  # fmt: skip
        ax_iou.plot(hours, [float(r["val_iou_uniform"]) for r in val], "s--", color=color,
                    ms=3, label=f"{label}: uniform")  # fmt: skip
        ax_loss.plot([float(r["wall_s"]) / 3600 for r in rows],
                     [float(r["loss_occ"]) for r in rows], color=color, label=label)  # fmt: skip
    ax_iou.set_xlabel("training wall time (h)")
    ax_iou.set_ylabel("validation IoU (8 hands)")
    ax_iou.grid(alpha=0.3)
    ax_iou.legend(fontsize=7)
    ax_loss.set_xlabel("training wall time (h)")
    ax_loss.set_ylabel("occupancy loss (MSE)")
    ax_loss.set_yscale("log")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize=7)
    fig.suptitle("halohand train")
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    specs = []
    for arg in sys.argv[1:-1]:
        path, _, label = arg.partition("=")
        specs.append((path, label or Path(path).parent.name))
    main(specs, sys.argv[-1])
