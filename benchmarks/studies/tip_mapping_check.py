"""The tip mapping checked where the truth is known: the project's own hands with their
tips on the skin, and what moving the thumb's tip too does on them and on the real frames.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/studies/tip_mapping_check.py \
        [--data data/webxr_s0] [--json benchmarks/results/studies/tip_mapping_check.json] \
        [--checkpoint MODEL.safetensors]

Every second validation hand of ``--data`` gives its rig keypoints and the same hand with
its tips on the skin (:func:`halohand.handmodel.skin_tips.skin_tip_keypoints`). The shipped
model (or ``--checkpoint``) meshes each hand (128^3) from: the rig's keypoints (``rig``:
what the mapping aims at), the skin tips through the mapping as shipped (``mapped``: the
thumb's tip as given) and through the mapping with the thumb's tip moved by the same rule
(``mapped_thumb``).
Scored as in ``conventions_real_frames.py``, all against the skin tips: how far the surface
reaches past each skin tip along its distal bone (the true mesh's own figure beside it),
the tips more than 2 mm outside the surface, and volume. The 85 real frames
(``../shared/reference/halo-original``, reference data, never shipped) are meshed
``mapped`` and ``mapped_thumb``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
sys.path.insert(0, str(Path(__file__).resolve().parent))  # studies/: shared measures

from _reference import REAL_FRAMES  # noqa: E402
from _report import emit  # noqa: E402
from conventions_real_frames import tip_excess_mm  # noqa: E402

from halohand.skeleton.conventions import MOVED_TIPS, to_rig  # noqa: E402
from halohand.skeleton.orders import FINGER_CHAINS  # noqa: E402

TIPS = [c[3] for c in FINGER_CHAINS]


def thumb_moved(skin: np.ndarray) -> np.ndarray:
    """``to_rig`` of a skin-tip hand with the thumb's tip moved by the fingers' rule."""
    return to_rig(skin, ["mano"], fingers=(0, *MOVED_TIPS))


def score(halo, inputs: list[np.ndarray], skins: list[np.ndarray]) -> dict:
    from halohand.interaction.object_field import closest_points

    excess, outside, volume = [], [], []
    for kp, skin in zip(inputs, skins, strict=True):
        mesh = halo.reconstruct(kp, units="m", resolution=128, convention="rig")
        v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
        excess.append(tip_excess_mm(v, skin))
        outside.append(closest_points(skin[TIPS], v, f)[0] * 1e3)
        volume.append(float(mesh.volume * 1e6))
    ex, out = np.asarray(excess), np.asarray(outside)
    return {
        "tip_excess_median_mm": np.median(ex, axis=0).round(2).tolist(),
        "tips_within_0_5mm": round(float(((ex >= 0) & (ex <= 5)).mean()), 3),
        "tip_outside_over_2mm": (out > 2.0).mean(axis=0).round(3).tolist(),
        "hands_every_tip_within_2mm": int((out.max(axis=1) <= 2.0).sum()),
        "volume_median_cm3": round(float(np.median(volume)), 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/webxr_s0")
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--checkpoint", default=None, help="model file (default: the shipped weights)"
    )
    args = parser.parse_args(argv)

    import torch

    from halohand.data.dataset import OccupancyDataset
    from halohand.inference.halo import HALO

    torch.set_num_threads(1)
    halo = HALO.pretrained(args.checkpoint)
    ds = OccupancyDataset(ROOT / args.data, "val")
    rows = range(0, len(ds), 2)
    rig = [ds.keypoints(i) for i in rows]
    skin = [ds.keypoints(i, skin_tips=True) for i in rows]
    true_excess = [
        tip_excess_mm(ds.hand(i)["mesh_vertices"], s) for i, s in zip(rows, skin, strict=True)
    ]
    own = {
        "hands": len(rig),
        "true_mesh_tip_excess_median_mm": np.median(true_excess, axis=0).round(2).tolist(),
        # how far the mapping puts each tip from the true tip joint (the thumb: as given)
        "mapped_tip_to_true_joint_median_mm": np.median(
            [
                np.linalg.norm(to_rig(s, ["mano"])[TIPS] - r[TIPS], axis=1) * 1e3
                for s, r in zip(skin, rig, strict=True)
            ],
            axis=0,
        )
        .round(2)
        .tolist(),  # fmt: skip
        "rig": score(halo, rig, skin),
        "mapped": score(halo, [to_rig(s, ["mano"]) for s in skin], skin),
        "mapped_thumb": score(halo, [thumb_moved(s) for s in skin], skin),
    }
    report: dict = {"study": "tip_mapping_check", "fingers": "thumb, index, middle, ring, little",
                    "checkpoint": args.checkpoint or "shipped", "own_hands": own}  # fmt: skip
    if REAL_FRAMES.exists():
        frames = list(np.load(REAL_FRAMES).astype(np.float64))
        report["real_frames"] = {
            "frames": len(frames),
            "mapped": score(halo, [to_rig(s, ["mano"]) for s in frames], frames),
            "mapped_thumb": score(halo, [thumb_moved(s) for s in frames], frames),
        }
    emit(report, args.json)
    return report


if __name__ == "__main__":
    main()
