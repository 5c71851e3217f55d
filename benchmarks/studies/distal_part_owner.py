"""Which part makes each finger's distal phalanx: the part with the largest logit at the
middle of the distal bone, on the real frames and on test hands.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/studies/distal_part_owner.py
        --checkpoint NAME=FILE [--checkpoint NAME=FILE ...] [--data data/webxr_s0]
        [--hands 50] [--json OUT]

Grids in a bone's frame (``grid_frame = "bone"``) read a part's points in its own bone's
length; where training lets another part cover the phalanx, that part's grid sees the
phalanx in the wrong bone's length. Per model (``shipped`` names the shipped weights) and
finger: the share of hands whose distal-bone midpoint has its largest part logit in the
finger's distal part, its middle part, or elsewhere. Real frames:
``../shared/reference/halo-original/real_poses_openpose_m.npy`` read as ``HALO`` reads
them with ``convention="auto"`` (skin tips moved by ``to_rig``; skipped when absent); test
hands: the first ``--hands`` of ``--data``'s test split.
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

FINGERS = ("thumb", "index", "middle", "ring", "little")


def owners(network, keypoints: np.ndarray) -> dict[str, dict[str, float]]:
    """Per finger, the shares of hands whose distal-bone midpoint belongs (largest part
    logit) to the distal part, the middle part, or another part."""
    from halohand.fields import hand_conditioning
    from halohand.fields.occupancy import part_inputs
    from halohand.skeleton import FINGER_CHAINS, FINGER_PARTS

    kp = torch.as_tensor(keypoints, dtype=torch.float64)
    hands = hand_conditioning(kp, torch.zeros(len(kp), dtype=torch.bool))
    chains = np.asarray(FINGER_CHAINS)
    mid = 0.5 * (kp[:, chains[:, 2]] + kp[:, chains[:, 3]])  # [B, 5, 3] distal midpoints
    canon, code = part_inputs(hands.to_halo_frame(mid), hands.part_matrices)
    skeleton = {}
    if network.reads_canonical_skeleton:
        skeleton["canonical_keypoints"] = hands.canonical_keypoints
    with torch.no_grad():
        top = network.double().part_logits(canon, code, hands.bone_lengths, None, **skeleton)
    top = top.argmax(-1).numpy()  # [B, 5]
    out = {}
    for f, name in enumerate(FINGERS):
        middle, distal = FINGER_PARTS[f, 1], FINGER_PARTS[f, 2]
        out[name] = {
            "distal_part": round(float((top[:, f] == distal).mean()), 3),
            "middle_part": round(float((top[:, f] == middle).mean()), 3),
            "other": round(float(((top[:, f] != distal) & (top[:, f] != middle)).mean()), 3),
        }
    return out


def main() -> None:
    from halohand.data.dataset import OccupancyDataset
    from halohand.inference.halo import HALO
    from halohand.skeleton.conventions import to_rig

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", action="append", required=True, help="NAME=FILE")
    ap.add_argument("--data", default="data/webxr_s0")
    ap.add_argument("--hands", type=int, default=50)
    ap.add_argument("--json")
    args = ap.parse_args()
    data = OccupancyDataset(args.data, "test", n_points=1, n_surface=1, seed=0)
    test = np.stack([data.keypoints(i) for i in range(min(args.hands, len(data)))])
    real = to_rig(np.load(REAL_FRAMES), ["mano"]) if REAL_FRAMES.exists() else None
    report: dict[str, object] = {
        "study": "distal_part_owner",
        "test_hands": len(test),
        "real_frames": 0 if real is None else len(real),
        "models": {},
    }
    for spec in args.checkpoint:
        name, _, path = spec.partition("=")
        network = HALO.pretrained(None if path in ("", "shipped") else path).network
        entry = {"test": owners(network, test)}
        if real is not None:
            entry["real"] = owners(network, real)
        report["models"][name] = entry
    emit(report, args.json)


if __name__ == "__main__":
    main()
