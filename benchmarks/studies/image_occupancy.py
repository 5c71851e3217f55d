"""Two hands from true keypoints and one image: HALO | + keypoint residual | + image.

The A/B of the image-conditioned initial occupancy (``halohand.inference.image_occupancy``):
two models of ``halohand train-image-occupancy``, one with the image branch and one
without it (``--no-image``: keypoints and HALO's logits only), trained on the same data
with the same seeds for the same wall-clock time, each meshing the held-out pairs of
``benchmarks/studies/pair_refine.py`` (the same draws with the same seed: its
``--noise-mm 0`` pairs) and scored with its protocol (per-hand and two-hand IoU,
Chamfer-L1 mm, penetration). Each pair is seen in one view rendered as
``halohand data pair-images`` renders (:func:`halohand.apps.pair_images.render_pair`: a
random camera, light, background and skin tone), from a seed stream of its own
(:func:`held_out_view`); both models get the same view (the keypoint arm ignores it).
Rows: ``truth``, ``halo`` (per hand, independent), ``keypoints`` and ``image``.

    python benchmarks/studies/image_occupancy.py --pairs 24 \\
        --image-model RUN_A/image_occupancy.safetensors \\
        --keypoint-model RUN_B/image_occupancy.safetensors \\
        --json benchmarks/results/studies/image_occupancy.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report

from _report import relative_paths, write  # noqa: E402
from pair_refine import held_out_pair, score  # noqa: E402

from halohand.apps.pair_images import PAIR_IMAGES_KEY, PairImagesConfig, render_pair  # noqa: E402
from halohand.data.pairs import PairSampler  # noqa: E402
from halohand.handmodel.prior import IdentityPrior  # noqa: E402
from halohand.inference.halo import HALO  # noqa: E402
from halohand.inference.image_occupancy import load_image_occupancy  # noqa: E402
from halohand.inference.two_hands import reconstruct_pair_image  # noqa: E402

#: Second element of the held-out views' seed spawn key (the renders' splits use 0-2).
HELD_OUT_STREAM = 9


def held_out_view(pair: Any, index: int, seed: int, size: int, renderer: Any) -> dict[str, Any]:
    """One render of held-out pair ``index`` (:func:`render_pair`'s arrays, one view),
    from ``SeedSequence(seed, spawn_key=(PAIR_IMAGES_KEY, HELD_OUT_STREAM, index))``."""
    rng = np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(PAIR_IMAGES_KEY, HELD_OUT_STREAM, index))
    )
    doc = {
        "meshes": [(h.vertices, h.faces) for h in pair.hands],
        "keypoints": pair.keypoints, "interaction": pair.interaction,
    }  # fmt: skip
    return render_pair(doc, PairImagesConfig(views=1, size=size), rng, renderer)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--seed", type=int, default=90_210, help="held-out sampler seed")
    parser.add_argument("--view-seed", type=int, default=0, help="seed of the held-out views")
    parser.add_argument("--size", type=int, default=128, help="view side in pixels")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--surface-samples", type=int, default=20_000)
    parser.add_argument(
        "--image-model", type=Path, default=None, help="omit: no image row (keypoint arm only)"
    )
    parser.add_argument(
        "--thickness-mean", type=float, default=0.0,
        help="relative thickness offset every part of the held-out hands starts from "
        "(the shipped HALO's data: 0.15; as 'halohand data pairs --thickness-mean')",
    )  # fmt: skip
    parser.add_argument("--keypoint-model", type=Path, required=True)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from halohand.apps.synthetic import make_renderer

    prior = IdentityPrior(thickness_mean=args.thickness_mean)
    halo, sampler = HALO.pretrained(), PairSampler(identity_prior=prior)
    models = {"keypoints": load_image_occupancy(args.keypoint_model)}
    if args.image_model is not None:
        models["image"] = load_image_occupancy(args.image_model)
    if models["keypoints"].config.image or ("image" in models and not models["image"].config.image):
        raise SystemExit("--keypoint-model must be a --no-image model, --image-model not")
    renderer, renderer_name = make_renderer("auto", args.size)
    rng = np.random.default_rng(args.seed)
    rows: dict[str, list[dict[str, Any]]] = {}
    t_start = time.perf_counter()
    for i in range(args.pairs):
        pair, truths, samples, pair_points, pair_occ = held_out_pair(
            sampler, rng, args.surface_samples
        )
        view = held_out_view(pair, i, args.view_seed, args.size, renderer)
        cam = (view["images"][0], view["intrinsics"][0], view["rotation"][0],
               view["translation"][0])  # fmt: skip
        results = {
            "truth": score(truths, truths, samples, pair_points, pair_occ, args.surface_samples)
        }
        for name in ("halo", *models):
            t_mesh = time.perf_counter()
            if name == "halo":
                made = halo.reconstruct_pair(
                    pair.keypoints, units="m", resolution=args.resolution, colors=False
                )
            else:
                made = reconstruct_pair_image(
                    halo, pair.keypoints, *cam, models[name], units="m",
                    resolution=args.resolution, colors=False,
                )  # fmt: skip
            mesh_s = time.perf_counter() - t_mesh
            row = score(list(made.meshes), truths, samples, pair_points, pair_occ,
                        args.surface_samples)  # fmt: skip
            results[name] = {**row, "mesh_s": mesh_s}
        for name, row in results.items():
            rows.setdefault(name, []).append({"pair": i, "interaction": pair.interaction, **row})
        print(f"pair {i} {pair.interaction}: " + "  ".join(
            f"{k} iou {r['iou_hand']:.4f}/{r['iou_pair']:.4f} cd {r['chamfer_l1_mm']:.3f}"
            for k, r in results.items()), flush=True)  # fmt: skip
    keys = sorted({k for rs in rows.values() for r in rs for k in r} - {"pair", "interaction"})
    summary = {
        name: {k: float(np.mean([r[k] for r in rs if k in r])) for k in keys if k in rs[0]}
        for name, rs in rows.items()
    }
    wins = {
        f"{a}_vs_{b}_pair_iou_wins": int(sum(
            x["iou_pair"] > y["iou_pair"] for x, y in zip(rows[a], rows[b], strict=True)))
        for a, b in (("image", "keypoints"), ("image", "halo"), ("keypoints", "halo"))
        if a in rows and b in rows
    }  # fmt: skip
    for name, row in summary.items():
        print(name, {k: round(v, 4) for k, v in row.items()})
    print(wins)
    command = "python benchmarks/studies/image_occupancy.py " + " ".join(argv or sys.argv[1:])
    doc = {
        "command": command, "pairs": args.pairs, "seed": args.seed,
        "view_seed": args.view_seed, "size": args.size, "renderer": renderer_name,
        "resolution": args.resolution, "surface_samples": args.surface_samples,
        "models": {k: str(p.resolve()) for k, p in
                   (("image", args.image_model), ("keypoints", args.keypoint_model))
                   if p is not None},
        **wins, "summary": summary, "seconds": round(time.perf_counter() - t_start, 1),
        "rows": rows,
    }  # fmt: skip
    # stored results name no machine's paths: relative to the checkout, <tmp>
    doc = relative_paths(doc)
    if args.json:
        write(doc, args.json, indent=2, machine=False)
    return doc


if __name__ == "__main__":
    main()
