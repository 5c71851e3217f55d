"""Two hands from true keypoints: HALO per hand against the learned two-hand refinement
(docs/pair_learned.png).

    PYTHONPATH=src .venv/bin/python benchmarks/figures/pair_learned_sheet.py \\
        [--out docs/pair_learned.png] [--indices 0,1,2,3] [--pair-refiner PATH] \\
        [--thickness-mean 0.15]

Held-out pairs of ``benchmarks/studies/pair_refine.py --noise-mm 0`` (the same draws with
the same seed; ``--indices`` picks among them), one row each: HALO's per-hand meshes,
the learned refinement (``refine_occupancy``), the learned refinement then separated, and
the true meshes; each shown whole and as a close-up (8 cm wide) about where the true hands
are closest, labelled with the two hands' penetration volume (cm^3,
:func:`halohand.interaction.plausibility.penetration_volume`). The study's JSON has the
scores of the same pairs.
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
from two_hand_pairs import LEFT_COLOR, RIGHT_COLOR  # noqa: E402


def _tile(meshes, centre: np.ndarray, extent: float, size: int) -> np.ndarray:
    from halohand.apps.render import render_mesh

    (rv, rf), (lv, lf) = ((np.asarray(m.vertices), np.asarray(m.faces)) for m in meshes)
    v = np.concatenate([rv, lv])
    f = np.concatenate([rf, lf + len(rv)])
    colors = np.concatenate([np.tile(RIGHT_COLOR, (len(rv), 1)), np.tile(LEFT_COLOR, (len(lv), 1))])
    return render_mesh(v, f, colors, size=(size, size), center=centre, extent=extent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "pair_learned.png")
    parser.add_argument("--indices", default="0,1,2,3", help="pairs of the study's draws")
    parser.add_argument("--seed", type=int, default=90_210)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--tile", type=int, default=220)
    parser.add_argument("--pair-refiner", type=Path, default=None)
    parser.add_argument(
        "--thickness-mean", type=float, default=0.0,
        help="the held-out hands' part thickness offset (the shipped HALO's data: 0.15)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    from scipy.spatial import cKDTree

    from halohand.apps.render import draw_text, image_grid, save_png
    from halohand.data.pairs import PairSampler
    from halohand.handmodel.prior import IdentityPrior
    from halohand.inference.halo import HALO
    from halohand.inference.pair_refiner import load_pair_refiner
    from halohand.interaction.plausibility import penetration_volume

    wanted = sorted(int(i) for i in args.indices.split(","))
    prior = IdentityPrior(thickness_mean=args.thickness_mean)
    halo, sampler = HALO.pretrained(), PairSampler(identity_prior=prior)
    learned = load_pair_refiner(args.pair_refiner)
    rng = np.random.default_rng(args.seed)
    tiles = []
    for i in range(max(wanted) + 1):
        pair, truth = held_out_pair(sampler, rng)[:2]  # the study's pairs (--noise-mm 0)
        if i not in wanted:
            continue
        d, j = cKDTree(truth[1].vertices).query(truth[0].vertices)
        k = int(np.argmin(d))
        close = 0.5 * (truth[0].vertices[k] + truth[1].vertices[j[k]])
        rows: dict[str, tuple[bool | None, bool]] = {
            "HALO": (False, False),
            "learned": (True, False),
            "learned+sep": (True, True),
        }
        for name, (refine, sep) in [*rows.items(), ("truth", (None, False))]:
            meshes = truth if refine is None else halo.reconstruct_pair(
                pair.keypoints, units="m", resolution=args.resolution, colors=False,
                separate=sep, refine_occupancy=learned if refine else False,
            ).meshes  # fmt: skip
            vol = penetration_volume(meshes[0], meshes[1])
            whole = 0.5 * (np.min([m.bounds[0] for m in meshes], 0)
                           + np.max([m.bounds[1] for m in meshes], 0))  # fmt: skip
            label = f"{name}: {vol:.3f} cm3"
            if name == "HALO":
                label = f"{pair.interaction} {label}"
            tiles.append(draw_text(_tile(meshes, whole, 0.30, args.tile), label, (6, 6)))
            tiles.append(_tile(meshes, close, 0.08, args.tile))
    save_png(str(args.out), image_grid(tiles, columns=8))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
