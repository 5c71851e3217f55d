"""Contact-aware hand-object refinement on held-out grasp scenes with noisy inputs.

Scenes: accepted grasps of the grasp data engine (``halohand grasp synthesize``) on the held-out
test objects, with a seed used nowhere else, each turned and moved to a random world pose.
Inputs: the true keypoints plus isotropic Gaussian noise (``--noise-mm`` per axis) and the
object pose off by ``--pose-cm`` in a random direction and ``--pose-deg`` about a random
axis. Rows, each scored against the truth (``halohand.interaction.plausibility``, metres in,
mm/cm^3 out):

* ``truth``: HALO's mesh of the true keypoints at the true pose (HALO's own floor);
* ``input``: HALO's mesh of the noisy keypoints, object at the noisy pose;
* ``contact``: :func:`halohand.fitting.contact_refine.refine_hand_object` without its
  keypoint cleaning (``clean_keypoints=False``);
* ``refiner``: the keypoint refiner alone (object left at the noisy pose);
* ``refiner+contact``: the default, the keypoint refiner then the contact refinement.

Per row: A-PD / M-PD of the hand into the object (32^3 grid), penetration volume, the share
of fingers touching in the true scene (true hand mesh, 2 mm) that touch in the row's scene,
MPJPE (mm), object pose error.

    halohand grasp synthesize --objects test --n-per-object 8 --seed 777 --side right \\
        --out /tmp/ho_scenes
    python benchmarks/studies/contact_refine.py --scenes /tmp/ho_scenes \\
        --json benchmarks/results/studies/contact_refine.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from halohand.core.rotations import axis_angle_to_matrix, matrix_to_axis_angle  # noqa: E402
from halohand.fitting.contact_refine import ContactRefineConfig, refine_hand_object  # noqa: E402
from halohand.fitting.keypoint_refiner import load_refiner, refine_keypoints  # noqa: E402
from halohand.grasp.synthesis import load_grasps  # noqa: E402
from halohand.handmodel.template import load_template  # noqa: E402
from halohand.handmodel.torch_model import TorchHandModel  # noqa: E402
from halohand.inference.halo import HALO  # noqa: E402
from halohand.interaction.plausibility import (  # noqa: E402
    contact,
    penetration_depth,
    penetration_volume,
)
from halohand.objects.registry import load_object  # noqa: E402
from halohand.skeleton import FINGERS  # noqa: E402


def _random_rotation(rng: np.random.Generator, angle: float | None = None) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    theta = rng.uniform(0, np.pi) if angle is None else angle
    return np.asarray(axis_angle_to_matrix(axis * theta))


def _fingers(hand: trimesh.Trimesh, obj: trimesh.Trimesh, labels: np.ndarray | None) -> set:
    parts = contact(hand, obj, 0.002, part_labels=labels).get("parts", [])
    return {p.rstrip("123") for p in parts} & set(FINGERS)


def score(hand, obj, truth_fingers, kp, kp_true, pose, pose_true) -> dict[str, Any]:
    pd = penetration_depth(hand, obj)
    fingers = _fingers(hand, obj, None)
    kept = len(fingers & truth_fingers) / max(len(truth_fingers), 1)
    rel = pose[:3, :3] @ pose_true[:3, :3].T
    return {
        "apd_mm": pd["mean"] * 1e3, "mpd_mm": pd["max"] * 1e3,
        "volume_cm3": penetration_volume(hand, obj),
        "contact_kept": kept, "fingers_touching": len(fingers), "fingers": sorted(fingers),
        "mpjpe_mm": float(np.linalg.norm(kp - kp_true, axis=-1).mean() * 1e3),
        "pose_mm": float(np.linalg.norm(pose[:3, 3] - pose_true[:3, 3]) * 1e3),
        "pose_deg": float(np.degrees(np.linalg.norm(matrix_to_axis_angle(rel)))),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=Path, required=True, help="grasp engine output")
    parser.add_argument("--limit", type=int, default=0, help="N scenes evenly spread (0: all)")
    parser.add_argument("--noise-mm", type=float, default=10.0)
    parser.add_argument("--pose-cm", type=float, default=1.0)
    parser.add_argument("--pose-deg", type=float, default=10.0)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--seed", type=int, default=31_337)
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="override a ContactRefineConfig field (a float, or a,b,... for a tuple), "
             "e.g. --set contact_radius=0.025",
    )  # fmt: skip
    parser.add_argument("--rows", default="", help="comma-separated rows only (default: all)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--sheet", type=Path, default=None, help="PNG: input | refined | truth")
    parser.add_argument("--sheet-scenes", type=int, default=6)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    grasps = load_grasps(args.scenes)
    total = len(grasps["keypoints"])
    n = total if not args.limit else min(args.limit, total)
    picks = np.linspace(0, total - 1, n).round().astype(int)
    halo, refiner, model = HALO.pretrained(), load_refiner(), TorchHandModel()
    part_labels = load_template().part_labels
    rng = np.random.default_rng(args.seed)
    cfg = ContactRefineConfig()
    for item in args.set:
        name, _, value = item.partition("=")
        current = getattr(cfg, name)
        parsed = (
            tuple(float(v) for v in value.split(","))
            if isinstance(current, tuple)
            else type(current)(float(value))
        )
        cfg = dataclasses.replace(cfg, **{name: parsed})
    every = ("truth", "input", "contact", "refiner", "refiner+contact")
    wanted = [r for r in args.rows.split(",") if r] or list(every)
    rows: dict[str, list[dict[str, Any]]] = {
        k: [] for k in every if k in wanted or k in ("truth", "input", "refiner+contact")
    }
    t_start = time.perf_counter()
    tiles: list[tuple[trimesh.Trimesh, Any]] = []
    labels: list[str] = []
    on_sheet = set(np.linspace(0, n - 1, min(args.sheet_scenes, n)).round().astype(int).tolist())
    for s_i, i in enumerate(picks):
        obj = load_object(str(grasps["object_id"][i]))
        pose_true = np.eye(4)
        pose_true[:3, :3] = _random_rotation(rng)
        pose_true[:3, 3] = rng.uniform(-0.2, 0.2, 3) + [0, 0, 0.5]
        names = ("angles", "length_factors", "palm_width", "hand_length", "global_rot",
                 "translation")  # fmt: skip
        g = {k: torch.as_tensor(np.asarray(grasps[k][i : i + 1])) for k in names}
        scale = model.scale_for_hand_length(g["hand_length"], g["length_factors"], g["palm_width"])
        out = model(
            g["angles"], g["length_factors"], g["palm_width"], scale,
            global_rot=g["global_rot"], translation=g["translation"], with_vertices=True,
        )  # fmt: skip

        def to_world(p: np.ndarray, pose: np.ndarray = pose_true) -> np.ndarray:
            return p @ pose[:3, :3].T + pose[:3, 3]

        kp_true = to_world(out.keypoints[0].numpy())
        gt_hand = trimesh.Trimesh(to_world(out.vertices[0].numpy()), model.faces, process=False)
        obj_true = obj.mesh.copy().apply_transform(pose_true)
        truth_fingers = _fingers(gt_hand, obj_true, part_labels)

        kp_in = kp_true + rng.normal(0, args.noise_mm * 1e-3, kp_true.shape)
        off = rng.normal(size=3)
        pose_in = np.eye(4)
        pose_in[:3, :3] = _random_rotation(rng, np.radians(args.pose_deg)) @ pose_true[:3, :3]
        pose_in[:3, 3] = pose_true[:3, 3] + args.pose_cm * 1e-2 * off / np.linalg.norm(off)
        variants = {"truth": (kp_true, pose_true), "input": (kp_in, pose_in)}
        if "contact" in wanted:
            raw = dataclasses.replace(cfg, clean_keypoints=False)
            res = refine_hand_object(halo, kp_in, obj, pose_in, config=raw)
            variants["contact"] = (res.keypoints, res.object_pose)
        if "refiner" in wanted:
            variants["refiner"] = (refine_keypoints(kp_in, model=refiner), pose_in)
        res2 = refine_hand_object(halo, kp_in, obj, pose_in, config=cfg)
        variants["refiner+contact"] = (res2.keypoints, res2.object_pose)
        for name, (kp, pose) in variants.items():
            hand = halo.reconstruct(kp, units="m", resolution=args.resolution)  # part labels
            obj_mesh = obj.mesh.copy().apply_transform(pose)
            row = score(hand, obj_mesh, truth_fingers, kp, kp_true, pose, pose_true)
            row.update(scene=int(i), object=str(grasps["object_id"][i]),
                       truth_fingers=sorted(truth_fingers))  # fmt: skip
            if name == "refiner+contact":
                row["seconds"] = res2.seconds
                row["asked_to_touch"] = [FINGERS[f] for f in res2.contact_fingers]
            rows[name].append(row)
            if args.sheet and s_i in on_sheet and name in ("input", "refiner+contact", "truth"):
                # The sheet draws each hand in its object's frame.
                tiles.append((hand.copy().apply_transform(np.linalg.inv(pose)), obj))
                labels.append(f"{i} {name}: A-PD {row['apd_mm']:.1f} mm")
        print(f"scene {i} {row['object']}: " + "  ".join(
            f"{k} apd {v[-1]['apd_mm']:.2f} kept {v[-1]['contact_kept']:.2f} "
            f"mpjpe {v[-1]['mpjpe_mm']:.1f}" for k, v in rows.items()), flush=True)  # fmt: skip
    keys = ("apd_mm", "mpd_mm", "volume_cm3", "contact_kept", "mpjpe_mm", "pose_mm", "pose_deg")
    summary = {
        name: {k: float(np.mean([r[k] for r in rs])) for k in keys} for name, rs in rows.items()
    }
    for name, row in summary.items():
        print(name, {k: round(v, 3) for k, v in row.items()})
    doc = {
        "command": "python benchmarks/studies/contact_refine.py " + " ".join(argv or sys.argv[1:]),
        "scenes": n, "config": dataclasses.asdict(cfg),
        "noise_mm": args.noise_mm, "pose_cm": args.pose_cm,
        "pose_deg": args.pose_deg, "summary": summary,
        "apd_reduction": 1.0 - summary["refiner+contact"]["apd_mm"] / summary["input"]["apd_mm"],
        "seconds": round(time.perf_counter() - t_start, 1), "rows": rows,
    }  # fmt: skip
    if args.json:
        from halohand.core.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(doc, indent=2))
    if args.sheet and tiles:
        from halohand.apps.figures import render_grasps

        order = sorted(
            range(len(tiles)),
            key=lambda k: (
                k // 3,
                ("input", "refiner+contact", "truth").index(labels[k].split()[1].rstrip(":")),
            ),
        )
        render_grasps([tiles[k] for k in order], str(args.sheet), columns=3,
                      labels=[labels[k] for k in order])  # fmt: skip
    return doc


if __name__ == "__main__":
    main()
