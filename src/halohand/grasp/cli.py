"""``halohand grasp ...`` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

grasp_app = typer.Typer(help="Objects and grasp synthesis (HALO-VAE data).", no_args_is_help=True)


@grasp_app.command("synthesize")
def synthesize_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output folder (created; resumable).")],
    objects: Annotated[
        str,
        typer.Option(
            "--objects", help="train, test, all, or comma-separated ids such as box_0,mug_3."
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
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")
    ] = True,
) -> None:
    """Synthesise grasps by optimisation with the rigged hand model (docs/grasp.md).

    Writes OUT/<object>/batch_XXXXX.npz shards (keypoints in metres, pose parameters,
    energy terms, quality measures, an accepted flag), config.json and summary.json, and
    prints the summary. Rerunning the same command skips finished shards.
    """
    import torch

    from halohand.grasp.objects import parse_object_list
    from halohand.grasp.synthesis import SynthesisConfig, synthesize

    torch.set_num_threads(1)
    ids = parse_object_list(objects)
    config = SynthesisConfig(
        batch_size=batch_size, steps=steps, max_batches=max_batches, sides=side
    )
    summary = synthesize(ids, n_per_object, out, seed, config, workers, progress)
    brief = {k: v for k, v in summary.items() if k != "objects"}
    typer.echo(json.dumps(brief, indent=2))


@grasp_app.command("objects")
def objects_cmd(
    split: Annotated[str, typer.Option("--split", help="all, train or test.")] = "all",
) -> None:
    """List the registry objects: id, split, kind, extents (cm), volume (cm^3)."""
    from halohand.grasp.objects import load_object, object_ids

    for oid in object_ids(split):
        o = load_object(oid)
        ext = " x ".join(f"{e * 100:.1f}" for e in o.mesh.extents)
        typer.echo(
            f"{oid:12s} {o.split:5s} {o.kind:8s} {ext:>20s} cm {o.mesh.volume * 1e6:7.1f} cm^3"
        )
