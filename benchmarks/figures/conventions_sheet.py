"""Real MANO-style frames read as the rig's keypoints vs in their own convention
(docs/conventions.png).

    PYTHONPATH=src .venv/bin/python benchmarks/figures/conventions_sheet.py \
        [--out docs/conventions.png] [--frames 0,30,60,84] [--models NAME=MODEL,...]

Per frame of ``../shared/reference/halo-original/real_poses_openpose_m.npy`` (reference
data, never shipped): HALO's mesh with ``convention="rig"`` and with ``"auto"`` (read as
MANO-style), semi-transparent, with the given keypoints as dots (red: more than 2 mm outside
the surface), from two views. ``--models`` compares model files instead (``NAME=PATH``,
``shipped`` for the shipped weights), each with ``convention="auto"``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FRAMES = ROOT.parent / "shared" / "reference" / "halo-original" / "real_poses_openpose_m.npy"


def with_keypoint_dots(
    vertices: np.ndarray, faces: np.ndarray, keypoints: np.ndarray, red: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A skin-coloured mesh plus a 3 mm octahedron at every keypoint (red where ``red``,
    else blue): vertices, faces and per-vertex colours for ``render_mesh``."""
    octa_v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1],
                       [0, 0, -1]], float) * 0.003  # fmt: skip
    octa_f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5],
                       [1, 2, 5], [3, 1, 5], [0, 3, 5]])  # fmt: skip
    n = len(vertices)
    dots_v = [octa_v + p for p in keypoints]
    dots_f = [octa_f + n + 6 * k for k in range(len(keypoints))]
    dots_c = [np.tile([0.85, 0.1, 0.1] if r else [0.1, 0.2, 0.8], (6, 1)) for r in red]
    return (
        np.concatenate([vertices, *dots_v]),
        np.concatenate([faces, *dots_f]),
        np.concatenate([np.tile([0.9, 0.75, 0.65], (n, 1)), *dots_c]),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "conventions.png")
    parser.add_argument("--frames", default="0,30,60,84")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--models", default=None)
    args = parser.parse_args(argv)
    if not FRAMES.exists():
        sys.exit(f"{FRAMES} is absent")

    from halohand.apps.render import draw_text, image_grid, render_mesh, save_png
    from halohand.inference.halo import HALO
    from halohand.interaction.object_field import closest_points

    if args.models is None:
        shipped = HALO.pretrained()
        rows = [("rig", shipped, "rig"), ("auto", shipped, "auto")]
    else:
        rows = []
        for item in args.models.split(","):
            name, path = item.split("=", 1)
            rows.append((name, HALO.pretrained(None if path == "shipped" else path), "auto"))
    frames = np.load(FRAMES).astype(np.float64)
    tiles = []
    for i in [int(x) for x in args.frames.split(",")]:
        kp = frames[i]
        for name, halo, reading in rows:
            mesh = halo.reconstruct(kp, units="m", resolution=args.resolution, convention=reading)
            v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
            outside = closest_points(kp, v, f)[0] * 1e3
            verts, faces, colors = with_keypoint_dots(v, f, kp, outside > 2.0)
            for view in ("palm34", "back"):
                img = render_mesh(verts, faces, colors, size=(256, 256), view=view)
                label = f"frame {i} {name}: {int((outside > 2).sum())} kp > 2 mm out"
                tiles.append(draw_text(img, label, (6, 6)))
    save_png(str(args.out), image_grid(tiles, columns=2 * len(rows)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
