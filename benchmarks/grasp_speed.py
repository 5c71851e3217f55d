"""Time to generate 20 grasps for a new object, as ``halohand grasp MESH`` does, per stage.

Stages: loading the VAE, HALO and the object; sampling; refinement (10 steps); HALO meshes
at each ``--resolutions``; contact sheet. One JSON document with all of them, same machine,
same run:

    .venv/bin/python benchmarks/grasp_speed.py --model runs/grasp_vae/model.safetensors \
        --objects test --json runs/grasp_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="runs/grasp_vae/model.safetensors")
    ap.add_argument("--objects", default="test")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--resolutions", default="64,96,128")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default="runs/grasp_speed.json")
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    from halohand.api import HALO
    from halohand.atomic import write_text_atomic
    from halohand.grasp.generate import generate_grasps, render_grasps
    from halohand.grasp.objects import load_object, parse_object_list
    from halohand.grasp.vae import load_vae

    vae, _ = load_vae(args.model)
    halo = HALO.pretrained()
    setup = time.perf_counter() - t
    rows = []
    for oid in parse_object_list(args.objects):
        t = time.perf_counter()
        obj = load_object(oid)
        load_s = time.perf_counter() - t
        gs = generate_grasps(vae, obj, args.n, 0, refine=True, halo=halo)
        row = {"object": oid, "object_s": load_s, **{f"{k}_s": v for k, v in gs.seconds.items()}}
        for res in [int(r) for r in args.resolutions.split(",")]:
            t = time.perf_counter()
            meshes = halo.reconstruct_batch(gs.keypoints, "right", "m", resolution=res)
            row[f"meshes_{res}_s"] = time.perf_counter() - t
        t = time.perf_counter()
        render_grasps([(m, obj) for m in meshes], "/tmp/grasp_speed_sheet.png")
        row["sheet_s"] = time.perf_counter() - t
        rows.append(row)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
    keys = [k for k in rows[0] if k != "object"]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    doc = {"n": args.n, "threads": args.threads, "setup_s": setup, "mean": mean, "objects": rows,
           "machine": f"{platform.machine()} {os.cpu_count()} cores"}  # fmt: skip
    write_text_atomic(args.json, json.dumps(doc, indent=2))
    print(json.dumps({k: round(v, 3) for k, v in mean.items()}, indent=1), f"setup {setup:.2f} s")


if __name__ == "__main__":
    main()
