"""Plot validation IoU against wall time from a training ``log.csv`` (``halohand train``).

Usage: .venv/bin/python scripts/plot_learning_curve.py runs/halo_cpu/log.csv docs/learning_curve.png
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from halohand.atomic import atomic_path  # noqa: E402


def main(log_path: str, out_path: str) -> None:
    with open(log_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    val = [r for r in rows if r.get("val_iou_mixed")]
    if not val:
        raise SystemExit(f"{log_path}: no validation rows yet")
    hours = [float(r["wall_s"]) / 3600 for r in val]
    fig, (ax_iou, ax_loss) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    ax_iou.plot(hours, [float(r["val_iou_mixed"]) for r in val], "o-", label="mixed (uniform+near)")
    ax_iou.plot(hours, [float(r["val_iou_uniform"]) for r in val], "s-", label="uniform")
    ax_iou.set_xlabel("wall time (h)")
    ax_iou.set_ylabel("validation IoU")
    ax_iou.grid(alpha=0.3)
    ax_iou.legend()
    ax_loss.plot([float(r["wall_s"]) / 3600 for r in rows], [float(r["loss_occ"]) for r in rows])
    ax_loss.set_xlabel("wall time (h)")
    ax_loss.set_ylabel("occupancy loss (MSE)")
    ax_loss.set_yscale("log")
    ax_loss.grid(alpha=0.3)
    fig.suptitle(f"halohand train: {Path(log_path).parent.name}")
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
