"""How the stability test depends on its skin margin, and what it costs per grasp.

For each object, ``--n`` grasps (the shipped generator, one refined sample each, or the data
engine's accepted grasps with ``--engine``) are meshed by the grasp model's HALO at 96^3 and
simulated (:func:`halohand.grasp.stability.simulate_grasp`) with the hand's contact margin
("skin") at each of ``--skins`` mm. Reported per skin: the stable share, the stable share
among grasps within 5 mm penetration, and the mean simulation time per grasp (six
directions); the convex decomposition time per object is reported apart.

    .venv/bin/python benchmarks/studies/grasp_stability_skin.py \
        --json benchmarks/results/studies/grasp_stability_skin.json
    .venv/bin/python benchmarks/studies/grasp_stability_skin.py --engine /tmp/eng/grasps \
        --json benchmarks/results/studies/grasp_stability_skin_engine.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import RESULTS, emit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(RESULTS / "studies" / "grasp_stability_skin.json"))
    ap.add_argument("--objects", default="box_4,cylinder_4,capsule_4")
    ap.add_argument("--engine", default="", help="Engine grasps folder instead of the VAE.")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skins", default="0,1,2,3")
    args = ap.parse_args()

    import torch

    from halohand.grasp.evaluate import engine_source, vae_source
    from halohand.grasp.generate import grasp_halo, shipped_model_path
    from halohand.grasp.metrics import contact_checks
    from halohand.grasp.stability import convex_parts, simulate_grasp
    from halohand.objects.registry import load_objects

    torch.set_num_threads(1)
    halo = grasp_halo()
    source = (
        engine_source(args.engine)
        if args.engine
        else vae_source(str(shipped_model_path()), True, halo, candidates=1)
    )
    skins = [float(s) for s in args.skins.split(",")]
    stable = {s: [] for s in skins}
    seconds = {s: [] for s in skins}
    pen_ok, decompose = [], {}
    for i, obj in enumerate(load_objects(args.objects)):
        kp, _ = source(obj, args.n, args.seed + i)
        meshes = [
            m for m in halo.reconstruct_batch(kp, "right", "m", resolution=96) if len(m.vertices)
        ]
        t = time.perf_counter()
        convex_parts(obj)
        decompose[obj.object_id] = round(time.perf_counter() - t, 2)
        surface = np.concatenate([obj.surface_points(4000, 0)[0], obj.vertices])
        for m in meshes:
            c = contact_checks(m.vertices, m.faces, m.vertex_attributes["part"], obj.vertices,
                               obj.faces, surface)  # fmt: skip
            pen_ok.append(c.max_penetration_mm <= 5.0)
            for s in skins:
                t = time.perf_counter()
                stable[s].append(simulate_grasp(m, obj, skin_mm=s).stable)
                seconds[s].append(time.perf_counter() - t)
        print(f"{obj.object_id}: {len(meshes)} grasps", flush=True)
    ok = np.array(pen_ok)
    rows = {}
    for s in skins:
        st = np.array(stable[s])
        rows[f"{s:g}"] = {
            "stable": float(st.mean()),
            "stable_within_5mm": float(st[ok].mean()) if ok.any() else float("nan"),
            "seconds_per_grasp": float(np.mean(seconds[s])),
        }
    emit({"source": args.engine or "weights/grasp_vae.safetensors (refined, 1 sample)",
          "objects": args.objects, "n": args.n, "grasps": len(ok),
          "within_5mm": int(ok.sum()), "decompose_s": decompose, "skins_mm": rows},
         args.json, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
