"""How often the photo path's detector finds rendered hands (``halohand data render``), and
which ones it misses: detection and landmarks only (no fit, no HALO), so 150 images take
1-3 minutes (rendering included) on two shared cores.

It renders (or completes) a set in ``--data`` with the TUNING seed :data:`SEED` (777001;
the held-out benchmark, ``photo_benchmark.py``, renders with its own seed, which is never
tuned on), runs :func:`halohand.image.find.find_hands` with one hand on each image and
counts a hand found when its 21 landmarks lie on average within half the hand's size of the
true 2D keypoints (the rule of ``photo_benchmark.py``). Rates are given over all images and
over *visible* hands (:func:`halohand.apps.synthetic.hand_visible`: every keypoint inside
the frame and at least 0.5 % of the image covered by the hand's own mask), overall and by
background, skin tone, the hand's extent in the image, which side of the hand faces the
camera, field of view and defocus. The missed images are tiled into ``--grid`` (a PNG,
each tile captioned with its index and factors).

``--ablate NAME`` (repeatable) renders the same scenes once more with one realism switch of
:class:`halohand.apps.synthetic.Look` off (``all``: every switch off, the renders of format
version 2 but for the new skin-tone split) into ``--data/no_NAME`` and reports their rates
beside the full look's: an A/B on the same hands, cameras and lights.

    python benchmarks/studies/render_detection.py --data /tmp/render_det --n 150 \\
        --json benchmarks/results/studies/render_detection.json \\
        --grid benchmarks/results/studies/render_detection_missed.png \\
        --ablate all --ablate skin --ablate shading --ablate exposure --ablate backgrounds \\
        --ablate wrist

``--negatives N`` also runs the search on N hand-free backgrounds (the renders' four kinds,
seeds from :data:`NEGATIVE_SEED`) and counts the hands it finds there: all false.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402

#: Tuning (validation) seed of these renders: choices about the renders are made on it,
#: never on ``photo_benchmark.SEED`` (20261205).
SEED = 777001


def extent_bin(mask: np.ndarray) -> str:
    """The hand's extent: its mask's bounding box's longer side over the image side."""
    ys, xs = np.nonzero(mask == 1)
    span = max(np.ptp(xs), np.ptp(ys)) / mask.shape[0] if len(xs) else 0.0
    return (
        "<0.3" if span < 0.3 else "0.3-0.5" if span < 0.5 else "0.5-0.7" if span < 0.7 else ">=0.7"
    )


def detect_one(image: np.ndarray, gt2: np.ndarray) -> tuple[bool, float]:
    """``(found, landmark error in % of the hand's size)`` of one image (error ``nan``
    where nothing was found)."""
    from halohand.image.find import find_hands

    size_px = np.linalg.norm(np.diff(gt2[[0, 9, 10, 11, 12]], axis=0), axis=1).sum()
    hands = find_hands(image, max_hands=1)
    if not hands:
        return False, float("nan")
    err = float(np.linalg.norm(hands[0].pixels - gt2, axis=1).mean() / size_px)
    return err <= 0.5, 100 * err


def factors(seed: int, index: int, size: int, labels: dict, mask: np.ndarray) -> dict[str, str]:
    """The factors of image ``index`` its detection rate is broken down by."""
    from halohand.apps.synthetic import BACKGROUNDS, sample_scene, skin_group

    scene, hand = sample_scene(seed, index, size)
    kp = labels["keypoints_3d"]
    # which side faces the camera: the palm normal (index knuckle, little knuckle, wrist)
    across, finger = kp[5] - kp[17], kp[9] - kp[0]
    normal = np.cross(across, finger) if int(labels["side"]) == 0 else np.cross(finger, across)
    facing = "palm" if normal @ (-kp[9]) > 0 else "back"
    fov = np.degrees(2 * np.arctan(0.5 * size / labels["intrinsics"][0, 0]))
    return {
        "background": BACKGROUNDS[int(labels["background"])],
        "skin": skin_group(labels["skin_srgb"]),
        "extent": extent_bin(mask),
        "facing": facing,
        "fov_deg": "<50" if fov < 50 else "50-62" if fov < 62 else ">=62",
        "defocus_px": "<1.5" if scene.defocus_px < 1.5 else ">=1.5",
    }


def rates(rows: list[dict[str, Any]], key: str | None) -> dict[str, Any]:
    """Detection rate and count overall (``key`` None) or per value of factor ``key``."""
    if key is None:
        hits = [r["found"] for r in rows]
        return {"rate": round(float(np.mean(hits)), 3) if hits else None, "n": len(hits)}
    groups: dict[str, list[bool]] = {}
    for r in rows:
        groups.setdefault(r["factors"][key], []).append(r["found"])
    return {
        name: {"rate": round(float(np.mean(h)), 3), "n": len(h)}
        for name, h in sorted(groups.items())
    }


def missed_grid(data: Path, rows: list[dict[str, Any]], path: Path, tile: int = 160) -> None:
    """Tile the missed images (captioned ``index background skin extent facing``, ``V`` for
    a visible hand) into one PNG, written atomically."""
    from PIL import Image, ImageDraw

    from halohand.core.atomic import atomic_path

    missed = [r for r in rows if not r["found"]][:80]
    cols = 8
    nrow = max(1, -(-len(missed) // cols))
    sheet = Image.new("RGB", (cols * tile, nrow * (tile + 14)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, r in enumerate(missed):
        img = Image.open(data / "images" / f"{r['index']:06d}.png").convert("RGB")
        x, y = (j % cols) * tile, (j // cols) * (tile + 14)
        sheet.paste(img.resize((tile, tile), Image.Resampling.BILINEAR), (x, y + 14))
        f = r["factors"]
        caption = f"{r['index']} {f['background'][:4]} {f['skin'][0]} {f['extent']} {f['facing']}"
        draw.text((x + 2, y + 1), caption + (" V" if r["visible"] else ""), fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")


def score_set(data: Path, n: int, seed: int, size: int) -> list[dict[str, Any]]:
    """Detect the hand of each image ``0..n-1`` of a rendered set: one row per image."""
    from PIL import Image

    from halohand.apps.synthetic import hand_visible, read_labels

    rows: list[dict[str, Any]] = []
    for i in range(n):
        labels = read_labels(data, i)
        image = np.asarray(Image.open(data / "images" / f"{i:06d}.png").convert("RGB"))
        mask = np.asarray(Image.open(data / "masks" / f"{i:06d}.png"))
        found, err = detect_one(image, labels["keypoints_2d"])
        rows.append(
            {
                "index": i,
                "found": found,
                "error_pct_hand": round(err, 1),
                "visible": hand_visible(labels["keypoints_2d"], mask),
                "factors": factors(seed, i, size, labels, mask),
            }
        )
    return rows


KEYS = ("background", "skin", "extent", "facing", "fov_deg", "defocus_px")


def summary(rows: list[dict[str, Any]], keys: tuple[str, ...] = KEYS) -> dict[str, Any]:
    """Rates over all images and over visible hands, overall and by each factor."""
    seen = [r for r in rows if r["visible"]]
    return {
        "all_images": rates(rows, None) | {k: rates(rows, k) for k in keys},
        "visible_hands": rates(seen, None) | {k: rates(seen, k) for k in keys},
    }


def _speed(rendered: dict[str, Any]) -> dict[str, Any]:
    done = rendered["rendered"]
    return {
        "rendered": done,
        "seconds": rendered["seconds"],
        "images_per_second": round(done / rendered["seconds"], 2) if done else None,
    }


#: Seeds of the hand-free backgrounds (none of them is a render's background seed).
NEGATIVE_SEED = 5000


def false_hands(n: int, size: int) -> dict[str, Any]:
    """Hands found on ``n`` hand-free backgrounds of the renders' four kinds (in turn, with
    their range of defocus): every hand found is a false one."""
    from halohand.apps.render import linear_to_srgb, to_uint8
    from halohand.apps.synthetic import BACKGROUNDS, background
    from halohand.image.find import find_hands

    rng = np.random.default_rng(NEGATIVE_SEED)
    hits = []
    for j in range(n):
        kind = j % len(BACKGROUNDS)
        linear = background(kind, size, NEGATIVE_SEED + j, defocus_px=float(rng.uniform(0, 3)))
        image = to_uint8(linear_to_srgb(linear))
        if find_hands(image, max_hands=1):
            hits.append({"index": j, "background": BACKGROUNDS[kind]})
    return {"n": n, "with_a_hand": len(hits), "rate": round(len(hits) / n, 4), "hits": hits}


def main() -> None:
    from dataclasses import fields

    from halohand.apps.synthetic import MIN_HAND_AREA, Look

    switches = [f.name for f in fields(Look)]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/halohand_render_detection"))
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--renderer", default="auto")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--grid", type=Path, default=None, help="PNG of the missed images.")
    parser.add_argument(
        "--negatives", type=int, default=0,
        help="Also search this many hand-free backgrounds (false hands).",
    )  # fmt: skip
    parser.add_argument(
        "--ablate", action="append", default=[], choices=[*switches, "all"],
        help="Also render with this realism switch off (repeatable).",
    )  # fmt: skip
    args = parser.parse_args()

    from halohand.apps.synthetic import render_set

    rendered = render_set(args.data, args.n, args.seed, args.size, args.renderer, log=None)
    t0 = time.perf_counter()
    rows = score_set(args.data, args.n, args.seed, args.size)
    detect_s = time.perf_counter() - t0
    if args.grid is not None:
        missed_grid(args.data, rows, args.grid)
    negatives = false_hands(args.negatives, args.size) if args.negatives else None
    ablations: dict[str, Any] = {}
    for name in args.ablate:
        off = {s: False for s in switches} if name == "all" else {name: False}
        folder = args.data / f"no_{name}"
        done = render_set(
            folder, args.n, args.seed, args.size, args.renderer, log=None, look=Look(**off)
        )
        other = score_set(folder, args.n, args.seed, args.size)
        both = sum(a["found"] and b["found"] for a, b in zip(rows, other, strict=True))
        ablations[f"no_{name}"] = {
            "render": _speed(done),
            "found_by_both": both,
            "found_only_with_switch": sum(r["found"] for r in rows) - both,
            "found_only_without_switch": sum(r["found"] for r in other) - both,
        } | summary(other, ("background", "skin", "extent"))
    report = {
        "study": "render_detection",
        "data": str(args.data),
        "seed": args.seed,
        "seed_role": "tuning (validation); photo_benchmark.py holds out its own seed",
        "size": args.size,
        "renderer": rendered["renderer"],
        "render": _speed(rendered),
        "detect_seconds": round(detect_s, 1),
        "visible_rule": f"all 21 keypoints inside the frame, hand mask >= {MIN_HAND_AREA} "
        "of the image",
        **summary(rows),
        "not_visible": [r["index"] for r in rows if not r["visible"]],
        "missed": [r["index"] for r in rows if not r["found"]],
        "grid": str(args.grid) if args.grid is not None else None,
        "hand_free_backgrounds": negatives,
        "ablations": ablations,
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
