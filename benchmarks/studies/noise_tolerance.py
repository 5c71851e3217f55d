"""Keypoint-noise tolerance of the HALO model (the paper's Fig. D.1).

    .venv/bin/python benchmarks/studies/noise_tolerance.py [--hands 20] [--data data/webxr_s0]
        [--split test] [--amplitudes 0,0.5,1,2,3,4,5] [--seed 2026] [--checkpoint FILE]
        [--resolution 256] [--fix-skeleton] [--json OUT] [--plot docs/noise_tolerance.png]

For the first ``--hands`` hands of ``--split`` of ``--data`` and each noise amplitude ``a``
(mm), every coordinate of every one of the 21 keypoints (the wrist included) gets independent
uniform noise ``U[-a, a]`` mm. The noise is drawn once per hand as ``u ~ U[-1, 1]^(21 x 3)``
from ``SeedSequence(--seed, spawn_key=(hand_index,))`` and scaled by ``a`` (common random
numbers: each amplitude sees the same noise direction, so the curves are smooth in ``a``;
for each ``a`` the noise is still exactly ``U[-a, a]`` per coordinate). ``a = 0`` is the
clean baseline.

The noisy keypoints (metres, the hand's own side) go through ``HALO.reconstruct`` (the code
path of ``halohand reconstruct``; part colours off, they do not change the surface) at
``--resolution``, and the mesh is scored against the **clean** ground truth exactly as
``halohand evaluate`` does: IoU on the data's 100k uniform points (``iou_uniform``) and on
uniform + near-surface points (``iou_mixed``, the paper's IoU), Chamfer-L1 in mm against the
stored 100k-point cloud, normal consistency (:func:`halohand.evaluation.mesh_metrics`).

``--fix-skeleton`` also reconstructs from ``halohand.canonical.plausibility.fix_skeleton`` of
the noisy keypoints (before/after; reported as variant ``fixed`` beside ``noisy``, with the
joint motion of the fix and the fixed skeleton's distance to the clean one).

Output: one JSON document (stdout, and ``--json``): per amplitude and variant the mean /
min / max of each metric and of the time per hand (``mesh_s`` wall and ``mesh_cpu_s`` CPU
seconds of this process for the reconstruction, ``seconds`` wall with the metrics), and
per-hand rows; a PNG plot (``--plot``, default ``docs/noise_tolerance.png``; ``--plot ''``
for none) and a markdown table on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import REPO, command_line, emit, repo_path  # noqa: E402

ROOT = REPO  # the repository
DEFAULT_AMPLITUDES = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0)
METRICS = (
    "iou_uniform", "iou_mixed", "chamfer_l1_mm", "normal_consistency", "mesh_s", "mesh_cpu_s",
    "seconds",
)  # fmt: skip


def fix_skeleton_available() -> bool:
    """Whether ``halohand.canonical.plausibility.fix_skeleton`` exists in this build."""
    try:
        from halohand.canonical.plausibility import fix_skeleton  # noqa: F401
    except ImportError:
        return False
    return True


def noise_unit(seed: int, hand_index: int) -> np.ndarray:
    """``[21, 3]`` draws of ``U[-1, 1]`` for one hand (scaled by the amplitude later)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(hand_index,)))
    return rng.uniform(-1.0, 1.0, (21, 3))


def score(mesh: Any, hand: dict[str, Any], n_samples: int) -> dict[str, Any]:
    """``halohand evaluate``'s metrics of one mesh (metres) against the stored clean GT."""
    from halohand.evaluation import iou, mesh_metrics
    from halohand.objects.inside import contains

    pts_all = np.concatenate([hand["points_uniform"], hand["points_near"]])
    occ_all = np.concatenate([hand["occ_uniform"], hand["occ_near"]])
    m = mesh_metrics(
        mesh, pts_all, occ_all, hand["pointcloud"], hand["pointcloud_normals"], n_samples
    )
    empty = len(mesh.faces) == 0
    if empty:
        iou_u = 0.0
    else:
        iou_u = iou(
            contains(mesh.vertices, mesh.faces, hand["points_uniform"]), hand["occ_uniform"]
        )
    return {
        "iou_uniform": float(iou_u),
        "iou_mixed": float(m.iou),
        "chamfer_l1_mm": None if empty else 1000.0 * m.chamfer_l1,
        "normal_consistency": None if empty else float(m.normal_consistency),
        "faces": len(mesh.faces),
        "watertight": bool(mesh.is_watertight) if not empty else False,
    }


def _summary(rows: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    vals = np.array([r[key] for r in rows if r.get(key) is not None], dtype=np.float64)
    if len(vals) == 0:
        return {"mean": None, "min": None, "max": None}
    return {"mean": float(vals.mean()), "min": float(vals.min()), "max": float(vals.max())}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "webxr_s0")
    parser.add_argument("--split", default="test")
    parser.add_argument("--hands", type=int, default=20, help="first N hands of the split")
    parser.add_argument(
        "--amplitudes",
        default=",".join(f"{a:g}" for a in DEFAULT_AMPLITUDES),
        help="noise amplitudes a in mm (U[-a, a] per coordinate), comma-separated",
    )
    parser.add_argument("--seed", type=int, default=2026, help="noise seed")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: shipped weights")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--surface-samples", type=int, default=100_000)
    parser.add_argument("--fix-skeleton", action="store_true", help="also fix_skeleton(noisy)")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON here")
    parser.add_argument(
        "--plot", default=str(ROOT / "docs" / "noise_tolerance.png"), help="PNG ('' for none)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    try:
        amplitudes = [float(a) for a in args.amplitudes.split(",") if a.strip()]
    except ValueError:
        parser.error(f"--amplitudes must be comma-separated numbers, got {args.amplitudes!r}")
    if not amplitudes or any(not np.isfinite(a) or a < 0 for a in amplitudes):
        parser.error("--amplitudes must be finite and >= 0")
    if args.hands < 1:
        parser.error("--hands must be >= 1")
    if args.fix_skeleton and not fix_skeleton_available():
        parser.error(
            "--fix-skeleton is unavailable: this build has no "
            "halohand.canonical.plausibility.fix_skeleton"
        )

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    from halohand.core.errors import HalohandInputError
    from halohand.data.dataset import OccupancyDataset
    from halohand.inference.halo import HALO, pretrained_path

    model = (
        HALO.pretrained(device=args.device)
        if args.checkpoint is None
        else HALO.from_checkpoint(args.checkpoint, device=args.device)
    )
    ds = OccupancyDataset(args.data, args.split, n_points=1, n_surface=1, seed=0)
    n = min(args.hands, len(ds))
    variants = ["noisy", "fixed"] if args.fix_skeleton else ["noisy"]
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {
        v: {f"{a:g}": [] for a in amplitudes} for v in variants
    }
    t_start = time.perf_counter()
    for i in range(n):
        hand = ds.hand(i)
        clean = np.asarray(hand["keypoints"], dtype=np.float64)
        side = hand["side"]
        u = noise_unit(args.seed, i)
        for a in amplitudes:
            noisy = clean + (a / 1000.0) * u
            inputs = {"noisy": noisy}
            fix_info: dict[str, float] = {}
            if args.fix_skeleton:
                from halohand.canonical.plausibility import fix_skeleton

                fixed = fix_skeleton(noisy, side=side, units="m")
                inputs["fixed"] = fixed.keypoints
                fix_info = {
                    "fix_moved_mean_mm": float(fixed.moved_mm.mean()),
                    "fix_moved_max_mm": float(fixed.moved_mm.max()),
                }
            for variant, kp in inputs.items():
                t0, c0 = time.perf_counter(), time.process_time()
                row: dict[str, Any] = {
                    "hand": i,
                    "hand_index": int(hand["hand_index"]),
                    "amplitude_mm": a,
                    "kp_error_mean_mm": float(np.linalg.norm(kp - clean, axis=-1).mean() * 1000),
                }
                if variant == "fixed":
                    row.update(fix_info)
                try:
                    mesh = model.reconstruct(
                        kp, side=side, units="m", resolution=args.resolution, colors=False
                    )
                except HalohandInputError as exc:  # refused skeleton: counted, not scored
                    row.update({"error": str(exc), "seconds": time.perf_counter() - t0})
                    rows[variant][f"{a:g}"].append(row)
                    continue
                t1, c1 = time.perf_counter(), time.process_time()
                row.update(score(mesh, hand, args.surface_samples))
                row["mesh_s"] = t1 - t0
                row["mesh_cpu_s"] = c1 - c0
                row["seconds"] = time.perf_counter() - t0
                rows[variant][f"{a:g}"].append(row)
                print(
                    f"hand {i} a={a:g} mm {variant}: IoU {row['iou_mixed']:.4f} mixed, "
                    f"Chamfer {row['chamfer_l1_mm'] or float('nan'):.3f} mm, "
                    f"{row['seconds']:.1f} s",
                    file=sys.stderr,
                )

    results: dict[str, list[dict[str, Any]]] = {}
    for variant in variants:
        results[variant] = []
        for a in amplitudes:
            rr = rows[variant][f"{a:g}"]
            ok = [r for r in rr if "error" not in r]
            entry: dict[str, Any] = {
                "amplitude_mm": a,
                "hands": len(rr),
                "refused": len(rr) - len(ok),
                "kp_error_mean_mm": _summary(rr, "kp_error_mean_mm")["mean"],
                **{k: _summary(ok, k) for k in METRICS},
            }
            if variant == "fixed":
                entry["fix_moved_mean_mm"] = _summary(rr, "fix_moved_mean_mm")["mean"]
            results[variant].append(entry)

    checkpoint = args.checkpoint if args.checkpoint is not None else pretrained_path()
    doc: dict[str, Any] = {
        "benchmark": "noise_tolerance",
        "command": command_line([__file__, *(sys.argv[1:] if argv is None else argv)]),
        "checkpoint": repo_path(checkpoint),
        "data": str(args.data),
        "split": args.split,
        "hands": n,
        "noise": "U[-a, a] mm, independent per coordinate of each of the 21 joints; "
        f"u ~ U[-1,1]^(21x3) per hand from SeedSequence({args.seed}, spawn_key=(hand,)), "
        "scaled by a",
        "seed": args.seed,
        "resolution": args.resolution,
        "surface_samples": args.surface_samples,
        "fix_skeleton": args.fix_skeleton,
        "ground_truth": "the clean hand's stored points / labels / point cloud",
        "results": results,
        "total_s": time.perf_counter() - t_start,
        "per_hand": rows,
    }
    emit(doc, args.json, indent=1, allow_nan=False)
    if args.plot:
        plot(doc, Path(args.plot))
    print(markdown_table(doc), file=sys.stderr)
    return doc


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def markdown_table(doc: dict[str, Any]) -> str:
    """Means per amplitude (and, with the fix, the fixed skeleton's beside them)."""
    res = doc["results"]
    fixed = "fixed" in res
    head = "| a (mm) | kp error mm | IoU uniform | IoU mixed | Chamfer-L1 mm | normal cons. |"
    sep = "|---|---|---|---|---|---|"
    if fixed:
        head += " fixed: kp error mm | IoU uniform | IoU mixed | Chamfer-L1 mm |"
        sep += "---|---|---|---|"
    lines = [head, sep]
    for k, e in enumerate(res["noisy"]):
        line = (
            f"| {e['amplitude_mm']:g} | {_fmt(e['kp_error_mean_mm'], '.2f')} "
            f"| {_fmt(e['iou_uniform']['mean'], '.4f')} | {_fmt(e['iou_mixed']['mean'], '.4f')} "
            f"| {_fmt(e['chamfer_l1_mm']['mean'], '.3f')} "
            f"| {_fmt(e['normal_consistency']['mean'], '.4f')} |"
        )
        if fixed:
            f = res["fixed"][k]
            line += (
                f" {_fmt(f['kp_error_mean_mm'], '.2f')} | {_fmt(f['iou_uniform']['mean'], '.4f')} "
                f"| {_fmt(f['iou_mixed']['mean'], '.4f')} "
                f"| {_fmt(f['chamfer_l1_mm']['mean'], '.3f')} |"
            )
        lines.append(line)
    refused = sum(e["refused"] for v in res.values() for e in v)
    if refused:
        lines.append(f"\n{refused} reconstructions refused (bad skeleton); see per_hand")
    return "\n".join(lines)


def plot(doc: dict[str, Any], path: Path) -> None:
    """IoU (mixed and uniform) and Chamfer-L1 against the noise amplitude, mean +- min/max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.8))
    # colour: metric; line style and marker: variant (fixed = dashed, open squares, so
    # it stays visible where fix_skeleton changes nothing and the lines coincide)
    styles = {"noisy": ("-", "o", "full", "noisy"), "fixed": ("--", "s", "none", "fix_skeleton")}
    for variant, entries in doc["results"].items():
        ls, marker, fill, label = styles[variant]
        a = np.array([e["amplitude_mm"] for e in entries])
        for ax, key, colour, name in (
            (axes[0], "iou_mixed", "C0", "IoU mixed"),
            (axes[0], "iou_uniform", "C2", "IoU uniform"),
            (axes[1], "chamfer_l1_mm", "C3", "Chamfer-L1"),
        ):
            mean = np.array([np.nan if e[key]["mean"] is None else e[key]["mean"] for e in entries])
            lo = np.array([np.nan if e[key]["min"] is None else e[key]["min"] for e in entries])
            hi = np.array([np.nan if e[key]["max"] is None else e[key]["max"] for e in entries])
            ax.plot(
                a, mean, ls, color=colour, marker=marker, fillstyle=fill, ms=5,
                label=f"{name}, {label}",
            )  # fmt: skip
            if variant == "noisy":
                ax.fill_between(a, lo, hi, color=colour, alpha=0.12, lw=0)
    axes[0].set_ylabel("IoU (mean, band min-max)")
    axes[1].set_ylabel("Chamfer-L1 mm (mean, band min-max)")
    for ax in axes:
        ax.set_xlabel("noise amplitude a (mm): U[-a, a] per coordinate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Noise tolerance: {doc['hands']} {doc['split']} hands, resolution {doc['resolution']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
