"""Render ground truth (top row) and reconstructions from keypoints (bottom row) of test hands.

Usage: .venv/bin/python benchmarks/figures/render_reconstructions.py CHECKPOINT DATA_DIR OUT.png [N]
"""

from __future__ import annotations

import sys

import numpy as np

from halohand import HALO
from halohand.apps.render import PART_COLORS, image_grid, render_mesh, save_png
from halohand.core.atomic import atomic_path
from halohand.data.dataset import OccupancyDataset


def main(checkpoint: str, data: str, out: str, n: int = 4) -> None:
    model = HALO.from_checkpoint(checkpoint)
    ds = OccupancyDataset(data, "test", n_points=None, n_surface=None)
    top, bottom = [], []
    for i in range(n):
        hand = ds.hand(i)
        side = str(hand["side"])
        mesh = model.reconstruct(hand["keypoints"], side=side, units="m", resolution=256)
        center = hand["keypoints"].mean(0)
        gt_v, gt_f = hand["mesh_vertices"], hand["mesh_faces"]
        top.append(render_mesh(gt_v, gt_f, size=(240, 240), center=center, extent=0.24))
        part = np.asarray(mesh.vertex_attributes["part"], dtype=int)
        bottom.append(
            render_mesh(
                mesh.vertices,
                mesh.faces,
                PART_COLORS[part],
                size=(240, 240),
                center=center,
                extent=0.24,
            )  # fmt: skip
        )
    with atomic_path(out) as tmp:
        save_png(str(tmp), image_grid(top + bottom, columns=n))
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3], *(int(a) for a in sys.argv[4:]))
