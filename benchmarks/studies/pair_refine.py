"""Two hands: per-hand HALO, + occupancy-overlap refinement, + keypoint refiner (noise).

Held-out interacting pairs of the pair sampler (``halohand.data.pairs.PairSampler``, a seed
used nowhere else; every interaction kind). For each pair, each row's two HALO meshes are
scored against the true meshes (Im2Hands' protocol, no alignment needed: the keypoints are
in the true frame): per-hand IoU on 20k uniform points of the true hand's box grown by
1 cm plus 20k near its surface (5 mm Gaussian), Chamfer-L1 (mm); two-hand IoU of the union
of both hands on the pair's box; the hands' penetration volume (cm^3, 1 mm voxels) and
symmetric A-PD / M-PD (mm, 32^3 grid) (``halohand.interaction.plausibility``). Rows:

* ``truth``: the true meshes themselves (penetration of the ground truth);
* ``halo``: each hand from its true keypoints, independently (the baseline);
* ``halo+refine``: after :func:`halohand.fitting.pair_refine.refine_pair`;
* ``halo+separate`` / ``halo+refine+separate``: the same keypoints meshed with the
  occupancy overlap removed (``HALO.reconstruct_pair(..., separate=True)``,
  :func:`halohand.inference.two_hands.separate_occupancy`);
* ``learned`` / ``learned+separate``: the true keypoints meshed through the learned
  two-hand occupancy refinement (``HALO.reconstruct_pair(..., refine_occupancy=...)``,
  :mod:`halohand.inference.pair_refiner`; ``--pair-refiner`` weights, default the shipped
  ones; no such rows without weights), without and with the separation after it;
* with ``--noise-mm`` (Gaussian per axis): ``noisy``, ``noisy+kprefine`` (the keypoint
  refiner), ``noisy+kprefine+refine`` and ``noisy+kprefine+refine+separate``.

Each row also records ``mesh_s``, the seconds of its ``reconstruct_pair`` call.

    python benchmarks/studies/pair_refine.py --pairs 24 \\
        --json benchmarks/results/studies/pair_refine.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report

from _report import relative_paths, write  # noqa: E402

from halohand.data.pairs import PairSampler  # noqa: E402
from halohand.evaluation.metrics import iou, mesh_metrics  # noqa: E402
from halohand.fitting.keypoint_refiner import load_refiner, refine_keypoints  # noqa: E402
from halohand.fitting.pair_refine import refine_pair  # noqa: E402
from halohand.handmodel.prior import IdentityPrior  # noqa: E402
from halohand.inference.halo import HALO  # noqa: E402
from halohand.inference.pair_refiner import load_pair_refiner, pair_refiner_path  # noqa: E402
from halohand.interaction.plausibility import penetration_depth, penetration_volume  # noqa: E402
from halohand.objects.inside import contains  # noqa: E402


def _truth_samples(
    mesh: trimesh.Trimesh, rng: np.random.Generator, surface_samples: int = 20_000
) -> dict[str, np.ndarray]:
    lo, hi = mesh.bounds[0] - 0.01, mesh.bounds[1] + 0.01
    seed = int(rng.integers(1 << 30))
    near, near_idx = trimesh.sample.sample_surface(mesh, 20_000, seed=seed)
    # The Chamfer samples come from the same seed: with 20k they are the IoU points' own,
    # with more the IoU points and the pairs drawn after them stay those of 20k.
    surface, idx = near, near_idx
    if surface_samples != 20_000:
        surface, idx = trimesh.sample.sample_surface(mesh, surface_samples, seed=seed)
    points = np.concatenate(
        [rng.uniform(lo, hi, (20_000, 3)), near + rng.normal(0, 0.005, near.shape)]
    )
    return {
        "points": points, "occ": contains(mesh.vertices, mesh.faces, points),
        "surface": surface, "normals": mesh.face_normals[idx],
    }  # fmt: skip


def score(meshes, truths, samples, pair_points, pair_occ, surface_samples=20_000) -> dict:
    per = [
        mesh_metrics(
            m, s["points"], s["occ"], s["surface"], s["normals"], n_samples=surface_samples
        )
        for m, s in zip(meshes, samples, strict=True)
    ]
    union = contains(meshes[0].vertices, meshes[0].faces, pair_points) | contains(
        meshes[1].vertices, meshes[1].faces, pair_points
    )
    pd = penetration_depth(meshes[0], meshes[1], symmetric=True)
    return {
        "iou_hand": float(np.mean([m.iou for m in per])),
        "chamfer_l1_mm": float(np.mean([m.chamfer_l1_mm for m in per])),
        "iou_pair": iou(union, pair_occ),
        "penetration_cm3": penetration_volume(meshes[0], meshes[1]),
        "apd_mm": pd["mean"] * 1e3, "mpd_mm": pd["max"] * 1e3,
    }  # fmt: skip


def held_out_pair(
    sampler: PairSampler, rng: np.random.Generator, surface_samples: int = 20_000
) -> tuple[Any, list[trimesh.Trimesh], list[dict[str, np.ndarray]], np.ndarray, np.ndarray]:
    """The study's next held-out pair and its truth: ``(pair, true meshes, per-hand truth
    samples, [40k, 3] points of the pair's box, their inside-either-hand labels)``. Every
    draw of a pair comes from here, in this order, so the figures that show the study's
    pairs (``benchmarks/figures/pair_*_sheet.py``) draw the same ones."""
    pair = sampler.sample(rng)
    truths = [trimesh.Trimesh(h.vertices, h.faces, process=False) for h in pair.hands]
    samples = [_truth_samples(t, rng, surface_samples) for t in truths]
    lo = np.minimum(truths[0].bounds[0], truths[1].bounds[0]) - 0.01
    hi = np.maximum(truths[0].bounds[1], truths[1].bounds[1]) + 0.01
    pair_points = rng.uniform(lo, hi, (40_000, 3))
    pair_occ = contains(truths[0].vertices, truths[0].faces, pair_points) | contains(
        truths[1].vertices, truths[1].faces, pair_points
    )
    return pair, truths, samples, pair_points, pair_occ


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--seed", type=int, default=90_210, help="held-out sampler seed")
    parser.add_argument("--noise-mm", type=float, default=10.0, help="0: no noisy rows")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--surface-samples", type=int, default=20_000,
        help="surface samples per hand for Chamfer-L1, on the true and on the predicted "
        "mesh (halohand evaluate and the single-hand tables: 100000)",
    )  # fmt: skip
    parser.add_argument(
        "--thickness-mean", type=float, default=0.0,
        help="relative thickness offset every part of the held-out hands starts from "
        "(the shipped HALO's data: 0.15; as 'halohand data pairs --thickness-mean')",
    )  # fmt: skip
    parser.add_argument("--pair-refiner", type=Path, default=None,
                        help="learned refinement weights (default: the shipped ones)")  # fmt: skip
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    prior = IdentityPrior(thickness_mean=args.thickness_mean)
    halo, refiner = HALO.pretrained(), load_refiner()
    sampler = PairSampler(identity_prior=prior)
    weights = args.pair_refiner or pair_refiner_path()
    learned = None if weights is None else load_pair_refiner(weights)
    rng = np.random.default_rng(args.seed)
    rows: dict[str, list[dict[str, Any]]] = {}
    t_start = time.perf_counter()
    for i in range(args.pairs):
        pair, truths, samples, pair_points, pair_occ = held_out_pair(
            sampler, rng, args.surface_samples
        )
        kp = pair.keypoints
        inputs: dict[str, np.ndarray] = {"halo": kp}
        refined = refine_pair(halo, kp)
        inputs["halo+refine"] = refined.keypoints
        if learned is not None:
            inputs["learned"] = inputs["learned+separate"] = kp
        if args.noise_mm > 0:
            noisy = kp + rng.normal(0, args.noise_mm * 1e-3, kp.shape)
            inputs["noisy"] = noisy
            cleaned = refine_keypoints(noisy, model=refiner)
            inputs["noisy+kprefine"] = cleaned
            inputs["noisy+kprefine+refine"] = refine_pair(halo, cleaned).keypoints
        for name in ("halo", "halo+refine", "noisy+kprefine+refine"):
            if name in inputs:
                inputs[f"{name}+separate"] = inputs[name]
        results = {
            "truth": score(truths, truths, samples, pair_points, pair_occ, args.surface_samples)
        }
        for name, k in inputs.items():
            t_mesh = time.perf_counter()
            pair_meshes = halo.reconstruct_pair(
                k, units="m", resolution=args.resolution, colors=False,
                separate=name.endswith("+separate"),
                refine_occupancy=learned if name.startswith("learned") else False,
            )  # fmt: skip
            mesh_s = time.perf_counter() - t_mesh
            meshes = pair_meshes.meshes
            row = score(list(meshes), truths, samples, pair_points, pair_occ, args.surface_samples)
            row["mesh_s"] = mesh_s
            row["mpjpe_mm"] = float(np.linalg.norm(k - kp, axis=-1).mean() * 1e3)
            results[name] = row
        results["halo+refine"]["refine_s"] = refined.seconds
        for name, row in results.items():
            rows.setdefault(name, []).append({"pair": i, "interaction": pair.interaction, **row})
        print(f"pair {i} {pair.interaction}: " + "  ".join(
            f"{k} pen {r['penetration_cm3']:.2f} iou {r['iou_pair']:.3f}"
            for k, r in results.items()), flush=True)  # fmt: skip
    keys = sorted({k for rs in rows.values() for r in rs for k in r} - {"pair", "interaction"})
    summary = {
        name: {k: float(np.mean([r[k] for r in rs if k in r])) for k in keys if k in rs[0]}
        for name, rs in rows.items()
    }
    for name, row in summary.items():
        print(name, {k: round(v, 4) for k, v in row.items()})
    base, ref = summary["halo"]["penetration_cm3"], summary["halo+refine"]["penetration_cm3"]
    sep = summary["halo+separate"]["penetration_cm3"]
    reductions = {
        f"penetration_reduction_{name}": 1.0 - summary[name]["penetration_cm3"] / base
        for name in ("learned", "learned+separate")
        if name in summary and base > 0
    }
    command = "python benchmarks/studies/pair_refine.py " + " ".join(argv or sys.argv[1:])
    shown_weights = None if weights is None else str(Path(weights).resolve())
    doc = {
        "command": command,
        "pairs": args.pairs, "seed": args.seed, "resolution": args.resolution,
        "surface_samples": args.surface_samples,
        "penetration_reduction": 1.0 - ref / base if base > 0 else None,
        "penetration_reduction_separate": 1.0 - sep / base if base > 0 else None,
        **reductions, "pair_refiner": shown_weights,
        "summary": summary, "seconds": round(time.perf_counter() - t_start, 1), "rows": rows,
    }  # fmt: skip
    # stored results name no machine's paths: relative to the checkout, <tmp>
    doc = relative_paths(doc)
    if args.json:
        write(doc, args.json, indent=2, machine=False)
    return doc


if __name__ == "__main__":
    main()
