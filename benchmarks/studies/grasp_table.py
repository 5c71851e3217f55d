"""HALO-VAE's Table 3 on the project's held-out objects, every method in one run.

For each method, ``--n`` grasps per object (default: the six test objects) are meshed with
the grasp model's HALO (:func:`halohand.grasp.generate.grasp_halo`) and scored by
:func:`halohand.grasp.evaluate.evaluate_grasps`:
mean intersection volume (cm^3, 1 mm voxels), contact ratio, diversity (k = 20 entropy and
cluster size over all grasps), generation time per grasp. A contact sheet per method (two
grasps per object) goes to ``--sheets``.

    .venv/bin/python benchmarks/studies/grasp_table.py \
        --json benchmarks/results/studies/grasp_table.json \
        --sheets docs/grasp_sheets --engine data/grasps_test_r20

The JSON is read first and rewritten after every method: methods of earlier runs stay, so
groups of methods can run in separate processes into one table.

Methods (skipped when their model file or grasps folder is missing):
    engine                the grasp data engine's accepted grasps (reference)
    vae_no_inter          default decoder (hand frame), trained without the interpenetration loss
    vae                   default decoder, with it
    vae_refine            default decoder, with it, plus 10 refinement steps on the translation
    vae_no_inter_refine
    vae_inter40_*         default decoder, interpenetration weight 40 (10x the paper's)
    *_select              refinement of 4 samples per grasp, the best kept (generate_grasps'
                          ``candidates``: the shipped generator's default)
    plain_*               the same for the paper's object-frame keypoint decoder
    pose_*                the decoder of pose parameters (appendix A.1): the shipped model
    pose_no_inter_*       the same trained without the interpenetration loss
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import RESULTS, write  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(RESULTS / "studies" / "grasp_table.json"))
    ap.add_argument("--sheets", default="docs/grasp_sheets")
    ap.add_argument("--engine", default="data/grasps_test_r20")
    ap.add_argument("--vae", default="runs/grasp_vae_hf/model.safetensors")
    ap.add_argument("--vae-no-inter", default="runs/grasp_vae_hf_nointer/model.safetensors")
    ap.add_argument("--vae-inter40", default="runs/grasp_vae_hf_inter40/model.safetensors")
    ap.add_argument("--plain", default="runs/grasp_vae/model.safetensors")
    ap.add_argument("--plain-no-inter", default="runs/grasp_vae_nointer/model.safetensors")
    ap.add_argument("--pose", default="runs/grasp_vae_pose/model.safetensors")
    ap.add_argument("--pose-no-inter", default="runs/grasp_vae_pose_nointer/model.safetensors")
    ap.add_argument("--candidates", type=int, default=4, help="Samples per *_select grasp.")
    ap.add_argument("--objects", default="test")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--methods", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--markdown", action="store_true", help="Print the table of --json; no runs.")
    args = ap.parse_args()

    import torch

    from halohand.apps.figures import render_grasps
    from halohand.grasp.evaluate import engine_source, evaluate_grasps, vae_source
    from halohand.grasp.generate import grasp_halo
    from halohand.objects.registry import load_objects

    torch.set_num_threads(args.threads)
    halo = grasp_halo()
    models = {
        "vae": args.vae,
        "vae_no_inter": args.vae_no_inter,
        "vae_inter40": args.vae_inter40,
        "plain": args.plain,
        "plain_no_inter": args.plain_no_inter,
        "pose": args.pose,
        "pose_no_inter": args.pose_no_inter,
    }
    methods = {"engine": (args.engine, lambda: engine_source(args.engine))}
    for name, path in models.items():
        for suffix, refine, k in (("", False, 1), ("_refine", True, 1),
                                  ("_select", True, args.candidates)):  # fmt: skip
            methods[name + suffix] = (
                path, lambda p=path, r=refine, k=k: vae_source(p, r, halo, candidates=k)
            )  # fmt: skip
    wanted = [m for m in args.methods.split(",") if m] or list(methods)
    objs = load_objects(args.objects)
    out_path = Path(args.json)
    doc = json.loads(out_path.read_text()) if out_path.exists() else {}
    doc.setdefault("methods", {})
    doc.update(objects=[o.object_id for o in objs], n=args.n, seed=args.seed,
               resolution=args.resolution)  # fmt: skip
    Path(args.sheets).mkdir(parents=True, exist_ok=True)
    if args.markdown:
        print(markdown(json.loads(out_path.read_text())))
        return
    for name in wanted:
        path, make = methods[name]
        if not Path(path).exists():
            print(f"skip {name}: {path} missing")
            continue
        t = time.perf_counter()
        res = evaluate_grasps(make(), objs, halo, args.n, args.seed, args.resolution,
                              keep_meshes=2, progress=True)  # fmt: skip
        render_grasps(res["scenes"], f"{args.sheets}/{name}.png", columns=6,
                      labels=[s[1].object_id for s in res["scenes"]])  # fmt: skip
        doc["methods"][name] = {"source": path, "mean": res["mean"], "objects": res["objects"],
                                "wall_s": round(time.perf_counter() - t, 1)}  # fmt: skip
        write(doc, out_path, indent=2)
        m = res["mean"]
        print(
            f"{name:22s} inter {m['intersection_cm3']:6.2f} cm3  contact "
            f"{m['contact_ratio']:.3f}  entropy {m['diversity_entropy']:.2f}  "
            f"cluster {m['cluster_size_cm']:.2f} cm  gen {m['generate_s_per_grasp']:.3f} s"
        )


def markdown(doc: dict) -> str:
    """The methods of a results document as a Markdown table."""
    head = ("| method | intersection (cm^3) mean / max | contact ratio | penetration (mm) | "
            "entropy | cluster size (cm) | invalid | generation (s / grasp) |")  # fmt: skip
    lines = [head, "|" + "---|" * 8]
    for name, r in doc["methods"].items():
        m = r["mean"]
        lines.append(
            f"| {name} | {m['intersection_cm3']:.2f} / {m['intersection_max_cm3']:.1f} | "
            f"{m['contact_ratio']:.3f} | {m['penetration_mm']:.1f} | "
            f"{m['diversity_entropy']:.2f} | {m['cluster_size_cm']:.2f} | "
            f"{m.get('invalid', 0)} | {m['generate_s_per_grasp']:.3f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
