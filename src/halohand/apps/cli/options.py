"""The options the commands share: one declaration (name and help) and one validator each.

Each option is an ``Annotated`` type; the command gives only the default (typer copies the
declaration for every parameter, so one type serves many commands with their own defaults)::

    def reconstruct(..., side: KeypointSide = None, device: Device = "cpu") -> None:
        side = check_side(side)

The validators raise :class:`~halohand.core.errors.HalohandInputError`, which
:func:`halohand.apps.cli.main` turns into one line on stderr and exit status 2. Choices
are checked here rather than by typer, so that every bad value gets that same treatment.

This module is imported for ``halohand --help``: it imports typer and
:mod:`halohand.core.units` (no numpy); the keypoint formats are checked by
:mod:`halohand.skeleton.validation` (numpy), loaded when a ``--format`` is given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from halohand.core.errors import HalohandInputError
from halohand.core.units import UNIT_CHOICES


class CommandGroup(TyperGroup):
    """A command group (``halohand``, ``halohand data``, ...) whose ``--help`` flag defaults to
    ``False`` instead of ``None``.

    typer converts a parameter value that is not already a bool with a pydantic adapter,
    built on first use (importing pydantic: about 0.1 s). A group's help flag is processed on
    every run of its commands, so with ``None`` even ``halohand reconstruct --help`` paid for
    it.
    """

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


#: Hand sides a keypoint file can be read as.
SIDES = ("right", "left")
#: Mesh formats ``--ext`` accepts: those :func:`halohand.apps.export.export_mesh` writes
#: (the same tuple as :data:`halohand.apps.export.EXTENSIONS`, which imports trimesh).
MESH_EXTENSIONS = ("ply", "obj", "glb")
#: Extraction lattice sizes :class:`~halohand.inference.halo.HALO` accepts.
RESOLUTION_RANGE = (8, 1024)

# ------------------------------------------------------------------ keypoint files

KeypointSide = Annotated[
    str | None, typer.Option("--side", help="right or left (default: the file's, else right).")
]
KeypointUnits = Annotated[
    str | None,
    typer.Option("--units", help="auto, m, cm or mm (default: the file's, else auto)."),
]
KeypointFormat = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Keypoint order: openpose (= mediapipe), mano, biomech, interhand, webxr, openxr.",
    ),
]

KeypointConvention = Annotated[
    str,
    typer.Option(
        "--convention",
        help="Where the keypoints sit on the hand: auto (told from the tip bones), rig (joint "
        "centres, tips under the skin) or mano (MANO-based datasets, MediaPipe: fingertips on "
        "the skin); docs/conventions.md.",
    ),
]

#: The values of ``--touching`` (``halohand.inference.halo.TOUCHING``, without importing it).
TOUCHING_CHOICES = ("merge", "apart")

Touching = Annotated[
    str,
    typer.Option(
        "--touching",
        help="Where parts that tissue does not join touch (a fist's fingertips on the palm): "
        "merge (the max over parts) or apart (each part closed on its own side, so the mesh "
        "stays one body of genus 0; 1.05-1.08x the time); docs/usage.md.",
    ),
]

# ------------------------------------------------------------------ models and devices

#: An optional model for ``reconstruct`` / ``occupancy`` (``None``: the shipped weights).
Checkpoint = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        help="Model file (.safetensors or training checkpoint.pt); default: shipped weights.",
    ),
]
#: The model a command evaluates or calibrates (required).
ModelFile = Annotated[
    Path, typer.Option("--checkpoint", help="Model (.safetensors) or checkpoint.pt.")
]
Device = Annotated[str, typer.Option("--device", help="cpu, cuda[:N] or auto.")]
Threads = Annotated[int, typer.Option("--threads", help="torch CPU threads.")]
_PROGRESS = typer.Option("--progress/--no-progress", help="Progress bar on stderr.")
Progress = Annotated[bool, _PROGRESS]
#: ``--progress`` where ``None`` (not given) keeps the run config's choice.
ProgressOverride = Annotated[bool | None, _PROGRESS]

# ------------------------------------------------------------------ data, runs and outputs

DataFolder = Annotated[Path, typer.Option("--data", help="Data folder.")]
SplitLimit = Annotated[
    int | None, typer.Option("--limit", help="Only the first N hands of the split.")
]
#: The output folder of a resumable job (``data generate``, ``grasp synthesize``).
ResumableOut = Annotated[Path, typer.Option("--out", help="Output folder (created; resumable).")]
Resume = Annotated[
    bool, typer.Option("--resume", help="Continue from the output folder's checkpoint.pt.")
]
Resolution = Annotated[
    int, typer.Option("--resolution", help="Extraction lattice cells per axis (8-1024).")
]
MeshExtension = Annotated[str, typer.Option("--ext", help="Mesh format: ply, obj or glb.")]

# ------------------------------------------------------------------ grasps

GraspCount = Annotated[int, typer.Option("--n", help="Grasps per object.")]
GraspSeed = Annotated[int, typer.Option("--seed", help="Sampling seed.")]
GraspRefine = Annotated[
    bool,
    typer.Option("--refine/--no-refine", help="Refine each sample's translation (10 steps)."),
]
GraspCandidates = Annotated[
    int,
    typer.Option(
        "--candidates",
        help="Samples per grasp (refined when --refine); the lowest collision-and-contact "
        "energy is kept. 1: plain sampling (the paper's).",
    ),
]
GraspResolution = Annotated[
    int, typer.Option("--resolution", help="HALO mesh lattice cells per axis.")
]


# ------------------------------------------------------------------ validators


def check_choice(value: str | None, choices: tuple[str, ...], option: str) -> str | None:
    """``value`` lower-cased, or ``None`` for an option not given; raises for other values."""
    if value is None:
        return None
    key = value.lower()
    if key not in choices:
        raise HalohandInputError(f"{option} must be one of {', '.join(choices)}, got {value!r}")
    return key


def check_side(value: str | None) -> str | None:
    return check_choice(value, SIDES, "--side")


def check_units(value: str | None) -> str | None:
    return check_choice(value, UNIT_CHOICES, "--units")


def check_format(value: str | None) -> str | None:
    """A keypoint format name lower-cased (``None``: read it from the file)."""
    if value is None:
        return None
    from halohand.skeleton.validation import check_format as check_keypoint_format  # numpy

    return check_keypoint_format(value)


def check_device(value: str) -> str:
    """A device name lower-cased: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether CUDA is
    there is checked where the model loads, which imports torch)."""
    key = str(value).strip().lower()
    index = key[5:] if key.startswith("cuda:") else "0"
    if key not in ("auto", "cpu", "cuda") and not (key.startswith("cuda:") and index.isdigit()):
        raise HalohandInputError(
            f"unknown device {value!r} (--device); use auto, cpu, cuda or cuda:N"
        )
    return key


def check_extension(value: str) -> str:
    """A mesh format lower-cased, without a dot."""
    key = str(value).lower().lstrip(".")
    if key not in MESH_EXTENSIONS:
        raise HalohandInputError(
            f"unknown mesh format {value!r}; use one of {', '.join(MESH_EXTENSIONS)}"
        )
    return key


def check_resolution(value: int) -> int:
    low, high = RESOLUTION_RANGE
    if not low <= value <= high:
        raise HalohandInputError(f"resolution must be an integer in {low}..{high}, got {value}")
    return value


def at_least(value: int, low: int, option: str) -> int:
    if value < low:
        raise HalohandInputError(f"{option} must be >= {low}, got {value}")
    return value


def in_range(value: int, low: int, high: int, option: str, beyond: str = "") -> int:
    """``value`` if ``low <= value <= high``; else one line naming the range and, for an
    upper limit, how to go beyond it (``beyond``)."""
    at_least(value, low, option)
    if value > high:
        hint = f"; {beyond}" if beyond else ""
        raise HalohandInputError(f"{option} must be at most {high:,}, got {value:,}{hint}")
    return value


#: Upper limits of the count options: each keeps one call's memory and time bounded
#: (grasps: about 1 MB of meshes and a few ms of refinement each; hands: ~2.6 MB of shards
#: each). :data:`halohand.grasp.generate.MAX_GRASPS_PER_CALL` is the library's own limit.
MAX_GRASPS = 1000
MAX_CANDIDATES = 64
MAX_THREADS = 256
MAX_WORKERS = 256
MAX_HANDS_PER_SPLIT = 1_000_000
MAX_SURFACE_SAMPLES = 10_000_000
MORE_GRASPS = "for more grasps run again with another --seed (each seed gives other grasps)"


def check_inputs_exist(paths: list[Path]) -> None:
    """Every input file is there (the readers say the same, after numpy has loaded)."""
    for path in paths:
        if not path.exists():
            raise HalohandInputError(f"{path}: no such file")


def _check_writable(folder: Path, path: Path, option: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise HalohandInputError(f"{option} {path}: cannot write in {folder} (permission denied)")


def check_parent(path: Path, option: str) -> None:
    """Refuse an output path under a file, or in a folder this user cannot write to, before
    any work (its folders could not be made, or the output not written)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise HalohandInputError(f"{option} {path}: {parent} is a file, not a folder")
            _check_writable(parent, path, option)
            return


def check_out_folder(path: Path, option: str = "--out-dir") -> Path:
    """An output folder that is not a file and can be made."""
    if path.exists() and not path.is_dir():
        raise HalohandInputError(f"{option} {path} is a file, not a folder")
    if path.is_dir():
        _check_writable(path, path, option)
    check_parent(path, option)
    return path


def check_out_file(path: Path | None, option: str, suffix: str, *, strict: bool = True) -> None:
    """An output file name (``None``: not asked for) that is not a folder and can be made;
    with ``strict``, it must end in ``suffix``."""
    if path is None:
        return
    if path.exists() and path.is_dir():
        raise HalohandInputError(f"{option} {path} is a folder; pass a {suffix} file name")
    if strict and path.suffix.lower() != suffix:
        raise HalohandInputError(f"{option} {path}: expected a {suffix} file name")
    check_parent(path, option)


def convention_note(path: Path, reading: str, convention: str) -> list[str]:
    """One warning line when ``auto`` read a file's hands (one reading for all of them) as
    skin-tipped (MANO-style)."""
    if convention != "auto" or reading != "mano":
        return []
    return [
        f"warning: {path}: read as MANO-style keypoints (fingertips on the skin): the tips "
        "are moved onto the model's tip joints; --convention rig keeps them"
    ]
