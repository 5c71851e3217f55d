"""How large the real frames' hands are: volumes of a model's surfaces and of the original
HALO checkpoint's, on the same real frames.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/studies/real_frame_volumes.py \
        [--checkpoint NAME=FILE ...] [--points 200000] [--frames 0:85:1] [--thumb-moved NAME ...]
        [--regions] [--json benchmarks/results/studies/real_frame_volumes.json]

The HALO v2 issue asks for volumes of 250-450 cm^3 on the 85 real HO3D-derived frames of
``../shared/reference/halo-original`` (reference data, never shipped; the study skips when
they or the original checkpoint are absent). Those frames are one person's hand; the
original checkpoint was trained on MANO hands of many people, so its volumes on the same
keypoints say what size of hand the keypoints describe to a model that learnt real hands.

Per frame, ``--points`` points are drawn uniformly in the frame's keypoint box padded by
3 cm (a box that holds the whole hand: the padding is more than any model's skin reaches
past a keypoint); the volume is the box's volume times the share of points inside, where
each model's occupancy reaches its level (the shipped model as ``shipped`` and each
``--checkpoint``: their ``iso_level``, keypoints read with ``convention="auto"``, models in
``--thumb-moved`` with all five skin tips moved onto the rig's joints and read as the rig's,
as ``conventions_real_frames.py --thumb-moved`` reads them; the original: 0.5, its own conditioning,
:func:`halohand.inference.original.original_occupancy`). The same points serve every model.
The Monte Carlo standard error is reported beside the medians (~1 % of a hand's volume with
200k points). ``--regions`` also splits every volume by the nearest bone of the given
keypoints (palm, thumb, four fingers: :data:`REGIONS`) and reports each region's median
and its ratio to the original's: where a model's hand is smaller.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report

from _reference import ORIGINAL_CHECKPOINT, REAL_FRAMES  # noqa: E402
from _report import emit, repo_path  # noqa: E402

PADDING_M = 0.03
TARGET_CM3 = (250.0, 450.0)


def _summary(volumes: list[float], errors: list[float]) -> dict[str, object]:
    v = np.asarray(volumes)
    return {
        "median_cm3": float(np.median(v)),
        "min_cm3": float(v.min()),
        "max_cm3": float(v.max()),
        "frames_250_450": int(((v >= TARGET_CM3[0]) & (v <= TARGET_CM3[1])).sum()),
        "standard_error_median_cm3": float(np.median(errors)),
        "per_frame_cm3": [round(float(x), 2) for x in v],
    }


#: Regions a point is counted in, by the nearest bone of the given keypoints: the palm
#: (wrist to the thumb's CMC and to the four knuckles) and each digit's chain from its
#: first joint (the thumb's metacarpal counts as the thumb).
REGIONS = ("palm", "thumb", "index", "middle", "ring", "little")


def _bones() -> tuple[np.ndarray, np.ndarray]:
    """``[20, 2]`` joint indices of the skeleton's bones and ``[20]`` their regions."""
    from halohand.skeleton.orders import FINGER_CHAINS

    bones, region = [], []
    for f, chain in enumerate(FINGER_CHAINS):
        bones.append((0, chain[0]))
        region.append(0)
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            bones.append((a, b))
            region.append(f + 1)
    return np.asarray(bones), np.asarray(region)


def _nearest_region(points: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """``[N]`` region index (:data:`REGIONS`) of each point's nearest bone segment."""
    bones, region = _bones()
    a, b = keypoints[bones[:, 0]], keypoints[bones[:, 1]]
    ab = b - a
    t = np.einsum("nbk,bk->nb", points[:, None, :] - a, ab) / np.einsum("bk,bk->b", ab, ab)
    closest = a + np.clip(t, 0.0, 1.0)[..., None] * ab
    distance = np.linalg.norm(points[:, None, :] - closest, axis=-1)
    return region[np.argmin(distance, axis=1)]


def _region_summary(regional: dict[str, list[np.ndarray]]) -> dict[str, object]:
    """Median volume per region and model (cm^3) and its median ratio to the original's."""
    out: dict[str, object] = {}
    reference = np.asarray(regional["original"])
    for name, values in regional.items():
        v = np.asarray(values)
        out[name] = {
            region: {
                "median_cm3": round(float(np.median(v[:, i])), 2),
                "ratio_to_original_median": round(float(np.median(v[:, i] / reference[:, i])), 3),
            }
            for i, region in enumerate(REGIONS)
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", action="append", default=[], help="NAME=FILE")
    parser.add_argument("--thumb-moved", nargs="*", default=[], help="models moving five tips")
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--frames", default="0:85:1", help="start:stop:step")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--regions", action="store_true", help="also split each volume by nearest bone"
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not (REAL_FRAMES.is_file() and ORIGINAL_CHECKPOINT.is_file()):
        print("real frames or original checkpoint absent: skipped", file=sys.stderr)
        return

    import torch

    from halohand.inference.halo import HALO
    from halohand.inference.original import load_original_checkpoint, original_occupancy
    from halohand.skeleton.conventions import to_rig

    torch.set_num_threads(args.threads)
    models: dict[str, HALO] = {"shipped": HALO.pretrained()}
    files = {"shipped": "src/halohand/weights/halo_default.safetensors"}
    for spec in args.checkpoint:
        name, _, path = spec.partition("=")
        models[name] = HALO.from_checkpoint(path)
        files[name] = repo_path(path)
    original = load_original_checkpoint(ORIGINAL_CHECKPOINT)
    start, stop, step = (int(v) for v in args.frames.split(":"))
    frames = np.load(REAL_FRAMES)[start:stop:step]
    rng = np.random.default_rng(args.seed)
    volumes: dict[str, list[float]] = {name: [] for name in [*models, "original"]}
    errors: dict[str, list[float]] = {name: [] for name in volumes}
    regional: dict[str, list[np.ndarray]] = {name: [] for name in volumes}
    t0 = time.perf_counter()
    for kp in frames:
        lo, hi = kp.min(0) - PADDING_M, kp.max(0) + PADDING_M
        box_cm3 = float(np.prod(hi - lo)) * 1e6
        pts = lo + (hi - lo) * rng.random((args.points, 3))
        five_tips = to_rig(kp, ["mano"], fingers=(0, 1, 2, 3, 4))
        inside = {}
        for name, halo in models.items():
            given, convention = (five_tips, "rig") if name in args.thumb_moved else (kp, "auto")
            occupancy = halo.occupancy(pts, given, units="m", convention=convention)
            inside[name] = occupancy >= halo.iso_level
        with torch.no_grad():
            occ = original_occupancy(original, torch.as_tensor(kp), torch.as_tensor(pts))[0]
        inside["original"] = occ.numpy() >= 0.5
        for name, mask in inside.items():
            share = float(np.mean(np.asarray(mask)))
            volumes[name].append(box_cm3 * share)
            errors[name].append(box_cm3 * float(np.sqrt(share * (1 - share) / args.points)))
            if args.regions:
                region = _nearest_region(pts[np.asarray(mask)], kp)
                counts = np.bincount(region, minlength=len(REGIONS))
                regional[name].append(box_cm3 * counts / args.points)
    report = {
        "study": "real_frame_volumes",
        "frames": len(frames),
        "frame_slice": args.frames,
        "points": args.points,
        "padding_m": PADDING_M,
        "models": {**files, "original": "../shared/reference/halo-original/halo_base_yt3d.pt"},
        "thumb_moved": list(args.thumb_moved),
        "iso_levels": {name: float(h.iso_level) for name, h in models.items()} | {"original": 0.5},
        "volumes": {name: _summary(volumes[name], errors[name]) for name in volumes},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.regions:
        report["regions"] = _region_summary(regional)
    emit(report, args.json)


if __name__ == "__main__":
    main()
