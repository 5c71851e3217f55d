"""Contact sheet of rendered two-hand pairs (``halohand data pair-images``):
docs/pair_images.png.

    halohand data pairs --out /tmp/pi/pairs --n-train 4 --seed 5 --workers 1 --pairs-per-shard 2
    halohand data pair-images --out /tmp/pi/img --pairs /tmp/pi/pairs --splits train \\
        --views 3 --size 128
    PYTHONPATH=src .venv/bin/python benchmarks/figures/pair_images_sheet.py \\
        --images /tmp/pi/img/train --out docs/pair_images.png

One row per pair, one column per view: the image with both hands' keypoints projected by the
stored camera (red: right hand, blue: left), and under it the mask (right red, left blue).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

RIGHT, LEFT = (230, 40, 40), (40, 90, 240)


def tile(doc: dict, view: int) -> np.ndarray:
    """The image of ``view`` with projected keypoints over its mask."""
    image = doc["images"][view].copy()
    size = image.shape[0]
    for hand, colour in enumerate((RIGHT, LEFT)):
        p = doc["keypoints"][hand] @ doc["rotation"][view].T + doc["translation"][view]
        uv = p @ doc["intrinsics"][view].T
        for u, v in (uv[:, :2] / uv[:, 2:]).astype(int):
            if 0 <= u < size and 0 <= v < size:
                image[max(v - 1, 0) : v + 2, max(u - 1, 0) : u + 2] = colour
    mask = np.zeros_like(image)
    mask[doc["masks"][view] == 1] = (255, 140, 140)
    mask[doc["masks"][view] == 2] = (140, 160, 255)
    return np.concatenate([image, mask], 0)


def main(argv: list[str] | None = None) -> None:
    from PIL import Image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="a split of pair-images")
    parser.add_argument("--out", type=Path, default=Path("docs/pair_images.png"))
    parser.add_argument("--pairs", type=int, default=4)
    args = parser.parse_args(argv)
    files = sorted(args.images.glob("p_*.npz"))[: args.pairs]
    if not files:
        raise SystemExit(f"{args.images}: no rendered pairs")
    rows = []
    for path in files:
        doc = dict(np.load(path))
        rows.append(np.concatenate([tile(doc, v) for v in range(len(doc["images"]))], 1))
    Image.fromarray(np.concatenate(rows, 0)).save(args.out)
    print(f"{args.out}: {len(rows)} pairs")


if __name__ == "__main__":
    main()
