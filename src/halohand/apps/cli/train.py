"""``halohand train`` and ``halohand evaluate`` (registered in :mod:`halohand.apps.cli`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from halohand.apps.cli.options import (
    MAX_SURFACE_SAMPLES,
    TOUCHING_CHOICES,
    DataFolder,
    Device,
    ModelFile,
    Progress,
    ProgressOverride,
    Resolution,
    Resume,
    SplitLimit,
    Touching,
    at_least,
    check_choice,
    check_device,
    check_out_file,
    check_out_folder,
    check_resolution,
    in_range,
)
from halohand.core.errors import HalohandInputError

#: ``--levels`` default: :data:`halohand.evaluation.calibrate.DEFAULT_LEVELS`, written out
#: because that module imports torch (tests/test_cli_startup.py keeps the two equal).
CALIBRATION_LEVELS = "0.4,0.5,0.55,0.6,0.65,0.7"


def train(
    config: Annotated[Path, typer.Option("--config", help="TOML run config (see configs/).")],
    resume: Resume = False,
    data: Annotated[
        Path | None, typer.Option("--data", help="Override the config's data folder.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Override the config's output folder.")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Override the config's max_steps.")
    ] = None,
    max_hours: Annotated[
        float | None,
        typer.Option("--max-hours", help="Override the config's training wall-time budget."),
    ] = None,
    stop_after: Annotated[
        int | None,
        typer.Option(
            "--stop-after",
            help="Stop after this many steps in total, with a checkpoint (resumable); the "
            "end-of-training validation/export is not done.",
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads", help="Override the config's torch CPU threads (1 on a busy shared box)."
        ),
    ] = None,
    progress: ProgressOverride = None,
) -> None:
    """Train an occupancy network (occupancy + skinning loss, Adam 1e-4).

    Writes <out>/checkpoint.pt (atomic, every checkpoint_minutes and at the end), log.csv,
    best.safetensors (best validation IoU) and last.safetensors. Deterministic for a seed;
    --resume continues exactly.

    Multi-process data parallel: torchrun --standalone --nproc_per_node N -m halohand.apps.cli
    train --config FILE (gloo on CPU, nccl on GPU).
    """
    from halohand.training.config import load_config
    from halohand.training.trainer import train as run_training

    cfg = load_config(
        config,
        data=None if data is None else str(data),
        out=None if out is None else str(out),
        max_steps=max_steps,
        max_hours=max_hours,
        threads=threads,
        progress=progress,
    )
    if stop_after is not None:
        at_least(stop_after, 1, "--stop-after")
    if Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise HalohandInputError(f"output folder {cfg.out} is a file; pass another --out")
    result = run_training(cfg, resume=resume, stop_after=stop_after)
    if int(os.environ.get("RANK", "0")) == 0:
        state = "finished" if result.finished else "stopped (resume with --resume)"
        best = (
            f"best val {cfg.val_metric} {result.best_metric:.4f} at step {result.best_step}"
            if result.best_step >= 0
            else "no validation yet"
        )
        typer.echo(
            f"{result.out}: {state} at step {result.step}, {result.elapsed_s / 60:.1f} min "
            f"training wall time, {result.steps_per_s:.3f} steps/s this session; {best}"
        )


def evaluate(
    checkpoint: ModelFile,
    data: DataFolder,
    json_out: Annotated[Path, typer.Option("--json", help="Summary JSON to write.")],
    split: Annotated[str, typer.Option("--split", help="train, val or test.")] = "test",
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Per-hand CSV (default: the JSON path, .csv).")
    ] = None,
    resolution: Annotated[
        int, typer.Option("--resolution", help="Final extraction lattice cells per axis.")
    ] = 256,
    coarse_resolution: Annotated[
        int, typer.Option("--coarse-resolution", help="First hierarchical level.")
    ] = 32,
    limit: SplitLimit = None,
    box: Annotated[
        str,
        typer.Option(
            "--box",
            help="Extraction cube: 'keypoints' (keypoint box + padding, default) or 'data' "
            "(the +-0.22 m data cube).",
        ),
    ] = "keypoints",
    padding: Annotated[
        float, typer.Option("--padding", help="Padding of the keypoint box, metres.")
    ] = 0.04,
    samples: Annotated[
        int, typer.Option("--surface-samples", help="Samples on each predicted mesh (Chamfer).")
    ] = 100_000,
    device: Device = "auto",
    mesh_dir: Annotated[
        Path | None, typer.Option("--mesh-dir", help="Also write the predicted meshes (PLY).")
    ] = None,
    progress: Progress = True,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Iso-level of the mesh (default: the model's iso_level)."),
    ] = None,
    keypoints: Annotated[
        str,
        typer.Option(
            "--keypoints",
            help="Keypoints given to the model: 'rig' (the data's tip joints, default) or "
            "'mano' (fingertips on the skin, read as convention mano).",
        ),
    ] = "rig",
    touching: Touching = "merge",
) -> None:
    """Evaluate a model: mesh each hand, then IoU, Chamfer-L1 (mm) and normal consistency.

    IoU on the 100k uniform points and on the mixed uniform + near-surface set (the
    original's kind of IoU); per-hand CSV plus means and settings in the JSON.
    """
    from halohand.evaluation.evaluate import evaluate as run_evaluation
    from halohand.inference.halo import resolve_device

    if not padding >= 0 or padding == float("inf"):
        raise HalohandInputError(f"--padding must be a finite length >= 0 (metres), got {padding}")
    in_range(samples, 1, MAX_SURFACE_SAMPLES, "--surface-samples")
    # Every option before the model loads and anything (--mesh-dir) is made.
    split = check_choice(split, ("train", "val", "test"), "--split") or split
    box = check_choice(box, ("keypoints", "data"), "--box") or box
    keypoints = check_choice(keypoints, ("rig", "mano"), "--keypoints") or keypoints
    touching = check_choice(touching, TOUCHING_CHOICES, "--touching") or touching
    if touching != "merge" and box != "keypoints":
        raise HalohandInputError("--touching apart needs --box keypoints (HALO's own path)")
    if keypoints == "mano" and box != "keypoints":
        raise HalohandInputError("--keypoints mano needs --box keypoints (HALO's own path)")
    check_resolution(resolution)
    ratio = resolution / coarse_resolution if coarse_resolution >= 1 else 0.0
    if not (ratio >= 1 and ratio.is_integer() and int(ratio) & (int(ratio) - 1) == 0):
        raise HalohandInputError(
            f"--coarse-resolution must divide --resolution by a power of two (1, 2, 4...), got "
            f"{resolution} / {coarse_resolution}"
        )
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise HalohandInputError(f"--threshold must be in (0, 1), got {threshold}")
    if limit is not None:
        at_least(limit, 1, "--limit")
    check_out_file(json_out, "--json", ".json", strict=False)
    check_out_file(csv_out, "--csv", ".csv", strict=False)
    if mesh_dir is not None:
        check_out_folder(mesh_dir, "--mesh-dir")
    device = check_device(device)
    resolve_device(device)  # an unknown device is bad input, before any work
    doc = run_evaluation(
        checkpoint, data, split=split, json_out=json_out, csv_out=csv_out,
        resolution=resolution, coarse_resolution=coarse_resolution, limit=limit, box=box,
        padding_m=padding, n_samples=samples, device=device, mesh_dir=mesh_dir, progress=progress,
        threshold=threshold, keypoint_convention=keypoints, touching=touching,
    )  # fmt: skip
    m = doc["mean"]

    def f(x: float | None, spec: str) -> str:
        return "n/a" if x is None else format(x, spec)

    typer.echo(
        f"{doc['hands']} {split} hands: IoU uniform {f(m['iou_uniform'], '.4f')}, mixed "
        f"{f(m['iou_mixed'], '.4f')}, Chamfer-L1 {f(m['chamfer_l1_mm'], '.3f')} mm, normal "
        f"consistency {f(m['normal_consistency'], '.4f')}, {f(m['seconds'], '.1f')} s/hand "
        f"-> {json_out}"
    )


def calibrate(
    checkpoint: ModelFile,
    data: DataFolder,
    out: Annotated[Path, typer.Option("--out", help="Calibrated model (.safetensors) to write.")],
    split: Annotated[str, typer.Option("--split", help="val (default) or train.")] = "val",
    levels: Annotated[
        str, typer.Option("--levels", help="Comma-separated candidate probability levels.")
    ] = CALIBRATION_LEVELS,
    limit: SplitLimit = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Per-level means and the choice (JSON).")
    ] = None,
    resolution: Resolution = 256,
    progress: Progress = True,
) -> None:
    """Choose the level meshes are extracted at (lowest validation Chamfer-L1).

    Meshes the split's hands at each level, then writes a copy of the model carrying the
    best one; `halohand reconstruct`, `HALO` and `halohand evaluate` use it by default.
    """
    check_resolution(resolution)
    check_out_file(out, "--out", ".safetensors", strict=False)  # both before the long work
    check_out_file(json_out, "--json", ".json", strict=False)

    from halohand.evaluation.calibrate import calibrate as run_calibration

    try:
        values = [float(x) for x in levels.split(",") if x.strip()]
    except ValueError as exc:
        msg = f"--levels must be comma-separated numbers, got {levels!r}"
        raise HalohandInputError(msg) from exc
    report = run_calibration(
        checkpoint, data, out, split=split, levels=values, limit=limit, json_out=json_out,
        resolution=resolution, progress=progress,
    )  # fmt: skip
    for level, m in report["levels"].items():
        typer.echo(
            f"level {level}: IoU uniform {m['iou_uniform']:.4f}, Chamfer-L1 "
            f"{m['chamfer_l1_mm']:.3f} mm ({m['hands']} {split} hands)"
        )
    typer.echo(f"iso_level {report['iso_level']:g} -> {out}")


def train_refiner(
    out: Annotated[Path, typer.Option("--out", help="Output folder (checkpoint, weights).")],
    resume: Resume = False,
    steps: Annotated[int | None, typer.Option("--steps", help="Optimizer steps.")] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Items per step.")] = None,
    width: Annotated[int | None, typer.Option("--width", help="Token width.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Data and init seed.")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="Torch CPU threads.")] = 1,
) -> None:
    """Train the keypoint refiner (docs/keypoint_refiner.md) on hands of the embedded model
    with image-like noise; writes OUT/keypoint_refiner.safetensors and OUT/summary.json."""
    import json
    from dataclasses import replace

    import torch

    from halohand.training.keypoint_refiner import RefinerTrainConfig
    from halohand.training.keypoint_refiner import train_refiner as run

    in_range(threads, 1, 256, "--threads")
    check_out_folder(out, "--out")
    cfg = RefinerTrainConfig(seed=seed)
    for name, value in (("steps", steps), ("batch", batch), ("width", width)):
        if value is not None:
            at_least(value, 1, f"--{name}")
            cfg = replace(cfg, **{name: value})
    torch.set_num_threads(threads)
    summary = run(cfg, out, resume=resume, log=lambda s: typer.echo(s, err=True))
    typer.echo(json.dumps(summary, indent=2))


def train_pair_refiner(
    data: Annotated[
        list[Path], typer.Option("--data", help="Pair data (halohand data pairs); repeatable.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (cache, checkpoint, weights).")],
    resume: Resume = False,
    preset: Annotated[str, typer.Option("--preset", help="Recipe: cpu or gpu.")] = "cpu",
    steps: Annotated[int | None, typer.Option("--steps", help="Optimizer steps.")] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Pairs per step.")] = None,
    points: Annotated[int | None, typer.Option("--points", help="Query points per pair.")] = None,
    anchors: Annotated[int | None, typer.Option("--anchors", help="Anchors per hand.")] = None,
    width: Annotated[int | None, typer.Option("--width", help="Feature width.")] = None,
    penetration_weight: Annotated[
        float | None, typer.Option("--penetration-weight", help="Weight of Eq. 9.")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda or auto.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling and init seed.")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="Torch CPU threads.")] = 1,
) -> None:
    """Train the learned two-hand occupancy refinement (docs/two_hands.md) on the frozen
    shipped HALO; writes OUT/pair_refiner.safetensors, OUT/summary.json, OUT/train.log."""
    import json

    name = check_choice(preset, ("cpu", "gpu"), "--preset")
    in_range(threads, 1, 256, "--threads")
    check_out_folder(out, "--out")
    for root in data:
        if not (root / "manifest.json").is_file():
            raise HalohandInputError(
                f"--data {root}: no manifest.json (make it with halohand data pairs)"
            )
    for option, value in (("--steps", steps), ("--batch", batch), ("--points", points),
                          ("--anchors", anchors), ("--width", width)):  # fmt: skip
        if value is not None:
            at_least(value, 1, option)
    if penetration_weight is not None and not penetration_weight >= 0:
        raise HalohandInputError(f"--penetration-weight must be >= 0, got {penetration_weight}")

    import torch

    from halohand.training.pair_refiner import PRESETS, config_with, train_pair_refiner

    cfg = config_with(
        PRESETS[str(name)], steps=steps, batch=batch, points=points, anchors=anchors,
        width=width, penetration_weight=penetration_weight, device=device, seed=seed,
    )  # fmt: skip
    torch.set_num_threads(threads)
    summary = train_pair_refiner(
        cfg, data, out, resume=resume, log=lambda s: typer.echo(s, err=True)
    )
    typer.echo(json.dumps(summary, indent=2))


def train_image_occupancy(
    data: Annotated[
        list[Path], typer.Option("--data", help="Pair data (halohand data pairs); repeatable.")
    ],
    images: Annotated[
        list[Path],
        typer.Option("--images", help="Its renders (halohand data pair-images); one per --data."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (cache, checkpoint, weights).")],
    resume: Resume = False,
    preset: Annotated[str, typer.Option("--preset", help="Recipe: cpu or gpu.")] = "cpu",
    no_image: Annotated[
        bool, typer.Option("--no-image", help="Without the image branch (the A/B's keypoint arm).")
    ] = False,
    steps: Annotated[int | None, typer.Option("--steps", help="Optimizer steps (at most).")] = None,
    seconds: Annotated[
        float | None, typer.Option("--seconds", help="Wall-clock budget of the steps.")
    ] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Pairs per step.")] = None,
    points: Annotated[int | None, typer.Option("--points", help="Query points per pair.")] = None,
    width: Annotated[int | None, typer.Option("--width", help="Per-point MLP width.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda or auto.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling and init seed.")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="Torch CPU threads.")] = 1,
) -> None:
    """Train the image-conditioned initial occupancy of a pair ("HALO + image",
    docs/two_hands.md) on the frozen shipped HALO; writes OUT/image_occupancy.safetensors,
    OUT/summary.json, OUT/train.log."""
    import json

    name = check_choice(preset, ("cpu", "gpu"), "--preset")
    in_range(threads, 1, 256, "--threads")
    check_out_folder(out, "--out")
    if len(images) != len(data):
        raise HalohandInputError(
            f"one --images folder per --data: {len(data)} --data, {len(images)} --images"
        )
    for root, folder in zip(data, images, strict=True):
        if not (root / "manifest.json").is_file():
            raise HalohandInputError(
                f"--data {root}: no manifest.json (make it with halohand data pairs)"
            )
        if not folder.is_dir():
            raise HalohandInputError(f"--images {folder}: not a folder (halohand data pair-images)")
    for option, value in (("--steps", steps), ("--batch", batch), ("--points", points),
                          ("--width", width)):  # fmt: skip
        if value is not None:
            at_least(value, 1, option)
    if seconds is not None and not seconds > 0:
        raise HalohandInputError(f"--seconds must be > 0, got {seconds}")

    import torch

    from halohand.training.image_occupancy import PRESETS, config_with
    from halohand.training.image_occupancy import train_image_occupancy as run

    cfg = config_with(
        PRESETS[str(name)], steps=steps, seconds=seconds, batch=batch, points=points,
        width=width, device=device, seed=seed, image=False if no_image else None,
    )  # fmt: skip
    torch.set_num_threads(threads)
    summary = run(cfg, data, images, out, resume=resume, log=lambda s: typer.echo(s, err=True))
    summary.pop("history", None)
    typer.echo(json.dumps(summary, indent=2))
