"""How much of the model's test error is a per-hand girth that the keypoints show.

Usage::

    .venv/bin/python benchmarks/studies/girth_level.py --checkpoint CKPT --data DIR
        [--fit-split train] [--fit-hands 64] [--test-hands 50] [--resolution 256]
        [--threads 1] [--heldout 0] [--heldout-seed 2026] [--thickness-mean M] [--json OUT]

The data's hands take their girth from the identity: every finger part's radial scale is
``sqrt(length factor * palm width)`` and the palm's width is the palm-width factor
(:meth:`halohand.handmodel.pose.HandIdentity.thickness_factors`). The knuckle spread of the
keypoints shows the palm width, but the canonical skeleton the network reads does not
(it keeps ~0.06 of the spread's dependence on it), so the network has to read it from its
pose code. The test hands whose meshes are wrong are wrong by a whole-hand girth (most
predicted vertices on one side of the truth).

The study asks how much a per-hand mesh level that follows the knuckle spread would give:

1. fit hands (``--fit-split``; never the test split): each hand's best level, the one of
   a fine grid that maximizes IoU on its stored uniform + near-surface points (the
   probabilities from ``HALO.occupancy``, the same network as the meshes), and the
   feature ``x = log(|kp5 - kp17| / |kp0 - kp9|)`` (index to little knuckle over wrist to
   middle knuckle, from the input keypoints);
2. a least-squares line ``logit(level) = a + b x``;
3. test hands: meshes by ``HALO.meshes`` at the model's own level and at the line's level,
   scored by the evaluation's own code (``halohand evaluate``: IoU on uniform and on
   uniform + near points, Chamfer-L1 against the stored surface samples).

With ``--heldout N``, the same two meshes are also scored on N hands that are in neither
the repository nor the data: those of ``heldout_reconstruct.py`` (same seed and stream, the
parts' thickness drawn around ``--thickness-mean``), their points sampled by the data
engine's own :func:`halohand.data.engine.sample_hand`.

Also reported: each test hand's girth bias at the model's level (median signed distance of
the mesh's vertices to the true surface, mm, + outside), its correlation with ``x`` and with
the hand's Chamfer-L1, and a least-squares fit of it on the data's own identity parameters,
recovered from the data's seeds (``halohand.data.engine.hand_seed``: the palm-width factor
and the mean of the unseen thickness offsets, ``--thickness-mean`` being the data's).
``spread_exponents``: how the knuckle spread of the input keypoints and of the canonical
skeleton scale with the palm-width factor, least squares of ``log |k5 - k17|`` on the log
overall scale, palm-width and palm-length factors over 150 rest-pose identities of the prior.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402

#: Probability levels searched per fit hand.
LEVELS = np.round(np.arange(0.20, 0.905, 0.01), 3)


def knuckle_spread(keypoints: np.ndarray) -> float:
    """``log(|kp5 - kp17| / |kp0 - kp9|)`` of ``[21, 3]`` project-order keypoints."""
    kp = np.asarray(keypoints, dtype=np.float64)
    return float(np.log(np.linalg.norm(kp[5] - kp[17]) / np.linalg.norm(kp[0] - kp[9])))


def spread_exponents(n: int = 150, seed: int = 3) -> dict[str, dict[str, float]]:
    """Exponents of the keypoints' and the canonical skeleton's knuckle spread in the overall
    scale, palm-width and palm-length factors (least squares over ``n`` identities)."""
    import torch

    from halohand.canonical import canonicalize
    from halohand.handmodel.prior import IdentityPrior
    from halohand.handmodel.webxr import default_model

    model, prior = default_model(), IdentityPrior()
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        identity = prior.sample(rng)
        kp = np.asarray(model.pose(None, identity).keypoints)
        canon = canonicalize(torch.as_tensor(kp)).canonical_keypoints.numpy()
        rows.append((
            model.identity_frames(identity)[2], identity.palm_width, identity.length_factors[0],
            np.linalg.norm(kp[5] - kp[17]), np.linalg.norm(canon[5] - canon[17]),
        ))  # fmt: skip
    scale, width, length, raw, canon = np.log(np.array(rows)).T
    design = np.stack([np.ones(n), scale, width, length], 1)
    out = {}
    for name, y in (("keypoints", raw), ("canonical_skeleton", canon)):
        c = np.linalg.lstsq(design, y, rcond=None)[0]
        out[name] = {"scale": float(c[1]), "palm_width": float(c[2]), "palm_length": float(c[3])}
    return out


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1.0 - p))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--fit-split", default="train", choices=("train", "val"))
    parser.add_argument("--fit-hands", type=int, default=64)
    parser.add_argument("--test-hands", type=int, default=50)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--heldout", type=int, default=0)
    parser.add_argument("--heldout-seed", type=int, default=2026)
    parser.add_argument("--thickness-mean", type=float, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import torch

    from halohand import HALO
    from halohand.data.dataset import OccupancyDataset, read_manifest
    from halohand.evaluation.metrics import iou, mesh_metrics
    from halohand.inference.halo import prepare_hands
    from halohand.interaction.object_field import MeshDistance, mesh_signed_distance
    from halohand.objects.inside import contains

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    model = HALO.from_checkpoint(args.checkpoint)
    base_level = float(model.iso_level)

    fit = OccupancyDataset(args.data, args.fit_split, n_points=None, n_surface=None)
    xs, best = [], []
    for i in range(min(args.fit_hands, len(fit))):
        hand = fit.hand(i)
        pts = np.concatenate([hand["points_uniform"], hand["points_near"]])
        occ = np.concatenate([hand["occ_uniform"], hand["occ_near"]]).astype(bool)
        prob = model.occupancy(
            torch.as_tensor(pts, dtype=torch.float32), hand["keypoints"], side=str(hand["side"]),
            units="m",
        ).numpy()  # fmt: skip
        scores = [iou(prob >= lv, occ) for lv in LEVELS]
        best.append(float(LEVELS[int(np.argmax(scores))]))
        xs.append(knuckle_spread(hand["keypoints"]))
    x_fit, y_fit = np.array(xs), _logit(np.array(best))
    design = np.stack([np.ones_like(x_fit), x_fit], 1)
    (a, b), *_ = np.linalg.lstsq(design, y_fit, rcond=None)
    resid = y_fit - design @ np.array([a, b])
    r2 = 1.0 - float((resid**2).sum() / ((y_fit - y_fit.mean()) ** 2).sum())

    def scored(i: int, hand: dict) -> dict:
        x = knuckle_spread(hand["keypoints"])
        level = float(1.0 / (1.0 + math.exp(-(a + b * x))))
        pts = np.concatenate([hand["points_uniform"], hand["points_near"]])
        occ = np.concatenate([hand["occ_uniform"], hand["occ_near"]])
        row: dict = {"hand": i, "knuckle_spread": x, "level": level}
        # the hand's network inputs and the truth's distance field serve both levels
        prepared = prepare_hands(
            hand["keypoints"], str(hand["side"]), "m", convention="rig", native=model.native
        )
        truth = MeshDistance(hand["mesh_vertices"], hand["mesh_faces"])
        for name, lv in (("fixed", base_level), ("spread", level)):
            model.iso_level = lv
            mesh = next(model.meshes(prepared, args.resolution, colors=False))
            m = mesh_metrics(mesh, pts, occ, hand["pointcloud"], hand["pointcloud_normals"])
            inside = contains(mesh.vertices, mesh.faces, hand["points_uniform"])
            sd = mesh_signed_distance(torch.as_tensor(np.asarray(mesh.vertices)[::4]), truth)
            sd = sd.numpy()
            row[name] = {
                "iou_uniform": float(iou(inside, hand["occ_uniform"])),
                "iou_mixed": float(m.iou),
                "chamfer_l1_mm": m.chamfer_l1 * 1000.0,
                "girth_bias_mm": float(np.median(sd) * 1000.0),
            }
        model.iso_level = base_level
        print(i, row, flush=True)
        return row

    def summarize(rows: list[dict]) -> dict:
        out = {}
        for way in ("fixed", "spread"):
            out[way] = {
                key: float(np.mean([r[way][key] for r in rows]))
                for key in ("iou_uniform", "iou_mixed", "chamfer_l1_mm")
            }
            out[way]["girth_bias_abs_mean_mm"] = float(
                np.mean([abs(r[way]["girth_bias_mm"]) for r in rows])
            )
        return out

    test = OccupancyDataset(args.data, "test", n_points=None, n_surface=None)
    rows = [scored(i, test.hand(i)) for i in range(min(args.test_hands, len(test)))]
    x_test = np.array([r["knuckle_spread"] for r in rows])
    bias = np.array([r["fixed"]["girth_bias_mm"] for r in rows])
    chamfer = np.array([r["fixed"]["chamfer_l1_mm"] for r in rows])
    summary = summarize(rows)
    # the test hands' identities, drawn first from each hand's seed (WebXRHandSource.sample)
    from halohand.data.engine import hand_seed
    from halohand.handmodel.prior import IdentityPrior

    prior = IdentityPrior(thickness_mean=args.thickness_mean or 0.0)
    seed = int(read_manifest(args.data)["settings"]["seed"])
    ids = [
        prior.sample(np.random.default_rng(hand_seed(seed, "test", i, 0))) for i in range(len(rows))
    ]
    width = np.log([ident.palm_width for ident in ids])
    offsets = np.array([np.mean(ident.thickness_offsets) - prior.thickness_mean for ident in ids])
    design = np.stack([np.ones(len(rows)), width, offsets], 1)
    coef = np.linalg.lstsq(design, bias, rcond=None)[0]
    resid = bias - design @ coef
    identity_fit = {
        "corr_bias_palm_width": float(np.corrcoef(width, bias)[0, 1]),
        "corr_bias_thickness_offsets": float(np.corrcoef(offsets, bias)[0, 1]),
        "r2_palm_width_and_offsets": 1.0
        - float((resid**2).sum() / ((bias - bias.mean()) ** 2).sum()),
        "coefficients_mm": {
            "log_palm_width": float(coef[1]),
            "thickness_offset_mean": float(coef[2]),
        },
    }
    heldout_rows: list[dict] = []
    if args.heldout:
        from heldout_reconstruct import sample_hands

        from halohand.data.engine import dequantize, sample_hand

        for i, posed in enumerate(
            sample_hands(args.heldout, args.heldout_seed, args.thickness_mean)
        ):
            arrays, _ = sample_hand(posed, np.random.default_rng(args.heldout_seed + i))
            n_uniform = len(arrays["points_uniform"])
            hand = {
                "points_uniform": dequantize(arrays["points_uniform"]),
                "points_near": dequantize(arrays["points_near"]),
                "occ_uniform": np.unpackbits(arrays["occ_uniform"])[:n_uniform].astype(bool),
                "occ_near": np.unpackbits(arrays["occ_near"])[: len(arrays["points_near"])].astype(
                    bool
                ),
                "pointcloud": dequantize(arrays["pointcloud"]),
                "pointcloud_normals": arrays["pointcloud_normals"].astype(np.float64),
                "keypoints": arrays["keypoints"],
                "side": "right",
                "mesh_vertices": arrays["mesh_vertices"],
                "mesh_faces": arrays["mesh_faces"],
            }
            heldout_rows.append(scored(i, hand))
    emit(
        {
            "study": "girth_level",
            "checkpoint": args.checkpoint,
            "data": args.data,
            "resolution": args.resolution,
            "model_level": base_level,
            "fit": {
                "split": args.fit_split,
                "hands": len(best),
                "logit_level_intercept": float(a),
                "logit_level_slope": float(b),
                "r2": r2,
                "best_levels": best,
            },
            "test_hands": len(rows),
            "corr_bias_knuckle_spread": float(np.corrcoef(x_test, bias)[0, 1]),
            "corr_abs_bias_chamfer": float(np.corrcoef(np.abs(bias), chamfer)[0, 1]),
            "girth_bias_std_mm": float(bias.std()),
            "identity_fit": identity_fit,
            "spread_exponents": spread_exponents(),
            "summary": summary,
            "heldout": {
                "hands": len(heldout_rows),
                "seed": args.heldout_seed,
                "thickness_mean": args.thickness_mean,
                "summary": summarize(heldout_rows) if heldout_rows else None,
                "rows": heldout_rows,
            },
            "hands": rows,
            "seconds": time.perf_counter() - t_start,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
