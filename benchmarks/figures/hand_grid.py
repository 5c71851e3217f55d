"""Render a grid of hands sampled from the embedded model and its priors (docs/hand_grid.png).

    .venv/bin/python benchmarks/figures/hand_grid.py [--out docs/hand_grid.png] [--seed 2021]

Each tile is one :class:`~halohand.handmodel.WebXRHandSource` sample (random identity and
natural pose; every fourth one a left hand), skin-toned, seen from the palm side at a
three-quarter angle, at a common scale (the tile spans 26 cm) so sizes compare. A second
image with the library gestures at the template identity, part-coloured, is written beside
it (``*_gestures.png``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/hand_grid.png"))
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--cols", type=int, default=4)
    parser.add_argument("--tile", type=int, default=256, help="tile size in pixels")
    args = parser.parse_args(argv)

    from halohand.apps.render import PART_COLORS, image_grid, render_mesh, save_png
    from halohand.handmodel import GESTURES, PosePrior, WebXRHandModel, WebXRHandSource

    source = WebXRHandSource()
    rng = np.random.default_rng(args.seed)
    tiles = []
    for i in range(args.rows * args.cols):
        hand = source.sample(rng, side="left" if i % 4 == 3 else "right")
        center = 0.5 * (hand.vertices.min(0) + hand.vertices.max(0))
        tiles.append(
            render_mesh(
                hand.vertices,
                hand.faces,
                size=(args.tile, args.tile),
                view="palm34",
                center=center,
                extent=0.26,
            )  # fmt: skip
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_png(str(args.out), image_grid(tiles, args.cols))

    model = WebXRHandModel.load()
    prior = PosePrior()
    tiles = []
    for name in GESTURES:
        hand = model.pose(prior.gesture(name))
        center = 0.5 * (hand.vertices.min(0) + hand.vertices.max(0))
        tiles.append(
            render_mesh(
                hand.vertices,
                hand.faces,
                PART_COLORS[hand.part_labels],
                size=(192, 192),
                view="palm34",
                center=center,
                extent=0.22,
            )  # fmt: skip
        )
    gestures_out = args.out.with_name(args.out.stem + "_gestures.png")
    save_png(str(gestures_out), image_grid(tiles, 6))
    print(f"wrote {args.out} and {gestures_out}")


if __name__ == "__main__":
    main()
