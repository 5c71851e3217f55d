"""Two hands from noisy keypoints before and after refinement (docs/pair_refine.png).

    PYTHONPATH=src .venv/bin/python benchmarks/figures/pair_refine_sheet.py \
        [--out docs/pair_refine.png] [--pairs 4] [--seed 90210] [--noise-mm 10]

Held-out pairs of the pair sampler (the first ``--pairs`` of
``benchmarks/studies/pair_refine.py``'s draws with the same seed), one row each: HALO's
per-hand meshes of the noisy keypoints, the same keypoints meshed with the overlap removed
(``separate=True``: what the rule does to a large overlap), the keypoint refiner's output, that
after the occupancy-overlap refinement, and the true meshes; each tile labelled with the two hands'
penetration volume (cm^3, :func:`halohand.interaction.plausibility.penetration_volume`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "benchmarks" / "studies"))

from pair_refine import held_out_pair  # noqa: E402
from two_hand_pairs import pair_tiles  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "pair_refine.png")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=90_210)
    parser.add_argument("--noise-mm", type=float, default=10.0)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--tile", type=int, default=256)
    args = parser.parse_args(argv)

    from halohand.apps.render import draw_text, image_grid, save_png
    from halohand.data.pairs import PairSampler
    from halohand.fitting.keypoint_refiner import refine_keypoints
    from halohand.fitting.pair_refine import refine_pair
    from halohand.inference.halo import HALO
    from halohand.interaction.plausibility import penetration_volume

    halo, sampler = HALO.pretrained(), PairSampler()
    rng = np.random.default_rng(args.seed)
    tiles = []
    for _ in range(args.pairs):
        pair, truth = held_out_pair(sampler, rng)[:2]  # the study's pairs, then its noise
        noisy = pair.keypoints + rng.normal(0, args.noise_mm * 1e-3, pair.keypoints.shape)
        cleaned = refine_keypoints(noisy)
        paired = refine_pair(halo, cleaned).keypoints
        rows = {"noisy": noisy, "noisy separated": noisy, "refiner": cleaned,
                "refiner+pair": paired}  # fmt: skip
        for name, kp in list(rows.items()) + [("truth", None)]:
            meshes = truth if kp is None else halo.reconstruct_pair(
                kp, units="m", resolution=args.resolution, colors=False,
                separate=name.endswith("separated"),
            ).meshes  # fmt: skip
            (tile,) = pair_tiles(meshes[0].vertices, meshes[0].faces, meshes[1].vertices,
                                 meshes[1].faces, args.tile, 1)  # fmt: skip
            vol = penetration_volume(meshes[0], meshes[1])
            tiles.append(draw_text(tile, f"{pair.interaction} {name}: {vol:.2f} cm3", (6, 6)))
    save_png(str(args.out), image_grid(tiles, columns=5))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
