"""The files written for one photo: JSON, a watertight mesh per hand and the overlay PNG.

Shared by ``halohand image`` and ``halohand demo`` (its photo step), so both write the same
outputs for the same photo.

Two hands of one photo are a pair (:func:`pair_photo_hands`): each is placed from its own
landmarks (its depth from its metric size against its pixel size), so two overlapping
hands can come out inside each other. The pair refinement
(:func:`halohand.fitting.pair_refine.refine_pair`, ``along_rays``) parts them in depth
along the camera rays until their occupancy fields stop overlapping, and the pair is
meshed through the two-hand path (:meth:`halohand.HALO.reconstruct_pair` for a right and a
left hand). This lives here, not in :mod:`halohand.image`, because ``image`` and
``fitting`` are sibling layers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from halohand.core.atomic import atomic_path, write_text_atomic
from halohand.skeleton.bones import hand_length

if TYPE_CHECKING:  # pragma: no cover
    import trimesh

    from halohand.fitting.pair_refine import PairRefineConfig, PairRefineResult
    from halohand.image import PhotoHands
    from halohand.inference.halo import HALO

#: The pair refinement of a photo's two hands: a coarser overlap grid than the default
#: (16 cells a side: the hands move rigidly along rays, so a coarser field suffices) and at
#: most 40 steps of 2 mm.
PHOTO_PAIR_STEPS = 40
PHOTO_PAIR_GRID = 16


def pair_photo_hands(
    result: PhotoHands, model: HALO, config: PairRefineConfig | None = None
) -> tuple[PhotoHands, PairRefineResult]:
    """The two hands of ``result`` parted along the camera rays where their HALO surfaces
    overlap (:func:`~halohand.fitting.pair_refine.refine_pair` with ``along_rays``).

    Returns:
        ``result`` with the two hands' keypoints (and their reprojection) replaced by the
        refined ones, and the refinement's :class:`PairRefineResult` (overlap before and
        after, cm^3; per keypoint move, mm).

    Raises:
        HalohandInputError: ``result`` does not hold exactly two hands.
    """
    from dataclasses import replace

    from halohand.core.errors import HalohandInputError
    from halohand.fitting.pair_refine import PairRefineConfig, refine_pair

    if len(result.hands) != 2:
        raise HalohandInputError(f"a pair needs two hands, the photo has {len(result.hands)}")
    cfg = config or PairRefineConfig(steps=PHOTO_PAIR_STEPS, grid=PHOTO_PAIR_GRID)
    kp = np.stack([h.keypoints for h in result.hands])
    sides = (result.hands[0].side, result.hands[1].side)
    refined = refine_pair(model, kp, sides, cfg, along_rays=True)
    hands = tuple(
        replace(
            hand,
            keypoints=new,
            reprojection_px=np.linalg.norm(
                result.camera.project(new) - hand.landmarks.pixels, axis=1
            ),
        )
        for hand, new in zip(result.hands, refined.keypoints, strict=True)
    )
    return replace(result, hands=hands), refined


def pair_meshes(
    result: PhotoHands, model: HALO, resolution: int = 128, touching: str = "merge"
) -> list[trimesh.Trimesh]:
    """The meshes of a photo's two hands (in ``result.hands`` order) through the two-hand
    path: a right and a left hand by :meth:`~halohand.HALO.reconstruct_pair`; two hands of
    one side (two people's right hands) together by :meth:`~halohand.HALO.meshes`; either
    way with ``separate=True``, so whatever overlap the parting left is cut where the other
    hand is surer (:func:`~halohand.inference.two_hands.separate_occupancy`); ``touching``
    as :meth:`~halohand.HALO.meshes`."""
    kp = np.stack([h.keypoints for h in result.hands])
    sides = [h.side for h in result.hands]
    if sorted(sides) == ["left", "right"]:
        order = [sides.index("right"), sides.index("left")]
        pair = model.reconstruct_pair(
            kp[order], units="m", fmt="openpose", resolution=resolution, separate=True,
            convention="rig", touching=touching,
        )  # fmt: skip
        by_side = {"right": pair.right, "left": pair.left}
        return [by_side[s] for s in sides]
    prepared = model.prepare(kp, sides, "m", convention="rig")  # the fit's keypoints
    return list(model.meshes(prepared, resolution, separate=True, touching=touching))


def _pair_entry(refined: PairRefineResult, before: PhotoHands, after: PhotoHands) -> dict:
    """The JSON entry of a refined pair (the hands' ``keypoints_m`` are the parted ones;
    their ``fit`` entries are the fits before parting)."""

    def depths(result: PhotoHands) -> list[float]:
        return [round(float(h.keypoints[:, 2].mean()), 4) for h in result.hands]

    return {
        "refinement": "halohand.fitting.pair_refine along the camera rays",
        "overlap_before_cm3": round(refined.overlap_before_cm3, 3),
        "overlap_after_cm3": round(refined.overlap_after_cm3, 3),
        "moved_mm_mean": np.round(refined.moved_mm.mean(1), 2).tolist(),
        "depth_before_m": depths(before),
        "depth_after_m": depths(after),
        "steps": refined.steps,
        "seconds": round(refined.seconds, 2),
    }


def write_photo_outputs(
    path: Path,
    result: PhotoHands,
    model: HALO,
    out_dir: Path,
    resolution: int = 128,
    ext: str = "ply",
    pair: bool = True,
    touching: str = "merge",
) -> dict[str, Any]:
    """Reconstruct the hands of ``result`` and write ``NAME.json``, ``NAME_overlay.png`` and
    ``NAME_hand<i>_<side>.<ext>`` (metres, camera frame) into ``out_dir``, each atomically.

    Args:
        path: the photo's path (its stem names the outputs).
        result: :func:`halohand.image.from_image` of the photo.
        model: the HALO model that reconstructs the meshes.
        out_dir: existing or creatable folder.
        resolution: extraction lattice cells per axis.
        ext: mesh file extension (``ply``, ``obj``, ...).
        pair: a photo with exactly two hands: part them where they overlap and mesh them
            as a pair (:func:`pair_photo_hands`, :func:`pair_meshes`); the JSON's ``pair``
            entry says how far they moved.
        touching: where parts that tissue does not join touch, ``"merge"`` or ``"apart"``
            (:meth:`~halohand.HALO.meshes`).

    Returns:
        The JSON document written (``result.to_dict()`` with per hand its mesh file,
        watertightness, hand length and skeleton warning; ``pair`` for a refined pair).
    """
    from halohand.apps.export import export_mesh
    from halohand.apps.render import overlay_meshes, save_png
    from halohand.canonical.plausibility import check_skeleton, summary_line

    pair_entry = None
    if pair and len(result.hands) == 2:
        placed = result
        result, refined = pair_photo_hands(result, model)
        pair_entry = _pair_entry(refined, placed, result)
        meshes = pair_meshes(result, model, resolution, touching)
    else:
        meshes = result.meshes(model, resolution, touching=touching) if result.hands else []
    report = result.to_dict()
    if pair_entry is not None:
        report["pair"] = pair_entry
    for i, (hand, mesh, entry) in enumerate(
        zip(result.hands, meshes, report["hands"], strict=True)
    ):
        name = f"{path.stem}_hand{i}_{hand.side}.{ext}"
        export_mesh(mesh, out_dir / name, keypoints=hand.keypoints)
        warning = summary_line(check_skeleton(hand.keypoints, hand.side, "m"))
        if warning:
            print(f"warning: {path} hand {i}: {warning}", file=sys.stderr)
        entry.update(
            mesh=name,
            mesh_watertight=bool(mesh.is_watertight),
            mesh_faces=len(mesh.faces),
            hand_length_m=round(float(hand_length(np.asarray(hand.keypoints))), 4),
            skeleton_warning=warning,
        )
    overlay = f"{path.stem}_overlay.png"
    with atomic_path(out_dir / overlay) as tmp:
        save_png(str(tmp), overlay_meshes(result.photo.rgb, meshes, result.camera.intrinsics))
    report.update(image=str(path), overlay=overlay)
    write_text_atomic(out_dir / f"{path.stem}.json", json.dumps(report, indent=1) + "\n")
    return report
