"""Touching parts merged or kept apart, side by side (docs/touching.png).

    PYTHONPATH=src .venv/bin/python benchmarks/figures/touching_sheet.py \
        [--out docs/touching.png] [--resolution 256] [--poses fist,ok,thumbs_up]

Per key pose of the demo (``halohand.handmodel.keyposes``; fingers that touch): the
shipped model's mesh with ``touching="merge"`` and ``"apart"``, part-coloured, from the palm
side, each labelled with its bodies and genus (:func:`halohand.inference.bodies.body_stats`),
and a 40 mm cut through both meshes (inside: skin colour; 0.125 mm pixels) across the
largest gap that ``"apart"`` opens: the points inside the merged mesh and outside the
other (400k uniform samples) form thin sheets; the cut holds the largest sheet's normal and
its longest direction (principal axes of its points), so the gap shows as a white line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def section(mesh, origin: np.ndarray, u: np.ndarray, w: np.ndarray, size: int, span: float):  # noqa: ANN001, ANN201
    """``[size, size, 3]`` uint8 cut through ``mesh`` in the plane ``origin + a u + b w``
    (``a, b`` in ``[-span / 2, span / 2]``): skin colour inside, white outside."""
    from halohand.objects.inside import contains

    t = (np.arange(size) + 0.5) / size * span - span / 2
    a, b = np.meshgrid(t, t[::-1], indexing="xy")
    points = origin + a[..., None] * u + b[..., None] * w
    inside = contains(np.asarray(mesh.vertices), np.asarray(mesh.faces), points.reshape(-1, 3))
    image = np.full((size * size, 3), 255, dtype=np.uint8)
    image[inside] = (214, 160, 130)
    return image.reshape(size, size, 3)


def _gap_plane(merged, apart):  # noqa: ANN001, ANN202
    """``(origin, u, w)``: the cut across the largest gap between the two meshes."""
    from scipy.ndimage import label

    from halohand.objects.inside import contains

    rng = np.random.default_rng(0)
    lo, hi = merged.bounds
    points = rng.uniform(lo, hi, (400_000, 3))
    gap = contains(merged.vertices, merged.faces, points)
    gap &= ~contains(apart.vertices, apart.faces, points)
    points = points[gap]
    # the largest sheet: connected cells of a 2 mm grid holding gap points
    cells = np.floor((points - lo) / 0.002).astype(np.int64)
    grid = np.zeros(cells.max(0) + 1, dtype=bool)
    grid[tuple(cells.T)] = True
    labels, _ = label(grid, structure=np.ones((3, 3, 3)))
    own = labels[tuple(cells.T)]
    points = points[own == np.bincount(own).argmax()]
    centre = points.mean(0)
    _, _, axes = np.linalg.svd(points - centre, full_matrices=False)
    return centre, axes[0], axes[2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "touching.png")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--poses", default="fist,ok,thumbs_up")
    args = parser.parse_args(argv)

    from halohand.apps.render import draw_text, image_grid, render_mesh, save_png
    from halohand.handmodel.keyposes import load_key_poses
    from halohand.inference.bodies import body_stats
    from halohand.inference.halo import HALO

    model = HALO.pretrained()
    poses = {p.name: p for p in load_key_poses()}
    tiles = []
    for name in args.poses.split(","):
        pose = poses[name]
        kp = pose.keypoints
        meshes = {
            touching: model.reconstruct(
                kp, side=pose.side, units="m", resolution=args.resolution, touching=touching
            )
            for touching in ("merge", "apart")
        }
        origin, u, w = _gap_plane(meshes["merge"], meshes["apart"])
        for touching, mesh in meshes.items():
            stats = body_stats(mesh)
            label = f"{name}, {touching}: {stats.count} body, genus {int(stats.genus[0])}"
            colors = np.asarray(mesh.visual.vertex_colors)[:, :3] / 255.0
            image = render_mesh(np.asarray(mesh.vertices), np.asarray(mesh.faces), colors,
                                size=(320, 320), view="palm")  # fmt: skip
            tiles.append(draw_text(image, label, (6, 6)))
            cut = section(mesh, origin, u, w, 320, 0.04)
            tiles.append(draw_text(cut, f"{name}, {touching}: cut, 40 mm", (6, 6)))
    save_png(str(args.out), image_grid(tiles, columns=4))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
