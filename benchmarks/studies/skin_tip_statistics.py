"""Skin-tip keypoints made from the posed meshes against the real frames' (MANO-style)
proportions: does the generated convention look like the one users hold?

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/studies/skin_tip_statistics.py \
        [--data data/webxr_s0,data/webxr_wide_s0] \
        [--json benchmarks/results/studies/skin_tip_statistics.json]

Per data folder (the training split, every third hand): the rig's keypoints and the same
hands with their tips on the skin (:func:`halohand.handmodel.skin_tips.skin_tip_keypoints`,
what ``OccupancyDataset(keypoint_convention="mano")`` serves). Per finger (thumb to little):
the tip bone (DIP -> tip) and the middle phalanx (PIP -> DIP; the thumb's MCP -> IP) over
the hand's length along its bones (wrist -> middle MCP -> PIP -> DIP -> tip; unlike the
straight wrist-to-tip distance it does not shrink when the hand closes), 1st / 50th / 99th
percentiles, and the tip bone over the middle phalanx (the convention detector's ratio).
The real frames (``../shared/reference/halo-original/real_poses_openpose_m.npy``,
reference data, never shipped) give their medians and the share of frames inside each
folder's 1-99 % band.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report

from _reference import REAL_FRAMES  # noqa: E402
from _report import emit  # noqa: E402

from halohand.skeleton.orders import FINGER_CHAINS  # noqa: E402

FINGERS = ("thumb", "index", "middle", "ring", "little")


def proportions(kp: np.ndarray) -> dict[str, np.ndarray]:
    """``[N, 5]`` tip bone and middle phalanx over the hand's length along its bones, and
    their ratio, of ``[N, 21, 3]`` keypoints."""
    ch = np.asarray(FINGER_CHAINS)
    path = [0, *ch[2]]
    steps = zip(path[:-1], path[1:], strict=True)
    length = sum(np.linalg.norm(kp[:, b] - kp[:, a], axis=-1) for a, b in steps)
    tip = np.linalg.norm(kp[:, ch[:, 3]] - kp[:, ch[:, 2]], axis=-1)
    mid = np.linalg.norm(kp[:, ch[:, 2]] - kp[:, ch[:, 1]], axis=-1)
    return {"tip_bone": tip / length[:, None], "middle_phalanx": mid / length[:, None],
            "tip_over_middle": tip / mid}  # fmt: skip


def _band(x: np.ndarray) -> dict[str, list[float]]:
    return {f"p{q}": np.percentile(x, q, axis=0).round(4).tolist() for q in (1, 50, 99)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/webxr_s0,data/webxr_wide_s0")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    from halohand.data.dataset import OccupancyDataset

    real = proportions(np.load(REAL_FRAMES)) if REAL_FRAMES.exists() else None
    report: dict = {"study": "skin_tip_statistics", "fingers": list(FINGERS), "folders": {}}
    for folder in args.data.split(","):
        ds = OccupancyDataset(ROOT / folder, "train")
        rows = range(0, len(ds), 3)
        entry: dict = {"hands": len(rows)}
        for name, skin in (("rig", False), ("skin_tips", True)):
            kp = np.stack([ds.keypoints(i, skin_tips=skin) for i in rows])
            props = proportions(kp)
            entry[name] = {k: _band(v) for k, v in props.items()}
            if real is not None:
                lo = {k: np.percentile(v, 1, axis=0) for k, v in props.items()}
                hi = {k: np.percentile(v, 99, axis=0) for k, v in props.items()}
                entry[name]["real_frames_inside_1_99"] = {
                    k: ((real[k] >= lo[k]) & (real[k] <= hi[k])).mean(axis=0).round(3).tolist()
                    for k in props
                }
        report["folders"][folder] = entry
    if real is not None:
        report["real_frames"] = {"frames": int(len(real["tip_bone"])),
                                 **{k: np.median(v, axis=0).round(4).tolist()
                                    for k, v in real.items()}}  # fmt: skip
    emit(report, args.json)
    return report


if __name__ == "__main__":
    main()
