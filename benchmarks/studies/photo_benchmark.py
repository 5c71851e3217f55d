"""The photo path scored on rendered photos with ground truth (``halohand data render``).

For each image of a held-out rendered set (seed used nowhere else), run
:func:`halohand.from_image` with the true focal length and one hand, with and without the
hand-model fit (:mod:`halohand.image.fit`), and score against the rendered hand:

* detection: a hand found at all, and found on the right side (handedness);
* 2D error (px): mean distance of the 21 landmarks (raw) / of the fitted keypoints'
  projections (fit) to the true 2D keypoints;
* MPJPE (mm): mean 3D distance to the true keypoints after moving the wrists together
  (root-relative), and PA-MPJPE after the best similarity (Procrustes); the absolute wrist
  depth error (mm) says how well the placement got the distance;
* plausibility (:func:`halohand.image.fit.plausibility`): bones outside the identity prior's
  2.5-sigma range, flexion/abduction angles beyond the joint limits, for the placed
  keypoints (raw), the fit and the ground truth itself (the measure's floor);
* the fitted mesh against the true mesh (same topology): per-vertex error after Procrustes
  (mm);
* meshes against the true mesh (IoU on 30k points in its box, Chamfer-L1 in mm), each
  first moved by the similarity that takes its keypoints onto the true keypoints (shape, not
  placement): HALO from the placed landmarks, HALO from the fit, the fitted model's mesh;
* fit seconds per hand;
* detection rates by background kind, skin tone (light / dark) and the hand's extent in the
  image (mask bounding box over the image side), over the visible hands only (all keypoints
  in the frame: :func:`halohand.apps.synthetic.hand_visible`) with their count, and the raw
  landmarks' 2D error per joint (percent of the hand's size: a landmark placed elsewhere on
  the joint than the model's joint shows as a constant offset).

Images where the found hand is not the rendered one (2D error over half the hand's size) are
counted as missed. The rendered set is made (or completed) first in ``--data``.

    python benchmarks/studies/photo_benchmark.py --data /tmp/photo_bench --n 150 \
        --json benchmarks/results/studies/photo_benchmark.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from halohand.core.alignment import procrustes_align, similarity_transform

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402

#: Held-out seed of the benchmark's renders (no other script or test renders with it).
SEED = 20261205


def _errors(kp: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    root = np.linalg.norm((kp - kp[0]) - (gt - gt[0]), axis=1).mean() * 1e3
    pa = np.linalg.norm(procrustes_align(kp, gt) - gt, axis=1).mean() * 1e3
    return float(root), float(pa)


def similarity(pred: np.ndarray, gt: np.ndarray):
    """The best similarity ``x -> s R x + t`` taking ``pred`` ``[N, 3]`` onto ``gt``."""
    scale, rot, trans = similarity_transform(pred, gt)
    return lambda x: scale * np.asarray(x) @ rot.T + trans


def mesh_scores(
    vertices: np.ndarray, faces: np.ndarray, gt_v: np.ndarray, gt_f: np.ndarray, seed: int
) -> tuple[float, float]:
    """``(IoU, Chamfer-L1 mm)`` of a mesh against the true mesh: IoU on 30k points uniform
    in the true mesh's box (1 cm margin), Chamfer-L1 on 10k area-uniform samples each."""
    import trimesh

    from halohand.evaluation.metrics import chamfer_and_normals, iou
    from halohand.objects.inside import contains

    rng = np.random.default_rng(seed)
    lo, hi = gt_v.min(0) - 0.01, gt_v.max(0) + 0.01
    pts = rng.uniform(lo, hi, size=(30_000, 3))
    score = iou(contains(vertices, faces, pts), contains(gt_v, gt_f, pts))
    samples = []
    for v, f in ((vertices, faces), (gt_v, gt_f)):
        mesh = trimesh.Trimesh(v, f, process=False)
        p, idx = trimesh.sample.sample_surface(mesh, 10_000, seed=int(rng.integers(2**31)))
        samples.append((p, mesh.face_normals[idx]))
    cd, _, _ = chamfer_and_normals(*samples[0], *samples[1])
    return score, cd * 1e3


def _summary(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    if not len(arr):
        return {}
    return {
        "mean": round(float(arr.mean()), 2),
        "median": round(float(np.median(arr)), 2),
        "p90": round(float(np.percentile(arr, 90)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/halohand_photo_bench"))
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--renderer", default="auto")
    parser.add_argument("--resolution", type=int, default=64, help="HALO lattice cells.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from PIL import Image

    from halohand.apps.synthetic import hand_visible, read_labels, render_set, skin_group
    from halohand.image import from_image
    from halohand.image.fit import plausibility
    from halohand.inference.halo import HALO

    halo = HALO.pretrained()
    t0 = time.perf_counter()
    rendered = render_set(args.data, args.n, args.seed, args.size, args.renderer, log=None)
    render_s = time.perf_counter() - t0
    rows: dict[str, list[float]] = {}
    counts = {"images": 0, "found": 0, "found_right_side": 0, "wrong_hand": 0}
    plaus: dict[str, list[dict[str, float]]] = {"raw": [], "fit": [], "truth": []}
    by_background: dict[int, list[int]] = {}
    by_skin: dict[str, list[int]] = {}
    by_span: dict[str, list[int]] = {}
    joint_px_pct: list[np.ndarray] = []
    visible_hits: list[int] = []

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(value)

    for i in range(args.n):
        labels = read_labels(args.data, i)
        image = np.asarray(Image.open(args.data / "images" / f"{i:06d}.png").convert("RGB"))
        gt2, gt3, k = labels["keypoints_2d"], labels["keypoints_3d"], labels["intrinsics"]
        side = "right" if int(labels["side"]) == 0 else "left"
        counts["images"] += 1
        size_px = np.linalg.norm(np.diff(gt2[[0, 9, 10, 11, 12]], axis=0), axis=1).sum()
        plaus["truth"].append(plausibility(gt3, side))
        result = from_image(image, max_hands=1, focal_px=float(k[0, 0]), fit=True)
        skin = skin_group(labels["skin_srgb"])
        hit = 0
        if result.hands:
            hand = result.hands[0]
            raw_px = np.linalg.norm(hand.landmarks.pixels - gt2, axis=1).mean()
            if raw_px > 0.5 * size_px:
                counts["wrong_hand"] += 1
            else:
                hit = 1
                counts["found"] += 1
                counts["found_right_side"] += int(hand.side == side)
                fit = hand.fit
                assert fit is not None and hand.placed_keypoints is not None
                placed = hand.placed_keypoints
                fit_px = np.linalg.norm(result.camera.project(fit.keypoints) - gt2, axis=1)
                joint_px_pct.append(
                    100 * np.linalg.norm(hand.landmarks.pixels - gt2, axis=1) / size_px
                )
                add("px_raw", float(raw_px))
                add("px_fit", float(fit_px.mean()))
                add("px_raw_pct_hand", float(100 * raw_px / size_px))
                add("px_fit_pct_hand", float(100 * fit_px.mean() / size_px))
                for name, kp in (("raw", placed), ("fit", fit.keypoints)):
                    root, pa = _errors(kp, gt3)
                    add(f"mpjpe_{name}", root)
                    add(f"pa_mpjpe_{name}", pa)
                    add(f"wrist_depth_err_{name}", float(abs(kp[0, 2] - gt3[0, 2]) * 1e3))
                plaus["raw"].append(plausibility(placed, hand.side))
                plaus["fit"].append(plausibility(fit.keypoints, hand.side))
                if hand.side == side:
                    verts = labels["vertices"]
                    pv = np.linalg.norm(procrustes_align(fit.vertices, verts) - verts, axis=1)
                    add("mesh_pa_vertex_err_fit", float(pv.mean() * 1e3))
                    # Meshes against the true mesh, each moved by the similarity that takes
                    # its keypoints onto the true ones (shape, not placement): HALO from the
                    # placed landmarks, HALO from the fit, the fitted model's own mesh.
                    gt_f = labels["faces"]
                    for name, kp in (("raw", placed), ("fit", fit.keypoints)):
                        mesh = halo.reconstruct(
                            kp, side=side, units="m", resolution=args.resolution
                        )
                        if not len(mesh.faces):
                            continue
                        move = similarity(kp, gt3)
                        sc, cd = mesh_scores(move(mesh.vertices), mesh.faces, verts, gt_f, i)
                        add(f"mesh_iou_halo_{name}", sc)
                        add(f"mesh_chamfer_l1_mm_halo_{name}", cd)
                    move = similarity(fit.keypoints, gt3)
                    sc, cd = mesh_scores(move(fit.vertices), fit.faces, verts, gt_f, i)
                    add("mesh_iou_model_fit", sc)
                    add("mesh_chamfer_l1_mm_model_fit", cd)
                add("fit_seconds", float(fit.seconds))
        by_background.setdefault(int(labels["background"]), []).append(hit)
        by_skin.setdefault(skin, []).append(hit)
        # the hand's extent in the image (its mask's bounding box over the image side)
        mask = np.asarray(Image.open(args.data / "masks" / f"{i:06d}.png"))
        if hand_visible(gt2, mask):  # all keypoints in the frame, enough of the hand shown
            visible_hits.append(hit)
        ys, xs = np.nonzero(mask == 1)
        span = max(np.ptp(xs), np.ptp(ys)) / args.size if len(xs) else 0.0
        span_bin = (
            "<0.3"
            if span < 0.3
            else "0.3-0.5"
            if span < 0.5
            else "0.5-0.7"
            if span < 0.7
            else ">=0.7"
        )
        by_span.setdefault(span_bin, []).append(hit)

    from halohand.apps.synthetic import BACKGROUNDS

    def plaus_summary(items: list[dict[str, float]]) -> dict[str, Any]:
        if not items:
            return {}
        return {
            key: _summary([float(p[key]) for p in items])
            for key in ("bones_outside", "limit_violations", "limit_excess_deg")
        } | {
            "hands_with_any_violation": sum(p["limit_violations"] > 0 for p in items),
            # inside the priors: no angle beyond a limit and no bone outside the identity
            # prior's range
            "hands_inside_prior": sum(
                p["limit_violations"] == 0 and p["bones_outside"] == 0 for p in items
            ),
            "hands": len(items),
        }

    n = counts["images"]
    report = {
        "study": "photo_benchmark",
        "data": str(args.data),
        "seed": args.seed,
        "size": args.size,
        "renderer": rendered["renderer"],
        "render_seconds": round(render_s, 1),
        "counts": counts,
        "detection_rate": round(counts["found"] / n, 3),
        "detection_rate_visible_hands": [round(float(np.mean(visible_hits)), 3), len(visible_hits)]
        if visible_hits
        else None,
        "side_accuracy_of_found": round(counts["found_right_side"] / max(counts["found"], 1), 3),
        "detection_rate_by_background": {
            BACKGROUNDS[b]: round(float(np.mean(v)), 3) for b, v in sorted(by_background.items())
        },
        "detection_rate_by_skin": {s: round(float(np.mean(v)), 3) for s, v in by_skin.items()},
        "detection_rate_by_hand_span": {
            s: [round(float(np.mean(v)), 3), len(v)] for s, v in sorted(by_span.items())
        },
        "raw_2d_error_pct_hand_per_joint": np.round(np.mean(joint_px_pct, axis=0), 1).tolist()
        if joint_px_pct
        else [],
        "metrics": {key: _summary(v) for key, v in rows.items()},
        "plausibility": {key: plaus_summary(v) for key, v in plaus.items()},
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
