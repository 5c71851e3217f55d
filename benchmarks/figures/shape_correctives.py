"""Render the hand's soft-tissue correctives at their extremes (docs/shape_correctives.png).

    .venv/bin/python benchmarks/figures/shape_correctives.py [--out docs/shape_correctives.png]
        [--pose relaxed]

One row per corrective (:data:`halohand.handmodel.shape.SHAPE_NAMES`): the template's hand
with the corrective at its lower limit (:data:`~halohand.handmodel.shape.SHAPE_LIMIT_MM`),
at zero, at its upper limit, and the field's weight coloured on the zero hand (red = full
displacement), each zoomed on the region from a view that shows it. The pose is a library
gesture (default ``relaxed``), so the knuckles and pads are seen with the fingers bent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

#: Camera per corrective: (azimuth, elevation) degrees (see ``halohand.apps.render.VIEWS``).
_VIEWS = {
    "thenar": (200.0, 10.0),
    "palm_hollow": (180.0, -35.0),
    "thumb_web": (235.0, 35.0),
    "finger_pads": (250.0, -10.0),
    "knuckles": (-30.0, 30.0),
}

#: Image extent per corrective (metres spanned by a tile).
_EXTENT = {"thenar": 0.08, "palm_hollow": 0.09, "thumb_web": 0.07, "finger_pads": 0.12,
           "knuckles": 0.12}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/shape_correctives.png"))
    parser.add_argument("--pose", default="relaxed", help="library gesture")
    parser.add_argument("--tile", type=int, default=240, help="tile size in pixels")
    args = parser.parse_args(argv)

    from halohand.apps.render import image_grid, render_mesh, save_png
    from halohand.handmodel import HandIdentity, PosePrior, WebXRHandModel
    from halohand.handmodel.shape import SHAPE_LIMIT_MM, SHAPE_NAMES

    model = WebXRHandModel.load()
    pose = PosePrior().gesture(args.pose)
    plain = model.pose(pose, HandIdentity())
    tiles = []
    for k, name in enumerate(SHAPE_NAMES):
        view = _VIEWS[name]
        weight = np.linalg.norm(model.shape_basis[k], axis=1)
        weight = weight / weight.max()
        # Zoom on the field: its weighted centre on the posed plain hand.
        center = (weight[:, None] * plain.vertices).sum(0) / weight.sum()
        for c in (-SHAPE_LIMIT_MM[k], 0.0, SHAPE_LIMIT_MM[k]):
            coef = np.zeros(len(SHAPE_NAMES))
            coef[k] = c
            hand = model.pose(pose, HandIdentity(shape=coef))
            tiles.append(
                render_mesh(
                    hand.vertices,
                    hand.faces,
                    size=(args.tile, args.tile),
                    view=view,
                    center=center,
                    extent=_EXTENT[name],
                )  # fmt: skip
            )
        colors = (1 - weight)[:, None] * np.array([0.85, 0.85, 0.85]) + weight[:, None] * np.array(
            [0.9, 0.15, 0.1]
        )
        tiles.append(
            render_mesh(
                plain.vertices,
                plain.faces,
                colors=colors,
                size=(args.tile, args.tile),
                view=view,
                center=center,
                extent=_EXTENT[name],
            )  # fmt: skip
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_png(str(args.out), image_grid(tiles, 4))
    print(args.out)


if __name__ == "__main__":
    main()
