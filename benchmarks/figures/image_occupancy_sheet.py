"""Two hands from true keypoints and one image: the view | HALO | + keypoint residual |
+ image | truth (docs/image_occupancy.png).

    PYTHONPATH=src .venv/bin/python benchmarks/figures/image_occupancy_sheet.py \\
        --image-model A.safetensors --keypoint-model B.safetensors \\
        [--out docs/image_occupancy.png] [--indices 0,1,2,3]

Held-out pairs and views of ``benchmarks/studies/image_occupancy.py`` (the same draws with
the same seeds; ``--indices`` picks among them), one row each: the rendered view the
models see, then each row's two meshes from the view's own camera direction (right hand
skin-coloured, left blue), labelled with the pair's two-hand IoU (the study's JSON has the same
pairs' numbers; the IoU here is on the study's points, recomputed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "benchmarks" / "studies"))

from image_occupancy import held_out_view  # noqa: E402
from pair_refine import held_out_pair  # noqa: E402
from two_hand_pairs import LEFT_COLOR, RIGHT_COLOR  # noqa: E402


def _tile(meshes, rotation: np.ndarray, size: int) -> np.ndarray:
    """Both meshes seen along the view's camera axis (camera ``y`` down: image up is -y)."""
    from halohand.apps.render import render_mesh

    (rv, rf), (lv, lf) = ((np.asarray(m.vertices), np.asarray(m.faces)) for m in meshes)
    v = np.concatenate([rv, lv])
    f = np.concatenate([rf, lf + len(rv)])
    colors = np.concatenate([np.tile(RIGHT_COLOR, (len(rv), 1)), np.tile(LEFT_COLOR, (len(lv), 1))])
    # the renderer's camera has y up and looks along -z: the view's axes with y and z flipped
    view = np.diag([1.0, -1.0, -1.0]) @ rotation
    extent = float(np.ptp((v @ view.T)[:, :2], axis=0).max()) * 1.1
    centre = 0.5 * (v.min(0) + v.max(0))
    return render_mesh(v, f, colors, size=(size, size), view=view, center=centre, extent=extent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "image_occupancy.png")
    parser.add_argument("--indices", default="0,1,2,3", help="pairs of the study's draws")
    parser.add_argument("--seed", type=int, default=90_210)
    parser.add_argument("--view-seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--tile", type=int, default=220)
    parser.add_argument("--image-model", type=Path, required=True)
    parser.add_argument("--keypoint-model", type=Path, required=True)
    args = parser.parse_args(argv)

    from halohand.apps.render import draw_text, image_grid, save_png
    from halohand.apps.synthetic import make_renderer
    from halohand.data.pairs import PairSampler
    from halohand.evaluation.metrics import iou
    from halohand.inference.halo import HALO
    from halohand.inference.image_occupancy import load_image_occupancy
    from halohand.inference.two_hands import reconstruct_pair_image
    from halohand.objects.inside import contains

    wanted = sorted(int(i) for i in args.indices.split(","))
    halo, sampler = HALO.pretrained(), PairSampler()
    models = {"+keypoints": load_image_occupancy(args.keypoint_model),
              "+image": load_image_occupancy(args.image_model)}  # fmt: skip
    renderer, _ = make_renderer("auto", args.size)
    rng = np.random.default_rng(args.seed)
    tiles = []
    for i in range(max(wanted) + 1):
        pair, truth, _, pair_points, pair_occ = held_out_pair(sampler, rng)
        if i not in wanted:
            continue
        view = held_out_view(pair, i, args.view_seed, args.size, renderer)
        cam = (view["images"][0], view["intrinsics"][0], view["rotation"][0],
               view["translation"][0])  # fmt: skip
        near = (np.arange(args.tile) * args.size / args.tile).astype(int)  # nearest pixel
        pad = np.ascontiguousarray(view["images"][0][near][:, near])
        tiles.append(draw_text(pad, f"{i} {pair.interaction}", (6, 6), color=(255, 255, 255)))
        rows = {"HALO": None, **models, "truth": None}
        for name, net in rows.items():
            if name == "truth":
                meshes = truth
            elif net is None:
                made = halo.reconstruct_pair(
                    pair.keypoints, units="m", resolution=args.resolution, colors=False
                )
                meshes = made.meshes
            else:
                made = reconstruct_pair_image(
                    halo, pair.keypoints, *cam, net, units="m", resolution=args.resolution,
                    colors=False,
                )  # fmt: skip
                meshes = made.meshes
            inside = contains(meshes[0].vertices, meshes[0].faces, pair_points) | contains(
                meshes[1].vertices, meshes[1].faces, pair_points
            )
            label = name if name == "truth" else f"{name} IoU {iou(inside, pair_occ):.3f}"
            tiles.append(draw_text(_tile(meshes, cam[2], args.tile), label, (6, 6)))
    save_png(str(args.out), image_grid(tiles, columns=5))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
