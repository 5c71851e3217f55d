"""Stability baseline of the shipped grasp generator: MuJoCo six-direction gravity test,
penetration, per-finger contact, opposition and the human-plausible share.

Methods: ``vae_refine`` (one sample per grasp, refined: no best-of-N) and ``vae_select``
(4 refined samples per grasp, the best kept: the shipped default), both with the shipped
model (``weights/grasp_vae.safetensors``) and its HALO, meshes at ``--resolution``;
``vae_pose`` (one sample, the translation refinement, then the refinement in the hand
model's pose space of :mod:`halohand.grasp.pose_refine`; no best-of-N) and ``vae_raw_pose``
(the same without the translation refinement). ``--models`` measures other grasp models
(for example a retrained one) beside each other in the same run.

Objects: the six test objects of the registry and six new objects built here, at run
time, from analytic signed distances or trimesh primitives (not stored in the repository):

    new_mug      hollow cup, radius 4 cm, height 9.5 cm, 4 mm wall, 6 mm bottom, ring handle
    new_banana   curved capsule: 1.8 cm radius around a 70-degree arc of radius 12 cm
    new_glass    wine glass: foot 7 cm across, stem 7 cm, open bowl 8 cm across, 3 mm wall
    new_box      5 x 3 x 2 cm box
    new_ball     ball, 12 cm diameter
    new_plate    15 x 10 x 0.8 cm plate

    .venv/bin/python benchmarks/studies/grasp_stability.py \
        --json benchmarks/results/studies/grasp_stability_baseline.json \
        --sheets docs/grasp_sheets_stability --n 16

A contact sheet per object (``--sheets/<object>.png``): the first row(s) are ``vae_refine``
(labels ``rNN``), then ``vae_select`` (``sNN``), ``vae_pose`` (``pNN``), ``vae_raw_pose``
(``qNN``), each led by the model name's first letter with ``--models``; a label reads
``PASS`` (human-plausible) or the failed checks: ``S`` unstable, ``P`` penetration > 5 mm,
``O`` no thumb opposition.

Orientation (``--turn SEED``, ``--orients``): each new object is turned by a fixed random
rotation (one per object, from ``SEED``) before it is given to the generator, which then
loads it with each of ``--orients`` (``keep``: as turned; ``principal``: back to its
principal frame, ``objects.orient``). Methods are then named ``<orient>/<method>``, sheets
``<object>_<orient>.png``; the default (no turn, ``keep``) is the baseline above:

    .venv/bin/python benchmarks/studies/grasp_stability.py --objects new --turn 7 \
        --orients keep,principal --n 8 --json benchmarks/results/studies/grasp_orient.json \
        --sheets docs/grasp_sheets_orient
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import RESULTS, repo_path, write  # noqa: E402

#: Label prefix of each method's tiles on the contact sheets.
PREFIX = {"vae_refine": "r", "vae_select": "s", "vae_pose": "p", "vae_raw_pose": "q"}


def _setting(default: object, text: str) -> object:
    """``text`` read as the type of ``default`` (``true``/``false``/``1``/``0`` for a bool)."""
    if isinstance(default, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise SystemExit(f"expected true or false, got {text!r}")
        return text.lower() in ("true", "1")
    return type(default)(text)


def _sdf_mesh(sdf, lo: np.ndarray, hi: np.ndarray, step: float):  # noqa: ANN001, ANN202
    """Marching cubes (scikit-image) of ``sdf(points [N, 3]) -> [N]`` (metres) on a grid."""
    import trimesh
    from skimage.measure import marching_cubes

    # Off the round numbers of the shapes (no lattice point exactly on a flat cap).
    axes = [np.arange(a - 2.37 * step, b + 2.5 * step, step) for a, b in zip(lo, hi, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    values = sdf(grid.reshape(-1, 3)).reshape(grid.shape[:3])
    verts, faces, _, _ = marching_cubes(values, 0.0, spacing=(step,) * 3)
    # skimage's triangles face the increasing values (outside): flip to outward by volume
    mesh = trimesh.Trimesh(verts + [a[0] for a in axes], faces, process=True)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def _cylinder_sdf(p: np.ndarray, r: float, z0: float, z1: float) -> np.ndarray:
    """Signed distance to a capped cylinder about z (exact)."""
    d = np.stack([np.hypot(p[:, 0], p[:, 1]) - r, np.maximum(z0 - p[:, 2], p[:, 2] - z1)], 1)
    out = np.linalg.norm(np.maximum(d, 0.0), axis=1)
    return out + np.minimum(d.max(1), 0.0)


def new_objects() -> dict:
    """The six new objects as trimeshes (metres)."""
    import trimesh

    def mug(p: np.ndarray) -> np.ndarray:
        outer = _cylinder_sdf(p, 0.04, 0.0, 0.095)
        inner = _cylinder_sdf(p, 0.036, 0.006, 0.2)  # open at the top
        cup = np.maximum(outer, -inner)
        # Ring handle in the x-z plane, outside the wall on +x.
        q = p - [0.04 + 0.012, 0.0, 0.05]
        ring = np.hypot(np.hypot(q[:, 0], q[:, 2]) - 0.025, q[:, 1]) - 0.006
        ring = np.maximum(ring, 0.038 - p[:, 0])  # only outside the cavity (r < 3.6 cm)
        return np.minimum(cup, ring)

    def banana(p: np.ndarray) -> np.ndarray:
        # Arc of radius R about the y axis through (0, 0, -R), spanning +-35 degrees.
        big, half = 0.12, np.radians(35.0)
        q = p + [0.0, 0.0, big]
        ang = np.clip(np.arctan2(q[:, 0], q[:, 2]), -half, half)
        nearest = np.stack([big * np.sin(ang), np.zeros_like(ang), big * np.cos(ang)], 1)
        return np.linalg.norm(q - nearest, axis=1) - 0.018

    def glass(p: np.ndarray) -> np.ndarray:
        foot = _cylinder_sdf(p, 0.035, 0.0, 0.005)
        stem = _cylinder_sdf(p, 0.005, 0.0, 0.085)
        c = np.array([0.0, 0.0, 0.115])
        d = np.linalg.norm(p - c, axis=1)
        shell = np.abs(d - 0.0385) - 0.0015  # 3 mm wall
        bowl = np.maximum(shell, p[:, 2] - 0.135)  # cut open 2 cm above the centre
        return np.minimum(np.minimum(foot, stem), bowl)

    return {
        "new_mug": _sdf_mesh(
            mug, np.array([-0.045, -0.045, 0.0]), np.array([0.085, 0.045, 0.095]), 0.0015
        ),  # fmt: skip
        "new_banana": _sdf_mesh(
            banana, np.array([-0.09, -0.02, -0.042]), np.array([0.09, 0.02, 0.02]), 0.0015
        ),  # fmt: skip
        "new_glass": _sdf_mesh(
            glass, np.array([-0.04, -0.04, 0.0]), np.array([0.04, 0.04, 0.136]), 0.001
        ),  # fmt: skip
        "new_box": trimesh.creation.box(extents=[0.05, 0.03, 0.02]),
        "new_ball": trimesh.creation.icosphere(4, radius=0.06),
        "new_plate": trimesh.creation.box(extents=[0.15, 0.10, 0.008]),
    }


def turned(meshes: dict, seed: int) -> dict:
    """Each mesh turned by its own uniformly random rotation about its bounding-box centre
    (``scipy``'s ``Rotation.random``, seeded by ``seed`` and the object's position)."""
    from scipy.spatial.transform import Rotation

    out = {}
    for i, (name, mesh) in enumerate(meshes.items()):
        m = mesh.copy()
        m.apply_translation(-m.bounds.mean(0))
        m.apply_transform(np.block([
            [Rotation.random(random_state=seed * 1000 + i).as_matrix(), np.zeros((3, 1))],
            [np.zeros((1, 3)), 1.0],
        ]))  # fmt: skip
        out[name] = m
    return out


def save_arrays(arrays: dict[str, np.ndarray], path: str) -> None:
    """``arrays`` as one compressed ``.npz`` at ``path``, written atomically."""
    from halohand.core.atomic import atomic_open

    with atomic_open(path) as fh:  # makes the folder
        np.savez_compressed(fh, **arrays)


def print_rates(name: str, mean: dict, seconds: float) -> None:
    """One line of a method's shares of stable, penetration-ok, opposed and plausible grasps."""
    print(f"{name}: stable {mean['stable']:.3f} pen_ok {mean['penetration_ok']:.3f} "
          f"opposition {mean['opposition']:.3f} plausible {mean['plausible']:.3f} "
          f"({seconds:.0f} s)", flush=True)  # fmt: skip


def finish(
    doc: dict, scenes: dict, json_path: str, sheets: str, tile: int, workers: int, t0: float
) -> None:
    """A contact sheet per object of ``scenes`` (``(mesh, object, label, colour)`` each) in
    ``sheets``, then ``doc`` with its total wall time written to ``json_path``."""
    from halohand.apps.figures import render_grasps

    Path(sheets).mkdir(parents=True, exist_ok=True)
    for oid, items in scenes.items():
        render_grasps([(m, o) for m, o, _, _ in items], f"{sheets}/{oid}.png",
                      columns=8, tile=tile, labels=[s for _, _, s, _ in items],
                      label_colors=[c for _, _, _, c in items], workers=workers)  # fmt: skip
    doc["wall_s"] = round(time.perf_counter() - t0, 1)
    write(doc, json_path, indent=1)
    print(f"done in {doc['wall_s']:.0f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(RESULTS / "studies" / "grasp_stability_baseline.json"))
    ap.add_argument("--sheets", default="docs/grasp_sheets_stability")
    ap.add_argument(
        "--objects", default="test,new", help="Registry splits (test, val, ...) and/or new."
    )
    ap.add_argument("--only", default="", help="Comma-separated object ids to keep (a check).")
    ap.add_argument("--methods", default="vae_refine,vae_select")
    ap.add_argument(
        "--models",
        default="",
        help="Comma-separated NAME=PATH grasp models (safetensors) measured in the same run; "
        "methods are then named NAME/METHOD. Default: the shipped model alone.",
    )
    ap.add_argument(
        "--pose-config",
        default="",
        help="Comma-separated KEY=VALUE settings of grasp.pose_refine.PoseRefineConfig for "
        "the vae_pose methods (tuning on registry objects).",
    )
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolution", type=int, default=96)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--turn",
        type=int,
        default=-1,
        help="Turn each new object by a random rotation from this seed (-1: no).",
    )
    ap.add_argument(
        "--orients",
        default="keep",
        help="How the new objects are loaded: keep, principal, or both.",
    )
    ap.add_argument(
        "--keypoints",
        default="",
        help="Also write each method's generated keypoints ([N, 21, 3] metres, object frame, "
        "the grasps' order) and object ids to this .npz.",
    )
    ap.add_argument("--markdown", action="store_true", help="Print the tables of --json; no runs.")
    args = ap.parse_args()
    if args.markdown:
        print(markdown(json.loads(Path(args.json).read_text())))
        return

    import torch

    from halohand.apps.figures import grasp_verdict
    from halohand.grasp.evaluate import evaluate_grasps, vae_source
    from halohand.grasp.generate import grasp_halo, shipped_model_path
    from halohand.grasp.pose_refine import PoseRefineConfig
    from halohand.objects.registry import load_objects, object_from_mesh

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    halo = grasp_halo()
    pose_config = PoseRefineConfig(**{
        k: _setting(getattr(PoseRefineConfig(), k), v)
        for k, v in (item.split("=", 1) for item in args.pose_config.split(",") if item)
    })  # fmt: skip
    models = {"shipped": str(shipped_model_path())}
    if args.models:
        models = dict(item.split("=", 1) for item in args.models.split(","))
    groups = args.objects.split(",")
    orients = args.orients.split(",")
    meshes = new_objects() if "new" in groups else {}
    if args.turn >= 0:
        meshes = turned(meshes, args.turn)
    object_sets = {}
    for orient in orients:
        # Registry splits (test, val, ...) in the order given, then the new objects.
        objs = [o for g in groups if g != "new" for o in load_objects(g)]
        objs += [object_from_mesh(m, units="m", object_id=k, orient=orient)
                 for k, m in meshes.items()]  # fmt: skip
        if args.only:
            objs = [o for o in objs if o.object_id in args.only.split(",")]
        object_sets[orient] = objs
    objs = object_sets[orients[0]]
    sizes = {o.object_id: [round(float(e) * 100, 1) for e in o.mesh.extents] for o in objs}
    print("objects:", json.dumps(sizes), flush=True)
    makers = {"vae_refine": 1, "vae_select": args.candidates, "vae_pose": 1, "vae_raw_pose": 1}
    doc: dict = {"model": "weights/grasp_vae.safetensors" if not args.models else
                 {k: repo_path(v) for k, v in models.items()}, "n": args.n, "seed": args.seed,
                 "pose_config": asdict(pose_config),
                 "resolution": args.resolution, "objects_cm": sizes, "turn": args.turn,
                 "orients": {o: {x.object_id: np.asarray(x.rotation).round(6).tolist()
                                 for x in object_sets[o]} for o in orients},
                 "methods": {}}  # fmt: skip
    scenes: dict[str, list] = {}
    arrays: dict[str, np.ndarray] = {}
    runs = [(o, k, m) for o in orients for k in models for m in args.methods.split(",")]
    for orient, label, method in runs:
        name = method if orients == ["keep"] else f"{orient}/{method}"
        name = name if not args.models else f"{label}/{name}"
        objs = object_sets[orient]
        t = time.perf_counter()
        posed = method in ("vae_pose", "vae_raw_pose")
        src = vae_source(models[label], method != "vae_raw_pose", halo,
                         candidates=makers[method],
                         pose_config=pose_config if posed else None)  # fmt: skip
        res = evaluate_grasps(src, objs, halo, args.n, args.seed, args.resolution,
                              keep_meshes=args.n, progress=True, physics=True)  # fmt: skip
        prefix = PREFIX[method]
        prefix = prefix if not args.models else label[0] + prefix
        for (mesh, obj), g in zip(res["scenes"], res["grasps"], strict=True):
            sheet = obj.object_id if orients == ["keep"] else f"{obj.object_id}_{orient}"
            scenes.setdefault(sheet, []).append((mesh, obj, *grasp_verdict(g, prefix)))
        doc["methods"][name] = {"candidates": makers[method], "mean": res["mean"],
                                "orient": orient, "method": method,
                                "objects": res["objects"], "grasps": res["grasps"],
                                "wall_s": round(time.perf_counter() - t, 1)}  # fmt: skip
        write(doc, args.json, indent=1)
        if args.keypoints:
            arrays[f"{name}/keypoints"] = res["keypoints"].astype(np.float32)
            arrays[f"{name}/object"] = np.array([g["object"] for g in res["grasps"]])
            save_arrays(arrays, args.keypoints)
        print_rates(name, res["mean"], time.perf_counter() - t)
    finish(doc, scenes, args.json, args.sheets, args.tile, 2, t0)


def markdown(doc: dict) -> str:
    """Per-object shares of both methods, then the means, as Markdown tables."""
    methods = list(doc["methods"])
    head = "| object | " + " | ".join(
        f"{m}: stable / pen <= 5 mm / opposition / **plausible**" for m in methods
    )
    lines = [head + " |", "|---|" + "---|" * len(methods)]
    rows = {m: {r["object"]: r for r in doc["methods"][m]["objects"]} for m in methods}
    for oid in rows[methods[0]]:
        cells = []
        for m in methods:
            r = rows[m][oid]
            cells.append(f"{r['stable']:.2f} / {r['penetration_ok']:.2f} / "
                         f"{r['opposition']:.2f} / **{r['plausible']:.2f}**")  # fmt: skip
        lines.append(f"| {oid} | " + " | ".join(cells) + " |")
    for group, pick in (("test objects", lambda o: not o.startswith("new_")),
                        ("new objects", lambda o: o.startswith("new_"))):  # fmt: skip
        cells = []
        for m in methods:
            rs = [r for o, r in rows[m].items() if pick(o)]
            if not rs:
                continue
            mean = {k: np.mean([r[k] for r in rs]) for k in
                    ("stable", "penetration_ok", "opposition", "plausible")}  # fmt: skip
            cells.append(f"{mean['stable']:.2f} / {mean['penetration_ok']:.2f} / "
                         f"{mean['opposition']:.2f} / **{mean['plausible']:.2f}**")  # fmt: skip
        if cells:
            lines.append(f"| mean, {group} | " + " | ".join(cells) + " |")
    head = ("| method (all objects) | intersection (cm^3) | contact ratio | "
            "max penetration (mm) | fingers touching (thumb / index / middle / ring / "
            "little) | entropy | cluster size (cm) | wall (s) |")  # fmt: skip
    lines += ["", head, "|---|" + "---|" * 7]
    for m in methods:
        a = doc["methods"][m]["mean"]
        touch = " / ".join(f"{a[f'touch_{f}']:.2f}"
                           for f in ("thumb", "index", "middle", "ring", "little"))  # fmt: skip
        lines.append(
            f"| {m} | {a['intersection_cm3']:.2f} | {a['contact_ratio']:.3f} | "
            f"{a['max_penetration_mm']:.1f} | {touch} | {a['diversity_entropy']:.2f} | "
            f"{a['cluster_size_cm']:.2f} | {doc['methods'][m]['wall_s']:.0f} |"
        )
    lines += ["", "| method | grasps | stable | stable with penetration > 5 mm | penetration "
              "<= 5 mm | of those: stable / opposing / both | plausible | holds +x / -x / +y "
              "/ -y / +z / -z |", "|---|" + "---|" * 7]  # fmt: skip
    for m in methods:
        gs = doc["methods"][m]["grasps"]
        stable = [g for g in gs if g["stable"]]
        ok = [g for g in gs if g["max_penetration_mm"] <= 5.0]
        holds = " / ".join(
            str(sum(g["shift_mm"][d] < 20.0 for g in gs))
            for d in ("+x", "-x", "+y", "-y", "+z", "-z")
        )
        lines.append(
            f"| {m} | {len(gs)} | {len(stable)} | "
            f"{sum(g['max_penetration_mm'] > 5.0 for g in stable)} | {len(ok)} | "
            f"{sum(g['stable'] for g in ok)} / {sum(g['opposition'] for g in ok)} / "
            f"{sum(g['stable'] and g['opposition'] for g in ok)} | "
            f"{sum(g['plausible'] for g in gs)} | {holds} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
