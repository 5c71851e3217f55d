"""``halohand contact``: a hand's keypoints and the object it holds, refined together.

Reads one hand's keypoints and an object (mesh file in its own frame, or registry id) with
its approximate pose, runs :func:`halohand.fitting.contact_refine.refine_hand_object`, and
writes the refined keypoints and pose with a report (JSON), the hand's mesh and a GLB scene
of hand and object (metres). Keypoints with MANO-style skin tips (``--convention``, read
from the tip bones by default) are moved onto the model's tip joints for the refinement and
written back in their own placement (``keypoints_m``; ``keypoints_rig_m`` is the model's).
Everything is validated before the model runs; bad input ends with one line and exit
status 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from halohand.apps.cli.options import (
    KeypointConvention,
    KeypointFormat,
    KeypointSide,
    KeypointUnits,
    Resolution,
    at_least,
    check_format,
    check_inputs_exist,
    check_out_folder,
    check_resolution,
    check_side,
    check_units,
    convention_note,
)
from halohand.core.errors import HalohandInputError


def _read_pose(path: Path | None):  # noqa: ANN202 - numpy is imported when the command runs
    import numpy as np

    from halohand.scene.camera import rigid_transform

    if path is None:
        return np.eye(4)
    check_inputs_exist([path])
    try:
        value = np.load(path) if path.suffix == ".npy" else json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HalohandInputError(f"{path}: cannot read the object pose ({exc})") from None
    return rigid_transform(value, f"{path}: object pose")


def contact(
    keypoints: Annotated[Path, typer.Argument(help="One hand's keypoints (.npy/.json/.txt).")],
    object_spec: Annotated[
        str, typer.Option("--object", help="Object mesh file (its own frame) or registry id.")
    ],
    pose: Annotated[
        Path | None,
        typer.Option("--pose", help="Object -> world 4x4 (.npy or .json; default identity)."),
    ] = None,
    object_units: Annotated[
        str, typer.Option("--object-units", help="auto, m, cm or mm of the mesh file.")
    ] = "auto",
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Output folder.")] = Path("."),
    side: KeypointSide = None,
    units: KeypointUnits = None,
    fmt: KeypointFormat = None,
    convention: KeypointConvention = "auto",
    steps: Annotated[int, typer.Option("--steps", help="Optimizer steps.")] = 60,
    keep_object: Annotated[
        bool, typer.Option("--keep-object", help="Move only the hand, not the object.")
    ] = False,
    resolution: Resolution = 128,
) -> None:
    """Refine a hand and the object it holds so fingers touch it without entering it."""
    from halohand.apps.keypoint_io import load_keypoints
    from halohand.scene.hand import Hand

    check_side(side)
    check_units(units)
    fmt = check_format(fmt)
    check_units(object_units)
    at_least(steps, 1, "--steps")
    check_resolution(resolution)
    check_inputs_exist([keypoints])
    check_out_folder(out_dir, "--out-dir")
    kf = load_keypoints(keypoints, fmt)
    if kf.is_sequence:
        raise HalohandInputError(f"{keypoints}: holds {len(kf)} hands; give one hand")
    hand = Hand.from_keypoints(
        kf.keypoints[0], side=side or kf.side or "right", units=units or kf.units or "auto",
        convention=kf.fmt,
    )  # fmt: skip
    from halohand.skeleton.conventions import from_rig, resolve_convention, to_rig

    try:  # MANO-style tips (HO3D, DexYCB) would make the model's fingers ~2 cm too long
        reading = resolve_convention(convention, hand.keypoints_m)
    except ValueError as exc:
        raise HalohandInputError(str(exc)) from None
    object_pose = _read_pose(pose)
    from halohand.objects.registry import object_from_spec

    # The pose refers to the file's own frame: the mesh is not centred.
    obj = object_from_spec(object_spec, units=object_units, center=False, orient="keep")

    from halohand.core.atomic import atomic_open, write_text_atomic
    from halohand.fitting.contact_refine import ContactRefineConfig, refine_hand_object
    from halohand.inference.halo import HALO
    from halohand.scene.scene import Scene, SceneObject

    halo = HALO.pretrained()
    cfg = ContactRefineConfig(steps=steps, move_object=not keep_object)
    for note in convention_note(keypoints, reading[0], convention):
        typer.echo(note, err=True)
    start = to_rig(hand.keypoints_m, reading, fingers=halo.moved_tips)
    res = refine_hand_object(halo, start, obj, object_pose, hand.side, cfg)
    mesh = halo.reconstruct(
        res.keypoints, side=hand.side, units="m", resolution=resolution, convention="rig"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = keypoints.stem
    report = {
        # in the placement they came in; the model's (rig) placement beside them
        "keypoints_m": from_rig(res.keypoints, reading, fingers=halo.moved_tips).tolist(),
        "keypoints_rig_m": res.keypoints.tolist(), "convention": reading[0], "side": hand.side,
        "object": obj.object_id, "object_pose": res.object_pose.tolist(),
        "overlap_before_cm3": res.overlap_before_cm3, "overlap_after_cm3": res.overlap_after_cm3,
        "contact_fingers": [("thumb", "index", "middle", "ring", "pinky")[i]
                            for i in res.contact_fingers],
        "tip_distance_mm": res.tip_distance_mm.round(2).tolist(),
        "finger_gap_mm": res.finger_gap_mm.round(2).tolist(),
        "moved_mm_max": float(res.moved_mm.max()), "steps": res.steps,
        "seconds": round(res.seconds, 2),
    }  # fmt: skip
    write_text_atomic(out_dir / f"{stem}_contact.json", json.dumps(report, indent=2))
    with atomic_open(out_dir / f"{stem}_hand.ply", "wb") as fh:
        mesh.export(fh, file_type="ply")
    scene = Scene(
        (Hand.from_keypoints(res.keypoints, side=hand.side, units="m"),),
        (SceneObject(obj.mesh, res.object_pose, obj.object_id),),
    ).to_trimesh([mesh])
    with atomic_open(out_dir / f"{stem}_scene.glb", "wb") as fh:
        fh.write(scene.export(file_type="glb"))
    typer.echo(
        f"overlap {res.overlap_before_cm3:.2f} -> {res.overlap_after_cm3:.2f} cm^3, "
        f"touching: {', '.join(report['contact_fingers']) or 'none'}; "
        f"wrote {stem}_contact.json, {stem}_hand.ply, {stem}_scene.glb"
    )
