"""The keypoint refiner on held-out noisy hands: joint error, and the meshes it leads to.

1. MPJPE (mm) of noisy and refined keypoints on held-out pairs of the embedded hand model
   (bank and pair seeds the training never used; 30 % single hands, as in training), for
   isotropic Gaussian noise of sigma 5, 10, 15 mm per axis and for the training's
   structured noise (depth along a view ray, whole-finger shifts, swapped fingers).
2. Meshes: for right hands with ground-truth surfaces (the posed template, thickness
   offsets included), HALO meshes of the clean, the noisy (sigma 10 mm) and the refined
   keypoints, scored against the true surface: IoU on 20k uniform points of the true box
   grown by 1 cm plus 20k points near the true surface (5 mm Gaussian), Chamfer-L1 (mm).

    python benchmarks/studies/keypoint_refiner.py \
        --json benchmarks/results/studies/keypoint_refiner.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from halohand.evaluation.metrics import mesh_metrics  # noqa: E402
from halohand.fitting.keypoint_refiner import load_refiner  # noqa: E402
from halohand.handmodel.prior import IdentityPrior, PosePrior  # noqa: E402
from halohand.handmodel.torch_model import TorchHandModel  # noqa: E402
from halohand.objects.inside import contains  # noqa: E402
from halohand.training.keypoint_refiner import clean_pairs, corrupt, hand_bank  # noqa: E402


def _errors(pred: torch.Tensor, clean: torch.Tensor, present: torch.Tensor) -> np.ndarray:
    err = torch.linalg.vector_norm(pred - clean, dim=-1)  # [n, 2, 21]
    per_hand = err.mean(-1)[present]
    return per_hand.numpy() * 1000.0


def joint_table(model: Any, n: int, seed: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    clean, present = clean_pairs(hand_bank(n, seed + 1).to(torch.float32), n, gen)
    out: dict[str, Any] = {}
    noises = {f"gaussian_{s}mm": s for s in (5, 10, 15)}
    noises["structured_max20mm"] = None
    for name, sigma in noises.items():
        if sigma is None:
            noisy = corrupt(clean, gen, 20.0)
        else:
            noisy = clean + sigma * 1e-3 * torch.randn(clean.shape, generator=gen)
        with torch.no_grad():
            refined = model.refine(noisy, present)
        before, after = _errors(noisy, clean, present), _errors(refined, clean, present)
        # Per present hand (rows in item order): was its pair complete?
        two_hand = np.repeat(present.all(1).numpy(), present.sum(1).numpy())
        out[name] = {
            "hands": int(present.sum()),
            "noisy_mean_mm": float(before.mean()), "refined_mean_mm": float(after.mean()),
            "noisy_median_mm": float(np.median(before)),
            "refined_median_mm": float(np.median(after)),
            "reduction": float(1.0 - after.mean() / before.mean()),
            "reduction_two_hand_items": float(1 - after[two_hand].mean() / before[two_hand].mean()),
            "reduction_single_hand_items": float(
                1 - after[~two_hand].mean() / before[~two_hand].mean()
            ),
        }  # fmt: skip
    return out


def true_hands(
    n: int, seed: int, thickness_mean: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(keypoints [n, 21, 3], vertices [n, V, 3], faces)`` right hands, metres."""
    rng = np.random.default_rng(seed)
    poses, identities = PosePrior(), IdentityPrior(thickness_mean=thickness_mean)
    model = TorchHandModel()
    kps, verts = [], []
    for _ in range(n):
        ident = identities.sample(rng)
        pose = poses.sample(rng, identity=ident)
        f = torch.tensor(ident.length_factors)[None]
        w = torch.tensor([ident.palm_width], dtype=torch.float64)
        scale = model.scale_for_hand_length(torch.tensor([ident.hand_length]), f, w)
        out = model(
            torch.from_numpy(pose.as_array())[None], f, w, scale,
            thickness_offsets=torch.tensor(ident.thickness_offsets)[None], with_vertices=True,
        )  # fmt: skip
        kps.append(out.keypoints[0].numpy())
        verts.append(out.vertices[0].numpy())
    return np.stack(kps), np.stack(verts), model.faces


def mesh_table(
    refiner: Any, n: int, seed: int, resolution: int, thickness_mean: float = 0.0
) -> dict[str, Any]:
    import trimesh

    from halohand.inference.halo import HALO

    halo = HALO.pretrained()
    kps, verts, faces = true_hands(n, seed, thickness_mean)
    rng = np.random.default_rng(seed + 7)
    rows: dict[str, list[dict[str, float]]] = {"clean": [], "noisy": [], "refined": []}
    for i in range(n):
        truth = trimesh.Trimesh(verts[i], faces, process=False)
        lo, hi = truth.bounds[0] - 0.01, truth.bounds[1] + 0.01
        surface, idx = trimesh.sample.sample_surface(truth, 20_000, seed=int(rng.integers(1 << 30)))
        points = np.concatenate(
            [rng.uniform(lo, hi, (20_000, 3)), surface + rng.normal(0, 0.005, surface.shape)]
        )
        occ = contains(truth.vertices, truth.faces, points)
        normals = truth.face_normals[idx]
        noisy = kps[i] + rng.normal(0.0, 0.010, kps[i].shape)
        refined = refine_one(refiner, noisy)
        for name, kp in (("clean", kps[i]), ("noisy", noisy), ("refined", refined)):
            mesh = halo.reconstruct(
                kp, side="right", units="m", resolution=resolution, colors=False
            )
            m = mesh_metrics(mesh, points, occ, surface, normals, n_samples=20_000)
            rows[name].append({
                "iou": m.iou, "chamfer_l1_mm": m.chamfer_l1_mm,
                "mpjpe_mm": float(np.linalg.norm(kp - kps[i], axis=-1).mean() * 1000),
            })  # fmt: skip
    summary = {
        name: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for name, rs in rows.items()
    }
    wins = sum(r["iou"] > q["iou"] for r, q in zip(rows["refined"], rows["noisy"], strict=True))
    return {"hands": n, "resolution": resolution, "thickness_mean": thickness_mean, "mean": summary,
            "refined_iou_beats_noisy": f"{wins}/{n}", "rows": rows}  # fmt: skip


def refine_one(refiner: Any, kp: np.ndarray) -> np.ndarray:
    from halohand.fitting.keypoint_refiner import refine_keypoints

    return refine_keypoints(kp, sides=("right",), model=refiner)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="default: shipped")
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--mesh-hands", type=int, default=30)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--seed", type=int, default=424_242, help="held-out seed")
    parser.add_argument(
        "--thickness-mean", type=float, default=0.0,
        help="relative thickness offset the mesh hands' parts start from (the shipped HALO's "
        "data: 0.15; as 'halohand data generate --thickness-mean')",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    refiner = load_refiner(args.weights)
    t0 = time.perf_counter()
    doc: dict[str, Any] = {
        "command": "python benchmarks/studies/keypoint_refiner.py " + " ".join(argv or sys.argv[1:])
    }
    doc["joints"] = joint_table(refiner, args.pairs, args.seed)
    for name, row in doc["joints"].items():
        print(f"{name}: {row['noisy_mean_mm']:.2f} -> {row['refined_mean_mm']:.2f} mm "
              f"({100 * row['reduction']:.1f} % less)", flush=True)  # fmt: skip
    if args.mesh_hands:
        doc["meshes_sigma10mm"] = mesh_table(
            refiner, args.mesh_hands, args.seed + 99, args.resolution, args.thickness_mean
        )
        for name, row in doc["meshes_sigma10mm"]["mean"].items():
            print(f"mesh {name}: IoU {row['iou']:.4f}  Chamfer-L1 {row['chamfer_l1_mm']:.3f} mm  "
                  f"MPJPE {row['mpjpe_mm']:.2f} mm", flush=True)  # fmt: skip
    doc["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        from halohand.core.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(doc, indent=2))
    return doc


if __name__ == "__main__":
    main()
