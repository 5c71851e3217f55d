"""``halohand reconstruct`` and ``halohand occupancy``: keypoint files -> meshes / occupancy.

Every input is read and validated (shape, finite values, units, skeleton) before the model
runs or any file is written; bad input ends with one line on stderr and exit status 2
(``halohand.apps.cli``). Outputs are written atomically, one file per hand.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from halohand.apps.cli.options import (
    TOUCHING_CHOICES,
    Checkpoint,
    Device,
    KeypointConvention,
    KeypointFormat,
    KeypointSide,
    KeypointUnits,
    MeshExtension,
    Resolution,
    Touching,
    check_choice,
    check_device,
    check_extension,
    check_format,
    check_inputs_exist,
    check_out_file,
    check_out_folder,
    check_resolution,
    check_side,
    check_units,
    convention_note,
)
from halohand.core.atomic import atomic_open
from halohand.core.errors import HalohandInputError


def _with_path(exc: HalohandInputError, path: Path, sequence: bool) -> HalohandInputError:
    """The same error naming the file (and, for sequences only, the hand), with a hint."""
    msg = str(exc)
    if not sequence:
        msg = msg.replace(" (first: hand [0])", "").replace(" in 1 of 1 hands", "")
    if msg.startswith("degenerate skeleton") and "--format" not in msg:
        msg += "; check for duplicated or misplaced joints and the --format"
    return type(exc)(msg if str(path) in msg else f"{path}: {msg}")


def _prepare(
    kf: Any, path: Path, side: str | None, units: str | None, convention: str = "auto"
) -> tuple[Any, str | None]:
    """A keypoint file's hands validated (errors name the file), with the one-line skeleton
    warning (mirrored, implausible, likely wrong joint order) or ``None``; ``side`` and
    ``units`` given on the command line win over the file's own."""
    from halohand.apps.cli.check import skeleton_warning
    from halohand.inference.halo import prepare_hands

    try:
        prepared = prepare_hands(
            kf.keypoints, side or kf.side or "right", units or kf.units or "auto", kf.fmt,
            convention=convention,
        )  # fmt: skip
    except HalohandInputError as exc:
        raise _with_path(exc, path, kf.is_sequence) from None
    warning = skeleton_warning(
        prepared.keypoints, prepared.is_left, prepared.units, kf.is_sequence,
        raw=kf.keypoints, fmt=kf.fmt,
    )  # fmt: skip
    return prepared, warning


def _load_model(checkpoint: Path | None, device: str):
    from halohand.inference.halo import HALO

    if checkpoint is None:
        return HALO.pretrained(device=device)
    return HALO.from_checkpoint(checkpoint, device=device)


def _prepare_pair(
    pf: Any, units: str | None, convention: str = "auto"
) -> tuple[Any, list[tuple[int, str]], str | None]:
    """A two-hand file's complete hands validated (errors name the file): the prepared
    hands, their ``(pair, side)`` in order, and the one-line skeleton warning or ``None``."""
    import numpy as np

    from halohand.apps.cli.check import skeleton_warning
    from halohand.inference.halo import prepare_hands

    where = [(i, side) for i in range(len(pf)) for s, side in enumerate(("right", "left"))
             if pf.complete[i, s]]  # fmt: skip
    if not where:
        raise HalohandInputError(f"{pf.path}: no hand with all 21 joints valid")
    kp = np.stack([pf.keypoints[i, 0 if side == "right" else 1] for i, side in where])
    sides = [side for _, side in where]
    try:
        prepared = prepare_hands(
            kp, sides, units or pf.units or "auto", "openpose", convention=convention
        )
    except HalohandInputError as exc:
        raise _with_path(exc, pf.path, True) from None
    warning = skeleton_warning(prepared.keypoints, prepared.is_left, prepared.units, True)
    return prepared, where, warning


def _pair_meshes(
    model: Any,
    prepared: Any,
    where: list[tuple[int, str]],
    resolution: int,
    separate: bool,
    learned: Any = None,
    touching: str = "merge",
) -> Any:
    """Meshes of a two-hand file's hands in ``where`` order; with ``separate``, the two
    hands of each complete pair are meshed together with their overlap removed
    (``HALO.meshes(..., separate=True)``); with ``learned`` (a two-hand refinement network,
    :func:`~halohand.inference.two_hands.check_refinement`), their two fields are first
    corrected together by it."""
    from halohand.inference.two_hands import pair_refinement

    if not separate and learned is None:
        yield from model.meshes(prepared, resolution, touching=touching)
        return
    k = 0
    while k < len(where):
        n = 2 if k + 1 < len(where) and where[k + 1][0] == where[k][0] else 1
        sides = [side for _, side in where[k : k + n]]
        sub = model.prepare(prepared.keypoints[k : k + n], sides, prepared.units, convention="rig")
        context = None
        if n == 2 and learned is not None:
            context = pair_refinement(model, sub, learned)  # sides come right, then left
        yield from model.meshes(
            sub, resolution, separate=separate and n == 2, learned=context, touching=touching
        )
        k += n


def _refined(model: Any, refiner: Any, prepared: Any, where: list[tuple[int, str]] | None) -> Any:
    """``prepared`` with its keypoints cleaned by the keypoint refiner (in metres, back in
    the input's units); ``where`` (two-hand files: ``(pair, side)`` per hand) refines the
    two hands of a pair together and then moves them out of each other's occupancy."""
    from halohand.fitting.keypoint_refiner import refine_keypoints
    from halohand.fitting.pair_refine import refine_pair
    from halohand.inference.halo import prepare_hands

    kp = prepared.keypoints * prepared.scale
    sides = ["left" if left else "right" for left in prepared.is_left]
    out = kp.copy()
    groups: dict[int, list[int]] = {}
    for k, (i, _) in enumerate(where or [(k, s) for k, s in enumerate(sides)]):
        groups.setdefault(i if where is not None else k, []).append(k)
    for rows in groups.values():
        own = tuple(sides[k] for k in rows)
        cleaned = refine_keypoints(kp[rows], sides=own, model=refiner)
        if len(rows) == 2:
            cleaned = refine_pair(model, cleaned, sides=own).keypoints
        out[rows] = cleaned
    return prepare_hands(out / prepared.scale, sides, prepared.units, "openpose", convention="rig")


def reconstruct(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="KP...",
            help="Keypoint files (.npy, .json, .txt): [21, 3] or [N, 21, 3]; two hands: "
            "[42, 3] / [N, 42, 3] (InterHand layout) or InterHand2.6M joint JSON, found "
            "by shape; [2, 21, 3] / [N, 2, 21, 3] with --pair.",
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the meshes.")],
    side: KeypointSide = None,
    units: KeypointUnits = None,
    fmt: KeypointFormat = None,
    resolution: Resolution = 256,
    ext: MeshExtension = "ply",
    checkpoint: Checkpoint = None,
    device: Device = "cpu",
    pair: Annotated[
        bool,
        typer.Option(
            "--pair",
            help="Read [2, J, 3] / [N, 2, J, 3] arrays and .txt files of 2 x J rows as two "
            "hands (right, left) instead of a sequence of single hands.",
        ),
    ] = False,
    refine: Annotated[
        bool,
        typer.Option(
            "--refine",
            help="Clean estimated keypoints with the learned keypoint refiner before meshing; "
            "two hands are also moved out of each other's occupancy (docs/refinement.md). "
            "Not for ground-truth keypoints: it adds ~1.6 mm to clean ones.",
        ),
    ] = False,
    convention: KeypointConvention = "auto",
    separate: Annotated[
        bool,
        typer.Option(
            "--separate/--no-separate",
            help="Two-hand files: where both hands' occupancy fields claim a point, the surer "
            "hand keeps it, so the meshes meet instead of overlapping (docs/two_hands.md). "
            "--no-separate meshes each hand on its own.",
        ),
    ] = True,
    learned: Annotated[
        bool,
        typer.Option(
            "--learned",
            help="Two-hand files: correct both hands' occupancy fields together with the "
            "learned two-hand refinement before meshing (before --separate; trained on the "
            "shipped model; docs/two_hands.md).",
        ),
    ] = False,
    learned_model: Annotated[
        str,
        typer.Option(
            "--learned-model",
            help="With --learned: residual (the shipped keypoint residual, the default) or "
            "attention (the shipped attention refiner, Im2Hands' refinement network).",
        ),
    ] = "residual",
    touching: Touching = "merge",
) -> None:
    """Reconstruct watertight, part-coloured hand meshes from keypoint files.

    Meshes are in each input's frame and units.

    Named after the input: r00.npy -> r00.ply; seq.npy [N, 21, 3] -> seq_0000.ply, ...
    Two hands: kp.npy [42, 3] -> kp_right.ply, kp_left.ply and kp_pair.glb (both hands,
    nodes hand_right / hand_left with their skeletons).
    """
    ext = check_extension(ext)
    side, units, fmt = check_side(side), check_units(units), check_format(fmt)
    device = check_device(device)
    check_resolution(resolution)
    check_out_folder(out_dir)
    check_inputs_exist(inputs)
    touching = check_choice(touching, TOUCHING_CHOICES, "--touching") or touching
    if learned_model not in ("residual", "attention"):
        raise HalohandInputError(
            f"--learned-model must be residual or attention, got {learned_model!r}"
        )

    from halohand.apps.keypoint_io import load_keypoints, load_pair_file, output_names

    pair_files = {}
    for path in inputs:  # two-hand files: InterHand JSON, [42, 3], or --pair shapes
        pf = load_pair_file(path, fmt, pair)
        if pf is not None:
            pair_files[path] = pf
    if pair_files and side is not None:
        raise HalohandInputError(
            f"--side does not apply to two-hand files ({next(iter(pair_files))}): the layout "
            "says which hand is right and which is left"
        )
    singles = [path for path in inputs if path not in pair_files]
    files = [load_keypoints(path, fmt) for path in singles]  # every file readable first

    from tqdm import tqdm

    from halohand.apps.export import export_mesh, export_scene, hands_scene

    # 1. validate every hand before anything runs or is written
    warnings: list[str] = []  # printed once every input is valid: an error stays one line
    jobs = []
    targets: dict[Path, Path] = {}
    for path, kf in zip(singles, files, strict=True):
        prepared, warning = _prepare(kf, path, side, units, convention)
        if warning and "mirrored" in warning and len(kf) == 2 and kf.is_sequence:
            # two hands read as a sequence of two same-side hands: likely a right/left pair
            warning += "; if the file holds a right and a left hand, pass --pair"
        if warning:
            warnings.append(f"warning: {path}: {warning}")
        warnings += convention_note(path, prepared.conventions[0], convention)
        names = output_names(kf)
        for name in names:
            target = out_dir / f"{name}.{ext}"
            if target in targets:
                raise HalohandInputError(
                    f"{path} and {targets[target]} would both write {target.name}; rename one"
                )
            targets[target] = path
        jobs.append((kf, prepared, names))
    pair_jobs = []
    for path, pf in pair_files.items():
        prepared, where, warning = _prepare_pair(pf, units, convention)
        if warning:
            warnings.append(f"warning: {path}: {warning}")
        warnings += convention_note(path, prepared.conventions[0], convention)
        missing = int((~pf.complete).sum())
        if missing:
            warnings.append(
                f"warning: {path}: {missing} hand(s) absent or with invalid joints; skipped"
            )
        names = [f"{pf.names[i]}_{s}.{ext}" for i, s in where]
        names += [f"{pf.names[i]}_pair.glb" for i in sorted({i for i, _ in where})]
        for name in names:
            target = out_dir / name
            if target in targets:
                raise HalohandInputError(
                    f"{path} and {targets[target]} would both write {target.name}; rename one"
                )
            targets[target] = path
        pair_jobs.append((pf, prepared, where))

    # 2. the model (its errors too come before any warning), then one mesh per hand
    model = _load_model(checkpoint, device)
    for line in warnings:
        print(line, file=sys.stderr)
    if refine:
        from halohand.fitting.keypoint_refiner import load_refiner

        refiner = load_refiner()
        jobs = [(kf, _refined(model, refiner, p, None), names) for kf, p, names in jobs]
        pair_jobs = [(pf, _refined(model, refiner, p, where), where) for pf, p, where in pair_jobs]
    pair_refiner = None
    if learned and pair_jobs:
        from halohand.inference.two_hands import check_refinement

        pair_refiner = check_refinement(learned_model)
    total = sum(len(names) for _, _, names in jobs) + sum(len(w) for _, _, w in pair_jobs)
    empty = 0
    with tqdm(total=total, desc="reconstruct", unit="hand", disable=None, file=sys.stderr) as bar:
        for kf, prepared, names in jobs:
            meshes = model.meshes(prepared, resolution, touching=touching)
            for i, (name, mesh) in enumerate(zip(names, meshes, strict=True)):
                if len(mesh.faces) == 0:
                    empty += 1
                    tqdm.write(
                        f"warning: {kf.path} hand {i}: the model predicts no surface; "
                        f"wrote an empty mesh",
                        file=sys.stderr,
                    )
                export_mesh(mesh, out_dir / f"{name}.{ext}", keypoints=prepared.keypoints[i])
                bar.update(1)
        for pf, prepared, where in pair_jobs:
            # meshes come in order, right before left within a pair: each pair's scene is
            # written once its last hand is done
            scene: list[tuple[str, Any, Any]] = []
            meshes = _pair_meshes(
                model, prepared, where, resolution, separate, pair_refiner, touching
            )
            for k, ((i, hand_side), mesh) in enumerate(zip(where, meshes, strict=True)):
                stem = pf.names[i]
                if len(mesh.faces) == 0:
                    empty += 1
                    tqdm.write(
                        f"warning: {pf.path} {stem} {hand_side} hand: the model predicts no "
                        "surface; wrote an empty mesh",
                        file=sys.stderr,
                    )
                kp = prepared.keypoints[k]
                export_mesh(mesh, out_dir / f"{stem}_{hand_side}.{ext}", keypoints=kp)
                scene.append((hand_side, mesh, kp))
                bar.update(1)
                if k + 1 == len(where) or where[k + 1][0] != i:
                    export_scene(hands_scene(scene), out_dir / f"{stem}_pair.glb")
                    scene = []
    note = f" ({empty} empty)" if empty else ""
    scenes = sum(len({i for i, _ in w}) for _, _, w in pair_jobs)
    if scenes:  # the count first, as for single hands: every file written is a mesh file
        typer.echo(
            f"wrote {total + scenes} mesh files ({total} hand meshes{note} and {scenes} "
            f"two-hand scene{'s' if scenes != 1 else ''}) to {out_dir}"
        )
    else:
        typer.echo(f"wrote {total} mesh{'es' if total != 1 else ''}{note} to {out_dir}")


def occupancy(
    keypoints: Annotated[
        Path, typer.Argument(metavar="KP", help="Keypoint file: [21, 3] or [B, 21, 3].")
    ],
    points: Annotated[
        Path,
        typer.Argument(metavar="POINTS.npy", help="Query points [N, 3] or [B, N, 3], KP's units."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output .npy of probabilities.")],
    side: KeypointSide = None,
    units: KeypointUnits = None,
    fmt: KeypointFormat = None,
    checkpoint: Checkpoint = None,
    device: Device = "cpu",
    convention: KeypointConvention = "auto",
) -> None:
    """Inside/outside queries: occupancy probabilities (float32; inside at or above the
    model's mesh level, 0.55 for the shipped model).

    Output: [N] for one hand and [N, 3] points; [B, N] for a batch of hands.

    Points [N, 3] with a batch of hands are queried around every hand.
    """
    side, units, fmt = check_side(side), check_units(units), check_format(fmt)
    device = check_device(device)
    check_out_file(out, "--out", ".npy", strict=False)
    check_inputs_exist([keypoints, points])

    import numpy as np

    from halohand.apps.keypoint_io import load_keypoints, load_points

    kf = load_keypoints(keypoints, fmt)
    pts = load_points(points)
    if pts.ndim == 3 and pts.shape[0] not in (1, len(kf)):
        raise HalohandInputError(
            f"{points}: {pts.shape[0]} point sets for {len(kf)} hands; pass [N, 3] or one set "
            f"per hand"
        )

    import torch

    use_side = side or kf.side or "right"
    use_units = units or kf.units or "auto"
    prepared, warning = _prepare(kf, keypoints, side, units, convention)  # validates
    model = _load_model(checkpoint, device)  # a bad model is one line, without the warning
    if warning:  # as reconstruct: a mirrored or implausible hand is said before the work
        print(f"warning: {keypoints}: {warning}", file=sys.stderr)
    for note in convention_note(keypoints, prepared.conventions[0], convention):
        print(note, file=sys.stderr)
    kp = kf.keypoints if kf.is_sequence else kf.keypoints[0]
    with torch.no_grad():  # in the convention the file's hands were read in, as for meshes
        occ = model.occupancy(
            pts, kp, side=use_side, units=use_units, fmt=kf.fmt,
            convention=prepared.conventions[0],
        )  # fmt: skip
    result = occ.float().cpu().numpy()
    with atomic_open(out, "wb") as fh:
        np.save(fh, result)
    level = model.iso_level
    inside = int((result >= level).sum())
    typer.echo(
        f"wrote {out} {list(result.shape)}: {inside} of {result.size} inside (p >= {level:g}, "
        "the model's mesh level)"
    )
