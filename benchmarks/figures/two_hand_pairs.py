"""Render ground-truth interacting pairs of the pair sampler (docs/two_hand_pairs.png).

    PYTHONPATH=src .venv/bin/python benchmarks/figures/two_hand_pairs.py \
        [--out docs/two_hand_pairs.png] [--seed 0] [--views 2]

One row per interaction of :data:`halohand.data.pairs.INTERACTIONS` (pair ``i`` drawn from
``default_rng([seed, i])``), seen from ``--views`` directions. The right hand is skin-toned,
the left hand blue, both in one image (the numpy renderer's z-buffer resolves the contact).
With ``--halo`` each row continues with the same views of the shipped model's independent
per-hand reconstruction (``HALO.reconstruct_pair`` from the pair's ground-truth keypoints,
``--resolution``). Each row's first tiles are labelled with the largest penetration depth
of a vertex of one hand inside the other (libigl, :func:`halohand.data.pairs.penetration`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

RIGHT_COLOR = (0.87, 0.66, 0.55)
LEFT_COLOR = (0.45, 0.62, 0.88)
VIEWS = ((215.0, 20.0), (90.0, 35.0), (-30.0, -40.0))


def pair_tiles(right_v, right_f, left_v, left_f, tile: int, views: int) -> list[np.ndarray]:
    """Tiles of one pair from the first ``views`` of :data:`VIEWS`."""
    from halohand.apps.render import render_mesh

    v = np.concatenate([right_v, left_v])
    f = np.concatenate([right_f, left_f + len(right_v)])
    colors = np.concatenate(
        [np.tile(RIGHT_COLOR, (len(right_v), 1)), np.tile(LEFT_COLOR, (len(left_v), 1))]
    )
    centre = 0.5 * (v.min(0) + v.max(0))
    return [
        render_mesh(v, f, colors, size=(tile, tile), view=view, center=centre, extent=0.30)
        for view in VIEWS[:views]
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/two_hand_pairs.png"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--views", type=int, default=2, choices=(1, 2, 3))
    parser.add_argument("--tile", type=int, default=256, help="tile size in pixels")
    parser.add_argument("--halo", action="store_true", help="add HALO's reconstructions")
    parser.add_argument("--resolution", type=int, default=128)
    args = parser.parse_args(argv)

    from halohand.apps.render import draw_text, image_grid, save_png
    from halohand.data.pairs import INTERACTIONS, PairSampler, penetration

    model = None
    if args.halo:
        from halohand import HALO

        model = HALO.pretrained()
    sampler = PairSampler()
    tiles = []
    for i, kind in enumerate(INTERACTIONS):
        pair = sampler.sample(np.random.default_rng([args.seed, i]), kind)
        r, lf = pair.right, pair.left
        row = pair_tiles(r.vertices, r.faces, lf.vertices, lf.faces, args.tile, args.views)
        row[0] = draw_text(row[0], f"{kind} (GT) {pair.penetration.max_depth * 1e3:.2f} mm",
                           (6, 6))  # fmt: skip
        if model is not None:
            rec = model.reconstruct_pair(pair.keypoints, units="m", resolution=args.resolution)
            rv, rf = np.asarray(rec.right.vertices), np.asarray(rec.right.faces, np.int64)
            lv, lff = np.asarray(rec.left.vertices), np.asarray(rec.left.faces, np.int64)
            pen = penetration(rv, rf, lv, lff)
            halo = pair_tiles(rv, rf, lv, lff, args.tile, args.views)
            halo[0] = draw_text(halo[0], f"HALO per hand {pen.max_depth * 1e3:.1f} mm",
                                (6, 6))  # fmt: skip
            row += halo
        tiles.extend(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_png(str(args.out), image_grid(tiles, len(tiles) // len(INTERACTIONS)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
