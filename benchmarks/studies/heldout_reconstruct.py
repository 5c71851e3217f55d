"""Held-out acceptance check of ``halohand reconstruct`` (the "reconstruct" issue).

    .venv/bin/python benchmarks/studies/heldout_reconstruct.py [--hands 20] [--seed 2026]
        [--checkpoint FILE] [--resolution 256] [--thickness-mean M] [--json OUT] [--keep-dir DIR]

Acceptance (issue "reconstruct"): ``halohand reconstruct`` on independently posed right hands
in metres, the same in millimetres with default units, and mirrored left hands with
``--side left`` gives meshes with IoU >= 0.93 and Chamfer-L1 <= 0.8 mm against ground truth,
all three groups alike.

**Hands.** ``--hands`` right hands are drawn from the embedded hand model's priors
(``WebXRHandSource().sample(rng, "right")``: random identity, natural pose checked for
self-collision), hand ``i`` from ``SeedSequence(--seed, spawn_key=(HELDOUT_STREAM, i, 0))``.
The training data (``halohand data generate --seed 0``) draws hand ``i`` of split ``s`` from
``SeedSequence(0, spawn_key=(split_id, i, stream))`` with split ids 0..2; the seed (2026) and
the stream key (``HELDOUT_STREAM = 7``) both differ, so these hands are in neither the
repository nor the training data. As a check, every held-out hand's nearest training
skeleton (mean joint distance, mm) is reported (``--train-data``, default
``data/webxr_s0``; ``--train-data ''`` skips it).

**Groups**, one ``halohand reconstruct`` call each (the installed CLI in a subprocess, all
files of the group at once, default options except ``--resolution`` / ``--checkpoint``):

* ``A_right_m``: ``hand_NNN.npy``, ``[21, 3]`` metres, ``--side`` and ``--units`` not given;
* ``B_right_mm``: the same keypoints x 1000, alternately as ``.json`` (a plain nested list)
  and ``.txt`` (21 rows), default ``--units auto`` (must detect mm);
* ``C_left_m``: the right hands mirrored (x -> -x) into left hands, ``.npy`` in metres,
  ``--side left``; the ground-truth mesh is mirrored the same way with its face winding
  flipped (so it stays outward-oriented).

**Metrics** (per hand, meshes converted to metres; :func:`halohand.evaluation.mesh_metrics`):

* IoU of the inside of the output mesh (generalized winding number,
  :func:`halohand.inference.contains`) and of the GT mesh (the data engine's
  :func:`halohand.data.engine.inside`, the same test) on ``--points`` uniform points in the
  GT mesh's bounding box padded by ``--box-padding-mm`` per side, widened to contain the
  output mesh's bounding box if it reaches beyond (a spurious blob is never cut off;
  ``box_widened`` says when that happened, ``beyond_gt_box_mm`` by how much);
* Chamfer-L1 (mm) = 1/2 (completeness + accuracy), ``--surface-samples`` area-uniform
  samples on each surface; normal consistency, orientation ignored;
* ``vs_A_mm``: symmetric Chamfer-L1 between this group's mesh (B in metres, C mirrored
  back) and group A's mesh, vertex to vertex: how alike the groups are per hand.

Pass: each group's **mean** IoU >= 0.93 and mean Chamfer-L1 <= 0.8 mm (``pass``), and the
groups alike: group means within ``--alike-iou`` (0.005) and ``--alike-chamfer-mm`` (0.05 mm)
of each other (``alike``). The share of hands meeting both thresholds is reported too.

**Time per hand** (``s_per_hand``): the group's CLI wall time / hands (model loading and
start-up included); ``cpu_s_per_hand``: the same in CPU seconds of the CLI process (user +
system, all threads: meaningful on a shared machine where wall time is not); ``mesh_s``:
per hand from the output files' modification times (file i - file i-1; the first hand also
carries the start-up and is reported apart as ``first_hand_s``).

Output: one JSON document (stdout, and ``--json``) with settings, per-group summaries
(mean / min / max per metric) and per-hand rows; a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import REPO, command_line, emit, repo_path  # noqa: E402

ROOT = REPO  # the repository
#: spawn_key[0] of the held-out stream (the training data uses split ids 0, 1, 2).
HELDOUT_STREAM = 7
GROUPS = ("A_right_m", "B_right_mm", "C_left_m")
IOU_MIN = 0.93
CHAMFER_MAX_MM = 0.8
METRICS = ("iou", "chamfer_l1_mm", "normal_consistency", "vs_A_mm", "mesh_s")


def _halohand_exe() -> str:
    """The venv's ``halohand`` (next to this interpreter), else the one on PATH."""
    candidates = [Path(sys.executable).parent / "halohand", ROOT / ".venv" / "bin" / "halohand"]
    for c in candidates:
        if c.is_file():
            return str(c)
    found = shutil.which("halohand")
    if found is None:
        raise SystemExit("error: the halohand command was not found (make the venv first)")
    return found


def sample_hands(n: int, seed: int, thickness_mean: float | None = None) -> list[Any]:
    """``n`` independently posed right hands (``PosedHand``, metres, wrist at the origin),
    their parts' thickness drawn around ``thickness_mean`` (the data option; None: 0)."""
    from halohand.data.engine import validate_hand
    from halohand.handmodel.sources import make_source

    source = make_source("webxr", thickness_mean=thickness_mean)
    hands = []
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(HELDOUT_STREAM, i, 0)))
        hand = source.sample(rng, side="right")
        validate_hand(hand, where=f"held-out hand {i}")
        hands.append(hand)
    return hands


def nearest_training_mm(keypoints: np.ndarray, data: Path) -> dict[str, Any] | None:
    """Per held-out hand, the mean joint distance (mm) to the nearest training skeleton."""
    from halohand.data.dataset import OccupancyDataset

    if not (data / "manifest.json").is_file():
        return None
    ds = OccupancyDataset(data, "train")
    train = np.concatenate(
        [np.asarray(ds.shard(s).arrays["keypoints"]) for s in range(len(ds.files))]
    )
    d = np.linalg.norm(keypoints[:, None] - train[None], axis=-1).mean(-1) * 1000.0  # [N, T]
    nearest = d.min(1)
    return {
        "data": str(data),
        "training_hands": len(train),
        "nearest_mean_joint_mm_per_hand": [round(float(x), 3) for x in nearest],
        "nearest_mean_joint_mm_min": round(float(nearest.min()), 3),
    }


def mirror_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x -> -x, with two corners of every face swapped so the mesh stays outward-facing."""
    return vertices * np.array([-1.0, 1.0, 1.0]), np.ascontiguousarray(faces[:, [0, 2, 1]])


def ground_truth(
    vertices: np.ndarray, faces: np.ndarray, n_surface: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Surface samples with face normals of a GT mesh (metres), as the data engine draws."""
    from halohand.data.engine import sample_surface

    pts, face, _ = sample_surface(vertices, faces, n_surface, rng)
    tri = vertices[faces[face]]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return {"vertices": vertices, "faces": faces, "points": pts, "normals": normals}


def score(
    mesh: trimesh.Trimesh,
    gt: dict[str, np.ndarray],
    n_points: int,
    padding_m: float,
    n_samples: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """IoU (uniform points in the padded GT box), Chamfer-L1 (mm), normal consistency."""
    from halohand.data.engine import inside
    from halohand.evaluation import mesh_metrics

    lo = gt["vertices"].min(0) - padding_m
    hi = gt["vertices"].max(0) + padding_m
    widened, beyond = False, 0.0
    if len(mesh.vertices):
        plo, phi = np.asarray(mesh.vertices).min(0), np.asarray(mesh.vertices).max(0)
        widened = bool((plo < lo).any() or (phi > hi).any())
        beyond = float(max(0.0, (lo - plo).max(), (phi - hi).max()))
        lo, hi = np.minimum(lo, plo), np.maximum(hi, phi)
    pts = rng.uniform(lo, hi, (n_points, 3))
    occ_gt = inside(gt["vertices"], gt["faces"], pts)
    m = mesh_metrics(mesh, pts, occ_gt, gt["points"], gt["normals"], n_samples)
    empty = len(mesh.faces) == 0
    return {
        "iou": float(m.iou),
        "chamfer_l1_mm": None if empty else 1000.0 * m.chamfer_l1,
        "normal_consistency": None if empty else float(m.normal_consistency),
        "gt_inside_fraction": float(occ_gt.mean()),
        "box_widened": widened,
        "beyond_gt_box_mm": 1000.0 * beyond,
        "faces": len(mesh.faces),
        "watertight": bool(mesh.is_watertight) if not empty else False,
    }


def vertex_chamfer_mm(a: np.ndarray, b: np.ndarray) -> float | None:
    """Symmetric Chamfer-L1 (mm) between two vertex sets in metres."""
    from scipy.spatial import cKDTree

    if len(a) == 0 or len(b) == 0:
        return None
    d_ab, _ = cKDTree(b).query(a)
    d_ba, _ = cKDTree(a).query(b)
    return float(500.0 * (d_ab.mean() + d_ba.mean()))


def write_inputs(group: str, keypoints_m: np.ndarray, folder: Path) -> list[Path]:
    """The group's keypoint files (see the module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, kp in enumerate(keypoints_m):
        if group == "B_right_mm":
            kp_mm = kp * 1000.0
            if i % 2 == 0:
                path = folder / f"hand_{i:03d}.json"
                path.write_text(json.dumps(kp_mm.tolist()))
            else:
                path = folder / f"hand_{i:03d}.txt"
                path.write_text(
                    "# held-out hand, millimetres, OpenPose order\n"
                    + "\n".join(" ".join(repr(float(x)) for x in row) for row in kp_mm)
                    + "\n"
                )
        else:
            kp_g = kp * np.array([-1.0, 1.0, 1.0]) if group == "C_left_m" else kp
            path = folder / f"hand_{i:03d}.npy"
            np.save(path, kp_g)
        paths.append(path)
    return paths


def run_cli(
    inputs: list[Path],
    out_dir: Path,
    extra: list[str],
    env: dict[str, str],
) -> tuple[float, float, float, list[str]]:
    """``halohand reconstruct INPUTS --out-dir OUT EXTRA``: (start time, wall s, CPU s of the
    process, its warning lines)."""
    cmd = [_halohand_exe(), "reconstruct", *map(str, inputs), "--out-dir", str(out_dir), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(
            f"error: {' '.join(cmd[:2])} ... exited {proc.returncode}:\n{proc.stderr.strip()}"
        )
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning")]
    return t0, wall, cpu, lines


def _summary(rows: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    vals = np.array([r[key] for r in rows if r.get(key) is not None], dtype=np.float64)
    if len(vals) == 0:
        return {"mean": None, "min": None, "max": None}
    return {"mean": float(vals.mean()), "min": float(vals.min()), "max": float(vals.max())}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hands", type=int, default=20, help="held-out hands per group")
    parser.add_argument("--seed", type=int, default=2026, help="held-out seed (training: 0)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: shipped weights")
    parser.add_argument("--resolution", type=int, default=256, help="passed to reconstruct")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON here")
    parser.add_argument("--points", type=int, default=100_000, help="uniform IoU points")
    parser.add_argument("--surface-samples", type=int, default=100_000)
    parser.add_argument("--box-padding-mm", type=float, default=10.0)
    parser.add_argument("--alike-iou", type=float, default=0.005)
    parser.add_argument("--alike-chamfer-mm", type=float, default=0.05)
    parser.add_argument("--train-data", default=str(ROOT / "data" / "webxr_s0"))
    parser.add_argument("--keep-dir", type=Path, default=None, help="keep inputs/meshes here")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads here and in the CLI"
    )
    parser.add_argument(
        "--thickness-mean",
        type=float,
        default=None,
        help="hands drawn as data generate --thickness-mean M draws them",
    )
    args = parser.parse_args(argv)
    if args.hands < 1:
        parser.error("--hands must be >= 1")

    env = dict(os.environ)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)

    t_start = time.perf_counter()
    hands = sample_hands(args.hands, args.seed, args.thickness_mean)
    kp_right = np.stack([np.asarray(h.keypoints, dtype=np.float64) for h in hands])
    leakage = nearest_training_mm(kp_right, Path(args.train_data)) if args.train_data else None

    extra = ["--resolution", str(args.resolution)]
    if args.checkpoint is not None:
        extra += ["--checkpoint", str(args.checkpoint)]
    group_args = {"A_right_m": [], "B_right_mm": [], "C_left_m": ["--side", "left"]}

    tmp = None
    if args.keep_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="halohand_heldout_")
        work = Path(tmp.name)
    else:
        work = args.keep_dir
        work.mkdir(parents=True, exist_ok=True)

    rows: dict[str, list[dict[str, Any]]] = {}
    groups: dict[str, dict[str, Any]] = {}
    meshes_a: list[np.ndarray] = []
    try:
        for group in GROUPS:
            inputs = write_inputs(group, kp_right, work / group / "keypoints")
            out_dir = work / group / "meshes"
            if out_dir.exists():
                shutil.rmtree(out_dir)
            t0, wall, cpu, warnings = run_cli(inputs, out_dir, extra + group_args[group], env)
            group_rows = []
            prev = t0
            for i, (hand, path) in enumerate(zip(hands, inputs, strict=True)):
                out = out_dir / f"{path.stem}.ply"
                mtime = out.stat().st_mtime
                mesh = trimesh.load(out, force="mesh", process=False)
                verts = np.asarray(mesh.vertices, dtype=np.float64)
                if group == "B_right_mm":
                    verts = verts / 1000.0
                mesh_m = trimesh.Trimesh(verts, np.asarray(mesh.faces), process=False)
                v = np.asarray(hand.vertices, dtype=np.float64)
                f = np.asarray(hand.faces, dtype=np.int64)
                if group == "C_left_m":
                    v, f = mirror_mesh(v, f)
                rng = np.random.default_rng(
                    np.random.SeedSequence(args.seed, spawn_key=(HELDOUT_STREAM, i, 1))
                )
                gt = ground_truth(v, f, args.surface_samples, rng)
                row: dict[str, Any] = {"hand": i, "file": path.name}
                row.update(
                    score(mesh_m, gt, args.points, args.box_padding_mm / 1000.0,
                          args.surface_samples, rng)
                )  # fmt: skip
                back = verts * np.array([-1.0, 1.0, 1.0]) if group == "C_left_m" else verts
                if group == "A_right_m":
                    meshes_a.append(verts)
                    row["vs_A_mm"] = 0.0
                else:
                    row["vs_A_mm"] = vertex_chamfer_mm(back, meshes_a[i])
                row["mesh_s"] = None if i == 0 else mtime - prev
                if i == 0:
                    row["first_hand_s"] = mtime - prev
                prev = mtime
                row["ok"] = bool(
                    row["iou"] >= IOU_MIN
                    and row["chamfer_l1_mm"] is not None
                    and row["chamfer_l1_mm"] <= CHAMFER_MAX_MM
                )
                group_rows.append(row)
            rows[group] = group_rows
            summ = {k: _summary(group_rows, k) for k in METRICS}
            iou_mean, cd_mean = summ["iou"]["mean"], summ["chamfer_l1_mm"]["mean"]
            groups[group] = {
                "files": sorted({p.suffix for p in inputs}),
                "cli_args": group_args[group],
                "cli_wall_s": wall,
                "s_per_hand": wall / len(hands),
                "cli_cpu_s": cpu,
                "cpu_s_per_hand": cpu / len(hands),
                "first_hand_s": group_rows[0]["first_hand_s"],
                "cli_warnings": warnings,
                **summ,
                "watertight_fraction": float(np.mean([r["watertight"] for r in group_rows])),
                "hands_meeting_both": float(np.mean([r["ok"] for r in group_rows])),
                "pass": bool(
                    iou_mean is not None
                    and cd_mean is not None
                    and iou_mean >= IOU_MIN
                    and cd_mean <= CHAMFER_MAX_MM
                ),
            }
    finally:
        if tmp is not None:
            tmp.cleanup()

    means_iou = [groups[g]["iou"]["mean"] for g in GROUPS]
    means_cd = [groups[g]["chamfer_l1_mm"]["mean"] for g in GROUPS]
    alike = bool(
        None not in means_cd
        and max(means_iou) - min(means_iou) <= args.alike_iou
        and max(means_cd) - min(means_cd) <= args.alike_chamfer_mm  # type: ignore[type-var]
    )
    import halohand
    from halohand.inference.halo import pretrained_path

    checkpoint = args.checkpoint if args.checkpoint is not None else pretrained_path()
    doc: dict[str, Any] = {
        "benchmark": "heldout_reconstruct",
        "command": command_line([__file__, *(sys.argv[1:] if argv is None else argv)]),
        "halohand_version": getattr(halohand, "__version__", None),
        "checkpoint": repo_path(checkpoint),
        "hands": args.hands,
        "seed": args.seed,
        "rng": f"SeedSequence({args.seed}, spawn_key=({HELDOUT_STREAM}, i, 0|1)) "
        "(0: hand, 1: evaluation points)",
        "source": "WebXRHandSource (embedded hand, identity + pose priors), right hands",
        "thickness_mean": args.thickness_mean,
        "held_out_from_training": leakage,
        "resolution": args.resolution,
        "settings": {
            "uniform_points": args.points,
            "surface_samples": args.surface_samples,
            "box_padding_mm": args.box_padding_mm,
            "alike_iou": args.alike_iou,
            "alike_chamfer_mm": args.alike_chamfer_mm,
            "threads": args.threads,
        },
        "thresholds": {"iou_min": IOU_MIN, "chamfer_l1_mm_max": CHAMFER_MAX_MM},
        "groups": groups,
        "alike": alike,
        "pass": bool(alike and all(groups[g]["pass"] for g in GROUPS)),
        "total_s": time.perf_counter() - t_start,
        "per_hand": rows,
    }
    emit(doc, args.json, indent=1, allow_nan=False)
    print_table(doc, file=sys.stderr)
    return doc


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def print_table(doc: dict[str, Any], file: Any = sys.stderr) -> None:
    """A markdown table of the group summaries."""
    print(
        "| group | IoU mean (min) | Chamfer-L1 mm mean (max) | normal cons. | vs A mm (max) "
        "| s / hand (CPU s) | pass |",
        file=file,
    )
    print("|---|---|---|---|---|---|---|", file=file)
    for name, g in doc["groups"].items():
        iou, cd, nc, vs = g["iou"], g["chamfer_l1_mm"], g["normal_consistency"], g["vs_A_mm"]
        print(
            f"| {name} | {_fmt(iou['mean'], '.4f')} ({_fmt(iou['min'], '.4f')}) "
            f"| {_fmt(cd['mean'], '.3f')} ({_fmt(cd['max'], '.3f')}) "
            f"| {_fmt(nc['mean'], '.4f')} | {_fmt(vs['mean'], '.4f')} ({_fmt(vs['max'], '.4f')}) "
            f"| {g['s_per_hand']:.2f} ({g['cpu_s_per_hand']:.2f}) "
            f"| {'yes' if g['pass'] else 'no'} |",
            file=file,
        )
    print(
        f"groups alike: {'yes' if doc['alike'] else 'no'}; overall: "
        f"{'PASS' if doc['pass'] else 'FAIL'} (IoU >= {IOU_MIN}, Chamfer-L1 <= "
        f"{CHAMFER_MAX_MM} mm)",
        file=file,
    )


if __name__ == "__main__":
    main()
