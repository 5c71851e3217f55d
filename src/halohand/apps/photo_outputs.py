"""The files written for one photo: JSON, a watertight mesh per hand and the overlay PNG.

Shared by ``halohand image`` and ``halohand demo`` (its photo step), so both write the same
outputs for the same photo.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from halohand.core.atomic import atomic_path, write_text_atomic

if TYPE_CHECKING:  # pragma: no cover
    from halohand.image import PhotoHands
    from halohand.inference.halo import HALO


def hand_length_m(keypoints: np.ndarray) -> float:
    """Wrist to middle fingertip along the middle finger's bones (metres): pose-free."""
    chain = np.asarray(keypoints)[[0, 9, 10, 11, 12]]
    return float(np.linalg.norm(np.diff(chain, axis=0), axis=1).sum())


def write_photo_outputs(
    path: Path,
    result: PhotoHands,
    model: HALO,
    out_dir: Path,
    resolution: int = 128,
    ext: str = "ply",
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

    Returns:
        The JSON document written (``result.to_dict()`` with per hand its mesh file,
        watertightness, hand length and skeleton warning).
    """
    from halohand.apps.export import export_mesh
    from halohand.apps.render import overlay_meshes, save_png
    from halohand.canonical.plausibility import check_skeleton, summary_line

    report = result.to_dict()
    meshes = result.meshes(model, resolution) if result.hands else []
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
            hand_length_m=round(hand_length_m(hand.keypoints), 4),
            skeleton_warning=warning,
        )
    overlay = f"{path.stem}_overlay.png"
    with atomic_path(out_dir / overlay) as tmp:
        save_png(str(tmp), overlay_meshes(result.photo.rgb, meshes, result.camera.intrinsics))
    report.update(image=str(path), overlay=overlay)
    write_text_atomic(out_dir / f"{path.stem}.json", json.dumps(report, indent=1) + "\n")
    return report
