"""Time to generate 20 grasps for a new object, as ``halohand grasp MESH`` does, per stage.

Stages: loading the VAE, HALO and the object; sampling; refinement (10 steps) of
``--candidates`` samples per grasp and the selection; HALO meshes at each ``--resolutions``;
contact sheet. With ``--cli``, the whole command is also timed end to end (interpreter start
included) on ``cylinder_4`` exported in millimetres. One JSON document with all of them,
same machine, same run (with a matmul calibration before and after, ``benchmarks/_report.py``):

    .venv/bin/python benchmarks/speed/grasp_speed.py --objects box_4,mug_4,torus_4,real_can \
        --cli --json benchmarks/results/speed/grasp_speed.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit, repo_path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="", help="Grasp VAE (default: the shipped one).")
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--cli", action="store_true", help="Also time the command end to end.")
    ap.add_argument("--objects", default="test")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--resolutions", default="64,96,128")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    begin()
    t = time.perf_counter()
    from halohand.apps.figures import render_grasps
    from halohand.grasp.generate import (
        generate_grasps,
        grasp_halo,
        shipped_model_path,
    )
    from halohand.grasp.vae import load_vae
    from halohand.objects.registry import load_object, parse_object_list

    model = args.model or str(shipped_model_path())
    vae, _ = load_vae(model)
    halo = grasp_halo()
    setup = time.perf_counter() - t
    sheet = Path(tempfile.gettempdir()) / "grasp_speed_sheet.png"
    rows = []
    for oid in parse_object_list(args.objects):
        t = time.perf_counter()
        obj = load_object(oid)
        load_s = time.perf_counter() - t
        gs = generate_grasps(vae, obj, args.n, 0, refine=True, halo=halo,
                             candidates=args.candidates)  # fmt: skip
        row = {"object": oid, "object_s": load_s, **{f"{k}_s": v for k, v in gs.seconds.items()}}
        for res in [int(r) for r in args.resolutions.split(",")]:
            t = time.perf_counter()
            meshes = halo.reconstruct_batch(gs.keypoints, "right", "m", resolution=res)
            row[f"meshes_{res}_s"] = time.perf_counter() - t
        t = time.perf_counter()
        render_grasps([(m, obj) for m in meshes], str(sheet))
        row["sheet_s"] = time.perf_counter() - t
        rows.append(row)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
    keys = [k for k in rows[0] if k != "object"]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    doc = {"model": repo_path(model), "n": args.n, "candidates": args.candidates,
           "threads": args.threads, "setup_s": setup, "mean": mean, "objects": rows}  # fmt: skip
    if args.cli:
        doc["cli"] = time_command(args.n)
        print("command:", json.dumps(doc["cli"]))
    print(json.dumps({k: round(v, 3) for k, v in mean.items()}, indent=1), f"setup {setup:.2f} s")
    emit(doc, args.json, indent=2)


def time_command(n: int) -> dict:
    """Wall time of ``halohand grasp OBJ_mm.stl --n N --refine`` and its own stage times."""
    import subprocess

    from halohand.objects.registry import load_object

    with tempfile.TemporaryDirectory() as tmp:
        mesh = load_object("cylinder_4").mesh.copy().apply_scale(1000.0)  # millimetres
        mesh.export(Path(tmp) / "cylinder_mm.stl")
        cmd = [str(Path(sys.executable).with_name("halohand")), "grasp",
               str(Path(tmp) / "cylinder_mm.stl"), "--n", str(n), "--out-dir",
               str(Path(tmp) / "out"), "--refine"]  # fmt: skip
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        wall = time.perf_counter() - t
        summary = json.loads((Path(tmp) / "out" / "grasps.json").read_text())
    return {"command": " ".join(["halohand", *cmd[1:]]), "wall_s": wall,
            "in_command_s": summary["total_s"], "stages_s": summary["seconds"]}  # fmt: skip


if __name__ == "__main__":
    main()
