"""Thin walls under the pose-space refinement: the object's depth inside the rig's hand mesh
(what the refinement optimises and measures) against its depth inside HALO's mesh of the same
keypoints (what the grasp harness measures), per grasp.

Re-creates the ``vae_pose`` grasps of ``grasp_stability.py --objects new --methods vae_pose
--n N`` for the named new objects (same seeds: the object's index in the new set) and reads
the harness's depths from that run's JSON (``--harness``), in the same order. The refinement
runs with that run's settings (the defaults until stop 36: no rigid move out of the object,
no filled cavities; HALO's surface step is not part of ``refine_poses``).

    .venv/bin/python benchmarks/studies/grasp_rig_halo_depth.py --only new_mug,new_glass \\
        --harness benchmarks/results/studies/grasp_pose_refine_new.json \\
        --json benchmarks/results/studies/grasp_rig_halo_depth.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
sys.path.insert(0, str(Path(__file__).resolve().parent))  # grasp_stability's objects
from _report import RESULTS, emit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="new_mug,new_glass")
    ap.add_argument("--harness", default=str(RESULTS / "studies" / "grasp_pose_refine_new.json"))
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=str(RESULTS / "studies" / "grasp_rig_halo_depth.json"))
    args = ap.parse_args()

    import torch
    from grasp_stability import new_objects

    from halohand.grasp.generate import generate_grasps, grasp_halo, shipped_model_path
    from halohand.grasp.pose_refine import PoseRefineConfig, refine_poses
    from halohand.grasp.vae import load_vae
    from halohand.objects.registry import object_from_mesh

    torch.set_num_threads(1)
    harness = json.loads(Path(args.harness).read_text())["methods"]["vae_pose"]["grasps"]
    vae, _ = load_vae(shipped_model_path())
    halo = grasp_halo()
    meshes = new_objects()
    report: dict = {"n": args.n, "harness": args.harness, "objects": {}}
    for i, (name, mesh) in enumerate(meshes.items()):
        if name not in args.only.split(","):
            continue
        obj = object_from_mesh(mesh, units="m", object_id=name, orient="keep")
        seed = args.seed + i
        gs = generate_grasps(vae, obj, args.n, seed, refine=True, halo=halo)
        settings = PoseRefineConfig(separate_cm=0.0, fill_enclosed=False, halo_steps=0)
        out = refine_poses(obj, gs.keypoints, seed=seed, config=settings)
        rig = np.asarray(out["object_in_hand_mm"], dtype=float)
        rows = [g for g in harness if g["object"] == name]
        halo_depth = np.array([g["object_in_hand_mm"] for g in rows], dtype=float)
        report["objects"][name] = {
            "rig_object_in_hand_mm": rig.round(2).tolist(),
            "halo_object_in_hand_mm": halo_depth.round(2).tolist(),
            "rig_median_mm": float(np.median(rig)),
            "halo_median_mm": float(np.median(halo_depth)),
            "rig_le_5mm": int((rig <= 5).sum()),
            "halo_le_5mm": int((halo_depth <= 5).sum()),
        }
        r = report["objects"][name]
        print(f"{name}: object in hand, median rig {r['rig_median_mm']:.1f} mm / HALO "
              f"{r['halo_median_mm']:.1f} mm; <= 5 mm rig {r['rig_le_5mm']} / HALO "
              f"{r['halo_le_5mm']} of {args.n}", flush=True)  # fmt: skip
    emit(report, args.json, indent=1)


if __name__ == "__main__":
    main()
