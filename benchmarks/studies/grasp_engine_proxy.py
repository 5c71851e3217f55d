"""The taxonomy grasp engine's object-in-hand term: finger spheres against finger capsules,
and the number of object points, on the same starts.

Each variant optimises one batch of ``--n`` starts per object (right hands, the batch seed of
``halohand grasp synthesize --seed 0``'s first shard, so every variant sees the same
identities, grasp types and placements) with the taxonomy engine's CLI settings
(``max_penetration_mm`` 5) and reports the engine's own exact measures per start: the
object's depth inside the template hand mesh (``object_in_hand_mm``, libigl over 2,000
surface samples and the vertices), the hand vertices' depth inside the object
(``penetration_mm``) and whether its acceptance filter (pads, depths, intersection,
MuJoCo) took the grasp.

    .venv/bin/python benchmarks/studies/grasp_engine_proxy.py \\
        --objects cup_0,cup_1,cup_2,cup_3,cup_4 \\
        --variants spheres,capsules,spheres3000,capsules3000 \\
        --json benchmarks/results/studies/grasp_engine_proxy_cups.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import RESULTS, emit  # noqa: E402

VARIANTS = {
    "spheres": {},
    "capsules": {"finger_capsules": True},
    "spheres3000": {"object_points": 3000},
    "capsules3000": {"finger_capsules": True, "object_points": 3000},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", default="cup_0,cup_1,cup_2,cup_3,cup_4")
    ap.add_argument("--variants", default="spheres,capsules")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=str(RESULTS / "studies" / "grasp_engine_proxy.json"))
    args = ap.parse_args()

    import torch

    from halohand.grasp.synthesis import SynthesisConfig, _batch_seed, synthesize_batch
    from halohand.objects.registry import load_object, parse_object_list

    torch.set_num_threads(1)
    ids = parse_object_list(args.objects)
    objs = [load_object(o) for o in ids]
    # Warm the caches (hand geometry, MuJoCo, each object's signed-distance grid) outside
    # the timings: without it the first variant's time includes the grids.
    for obj in objs:
        synthesize_batch(obj, 1, 0, "right", SynthesisConfig(taxonomy=True, steps=1))
    report: dict = {"n": args.n, "seed": args.seed, "objects": ids, "variants": {}}
    for name in args.variants.split(","):
        cfg = SynthesisConfig(taxonomy=True, max_penetration_mm=5.0, **VARIANTS[name])
        rows, t0 = [], time.perf_counter()
        for obj in objs:
            seed = _batch_seed(args.seed, obj.object_id, 0)
            r = synthesize_batch(obj, args.n, seed, "right", cfg)
            rows.append({
                "object": obj.object_id,
                "accepted": int(r["accepted"].sum()),
                "object_in_hand_mm": np.round(r["object_in_hand_mm"], 2).tolist(),
                "penetration_mm": np.round(r["penetration_mm"], 2).tolist(),
                "grasp_type": [str(t) for t in r["grasp_type"]],
            })  # fmt: skip
        oih = np.concatenate([x["object_in_hand_mm"] for x in rows])
        pen = np.concatenate([x["penetration_mm"] for x in rows])
        report["variants"][name] = {
            "config": cfg.to_dict(),
            "seconds": round(time.perf_counter() - t0, 1),
            "accepted": sum(x["accepted"] for x in rows),
            "starts": len(oih),
            "object_in_hand_median_mm": float(np.median(oih)),
            "object_in_hand_le_5mm": int((oih <= 5.0).sum()),
            "penetration_median_mm": float(np.median(pen)),
            "objects": rows,
        }
        v = report["variants"][name]
        print(f"{name}: accepted {v['accepted']} / {v['starts']}, object in hand median "
              f"{v['object_in_hand_median_mm']:.1f} mm, <= 5 mm {v['object_in_hand_le_5mm']}, "
              f"{v['seconds']:.0f} s", flush=True)  # fmt: skip
    emit(report, args.json, indent=1)


if __name__ == "__main__":
    main()
