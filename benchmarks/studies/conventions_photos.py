"""MediaPipe landmarks of the shipped photos through the default model (read as the rig's
and with ``convention="auto"``) and the photo path's fitted keypoints, scored against the
HALO v2 issue's real-frame targets.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/studies/conventions_photos.py \
        [--resolution 256] [--json benchmarks/results/studies/conventions_photos.json] \
        [--sheet docs/conventions_photos.png] [--checkpoint MODEL.safetensors] \
        [--touching merge|apart] [--joined hand|adjacent]

Every hand that ``halohand.image.from_image`` finds in ``../shared/photos/*`` (Apache-2.0
sample photos) gives the vendored landmark model's *world* landmarks (21 joints in metres
about the hand's centre, in MediaPipe's own placement: fingertips on the skin; what a user
of MediaPipe holds) and the keypoints of the hand model fitted to its landmarks (what
``halohand image`` meshes). Per hand and reading (``rig``: the world landmarks read as the
embedded rig's joints; ``auto``: the convention detected from the tip bone over the middle
phalanx, :mod:`halohand.skeleton.conventions`; ``photo_fit``: the fitted keypoints), the
mesh of ``HALO.reconstruct`` is scored as in ``conventions_real_frames.py``: how far the
surface reaches past each fingertip along its distal bone (target 0-5 mm), each keypoint's
signed distance to the surface (target: inside or at most 2 mm outside), bodies and genus
(:func:`halohand.inference.bodies.body_stats`; target one body of genus 0) and volume
(target 250-450 cm^3). The tip reach is also measured on the fingertip's own surface
(``tip_excess_own_part_mm``: the vertices of the finger's distal part only), since the
line of a curled finger's distal bone runs into the palm. Two readings of a miss:
``tips_in_other_parts`` names the fingers whose tip keypoint lies inside another part of
the hand (the palm or another finger: the model's probability of a part outside the
finger's own three at least its level), where landmarks put a fingertip into the hand and
no surface of that finger can reach past it; and each hand's length (``hand_length_mm``,
:func:`halohand.skeleton.bones.hand_length`: wrist to middle fingertip along its bones),
against the 85 real frames' (``real_frames_hand_length_mm``), since volume grows with its
cube. ``--sheet`` renders each hand's
three meshes as the photo's camera
saw the hand, with the keypoints (red: more than 2 mm outside). ``--touching apart`` meshes
with touching parts kept apart (:mod:`halohand.inference.touching`); ``--joined adjacent``
joins only adjacent parts (a part and its parent) instead of the hand's table, which also
joins the parts of the base of the hand.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))  # studies/: shared measures
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "figures"))

from _reference import REAL_FRAMES  # noqa: E402
from _report import emit  # noqa: E402
from conventions_real_frames import _stats, tip_excess_mm  # noqa: E402
from conventions_sheet import with_keypoint_dots  # noqa: E402

from halohand.skeleton.bones import FINGER_PARTS, hand_length  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "photos"
FINGERS = ("thumb", "index", "middle", "ring", "little")
TIPS = (4, 8, 12, 16, 20)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--checkpoint", default=None, help="model file (default: the shipped weights)"
    )
    parser.add_argument("--sheet", default=None)
    parser.add_argument("--touching", choices=("merge", "apart"), default="merge")
    parser.add_argument("--joined", choices=("hand", "adjacent"), default="hand")
    args = parser.parse_args(argv)
    photos = sorted(p for p in PHOTOS.glob("*") if p.suffix.lower() in (".jpg", ".png"))
    if not photos:
        print(f"skipped: no photos in {PHOTOS}")
        return {}

    from halohand.image.photo import from_image
    from halohand.inference.bodies import body_stats
    from halohand.inference.halo import HALO
    from halohand.interaction.object_field import closest_points
    from halohand.skeleton.conventions import detect_convention, tip_ratio

    halo = HALO.pretrained(args.checkpoint)
    touching = args.touching
    if args.touching == "apart" and args.joined == "adjacent":
        from halohand.inference.touching import PartContacts
        from halohand.skeleton import ADJACENT_PARTS

        touching = PartContacts(ADJACENT_PARTS, ADJACENT_PARTS)
    t0 = time.perf_counter()
    rows, tiles = [], []
    readings = {"rig": "world", "auto": "world", "photo_fit": "fit"}
    for path in photos:
        for k, hand in enumerate(from_image(path).hands):
            kp = np.asarray(hand.landmarks.world, dtype=np.float64)
            fitted = np.asarray(hand.keypoints, dtype=np.float64)
            row = {
                "photo": path.name, "hand": k, "side": hand.side,
                "tip_over_middle_phalanx": [round(float(r), 3) for r in tip_ratio(kp)],
                "detected": detect_convention(kp[None], pooled=True)[0],
                "hand_length_mm": round(float(hand_length(kp)) * 1e3, 1),
            }  # fmt: skip
            for reading, source in readings.items():
                keys = kp if source == "world" else fitted
                mesh = halo.reconstruct(
                    keys, side=hand.side, units="m", resolution=args.resolution,
                    convention="rig" if reading == "photo_fit" else reading,
                    touching=touching,
                )  # fmt: skip
                v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
                outside = closest_points(keys, v, f)[0] * 1e3
                stats = body_stats(mesh)
                row[reading] = {
                    "tips_in_other_parts": _tips_in_other_parts(
                        halo, keys, hand.side, "rig" if reading == "photo_fit" else reading
                    ),
                    "tip_excess_mm": dict(zip(FINGERS, np.round(tip_excess_mm(v, keys), 1).tolist(),
                                              strict=True)),
                    # the fingertip's own surface (its distal part's vertices): the line of
                    # a curled finger's distal bone runs into the palm
                    "tip_excess_own_part_mm": dict(zip(FINGERS, np.round(tip_excess_mm(
                        v, keys, mesh.vertex_attributes["part"]), 1).tolist(), strict=True)),
                    "keypoint_outside_mm_max": round(float(outside.max()), 2),
                    "keypoints_over_2mm": [int(i) for i in np.flatnonzero(outside > 2.0)],
                    "tips_outside_mm": np.round(outside[list(TIPS)], 2).tolist(),
                    "bodies": stats.count,
                    "extra_body_volumes_cm3": [float(x * 1e6) for x in stats.volumes[1:]],
                    "genus": int(stats.genus[0]) if stats.count else None,
                    "volume_cm3": round(float(mesh.volume * 1e6), 1),
                }  # fmt: skip
                tiles.append((f"{path.stem[9:24]} #{k} {reading}", v, f, keys, outside))
            rows.append(row)
            print(row, flush=True)
    report = {
        "study": "conventions_photos",
        "resolution": args.resolution,
        "checkpoint": args.checkpoint or "shipped",
        "touching": args.touching,
        "joined": args.joined,
        "hands": rows,
        "seconds": time.perf_counter() - t0,
    }
    if REAL_FRAMES.exists():
        lengths = hand_length(np.load(REAL_FRAMES).astype(np.float64)) * 1e3
        report["real_frames_hand_length_mm"] = {k: round(v, 1) for k, v in _stats(lengths).items()}
    for reading in readings:
        r = [h[reading] for h in rows]
        excess = np.asarray([list(x["tip_excess_mm"].values()) for x in r])
        own = np.asarray([list(x["tip_excess_own_part_mm"].values()) for x in r])
        report[f"summary_{reading}"] = {
            "hands": len(r),
            "one_body_genus_0": sum(x["bodies"] == 1 and x["genus"] == 0 for x in r),
            "every_keypoint_within_2mm": sum(not x["keypoints_over_2mm"] for x in r),
            "tips_with_surface_0_5mm_past": f"{int(((excess >= 0) & (excess <= 5)).sum())}"
                                            f" / {excess.size}",
            "tips_with_own_surface_0_5mm_past": f"{int(((own >= 0) & (own <= 5)).sum())}"
                                                f" / {own.size}",
            "volume_250_450": sum(250 <= x["volume_cm3"] <= 450 for x in r),
            "own_surface_misses_with_tip_in_other_parts": int(sum(
                finger in x["tips_in_other_parts"]
                for x in r for finger, e in x["tip_excess_own_part_mm"].items()
                if not 0 <= e <= 5
            )),
        }  # fmt: skip
        print(reading, report[f"summary_{reading}"])
    if args.sheet:
        _sheet(tiles, args.sheet)
    emit(report, args.json)
    return report


def _tips_in_other_parts(halo, keys: np.ndarray, side: str, convention: str) -> list[str]:  # noqa: ANN001
    """Fingers whose tip keypoint is inside a part of the hand other than its own three."""
    _, parts = halo.occupancy(
        keys[list(TIPS)], keys, side=side, units="m", return_parts=True, convention=convention
    )
    probs = parts.detach().numpy()
    level = halo.iso_level
    out = []
    for finger, own in enumerate(FINGER_PARTS):
        other = np.delete(probs[finger], own)
        if other.max() >= level:
            out.append(FINGERS[finger])
    return out


def _sheet(tiles: list, out: str) -> None:  # noqa: ANN001
    from halohand.apps.render import draw_text, image_grid, render_mesh, save_png

    images = []
    for label, v, f, kp, outside in tiles:
        verts, faces, colors = with_keypoint_dots(v, f, kp, outside > 2.0)
        # seen from the photo's camera (x right, y down, z ahead -> the renderer's y up,
        # looking along -z)
        img = render_mesh(verts, faces, colors, size=(300, 300), view=np.diag([1.0, -1.0, -1.0]))
        text = f"{label}: {int((outside > 2.0).sum())} kp > 2 mm out"
        images.append(draw_text(img, text, (6, 6)))
    save_png(out, image_grid(images, 3))


if __name__ == "__main__":
    main()
