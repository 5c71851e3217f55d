"""``halohand data ...`` commands."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from halohand.apps.cli.options import (
    MAX_HANDS_PER_SPLIT,
    MAX_WORKERS,
    CommandGroup,
    Progress,
    ResumableOut,
    check_choice,
    in_range,
)
from halohand.core.errors import HalohandInputError
from halohand.data import constants as C

data_app = typer.Typer(
    cls=CommandGroup, help="Generate and inspect training data.", no_args_is_help=True
)


# Choices and ranges are checked by the engine (HalohandInputError: one line, exit 2) rather
# than by typer, so every bad value gets the same treatment.
def _source_factory(  # noqa: ANN202 - a zero-arg factory
    name: str,
    mano_model: Path | None,
    bone_length_std: float | None = None,
    shape_scale: float | None = None,
    thickness_mean: float | None = None,
):
    from halohand.handmodel.sources import SOURCES, make_source

    if name not in SOURCES:
        raise HalohandInputError(f"unknown --source {name!r}; expected one of {', '.join(SOURCES)}")
    if bone_length_std is not None:
        if name != "webxr":
            raise HalohandInputError("--bone-length-std is a setting of --source webxr only")
        if not 0.0 <= bone_length_std <= 0.2:
            raise HalohandInputError(
                f"--bone-length-std must be in [0, 0.2] (log std), got {bone_length_std}"
            )
    if shape_scale is not None:
        if name != "webxr":
            raise HalohandInputError("--shape-scale is a setting of --source webxr only")
        if not 0.0 <= shape_scale <= 2.0:
            raise HalohandInputError(f"--shape-scale must be in [0, 2], got {shape_scale}")
    if thickness_mean is not None:
        if name != "webxr":
            raise HalohandInputError("--thickness-mean is a setting of --source webxr only")
        _check_thickness_mean(thickness_mean)
    return functools.partial(
        make_source, name, mano_model, bone_length_std, shape_scale, thickness_mean
    )


def _check_thickness_mean(thickness_mean: float) -> None:
    if not -0.15 <= thickness_mean <= 0.15:
        # the drawn offsets (+-0.0875 around the mean) stay inside the validated +-0.25
        raise HalohandInputError(f"--thickness-mean must be in [-0.15, 0.15], got {thickness_mean}")


def _source_name(
    bone_length_std: float | None, shape_scale: float | None, thickness_mean: float | None = None
) -> str | None:
    """The data's recorded source name for non-default webxr settings (None: the default)."""
    if bone_length_std is None and shape_scale is None and thickness_mean is None:
        return None
    name = "webxr"
    if bone_length_std is not None:
        name += f"-bone{bone_length_std:g}"
    if shape_scale is not None:
        name += f"-shape{shape_scale:g}"
    if thickness_mean is not None:
        name += f"-thick{thickness_mean:g}"
    return name


def _check_sizes(
    counts: tuple[int, int, int], per_shard: int, shard_option: str, workers: int | None
) -> None:
    """The split sizes (train, val, test), items per shard and workers of a data command."""
    for count, option in zip(counts, ("--n-train", "--n-val", "--n-test"), strict=True):
        in_range(count, 0, MAX_HANDS_PER_SPLIT, option,
                 "generate more in further data folders with other seeds")  # fmt: skip
    in_range(per_shard, 1, 10_000, shard_option)
    if workers is not None:
        in_range(workers, 1, MAX_WORKERS, "--workers")


@data_app.command("generate")
def generate_cmd(
    out: ResumableOut,
    n_train: Annotated[int, typer.Option("--n-train", help="Training hands.")] = 0,
    n_val: Annotated[int, typer.Option("--n-val", help="Validation hands.")] = 0,
    n_test: Annotated[int, typer.Option("--n-test", help="Test hands.")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Master seed; same seed, same bytes.")] = 0,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="Hand model: webxr (embedded default), mano (needs --mano-model), or toy "
            "(synthetic capsule hands for tests and benchmarks).",
        ),
    ] = "webxr",
    mano_model: Annotated[
        Path | None,
        typer.Option("--mano-model", help="Path of MANO_RIGHT.pkl for --source mano."),
    ] = None,
    side: Annotated[
        str, typer.Option("--side", help="right, left, or both (alternating by hand index).")
    ] = "right",
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Worker processes (default: number of CPU cores)."),
    ] = None,
    hands_per_shard: Annotated[
        int, typer.Option("--hands-per-shard", help="Hands per shard file (~2.6 MB each).")
    ] = C.DEFAULT_HANDS_PER_SHARD,
    bone_length_std: Annotated[
        float | None,
        typer.Option(
            "--bone-length-std",
            help="webxr: log std of each bone's own length factor (default 0.025); the data "
            "records it in its source name (webxr-bone<std>).",
        ),
    ] = None,
    shape_scale: Annotated[
        float | None,
        typer.Option(
            "--shape-scale",
            help="webxr: draw the soft-tissue shape correctives (thenar, palm hollow, thumb "
            "web, finger pads, knuckles) at this multiple of their spread (default: none); "
            "recorded in the source name (webxr-shape<scale>).",
        ),
    ] = None,
    thickness_mean: Annotated[
        float | None,
        typer.Option(
            "--thickness-mean",
            help="webxr: relative thickness offset every part starts from (default 0, the "
            "template's girth; -0.15..0.15); recorded in the source name (webxr-thick<mean>).",
        ),
    ] = None,
    progress: Progress = True,
) -> None:
    """Generate occupancy training data: per hand 100k uniform + 100k near-surface points
    with exact inside labels, 6,000 part-labelled surface samples, 100k surface points with
    normals, keypoints, part transforms and bone lengths, in metres (see docs/data.md).

    Deterministic for a seed (byte-identical reruns, any --workers). Rerunning with the same
    settings skips finished shards, so an interrupted run resumes where it stopped.
    """
    _check_sizes((n_train, n_val, n_test), hands_per_shard, "--hands-per-shard", workers)
    from halohand.data.engine import generate

    factory = _source_factory(source, mano_model, bone_length_std, shape_scale, thickness_mean)
    report = generate(
        out,
        {"train": n_train, "val": n_val, "test": n_test},
        seed=seed,
        source=factory,
        source_name=_source_name(bone_length_std, shape_scale, thickness_mean),
        side=side,
        hands_per_shard=hands_per_shard,
        workers=workers,
        progress=progress,
    )
    typer.echo(
        f"{out}: wrote {report.shards_written} shards ({report.hands_generated} hands, "
        f"{report.hands_per_second:.2f} hands/s), skipped {report.shards_skipped} finished shards"
    )
    if report.hands_outside_box:
        typer.echo(
            f"warning: {report.hands_outside_box} of {report.hands_generated} hands reach beyond "
            f"the +-{C.BOX_HALF_SIDE_M} m uniform box (up to {report.max_reach_m:.3f} m)",
            err=True,
        )


@data_app.command("pairs")
def pairs_cmd(
    out: ResumableOut,
    n_train: Annotated[int, typer.Option("--n-train", help="Training pairs.")] = 0,
    n_val: Annotated[int, typer.Option("--n-val", help="Validation pairs.")] = 0,
    n_test: Annotated[int, typer.Option("--n-test", help="Test pairs.")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Master seed; same seed, same bytes.")] = 0,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Worker processes (default: number of CPU cores)."),
    ] = None,
    pairs_per_shard: Annotated[
        int, typer.Option("--pairs-per-shard", help="Pairs per shard file (~1.4 MB each).")
    ] = C.DEFAULT_HANDS_PER_SHARD,
    thickness_mean: Annotated[
        float | None,
        typer.Option(
            "--thickness-mean",
            help="Relative thickness offset every part of both hands starts from (default 0, "
            "the template's girth; -0.15..0.15; the shipped HALO's data: 0.15); recorded in "
            "the source name (webxr-pairs-thick<mean>).",
        ),
    ] = None,
    progress: Progress = True,
) -> None:
    """Generate two-hand data: interacting left/right pairs of the embedded hand (clasped,
    interlaced, palm to palm, holding a finger or the wrist, fingertip on palm, crossed,
    near), placed to touch without penetrating (<= 0.25 mm), with per-hand inside labels on
    100k uniform + 100k near-surface shared points (see docs/two_hands.md).

    Deterministic for a seed and resumable, as 'data generate'.
    """
    _check_sizes((n_train, n_val, n_test), pairs_per_shard, "--pairs-per-shard", workers)
    from halohand.data.engine import generate
    from halohand.data.pairs import PairSampler
    from halohand.handmodel.prior import IdentityPrior

    source, source_name = PairSampler, PairSampler.name
    if thickness_mean is not None:
        _check_thickness_mean(thickness_mean)
        prior = IdentityPrior(thickness_mean=thickness_mean)
        source = functools.partial(PairSampler, identity_prior=prior)
        source_name += f"-thick{thickness_mean:g}"
    report = generate(
        out,
        {"train": n_train, "val": n_val, "test": n_test},
        seed=seed,
        source=source,
        source_name=source_name,
        side="both",
        hands_per_shard=pairs_per_shard,
        workers=workers,
        progress=progress,
        kind="pairs",
    )
    typer.echo(
        f"{out}: wrote {report.shards_written} shards ({report.hands_generated} pairs, "
        f"{report.hands_per_second:.2f} pairs/s), skipped {report.shards_skipped} finished "
        "shards"
    )
    if report.hands_outside_box:
        typer.echo(
            f"warning: {report.hands_outside_box} of {report.hands_generated} pairs reach "
            f"beyond the +-{C.BOX_HALF_SIDE_M} m uniform box (up to {report.max_reach_m:.3f} m)",
            err=True,
        )


@data_app.command("pair-images")
def pair_images_cmd(
    out: ResumableOut,
    pairs: Annotated[Path, typer.Option("--pairs", help="'halohand data pairs' output to render.")],
    splits: Annotated[
        str, typer.Option("--splits", help="Comma-separated, of: train, val, test.")
    ] = "train,val,test",
    views: Annotated[int, typer.Option("--views", help="Cameras per pair.")] = 4,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels (square).")] = 128,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Render only the first N pairs of each split.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Master seed; same seed, same images.")] = 0,
    renderer: Annotated[
        str, typer.Option("--renderer", help="auto, egl or numpy (as 'data render').")
    ] = "auto",
) -> None:
    """Render the pairs of a two-hand dataset ('data pairs') from random cameras: images,
    masks (right / left hand), cameras and keypoints per pair, for the image-conditioned
    two-hand model (docs/two_hands.md); resumable."""
    from halohand.apps.pair_images import PairImagesConfig, render_pair_split
    from halohand.apps.synthetic import RENDERERS

    in_range(views, 1, 64, "--views")
    in_range(size, 16, 1024, "--size")
    if limit is not None:
        in_range(limit, 1, 10_000_000, "--limit")
    renderer = check_choice(renderer, RENDERERS, "--renderer") or renderer
    names = [check_choice(s.strip(), C.SPLITS, "--splits") or s for s in splits.split(",")]
    if not (pairs / "manifest.json").is_file():
        raise HalohandInputError(f"{pairs}: not a folder of 'halohand data pairs' output")
    config = PairImagesConfig(views=views, size=size, seed=seed, renderer=renderer)
    for name in names:
        report = render_pair_split(pairs, name, out, config, limit=limit)
        typer.echo(
            f"{out / name}: {report['made']} pairs rendered, {report['skipped']} already "
            f"there ({report['renderer']} renderer, {report['seconds']} s)"
        )


@data_app.command("verify")
def verify_cmd(
    root: Annotated[Path, typer.Argument(help="A folder written by 'halohand data generate'.")],
) -> None:
    """Check every shard of a data folder: structure, zip CRCs and the manifest's SHA-256."""
    from halohand.data.engine import verify

    n_shards, n_hands = verify(root)
    typer.echo(f"{root}: {n_shards} shards, {n_hands} hands, all valid")


@data_app.command("render")
def render_cmd(
    out: ResumableOut,
    n: Annotated[int, typer.Option("--n", help="Images (indices 0..n-1).")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Master seed; same seed, same images.")] = 0,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels (square).")] = 512,
    renderer: Annotated[
        str,
        typer.Option(
            "--renderer",
            help="auto (EGL if it starts, else numpy), egl (OpenGL on a headless EGL "
            "context) or numpy (the project's rasteriser).",
        ),
    ] = "auto",
) -> None:
    """Render photos of posed hands with their ground truth (2D and 3D keypoints, masks,
    meshes): varied skin tones, lights, backgrounds, cameras and distances; resumable."""
    from halohand.apps.synthetic import render_set

    report = render_set(out, n, seed, size, renderer, log=typer.echo)
    typer.echo(
        f"{out}: {report['rendered']} rendered, {report['skipped']} already there "
        f"({report['renderer']} renderer, {report['seconds']} s)"
    )


@data_app.command("hoi")
def hoi_cmd(
    out: ResumableOut,
    train_grasps: Annotated[
        Path | None,
        typer.Option("--train-grasps", help="'halohand grasp synthesize' output, train objects."),
    ] = None,
    test_grasps: Annotated[
        Path | None,
        typer.Option("--test-grasps", help="'halohand grasp synthesize' output, test objects."),
    ] = None,
    splits: Annotated[
        str,
        typer.Option(
            "--splits",
            help="Comma-separated, of: train, heldout_scenes, heldout_objects.",
        ),
    ] = "train,heldout_scenes,heldout_objects",
    views: Annotated[int, typer.Option("--views", help="Cameras per training grasp.")] = 8,
    heldout_views: Annotated[
        int, typer.Option("--heldout-views", help="Cameras per held-out grasp.")
    ] = 4,
    heldout_per_object: Annotated[
        int, typer.Option("--heldout-per-object", help="Last grasps of each train object held out.")
    ] = 2,
    test_per_object: Annotated[
        int, typer.Option("--test-per-object", help="Grasps per test object, at most.")
    ] = 8,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels (square).")] = 128,
    samples: Annotated[
        int, typer.Option("--samples", help="Signed-distance samples per grasp.")
    ] = 4096,
    seed: Annotated[int, typer.Option("--seed", help="Master seed; same seed, same scenes.")] = 0,
    renderer: Annotated[
        str, typer.Option("--renderer", help="auto, egl or numpy (as 'data render').")
    ] = "auto",
) -> None:
    """Render hand-object scenes (a grasp of the grasp engine seen by random cameras) with
    their ground truth: image, masks, camera, object pose, hand keypoints and mesh, signed
    distances near both surfaces; the splits of the HOISDF study (docs/hoisdf.md);
    resumable."""
    import json

    from halohand.apps.handobject_data import HOIDataConfig, render_study, study_jobs
    from halohand.apps.synthetic import RENDERERS

    for value, low, high, option in (
        (views, 1, 64, "--views"), (heldout_views, 1, 64, "--heldout-views"),
        (heldout_per_object, 0, 1000, "--heldout-per-object"),
        (test_per_object, 1, 1000, "--test-per-object"), (size, 16, 1024, "--size"),
        (samples, 8, 1_000_000, "--samples"),
    ):  # fmt: skip
        in_range(value, low, high, option)
    renderer = check_choice(renderer, RENDERERS, "--renderer") or renderer
    for folder in (train_grasps, test_grasps):
        if folder is not None and not folder.is_dir():
            raise HalohandInputError(f"{folder}: not a folder of grasp-engine output")
    jobs = study_jobs(
        train_grasps, test_grasps, tuple(s.strip() for s in splits.split(",") if s.strip()),
        views, heldout_views, heldout_per_object, test_per_object,
    )  # fmt: skip
    config = HOIDataConfig(size=size, samples=samples, seed=seed, renderer=renderer)
    for row in render_study(out, jobs, config, log=typer.echo):
        typer.echo(json.dumps(row))
