"""``halohand grasp ...`` commands."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated

import typer

from halohand.apps.cli.options import (
    MAX_CANDIDATES,
    MAX_GRASPS,
    MAX_THREADS,
    MAX_WORKERS,
    MORE_GRASPS,
    CommandGroup,
    GraspCandidates,
    GraspCount,
    GraspRefine,
    GraspResolution,
    GraspSeed,
    MeshExtension,
    Progress,
    ResumableOut,
    Resume,
    Threads,
    check_extension,
    check_out_file,
    check_out_folder,
    check_resolution,
    check_units,
    in_range,
)
from halohand.core.atomic import atomic_open, atomic_path, write_text_atomic
from halohand.core.errors import HalohandInputError


class _MeshFirstGroup(CommandGroup):
    """``halohand grasp MESH ...`` is short for ``halohand grasp sample MESH ...``."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:  # noqa: ANN001 - click's signature
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["sample", *args]
        return super().parse_args(ctx, args)


grasp_app = typer.Typer(
    cls=_MeshFirstGroup,
    help="Grasps: generate them for an object mesh (halohand grasp MESH), train HALO-VAE, "
    "evaluate, synthesise training grasps, list objects.",
    no_args_is_help=True,
)


@grasp_app.command("synthesize")
def synthesize_cmd(
    out: ResumableOut,
    objects: Annotated[
        str,
        typer.Option(
            "--objects",
            help="train, test, all, wide, train_wide, or comma-separated ids such as box_0,mug_3.",
        ),
    ] = "train",
    n_per_object: Annotated[
        int, typer.Option("--n-per-object", help="Accepted grasps wanted per object.")
    ] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Master seed.")] = 0,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes (by object).")] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Starts per shard.")] = 32,
    steps: Annotated[int, typer.Option("--steps", help="Adam steps per batch.")] = 250,
    max_batches: Annotated[
        int, typer.Option("--max-batches", help="Batches per object at most.")
    ] = 50,
    side: Annotated[str, typer.Option("--side", help="right, left or both.")] = "both",
    taxonomy: Annotated[
        bool,
        typer.Option(
            "--taxonomy/--no-taxonomy",
            help="Start from grasp types chosen from the object's geometry (pads, no "
            "penetration beyond 5 mm, MuJoCo stability as the filter).",
        ),
    ] = False,
    types: Annotated[
        str, typer.Option("--types", help="With --taxonomy: only these comma-separated types.")
    ] = "",
    progress: Progress = True,
) -> None:
    """Synthesise grasps by optimisation with the rigged hand model (docs/grasp.md).

    Writes OUT/<object>/batch_XXXXX.npz shards (keypoints in metres, pose parameters,
    energy terms, quality measures, an accepted flag), config.json and summary.json, and
    prints the summary. Rerunning the same command skips finished shards.
    """
    import torch

    from halohand.grasp.synthesis import SynthesisConfig, synthesize
    from halohand.objects.registry import parse_object_list

    in_range(n_per_object, 1, 100_000, "--n-per-object", "split the objects over several runs")
    in_range(workers, 1, MAX_WORKERS, "--workers")
    in_range(batch_size, 1, 4096, "--batch-size")
    in_range(steps, 1, 1_000_000, "--steps")
    in_range(max_batches, 1, 1_000_000, "--max-batches")
    torch.set_num_threads(1)
    ids = parse_object_list(objects)
    extra: dict = {}
    if taxonomy:
        # Human-plausible grasps allow 5 mm (grasp.metrics.MAX_PENETRATION_MM); finger
        # capsules let the optimisation see a cup's wall through a finger (docs/grasp.md).
        extra = {"taxonomy": True, "max_penetration_mm": 5.0, "finger_capsules": True,
                 "types": tuple(t for t in types.split(",") if t)}  # fmt: skip
    elif types:
        raise HalohandInputError("--types needs --taxonomy")
    config = SynthesisConfig(
        batch_size=batch_size, steps=steps, max_batches=max_batches, sides=side, **extra
    )
    summary = synthesize(ids, n_per_object, out, seed, config, workers, progress)
    brief = {k: v for k, v in summary.items() if k != "objects"}
    typer.echo(json.dumps(brief, indent=2))


@grasp_app.command("objects")
def objects_cmd(
    split: Annotated[
        str, typer.Option("--split", help="all, train, test, val, real, wide or train_wide.")
    ] = "all",
) -> None:
    """List the registry objects: id, split, kind, extents (cm), volume (cm^3)."""
    from halohand.objects.registry import load_object, object_ids

    for oid in object_ids(split):
        o = load_object(oid)
        ext = " x ".join(f"{e * 100:.1f}" for e in o.mesh.extents)
        typer.echo(
            f"{oid:12s} {o.split:5s} {o.kind:8s} {ext:>20s} cm {o.mesh.volume * 1e6:7.1f} cm^3"
        )


@grasp_app.command("sample")
def sample_cmd(
    object_mesh: Annotated[
        str, typer.Argument(help="Object mesh file (obj/ply/stl/glb/off) or a registry id.")
    ],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Output folder (created).")],
    n: GraspCount = 20,
    refine: GraspRefine = False,
    candidates: GraspCandidates = 4,
    refine_pose: Annotated[
        bool,
        typer.Option(
            "--refine-pose/--no-refine-pose",
            help="Also refine each sample's fingers and placement with the grasp data "
            "engine's energy (about 4-5 s per sample on one thread; docs/grasp.md).",
        ),
    ] = False,
    seed: GraspSeed = 0,
    units: Annotated[str, typer.Option("--units", help="Mesh units: auto, m, cm or mm.")] = "auto",
    orient: Annotated[
        str,
        typer.Option(
            "--orient",
            help="principal: turn a mesh file to its principal frame (largest spread +z, as "
            "the training objects stand) for generation; keep: its own axes. Outputs are "
            "in the file's frame either way.",
        ),
    ] = "principal",
    model: Annotated[
        Path | None, typer.Option("--model", help="Grasp VAE (default: the shipped one).")
    ] = None,
    resolution: GraspResolution = 96,
    ext: MeshExtension = "ply",
    sheet: Annotated[
        bool, typer.Option("--sheet/--no-sheet", help="Render a contact sheet PNG.")
    ] = True,
) -> None:
    """Generate N grasps of an object: hand meshes, keypoints and a contact sheet.

    Writes OUT_DIR/grasp_XX.EXT (HALO hand meshes), keypoints.npy ([N, 21, 3], the
    object file's frame and units), object.EXT, contact_sheet.png (the generation frame)
    and grasps.json (with the frame used and its rotation).
    """
    from halohand.objects.orient import check_orient

    in_range(n, 1, MAX_GRASPS, "--n", MORE_GRASPS)
    in_range(candidates, 1, MAX_CANDIDATES, "--candidates")
    check_resolution(resolution)
    check_units(units)
    check_orient(orient)
    ext = check_extension(ext)
    check_out_folder(out_dir)

    import numpy as np
    import torch

    from halohand.apps.figures import render_grasps
    from halohand.grasp.generate import GraspGenerator

    t0 = time.perf_counter()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    gen = GraspGenerator.from_file(model) if model else GraspGenerator.pretrained()
    gs = gen.generate(object_mesh, n, seed, refine=refine, candidates=candidates,
                      refine_pose=refine_pose, resolution=resolution, units=units,
                      orient=orient)  # fmt: skip
    obj = gs.object
    # Back to the input file's frame and units (turned back, moved back, rescaled).
    out_dir.mkdir(parents=True, exist_ok=True)
    kp = gs.file_keypoints()
    with atomic_open(out_dir / "keypoints.npy", "wb") as fh:  # np.save(path) adds ".npy"
        np.save(fh, kp.astype(np.float32), allow_pickle=False)
    named = [(f"grasp_{i:02d}", mesh) for i, mesh in enumerate(gs.meshes)]
    for name, mesh in [*named, ("object", obj.mesh)]:
        m = mesh.copy()
        m.vertices = obj.to_file_frame(np.asarray(m.vertices))
        with atomic_path(out_dir / f"{name}.{ext}") as tmp:
            m.export(tmp, file_type=ext)
    if sheet:
        t = time.perf_counter()
        render_grasps([(m, obj) for m in gs.meshes], str(out_dir / "contact_sheet.png"),
                      tile=160, labels=[f"{i:02d}" for i in range(n)])  # fmt: skip
        gs.seconds["sheet"] = time.perf_counter() - t
    total = time.perf_counter() - t0
    summary = {"object": object_mesh, "n": n, "seed": seed, "refine": refine,
               "candidates": candidates, "refine_pose": refine_pose,
               # generation frame: registry objects keep theirs (orient "keep")
               "orient": obj.orient, "units_m": obj.unit_scale,
               "rotation": np.asarray(obj.rotation).round(9).tolist(),
               "offset_m": np.asarray(obj.offset_m).round(9).tolist(),
               "seconds": {k: round(v, 3) for k, v in gs.seconds.items()},
               "total_s": round(total, 2)}  # fmt: skip
    write_text_atomic(out_dir / "grasps.json", json.dumps(summary, indent=2))
    typer.echo(f"{n} grasps of {object_mesh} -> {out_dir} in {total:.1f} s")


@grasp_app.command("train")
def train_cmd(
    config: Annotated[Path, typer.Option("--config", help="TOML config (configs/grasp_vae*).")],
    resume: Resume = False,
    out_dir: Annotated[str | None, typer.Option("--out-dir", help="Override out_dir.")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Override steps.")] = None,
    threads: Threads = 1,
    progress: Progress = True,
) -> None:
    """Train HALO-VAE on engine grasps (docs/grasp.md); writes OUT/model.safetensors."""
    in_range(threads, 1, MAX_THREADS, "--threads")

    import torch

    from halohand.training.grasp_vae import load_vae_config, train_vae

    torch.set_num_threads(threads)
    cfg = load_vae_config(config, out_dir=out_dir, steps=steps)
    meta = train_vae(cfg, resume=resume, progress=progress)
    typer.echo(json.dumps({k: meta[k] for k in ("steps", "wall_s", "grasps", "last")}, indent=2))


def _json_safe(value: object) -> object:
    """``value`` with every NaN or infinite float (nested in dicts and lists) as ``None``."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@grasp_app.command("evaluate")
def evaluate_cmd(
    model: Annotated[
        Path | None, typer.Option("--model", help="Grasp VAE to sample (default: shipped).")
    ] = None,
    engine: Annotated[
        Path | None, typer.Option("--engine", help="Or: engine grasps folder to score.")
    ] = None,
    refine: GraspRefine = False,
    candidates: GraspCandidates = 4,
    objects: Annotated[
        str, typer.Option("--objects", help="test, val, real, or registry ids / mesh files.")
    ] = "test",
    orient: Annotated[
        str,
        typer.Option(
            "--orient",
            help="Mesh files: principal (turned to their principal frame) or keep (their "
            "axes). Registry objects keep theirs.",
        ),
    ] = "principal",
    n: GraspCount = 20,
    seed: GraspSeed = 0,
    resolution: GraspResolution = 128,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here.")] = None,
    sheet: Annotated[
        Path | None, typer.Option("--sheet", help="Contact sheet PNG (2 grasps per object).")
    ] = None,
    sheets: Annotated[
        Path | None,
        typer.Option(
            "--sheets",
            help="Folder: a contact sheet per object, every grasp, "
            "labelled PASS or with its failed checks (S, P, O).",
        ),
    ] = None,
    physics: Annotated[
        bool,
        typer.Option(
            "--physics/--no-physics",
            help="Simulate stability in MuJoCo (six "
            "gravity directions, ~0.3-0.9 s per grasp) and the human-plausible share.",
        ),
    ] = False,
    threads: Threads = 1,
    progress: Progress = True,
) -> None:
    """Table 3 metrics on held-out objects: intersection volume, contact ratio, diversity;
    penetration depth, per-finger contact, thumb opposition; with --physics stability."""
    if model is not None and engine is not None:
        raise HalohandInputError("pass at most one of --model and --engine")
    in_range(n, 1, MAX_GRASPS, "--n", MORE_GRASPS)
    in_range(candidates, 1, MAX_CANDIDATES, "--candidates")
    in_range(threads, 1, MAX_THREADS, "--threads")
    check_resolution(resolution)
    check_out_file(json_out, "--json", ".json", strict=False)  # both before any is written
    check_out_file(sheet, "--sheet", ".png", strict=False)
    if sheets is not None:
        check_out_folder(sheets, "--sheets")

    import torch

    from halohand.apps.figures import grasp_verdict, render_grasps
    from halohand.grasp.evaluate import engine_source, evaluate_grasps, vae_source
    from halohand.grasp.generate import grasp_halo, shipped_model_path
    from halohand.objects.orient import check_orient
    from halohand.objects.registry import load_objects

    check_orient(orient)
    torch.set_num_threads(threads)
    halo = grasp_halo()
    if engine is None and model is None:
        model = shipped_model_path()
    source = (
        engine_source(str(engine))
        if engine
        else vae_source(str(model), refine, halo, candidates=candidates)
    )
    objs = load_objects(objects, orient=orient)
    keep = n if sheets else 2 if sheet else 0
    res = evaluate_grasps(source, objs, halo, n, seed, resolution, keep_meshes=keep,
                          progress=progress, physics=physics)  # fmt: skip
    doc = {"source": str(model or engine), "refine": refine, "candidates": candidates,
           "n": n, "seed": seed, "physics": physics,
           "resolution": resolution, "mean": res["mean"], "objects": res["objects"],
           "grasps": res["grasps"]}  # fmt: skip
    doc = _json_safe(doc)  # an undefined measure (diversity of too few grasps) is null
    if json_out:
        write_text_atomic(json_out, json.dumps(doc, indent=2, allow_nan=False))
    if sheet:
        # With --sheets every mesh is kept (scenes align with grasps): the first two.
        first = (
            [i for i, g in enumerate(res["grasps"]) if g["index"] < 2]
            if sheets
            else list(range(len(res["scenes"])))
        )
        render_grasps([res["scenes"][i] for i in first], str(sheet), columns=4,
                      labels=[res["scenes"][i][1].object_id for i in first])  # fmt: skip
    if sheets:
        sheets.mkdir(parents=True, exist_ok=True)
        for obj in objs:
            mine = [i for i, g in enumerate(res["grasps"]) if g["object"] == obj.object_id]
            if not mine:  # no grasp of it has a surface
                continue
            verdicts = [grasp_verdict(res["grasps"][i]) for i in mine]
            render_grasps([res["scenes"][i] for i in mine], str(sheets / f"{obj.object_id}.png"),
                          columns=5, tile=160, labels=[v[0] for v in verdicts],
                          label_colors=[v[1] for v in verdicts])  # fmt: skip
    typer.echo(json.dumps(doc["mean"], indent=2))
