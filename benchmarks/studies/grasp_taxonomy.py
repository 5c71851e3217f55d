"""Grasp data engine with taxonomy starts against the plain engine on the six new objects:
the human-plausible share of the engines' outputs before any filter, per object and type.

Both engines optimise ``--n`` starts per object in one batch, right hands, the same batch seed
(from ``--seed`` and the object, as ``halohand grasp synthesize`` seeds its shards) and so
the same hand identities; ``engine`` is :mod:`halohand.grasp.synthesis` as shipped,
``engine_taxonomy`` the same with ``taxonomy=True`` (:mod:`halohand.grasp.taxonomy`: grasp
types chosen and placed from the geometry, contact on the type's pads, near-hard penetration
limit; its own acceptance filter adds the simulator). Every output (accepted by its engine or
not) is meshed by the grasp model's HALO at ``--resolution`` and scored by the harness of
``benchmarks/studies/grasp_stability.py`` (:func:`~halohand.grasp.evaluate.evaluate_grasps`
with physics): MuJoCo six-direction stability, max penetration, thumb opposition,
human-plausible = all three; intersection volume, contact ratio, diversity. The six objects
are built at run time by ``grasp_stability.new_objects`` (not in the repository), loaded in
their file frame (``orient="keep"``, as the baseline study loads them); they were not used to
tune the engine (tuning used registry training objects).

    nice -n 10 .venv/bin/python benchmarks/studies/grasp_taxonomy.py --n 16 \\
        --json benchmarks/results/studies/grasp_taxonomy.json \\
        --sheets docs/grasp_sheets_taxonomy

Sheets: per object, ``eNN`` tiles (plain engine) then ``tNN <type>`` (taxonomy); a label reads
``PASS`` or the failed checks (``S`` unstable, ``P`` penetration > 5 mm, ``O`` no opposition)
and ``*`` when the engine's own filter accepted the grasp.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
sys.path.insert(0, str(Path(__file__).resolve().parent))  # grasp_stability's objects
from _report import RESULTS, write  # noqa: E402

SHORT = {"power_wrap": "wrap", "precision_pinch": "pinch", "tripod": "tripod",
         "lateral": "lateral", "hook": "hook", "spherical": "sphere",
         "disk_pinch": "disk"}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(RESULTS / "studies" / "grasp_taxonomy.json"))
    ap.add_argument("--sheets", default="docs/grasp_sheets_taxonomy")
    ap.add_argument("--only", default="", help="Comma-separated object ids to keep (a check).")
    ap.add_argument("--methods", default="engine,engine_taxonomy")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution", type=int, default=96)
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument(
        "--objects",
        default="new",
        help="new (the six built here) or registry ids / a split (load_objects).",
    )
    ap.add_argument("--contact-scale", type=float, default=9.0)
    ap.add_argument("--hinge-mm", type=float, default=2.0)
    ap.add_argument("--press-mm", type=float, default=3.0)
    ap.add_argument(
        "--sdf-cell-fraction",
        type=float,
        default=0.0,
        help="The taxonomy engine's grid cells as a fraction of thin parts (0: 64 points).",
    )
    ap.add_argument(
        "--accept-mm",
        type=float,
        default=5.0,
        help="The taxonomy engine's acceptance depth (max_penetration_mm).",
    )
    ap.add_argument("--markdown", action="store_true", help="Print the tables of --json; no runs.")
    args = ap.parse_args()
    if args.markdown:
        print(markdown(json.loads(Path(args.json).read_text())))
        return

    import torch
    from grasp_stability import finish, new_objects, print_rates

    from halohand.apps.figures import grasp_verdict
    from halohand.grasp.evaluate import evaluate_grasps
    from halohand.grasp.generate import grasp_halo
    from halohand.grasp.synthesis import SynthesisConfig, _batch_seed, synthesize_batch
    from halohand.grasp.taxonomy import analyse, choose_types
    from halohand.objects.registry import load_objects, object_from_mesh

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    halo = grasp_halo()
    if args.objects == "new":
        objs = [object_from_mesh(m, units="m", object_id=k, orient="keep")
                for k, m in new_objects().items()]  # fmt: skip
    else:
        objs = load_objects(args.objects)
    if args.only:
        objs = [o for o in objs if o.object_id in args.only.split(",")]
    configs = {
        "engine": SynthesisConfig(batch_size=args.n, steps=args.steps, sides="right"),
        "engine_taxonomy": SynthesisConfig(batch_size=args.n, steps=args.steps, sides="right",
                                           taxonomy=True, max_penetration_mm=args.accept_mm,
                                           contact_scale=args.contact_scale,
                                           hinge_mm=args.hinge_mm, press_mm=args.press_mm,
                                           sdf_cell_fraction=args.sdf_cell_fraction),
    }  # fmt: skip
    doc: dict = {"n": args.n, "steps": args.steps, "seed": args.seed, "objects": args.objects,
                 "resolution": args.resolution,
                 "objects_cm": {o.object_id: [round(float(e) * 100, 1) for e in o.mesh.extents]
                                for o in objs},
                 "type_shares": {}, "methods": {}}  # fmt: skip
    for o in objs:
        t = time.perf_counter()
        doc["type_shares"][o.object_id] = {
            k: round(v, 3) for k, v in choose_types(analyse(o)).items()
        }
        print(o.object_id, doc["type_shares"][o.object_id],
              f"({time.perf_counter() - t:.0f} s)", flush=True)  # fmt: skip
    scenes: dict[str, list] = {}
    for method in args.methods.split(","):
        cfg = configs[method]
        runs: dict[str, dict] = {}

        def source(obj, n, seed, cfg=cfg, runs=runs, method=method):  # noqa: ANN001, ANN202, ARG001
            t = time.perf_counter()
            res = synthesize_batch(obj, n, _batch_seed(args.seed, obj.object_id, 0), "right", cfg)
            res["wall_seconds"] = np.array(time.perf_counter() - t)
            runs[obj.object_id] = res
            print(f"  {method} {obj.object_id}: {time.perf_counter() - t:.0f} s, engine accepts "
                  f"{int(res['accepted'].sum())}/{n}", flush=True)  # fmt: skip
            return res["keypoints"].astype(np.float64), time.perf_counter() - t

        t = time.perf_counter()
        res = evaluate_grasps(source, objs, halo, args.n, args.seed, args.resolution,
                              keep_meshes=args.n, progress=False, physics=True)  # fmt: skip
        prefix = "t" if method == "engine_taxonomy" else "e"
        per_type: dict[str, dict[str, list]] = {}
        records = []
        for row in res["objects"]:
            oid = row["object"]
            run = runs[oid]
            mine = [g for g in res["grasps"] if g["object"] == oid]
            aligned = row["invalid"] == 0  # records index the meshed grasps only
            for g in mine:
                i = g["index"]
                g["engine_accepted"] = bool(run["accepted"][i]) if aligned else None
                g["type"] = str(run["grasp_type"][i]) if aligned and "grasp_type" in run else None
                g["engine_penetration_mm"] = float(run["penetration_mm"][i]) if aligned else None
                records.append(g)
                if g["type"] is not None:
                    d = per_type.setdefault(
                        g["type"],
                        {"plausible": [], "stable": [], "penetration_ok": [], "opposition": []},
                    )
                    d["plausible"].append(g["plausible"])
                    d["stable"].append(g["stable"])
                    d["penetration_ok"].append(g["max_penetration_mm"] <= 5.0)
                    d["opposition"].append(g["opposition"])
            acc = [g for g in mine if g["engine_accepted"]]
            row["engine_accepted"] = len(acc)
            row["plausible_of_accepted"] = (sum(g["plausible"] for g in acc) / len(acc)
                                            if acc else None)  # fmt: skip
            row["engine_seconds_per_start"] = float(run["wall_seconds"]) / args.n
        for (mesh, obj), g in zip(res["scenes"], records, strict=True):
            label, color = grasp_verdict(g, prefix)
            if g["type"]:
                label = label.replace(" ", f" {SHORT[g['type']]} ", 1)
            if g["engine_accepted"]:
                label += "*"
            scenes.setdefault(obj.object_id, []).append((mesh, obj, label, color))
        doc["methods"][method] = {
            "config": cfg.to_dict(),
            "mean": res["mean"],
            "objects": res["objects"],
            "types": {k: {m: float(np.mean(v)) for m, v in d.items()}
                          | {"grasps": len(d["plausible"])} for k, d in per_type.items()},
            "grasps": records,
            "wall_s": round(time.perf_counter() - t, 1),
        }  # fmt: skip
        write(doc, args.json, indent=1)
        print_rates(method, res["mean"], time.perf_counter() - t)
    finish(doc, scenes, args.json, args.sheets, args.tile, 1, t0)


def markdown(doc: dict) -> str:
    """Per-object and per-type shares of both methods, then the paper's metrics."""
    methods = list(doc["methods"])
    lines = ["| object | " + " | ".join(
        f"{m}: stable / pen <= 5 mm / opposition / **plausible** (engine accepts; plausible "
        "of those)" for m in methods) + " |", "|---|" + "---|" * len(methods)]  # fmt: skip
    rows = {m: {r["object"]: r for r in doc["methods"][m]["objects"]} for m in methods}
    for oid in rows[methods[0]]:
        cells = []
        for m in methods:
            r = rows[m][oid]
            of = r["plausible_of_accepted"]
            cells.append(f"{r['stable']:.2f} / {r['penetration_ok']:.2f} / {r['opposition']:.2f}"
                         f" / **{r['plausible']:.2f}** ({r['engine_accepted']}; "
                         f"{'-' if of is None else f'{of:.2f}'})")  # fmt: skip
        lines.append(f"| {oid} | " + " | ".join(cells) + " |")
    cells = []
    for m in methods:
        a = doc["methods"][m]["mean"]
        cells.append(f"{a['stable']:.2f} / {a['penetration_ok']:.2f} / {a['opposition']:.2f} / "
                     f"**{a['plausible']:.2f}**")  # fmt: skip
    lines.append("| mean | " + " | ".join(cells) + " |")
    lines += ["", "| type (engine_taxonomy) | grasps | stable | pen <= 5 mm | opposition | "
              "**plausible** |", "|---|---|---|---|---|---|"]  # fmt: skip
    for k, d in doc["methods"].get("engine_taxonomy", {}).get("types", {}).items():
        lines.append(f"| {k} | {d['grasps']} | {d['stable']:.2f} | {d['penetration_ok']:.2f} | "
                     f"{d['opposition']:.2f} | **{d['plausible']:.2f}** |")  # fmt: skip
    lines += ["", "| method | intersection (cm^3) | contact ratio | max penetration (mm) | "
              "entropy | cluster size (cm) | engine s / start | wall (s) |",
              "|---|" + "---|" * 7]  # fmt: skip
    for m in methods:
        a = doc["methods"][m]["mean"]
        sec = np.mean([r["engine_seconds_per_start"] for r in doc["methods"][m]["objects"]])
        lines.append(
            f"| {m} | {a['intersection_cm3']:.2f} | {a['contact_ratio']:.3f} | "
            f"{a['max_penetration_mm']:.1f} | {a['diversity_entropy']:.2f} | "
            f"{a['cluster_size_cm']:.2f} | {sec:.1f} | {doc['methods'][m]['wall_s']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
