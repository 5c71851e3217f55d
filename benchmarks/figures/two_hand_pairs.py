"""Render ground-truth interacting pairs of the pair sampler (docs/two_hand_pairs.png).

    PYTHONPATH=src .venv/bin/python benchmarks/figures/two_hand_pairs.py \
        [--out docs/two_hand_pairs.png] [--seed 0] [--views 2]

One row per interaction of :data:`halohand.data.pairs.INTERACTIONS` (pair ``i`` drawn from
``default_rng([seed, i])``), seen from ``--views`` directions. The right hand is skin-toned,
the left hand blue, both in one image (the numpy renderer's z-buffer resolves the contact).
With ``--meshes DIR`` the tiles show HALO reconstructions (``DIR/<interaction>_{right,left}.ply``,
as written by ``halohand reconstruct`` from the pairs' keypoints) instead.
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
    parser.add_argument("--meshes", type=Path, default=None)
    args = parser.parse_args(argv)

    import trimesh

    from halohand.apps.render import draw_text, image_grid, save_png
    from halohand.data.pairs import INTERACTIONS, PairSampler

    sampler = PairSampler()
    tiles = []
    for i, kind in enumerate(INTERACTIONS):
        if args.meshes is None:
            pair = sampler.sample(np.random.default_rng([args.seed, i]), kind)
            r, lf = pair.right, pair.left
            rv, rf, lv, lff = r.vertices, r.faces, lf.vertices, lf.faces
            label = f"{kind}  pen {pair.penetration.max_depth * 1e3:.2f} mm"
        else:
            rm = trimesh.load(args.meshes / f"{kind}_right.ply", process=False)
            lm = trimesh.load(args.meshes / f"{kind}_left.ply", process=False)
            rv, rf, lv, lff = rm.vertices, rm.faces, lm.vertices, lm.faces
            label = f"{kind} (HALO)"
        row = pair_tiles(np.asarray(rv), np.asarray(rf), np.asarray(lv), np.asarray(lff),
                         args.tile, args.views)  # fmt: skip
        row[0] = draw_text(row[0], label, (6, 6))
        tiles.extend(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_png(str(args.out), image_grid(tiles, args.views))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
