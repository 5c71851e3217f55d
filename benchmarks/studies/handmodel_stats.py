"""Statistics of the embedded WebXR hand model and its priors, printed as JSON.

    .venv/bin/python benchmarks/studies/handmodel_stats.py [--samples 200] [--iou-samples 20]
        [--json OUT]

Reports:

- template facts (vertices, faces, watertight, Euler characteristic, volume, hand length);
- posing time per hand (``WebXRHandModel.pose``) and sampling time per hand
  (``WebXRHandSource.sample``: identity + pose prior with collision check + posing);
- self-intersection volume of sampled hands (volume with generalized winding number > 1.5,
  200k uniform points in the bounding box): median, 95th percentile, max, in cm^3; also per
  library gesture at the template identity;
- keypoints: largest signed distance to the surface over the samples (mm, < 0 is inside);
- the IoU a perfect keypoint-driven model loses to the thickness it cannot see: each hand
  against the same hand (same keypoints, same pose) with the independent thickness offsets
  at their mean (zero), occupancy on 200k uniform points in the union bounding box.
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


def _round(x: float, n: int = 4) -> float:
    return float(round(float(x), n))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="hands for the statistics")
    parser.add_argument("--iou-samples", type=int, default=20, help="hands for the IoU cost")
    parser.add_argument("--points", type=int, default=200_000, help="query points per mesh")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import igl
    import trimesh

    from halohand.evaluation.metrics import iou
    from halohand.handmodel import GESTURES, PosePrior, WebXRHandModel, WebXRHandSource
    from halohand.handmodel.collision import load_sphere_proxy, self_intersection_volume
    from halohand.objects.inside import contains
    from halohand.skeleton import hand_length

    model = WebXRHandModel.load()
    tpl = model.template
    mesh = trimesh.Trimesh(tpl.vertices, tpl.faces, process=False)
    out: dict = {
        "template": {
            "vertices": len(tpl.vertices),
            "faces": len(tpl.faces),
            "watertight": bool(mesh.is_watertight),
            "euler_characteristic": int(mesh.euler_number),
            "bodies": len(mesh.split(only_watertight=False)),
            "volume_cm3": _round(mesh.volume * 1e6, 2),
            "hand_length_cm": _round(hand_length(tpl.rest_keypoints) * 100, 2),
        }
    }

    source = WebXRHandSource(model)
    load_sphere_proxy()  # built once per process; keep it out of the timings
    rng = np.random.default_rng(args.seed)
    source.sample(rng)

    n_time = 200
    t0 = time.perf_counter()
    hands = [source.sample(rng, side="left" if i % 2 else "right") for i in range(n_time)]
    sample_ms = (time.perf_counter() - t0) / n_time * 1000
    poses = [source.pose_prior.sample(rng) for _ in range(50)]
    t0 = time.perf_counter()
    for pose in poses:
        model.pose(pose)
    pose_ms = (time.perf_counter() - t0) / len(poses) * 1000
    out["timing_ms_per_hand"] = {"pose": _round(pose_ms, 2), "sample": _round(sample_ms, 2)}

    hands = hands[: args.samples] + [
        source.sample(rng, side="left" if i % 2 else "right")
        for i in range(max(0, args.samples - len(hands)))
    ]
    vols, kp_out, lengths = [], [], []
    for i, hand in enumerate(hands):
        vols.append(
            self_intersection_volume(
                hand.vertices, hand.faces, args.points, np.random.default_rng(i)
            )
        )
        kp_out.append(igl.signed_distance(hand.keypoints, hand.vertices, hand.faces)[0].max())
        lengths.append(hand_length(hand.keypoints))
    vols_cm3 = np.array(vols) * 1e6
    out["self_intersection_cm3"] = {
        "samples": len(hands),
        "median": _round(np.median(vols_cm3)),
        "p95": _round(np.percentile(vols_cm3, 95)),
        "max": _round(vols_cm3.max()),
        "mean": _round(vols_cm3.mean()),
        "fraction_zero": _round(np.mean(vols_cm3 == 0.0), 3),
        "fraction_over_0.5": _round(np.mean(vols_cm3 > 0.5), 3),
    }
    out["keypoints"] = {
        "max_signed_distance_mm": _round(max(kp_out) * 1000, 2),
        "hand_length_cm_range": [_round(min(lengths) * 100, 2), _round(max(lengths) * 100, 2)],
    }
    prior = PosePrior()
    out["gestures"] = {
        name: {
            "self_intersection_cm3": _round(
                self_intersection_volume(
                    (h := model.pose(prior.gesture(name))).vertices, h.faces, args.points
                )
                * 1e6
            ),
            "proxy_penetration_mm": _round(model.self_penetration(prior.gesture(name)) * 1000, 2),
        }
        for name in GESTURES
    }

    ious = []
    iou_rng = np.random.default_rng(args.seed + 1)
    for i in range(args.iou_samples):
        identity = source.identity_prior.sample(iou_rng)
        pose = source.pose_prior.sample(iou_rng, identity, model)
        real = model.pose(pose, identity)
        mean = model.pose(pose, dataclasses.replace(identity, thickness_offsets=np.zeros(16)))
        assert np.allclose(real.keypoints, mean.keypoints)
        lo = np.minimum(real.vertices.min(0), mean.vertices.min(0))
        hi = np.maximum(real.vertices.max(0), mean.vertices.max(0))
        pts = lo + (hi - lo) * np.random.default_rng(1000 + i).random((args.points, 3))
        ious.append(
            iou(contains(mean.vertices, mean.faces, pts), contains(real.vertices, real.faces, pts))
        )
    ious_arr = np.array(ious)
    out["thickness_iou_cost"] = {
        "samples": len(ious),
        "mean_iou": _round(ious_arr.mean()),
        "min_iou": _round(ious_arr.min()),
        "max_iou": _round(ious_arr.max()),
    }
    emit(out, args.json, indent=2)
    return out


if __name__ == "__main__":
    main()
