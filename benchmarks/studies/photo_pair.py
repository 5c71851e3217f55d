"""Two hands of one photo: inside each other as placed, apart after the pair refinement.

The shipped photo of two overlapping thumbs-up right hands
(``examples/photos/mpsamples_hand_landmarker_test_image.jpg``) through
:func:`halohand.from_image` (fitted), then meshed two ways:

* as placed: each hand on its own (:meth:`halohand.image.PhotoHands.meshes`);
* as a pair: :func:`halohand.apps.photo_outputs.pair_photo_hands` (the pair refinement along
  the camera rays) and :func:`~halohand.apps.photo_outputs.pair_meshes` (what ``halohand
  image`` writes by default).

For both: the volume inside both meshes (cm^3, :func:`~halohand.interaction.plausibility.
penetration_volume`), the penetration depth of each into the other (A-PD / M-PD, mm,
symmetric), each hand's depth and its keypoints' reprojection onto the landmarks (px); for
the pair, how far each hand moved and the refinement's time. The two overlays are written to
``--out`` (look at them).

    python benchmarks/studies/photo_pair.py --out /tmp/photo_pair \
        --json benchmarks/results/studies/photo_pair.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import REPO, emit  # noqa: E402

PHOTO = REPO / "examples" / "photos" / "mpsamples_hand_landmarker_test_image.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", type=Path, default=PHOTO)
    parser.add_argument("--resolution", type=int, default=128, help="HALO lattice cells.")
    parser.add_argument("--out", type=Path, default=Path("/tmp/halohand_photo_pair"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from halohand.apps.photo_outputs import pair_meshes, pair_photo_hands
    from halohand.apps.render import overlay_meshes, save_png
    from halohand.image import from_image
    from halohand.inference.halo import HALO
    from halohand.interaction.plausibility import penetration_depth, penetration_volume

    halo = HALO.pretrained()
    placed = from_image(args.photo, fit=True)
    if len(placed.hands) != 2:
        raise SystemExit(f"{args.photo}: {len(placed.hands)} hands found, this study needs 2")
    t0 = time.perf_counter()
    paired, refined = pair_photo_hands(placed, halo)
    refine_s = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)

    def scores(result, meshes, name: str) -> dict:
        pd = penetration_depth(*meshes, symmetric=True)
        save_png(
            str(args.out / f"{name}_overlay.png"),
            overlay_meshes(result.photo.rgb, meshes, result.camera.intrinsics),
        )
        return {
            "penetration_volume_cm3": round(penetration_volume(*meshes), 3),
            "penetration_depth_mm": {
                "mean": round(pd["mean"] * 1e3, 2),
                "max": round(pd["max"] * 1e3, 2),
            },
            "depth_m": [round(float(h.keypoints[:, 2].mean()), 4) for h in result.hands],
            "reprojection_px_mean": [
                round(float(h.reprojection_px.mean()), 2) for h in result.hands
            ],
            "watertight": [bool(m.is_watertight) for m in meshes],
        }

    report = {
        "study": "photo_pair",
        "photo": str(args.photo.relative_to(REPO))
        if args.photo.is_relative_to(REPO)
        else str(args.photo),
        "sides": [h.side for h in placed.hands],
        "resolution": args.resolution,
        "placed": scores(placed, placed.meshes(halo, args.resolution), "placed"),
        "pair": scores(paired, pair_meshes(paired, halo, args.resolution), "pair"),
        "refinement": {
            "overlap_before_cm3": round(refined.overlap_before_cm3, 3),
            "overlap_after_cm3": round(refined.overlap_after_cm3, 3),
            "moved_mm_mean": np.round(refined.moved_mm.mean(1), 2).tolist(),
            "steps": refined.steps,
            "seconds": round(refine_s, 2),
        },
        "overlays": str(args.out),
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
