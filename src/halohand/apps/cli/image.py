"""``halohand image``: photos -> hands (landmarks, camera-frame keypoints), meshes, overlays.

Every photo is decoded and checked (readable, not truncated, within the pixel limits)
before the models run or any file is written; a bad photo ends with one line on stderr and
exit status 2 (``halohand.apps.cli``). A photo without a hand is not an error: it gets a
line saying so and a JSON with no hands. Per photo ``NAME.jpg`` the folder receives
``NAME.json`` (everything: camera, per hand the pixel and metric joints, placed keypoints,
reprojection errors, mesh files; unless ``--no-fit``, the fitted hand model's pose,
identity, time and the plausibility of the placed and the fitted keypoints; for two hands,
unless ``--no-pair``, the ``pair`` entry: overlap before and after they were parted along
the camera rays, how far they moved), ``NAME_overlay.png``
(the meshes drawn over the photo through its camera) and ``NAME_hand0_right.ply``...
(metres, camera frame); each is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from halohand.apps.cli.options import (
    TOUCHING_CHOICES,
    Checkpoint,
    MeshExtension,
    Resolution,
    Touching,
    check_choice,
    check_extension,
    check_inputs_exist,
    check_out_folder,
    check_resolution,
    in_range,
)
from halohand.core.errors import HalohandInputError

#: Most hands ``--max-hands`` accepts (the library's :data:`halohand.image.photo.MAX_HANDS`).
MAX_HANDS = 10


def image(
    photos: Annotated[
        list[Path], typer.Argument(metavar="PHOTO...", help="Photos (JPEG, PNG, ...).")
    ],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the outputs.")],
    max_hands: Annotated[int, typer.Option("--max-hands", help="Most hands per photo.")] = 2,
    focal_px: Annotated[
        float | None,
        typer.Option(
            "--focal-px",
            help="Focal length in pixels (default: the photo's EXIF, else the image diagonal).",
        ),
    ] = None,
    fit: Annotated[
        bool,
        typer.Option(
            "--fit/--no-fit",
            help="Fit the hand model to the landmarks (pose within joint limits, identity "
            "within its prior) and reconstruct from its keypoints; --no-fit: from the "
            "placed landmarks.",
        ),
    ] = True,
    pair: Annotated[
        bool,
        typer.Option(
            "--pair/--no-pair",
            help="A photo with two hands: part them in depth where their surfaces overlap "
            "(pair refinement along the camera rays) and mesh them as a pair; --no-pair: "
            "each hand as placed.",
        ),
    ] = True,
    resolution: Resolution = 128,
    ext: MeshExtension = "ply",
    checkpoint: Checkpoint = None,
    touching: Touching = "merge",
) -> None:
    """Find the hands in photos, place them in each photo's camera frame and reconstruct
    their meshes.

    Writes per photo NAME.json, NAME_overlay.png and NAME_hand<i>_<side>.<ext> (metres,
    camera frame: x right, y down, z ahead).
    """
    in_range(max_hands, 1, MAX_HANDS, "--max-hands")
    if focal_px is not None and not focal_px > 0:
        raise HalohandInputError(f"--focal-px must be a positive number of pixels, got {focal_px}")
    ext = check_extension(ext)
    check_resolution(resolution)
    touching = check_choice(touching, TOUCHING_CHOICES, "--touching") or touching
    check_out_folder(out_dir)
    check_inputs_exist(photos)
    stems: dict[str, Path] = {}
    for path in photos:
        if path.stem in stems:
            raise HalohandInputError(
                f"{path} and {stems[path.stem]} would both write {path.stem}.json; rename one"
            )
        stems[path.stem] = path

    from halohand.image import from_image, load_photo

    decoded = [load_photo(path) for path in photos]  # every photo readable first

    from halohand.apps.cli.reconstruct import _load_model
    from halohand.apps.photo_outputs import write_photo_outputs

    model = _load_model(checkpoint, "cpu")
    for path, photo in zip(photos, decoded, strict=True):
        result = from_image(photo, max_hands=max_hands, focal_px=focal_px, fit=fit)
        write_photo_outputs(
            path, result, model, out_dir, resolution, ext, pair=pair, touching=touching
        )
        if result.hands:
            sides = ", ".join(h.side for h in result.hands)
            n = len(result.hands)
            typer.echo(f"{path}: {n} hand{'s' if n != 1 else ''} ({sides}) -> {out_dir}")
        else:
            typer.echo(f"{path}: no hand found -> {out_dir / (path.stem + '.json')}")
