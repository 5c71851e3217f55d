"""Close-ups of one fingertip on real frames, model by model (docs/grid_pinky_real_frames.png).

    PYTHONPATH=src .venv/bin/python benchmarks/figures/tip_closeup.py \
        --models control=runs/fourier/control/last.safetensors,grid=runs/grids/... \
        [--frames 0,40] [--joint 20] [--resolution 256] [--out docs/grid_pinky_real_frames.png]
        [--thumb-moved NAME,...]

Per model (a row; ``shipped`` names the shipped weights) and frame of
``../shared/reference/halo-original/real_poses_openpose_m.npy`` (reference data, never
shipped): the mesh of ``reconstruct(..., convention="auto")``, its vertices within 3 mm of
the tip keypoint ``--joint`` (project order: 4 thumb, 8 index, 12 middle, 16 ring, 20
little) in red, from the palm side and the back, centred on the keypoint (8 cm across).
Models named in ``--thumb-moved`` read the frames with all five skin tips moved onto the
rig's tip joints (``to_rig(..., fingers=(0, 1, 2, 3, 4))``, then ``convention="rig"``), as
``benchmarks/studies/conventions_real_frames.py --thumb-moved`` does; the red patch stays
around the frame's own keypoint.
Where the surface ends at the keypoint the red patch caps the finger; where the finger
runs on past it the patch is a ring short of the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FRAMES = ROOT.parent / "shared" / "reference" / "halo-original" / "real_poses_openpose_m.npy"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="NAME=PATH,... (shipped: the default)")
    parser.add_argument("--frames", default="0,40")
    parser.add_argument("--joint", type=int, default=20)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "grid_pinky_real_frames.png")
    parser.add_argument("--thumb-moved", default="", help="NAME,... read with the thumb moved")
    args = parser.parse_args(argv)
    if not FRAMES.exists():
        sys.exit(f"{FRAMES} is absent")

    from halohand.apps.render import draw_text, image_grid, render_mesh, save_png
    from halohand.inference.halo import HALO
    from halohand.skeleton.conventions import to_rig

    keypoints = np.load(FRAMES)
    frames = [int(f) for f in args.frames.split(",")]
    moved = set(filter(None, args.thumb_moved.split(",")))
    tiles = []
    for spec in args.models.split(","):
        name, _, path = spec.partition("=")
        model = HALO.pretrained(None if path in ("", "shipped") else path)
        for f in frames:
            given, convention = keypoints[f], "auto"
            if name in moved:
                given, convention = to_rig(given, ["mano"], fingers=(0, 1, 2, 3, 4)), "rig"
            mesh = model.reconstruct(given, convention=convention, resolution=args.resolution)
            vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
            tip = keypoints[f][args.joint]
            colours = np.tile([0.87, 0.72, 0.6], (len(vertices), 1))
            colours[np.linalg.norm(vertices - tip, axis=1) < 0.003] = [0.9, 0.05, 0.05]
            for view in ("palm34", "back"):
                image = render_mesh(
                    vertices, faces, colors=colours, size=(320, 320), view=view, center=tip,
                    extent=0.08,
                )  # fmt: skip
                label = f"{name}{' (thumb moved)' if name in moved else ''} frame {f} {view}"
                tiles.append(draw_text(image, label, (6, 4)))
    save_png(args.out, image_grid(tiles, 2 * len(frames)))
    print(args.out)


if __name__ == "__main__":
    main()
