"""The best scores any keypoint-only model can reach on the project's data, in its metrics.

Usage::

    .venv/bin/python benchmarks/studies/keypoint_ceiling.py [--hands 20] [--seed 7]
        [--shape-scale S] [--thickness-mean M] [--json OUT]

The data's hands have per-part thickness offsets that keypoints do not determine
(``docs/hand_model.md``, "Identity"), and with ``--shape-scale`` (the data option of the
same name) soft-tissue correctives too. A perfect keypoint-driven model can at best predict
the hand with those at their mean (zero, or the data option ``--thickness-mean``). Per
sampled hand (the data source's own priors, a seed the data does not use): the ground
truth is stored exactly as the data engine stores it
(:func:`halohand.data.engine.sample_hand`), and two meshes are scored as ``halohand
evaluate`` scores a prediction (:func:`halohand.evaluation.mesh_metrics`, IoU on the 100k
uniform points and on uniform + near-surface points, Chamfer-L1 and normal consistency
against the stored 100k surface samples, 100k samples on the mesh):

* ``mean_thickness``: the same identity and pose with the offsets at their mean and no
  correctives (same keypoints): the ceiling of a keypoint-only model;
* ``ground_truth``: the ground-truth mesh itself: the floor of the metrics (finite
  sampling; IoU exactly 1 up to the winding-number test);
* with ``--shape-scale``, ``mean_thickness_no_correctives``: the same prediction against the
  same hand without its correctives (paired: what the correctives alone cost).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hands", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--shape-scale",
        type=float,
        default=None,
        help="draw the soft-tissue correctives at this multiple of their spread",
    )
    parser.add_argument(
        "--thickness-mean",
        type=float,
        default=None,
        help="every part's thickness offset starts from this mean (the data option)",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import trimesh

    from halohand.data.engine import dequantize, sample_hand
    from halohand.evaluation.metrics import mesh_metrics
    from halohand.handmodel import make_source
    from halohand.handmodel.shape import NUM_SHAPES

    source = make_source("webxr", shape_scale=args.shape_scale, thickness_mean=args.thickness_mean)
    mean_offsets = np.full(16, source.identity_prior.thickness_mean)
    rng = np.random.default_rng(args.seed)
    rows: dict[str, list[dict[str, float]]] = {"mean_thickness": [], "ground_truth": []}
    if args.shape_scale:
        rows["mean_thickness_no_correctives"] = []

    def truth(hand, gen: np.random.Generator) -> dict[str, np.ndarray]:
        arrays, _ = sample_hand(hand, gen)
        uniform = dequantize(arrays["points_uniform"])
        near = dequantize(arrays["points_near"])
        occ = np.concatenate(
            [
                np.unpackbits(arrays["occ_uniform"])[: len(uniform)],
                np.unpackbits(arrays["occ_near"])[: len(near)],
            ]
        ).astype(bool)
        return {
            "uniform": uniform, "points": np.concatenate([uniform, near]), "occ": occ,
            "pc": dequantize(arrays["pointcloud"]),
            "normals": arrays["pointcloud_normals"].astype(np.float64),
        }  # fmt: skip

    def score(hand, t: dict[str, np.ndarray]) -> dict[str, float]:
        mesh = trimesh.Trimesh(hand.vertices, hand.faces, process=False)
        mixed = mesh_metrics(mesh, t["points"], t["occ"], t["pc"], t["normals"])
        n_u = len(t["uniform"])
        uni = mesh_metrics(mesh, t["uniform"], t["occ"][:n_u], t["pc"], t["normals"], n_samples=1)
        return {
            "iou_uniform": uni.iou,
            "iou_mixed": mixed.iou,
            "chamfer_l1_mm": mixed.chamfer_l1_mm,
            "normal_consistency": mixed.normal_consistency,
        }

    t0 = time.perf_counter()
    for i in range(args.hands):
        identity = source.identity_prior.sample(rng)
        pose = source.pose_prior.sample(rng, identity, source.model)
        real = source.model.pose(pose, identity)
        flat = dataclasses.replace(identity, shape=np.zeros(NUM_SHAPES))
        mean = source.model.pose(pose, dataclasses.replace(flat, thickness_offsets=mean_offsets))
        if not np.allclose(real.keypoints, mean.keypoints):
            raise RuntimeError("thickness offsets or correctives moved the keypoints")
        t = truth(real, rng)
        rows["mean_thickness"].append(score(mean, t))
        rows["ground_truth"].append(score(real, t))
        if args.shape_scale:
            # The same hand without its correctives (a generator of its own, so the rows
            # above are the hands of the plain run): the ceiling they alone take away.
            plain = source.model.pose(pose, flat)
            t = truth(plain, np.random.default_rng([args.seed, i]))
            rows["mean_thickness_no_correctives"].append(score(mean, t))
    report: dict[str, object] = {
        "benchmark": "keypoint_ceiling",
        "hands": args.hands,
        "seed": args.seed,
        "shape_scale": args.shape_scale,
        "thickness_mean": args.thickness_mean,
        "seconds": time.perf_counter() - t0,
    }
    for name, per_hand in rows.items():
        report[name] = {
            key: {
                "mean": float(np.mean([r[key] for r in per_hand])),
                "min": float(np.min([r[key] for r in per_hand])),
                "max": float(np.max([r[key] for r in per_hand])),
            }
            for key in per_hand[0]
        }
    emit(report, args.json)


if __name__ == "__main__":
    main()
