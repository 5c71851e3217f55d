"""HOISDF at this machine's scale on rendered hand-object scenes: training runs, their
evaluation on held-out scenes and held-out objects, and an SDF slice figure.

Data: ``halohand data hoi`` (docs/hoisdf.md has the grasp-engine commands). The
model is given the image, the camera intrinsics and the true wrist position in the camera
(root-relative evaluation, as DexYCB protocols do); see ``docs/hoisdf.md``.

    python benchmarks/studies/hoisdf.py train --config configs/experiments/hoisdf/cpu_sdf.toml \\
        --data /tmp/hoi/data --out /tmp/hoi/runs/sdf
    python benchmarks/studies/hoisdf.py evaluate --data /tmp/hoi/data \\
        --run sdf=/tmp/hoi/runs/sdf --run nosdf=/tmp/hoi/runs/nosdf \\
        --json benchmarks/results/studies/hoisdf.json
    python benchmarks/studies/hoisdf.py figure --data /tmp/hoi/data --run /tmp/hoi/runs/sdf \\
        --out docs/images/hoisdf_sdf_slice.png

    python benchmarks/studies/hoisdf.py curves --run sdf=/tmp/hoi/runs/sdf \\
        --run nosdf=/tmp/hoi/runs/nosdf --out docs/hoisdf_training.png

``train`` resumes from ``OUT/checkpoint.pt``; ``evaluate`` merges into an existing JSON
(one entry per run name, each with the command that made it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report

from _report import relative_paths  # noqa: E402

from halohand.handobject import HOISDFConfig, load_hoi  # noqa: E402
from halohand.training.hoisdf import (  # noqa: E402
    HOISDFTrainConfig,
    branch_run,
    evaluate_hoisdf,
    load_run,
    train_hoisdf,
)

SPLITS = ("heldout_scenes", "heldout_objects")


def read_config(path: Path) -> tuple[HOISDFConfig, HOISDFTrainConfig]:
    doc = tomllib.loads(path.read_text())
    return HOISDFConfig.from_dict(doc.get("model", {})), HOISDFTrainConfig(**doc.get("train", {}))


def cmd_train(args: argparse.Namespace) -> None:
    model_cfg, train_cfg = read_config(args.config)
    torch.set_num_threads(train_cfg.threads)
    t0 = time.perf_counter()
    data = load_hoi(args.data / "train", model_cfg.image_size)
    print(f"{len(data)} train images in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.branch_from and not (args.out / "checkpoint.pt").exists():
        args.out.mkdir(parents=True, exist_ok=True)
        at = branch_run(args.branch_from, args.out, model_cfg, train_cfg)
        print(f"branched from {args.branch_from} at step {at}", flush=True)
    summary = train_hoisdf(data, args.out, model_cfg, train_cfg, log=None)
    summary["command"] = "python benchmarks/studies/hoisdf.py " + " ".join(sys.argv[1:])
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("steps", "train_seconds")}), flush=True)


def root_baseline(data: Any) -> dict[str, Any]:
    """The floor of the protocol: every joint and the object centre at the given root,
    the object unrotated (what the root alone tells)."""
    from halohand.handobject import hand_object_errors

    b = data.batch(torch.arange(len(data)))
    n = len(data)
    pred = {
        "joints": torch.zeros(n, 21, 3),
        "object_translation": torch.zeros(n, 3),
        "object_rotation": torch.eye(3).expand(n, 3, 3),
    }
    errs = hand_object_errors(pred, b)
    return {"images": n, **{k: round(float(v.mean()), 2) for k, v in errs.items()}}


def cmd_evaluate(args: argparse.Namespace) -> None:
    from halohand.core.atomic import write_text_atomic

    torch.set_num_threads(1)
    command = "python benchmarks/studies/hoisdf.py " + " ".join(sys.argv[1:])
    new: dict[str, Any] = {}
    cache: dict[int, dict[str, Any]] = {}
    if args.root_baseline:
        data = {s: load_hoi(args.data / s, 96) for s in SPLITS}
        new["root_only"] = {"eval_command": command, **{s: root_baseline(data[s]) for s in SPLITS}}
    for spec in args.run or []:
        name, _, path = spec.partition("=")
        model, meta = load_run(path)
        size = model.config.image_size
        if size not in cache:
            cache[size] = {s: load_hoi(args.data / s, size) for s in SPLITS}
        t0 = time.perf_counter()
        res = {
            s: evaluate_hoisdf(
                model, cache[size][s], oracle_points=args.oracle_points, grid=args.grid
            )
            for s in SPLITS
        }
        if args.oracle_points:
            name += "+oracle_points"
        summary_path = Path(path) / "summary.json"
        train_cmd = (
            json.loads(summary_path.read_text()).get("command") if summary_path.exists() else None
        )
        new[name] = {
            "train_command": train_cmd,
            "eval_command": command,
            "steps": meta["step"],
            "train_seconds": round(meta["elapsed_s"], 1),
            "model_config": meta["model_config"],
            "train_config": meta["config"],
            "parameters": sum(p.numel() for p in model.parameters()),
            "eval_seconds": round(time.perf_counter() - t0, 1),
            "eval_grid": args.grid,
            **res,
        }
    for name, r in new.items():
        line = "  ".join(
            f"{s}: "
            + " ".join(f"{k} {r[s][k]:.1f}" for k in ("mje", "pa_mje", "oce", "mce", "add_s"))
            for s in SPLITS
        )
        print(f"{name} ({r.get('steps', '-')} steps): {line}", flush=True)
    if args.json:
        # read just before writing: several evaluations may share one file
        doc: dict[str, Any] = json.loads(args.json.read_text()) if args.json.exists() else {}
        doc.setdefault("note", "rendered hand-object scenes of this project, not DexYCB numbers")
        doc.setdefault("runs", {}).update(relative_paths(new))  # no /tmp or repo paths
        write_text_atomic(args.json, json.dumps(doc, indent=2) + "\n")


def cmd_figure(args: argparse.Namespace) -> None:
    """Predicted vs true hand and object SDF on the plane through the wrist spanned by the
    camera's x axis and the direction to the object centre, for a few held-out views."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from halohand.apps.handobject_data import hand_signed_distance
    from halohand.objects.registry import load_object

    torch.set_num_threads(1)
    model, _ = load_run(args.run)
    data = load_hoi(args.data / args.split, model.config.image_size)
    picks = np.linspace(0, len(data) - 1, args.views).round().astype(int)
    res, half = 64, model.config.volume_half
    fig, axes = plt.subplots(len(picks), 5, figsize=(15, 3.1 * len(picks)))
    shard_paths = sorted((args.data / args.split / "shards").glob("g_*.npz"))
    for row, i in enumerate(picks):
        b = data.batch(torch.tensor([int(i)]))
        # plane: through the root, spanned by the camera x axis and the camera z axis
        u = torch.linspace(-half, half, res)
        uu, vv = torch.meshgrid(u, u, indexing="xy")
        pts = torch.stack([uu, torch.zeros_like(uu), vv], -1).reshape(1, -1, 3)
        pts[..., 1] = b["object_translation"][0, 1]  # the plane through the object centre's height
        with torch.no_grad():
            d_h, d_o = model.field_values(b["images"], b["intrinsics"], b["root"], pts)
        g = int(data.grasp[i])
        with np.load(shard_paths[g]) as z:
            rot = data.rotation[i].double().numpy()
            trans = data.translation[i].double().numpy()
            root = b["root"][0].double().numpy()
            to_grasp = (pts[0].double().numpy() + root - trans) @ rot  # camera -> grasp frame
            t_h = hand_signed_distance(z["hand_vertices"], z["hand_faces"], to_grasp)
            t_o = load_object(str(z["object_id"])).signed_distance(to_grasp)
        c = model.config.sdf_clamp
        panels = [
            (b["images"][0].permute(1, 2, 0).numpy(), "input"),
            (np.clip(t_h, -c, c).reshape(res, res), "hand SDF, truth"),
            (d_h[0].numpy().reshape(res, res), "hand SDF, predicted"),
            (np.clip(t_o, -c, c).reshape(res, res), "object SDF, truth"),
            (d_o[0].numpy().reshape(res, res), "object SDF, predicted"),
        ]
        for col, (img, title) in enumerate(panels):
            ax = axes[row, col]
            if col == 0:
                ax.imshow(img)
            else:
                ax.imshow(
                    img,
                    cmap="RdBu",
                    vmin=-c,
                    vmax=c,
                    origin="lower",
                    extent=(-half, half, -half, half),
                )
                ax.contour(
                    np.linspace(-half, half, res),
                    np.linspace(-half, half, res),
                    img,
                    levels=[0.0],
                    colors="k",
                    linewidths=1.0,
                )
                ax.set_xlabel("camera x (m)")
                ax.set_ylabel("camera z (m)")
            ax.set_title(f"{data.object_ids[g]}: {title}" if col == 0 else title, fontsize=9)
    fig.suptitle(
        f"Signed distance (m, clamped to +-{c:.2f}) on the plane y = object centre, "
        "root-relative; black: zero level",
        fontsize=10,
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=70)
    print(f"wrote {args.out}")


def cmd_curves(args: argparse.Namespace) -> None:
    """Training losses (joints and object centre, cm; window means of log.jsonl) against
    training time for several runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for spec in args.run:
        name, _, path = spec.partition("=")
        rows = [json.loads(line) for line in open(Path(path) / "log.jsonl")]
        rows = [r for r in rows if "step" in r and "joints" in r]
        t = [r["elapsed_s"] / 60 for r in rows]
        for ax, key in zip(axes, ("joints", "center", "add_s"), strict=True):
            ax.plot(t, [r[key] for r in rows], label=name, lw=1)
            ax.set_title(f"train loss: {key} (cm, L1 / ADD-S)", fontsize=9)
            ax.set_xlabel("training time (min)")
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=70)
    print(f"wrote {args.out}")


def cmd_table(args: argparse.Namespace) -> None:
    """Markdown tables (mm) of the named runs of an evaluation JSON, one per split."""
    runs = json.loads(args.json.read_text())["runs"]
    keys = ("mje", "pa_mje", "oce", "mce", "add_s")
    for split in SPLITS:
        print(f"\n{split} (mm) | steps | train min | MJE | PA-MJE | OCE | MCE | ADD-S")
        print("|".join(["---"] * 8))
        for name in args.names.split(","):
            r = runs[name]
            mins = f"{r['train_seconds'] / 60:.1f}" if "train_seconds" in r else "-"
            vals = " | ".join(f"{r[split][k]:.1f}" for k in keys)
            print(f"{name} | {r.get('steps', '-')} | {mins} | {vals}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("train")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--branch-from",
        type=Path,
        default=None,
        help="start from this run's checkpoint (same run but its sampling; before field_after)",
    )
    p = sub.add_parser("evaluate")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--run", action="append", default=[], metavar="NAME=DIR")
    p.add_argument("--grid", type=int, default=20, help="test-time lattice per axis")
    p.add_argument("--root-baseline", action="store_true", help="add the root-only row")
    p.add_argument(
        "--oracle-points",
        action="store_true",
        help="diagnostic: points near the true surfaces (uses the truth; rows NAME+oracle_points)",
    )
    p.add_argument("--json", type=Path, default=None)
    p = sub.add_parser("figure")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--split", default="heldout_objects")
    p.add_argument("--views", type=int, default=3)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("curves")
    p.add_argument("--run", action="append", required=True, metavar="NAME=DIR")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("table")
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--names", required=True, help="comma-separated run names, in order")
    args = parser.parse_args(argv)
    cmds = {
        "table": cmd_table,
        "train": cmd_train,
        "evaluate": cmd_evaluate,
        "figure": cmd_figure,
        "curves": cmd_curves,
    }
    cmds[args.cmd](args)


if __name__ == "__main__":
    main()
