"""Where the fingertips lie in the canonical frames, in palm lengths: the project's
training hands against the real HO3D-derived frames.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/studies/canonical_tip_positions.py
        [--data data/webxr_s0] [--every 5] [--json OUT]

Feature grids read each part at its canonical point divided by the palm length
(``docs/model.md``). A finger whose length relative to the palm differs from the training
hands' puts its tip elsewhere in those coordinates. Per finger: the tip keypoint in its
distal part's canonical frame, x (the finger's axis in the canonical pose), percentiles
1 / 50 / 99, for every ``--every``-th training hand and for the 85 real frames
(``../shared/reference/halo-original/real_poses_openpose_m.npy``, skin tips moved to the
rig's joints as ``HALO`` reads them: ``to_rig(kp, ["mano"])``; skipped when absent).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _reference import REAL_FRAMES  # noqa: E402
from _report import emit  # noqa: E402

#: (finger, tip joint, distal part) in the project's joint and part orders
FINGERS = (("thumb", 4, 15), ("index", 8, 3), ("middle", 12, 6), ("ring", 16, 12),
           ("little", 20, 9))  # fmt: skip


def tip_x(keypoints: np.ndarray) -> dict[str, list[float]]:
    from halohand.fields import hand_conditioning
    from halohand.fields.grids import inverse_palm_length
    from halohand.fields.occupancy import part_inputs

    kp = torch.as_tensor(keypoints, dtype=torch.float64)
    hands = hand_conditioning(kp, torch.zeros(len(kp), dtype=torch.bool))
    canon, _ = part_inputs(hands.to_halo_frame(kp), hands.part_matrices)  # [B, 21, 16, 3]
    canon = canon * inverse_palm_length(hands.bone_lengths)[:, None, None, None]
    return {
        name: np.percentile(canon[:, joint, part, 0].numpy(), [1, 50, 99]).round(4).tolist()
        for name, joint, part in FINGERS
    }


def main() -> None:
    from halohand.data.dataset import OccupancyDataset
    from halohand.skeleton.conventions import to_rig

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/webxr_s0")
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    data = OccupancyDataset(args.data, "train", n_points=1, n_surface=1, seed=0)
    train = np.stack([data.keypoints(i) for i in range(0, len(data), args.every)])
    report: dict[str, object] = {
        "study": "canonical_tip_positions",
        "unit": "palm lengths, x of the tip keypoint in its distal part's canonical frame",
        "percentiles": [1, 50, 99],
        "train_hands": len(train),
        "train": tip_x(train),
    }
    if REAL_FRAMES.exists():
        real = to_rig(np.load(REAL_FRAMES), ["mano"])
        report["real_frames"] = len(real)
        report["real"] = tip_x(real)
    emit(report, args.json)


if __name__ == "__main__":
    main()
