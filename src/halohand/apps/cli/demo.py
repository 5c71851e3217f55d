"""``halohand demo``: the declaration; the work is :func:`halohand.apps.demo.run_demo`, which
loads (with numpy, the renderer and the model) when the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from halohand.apps.cli.options import Checkpoint, Resolution, check_out_folder, check_resolution


def demo(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the outputs.")] = Path(
        "output"
    ),
    frames: Annotated[
        int, typer.Option("--frames", min=1, max=1000, help="Frames of the animation.")
    ] = 32,
    resolution: Resolution = 96,
    size: Annotated[
        int, typer.Option("--size", min=32, max=2048, help="Panel size in pixels (square).")
    ] = 320,
    side: Annotated[str, typer.Option("--side", help="Hand side: right or left.")] = "right",
    meshes: Annotated[
        bool, typer.Option("--meshes/--no-meshes", help="Also write meshes/frame_*.ply.")
    ] = False,
    gallery: Annotated[
        bool,
        typer.Option("--gallery/--no-gallery", help="Also render every gesture and random hands."),
    ] = True,
    samples: Annotated[
        int, typer.Option("--samples", min=0, max=64, help="Random hands in the gallery.")
    ] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the gallery's random hands.")] = 0,
    checkpoint: Checkpoint = None,
    photo: Annotated[
        Path | None,
        typer.Option(
            "--photo",
            help="Photo of the photo step (default: examples/photos/mpsamples_hand_thumb_up.jpg"
            " in the source tree).",
        ),
    ] = None,
    with_photo: Annotated[
        bool,
        typer.Option("--photo-step/--no-photo", help="Run one photo through the photo path."),
    ] = True,
) -> None:
    """Animate the template through natural key poses, reconstruct each frame with HALO from
    its keypoints and render both side by side (PNG frames, GIF, contact sheet)."""
    check_resolution(resolution)
    check_out_folder(out_dir)

    from halohand.apps.demo import run_demo

    run_demo(
        out_dir=out_dir, frames=frames, resolution=resolution, size=size, side=side,
        meshes=meshes, gallery=gallery, samples=samples, seed=seed, checkpoint=checkpoint,
        photo=photo, with_photo=with_photo,
    )  # fmt: skip
