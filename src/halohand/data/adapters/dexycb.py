"""DexYCB annotations: ``labels_XXXXXX.npz`` + the sequence's ``meta.yml`` + intrinsics.

Layout of the dataset (as published)::

    <root>/calibration/intrinsics/<serial>_640x480.yml   color: {fx, fy, ppx, ppy}
    <root>/<subject>/<sequence>/meta.yml                 ycb_ids, ycb_grasp_ind, mano_sides
    <root>/<subject>/<sequence>/<serial>/labels_000000.npz

A label file holds ``joint_3d`` ``[1, 21, 3]`` (metres, OpenCV camera frame of camera
``<serial>``; every value -1 where the hand is not annotated), ``joint_2d`` ``[1, 21, 2]``,
``pose_y`` ``[K, 3, 4]`` (object -> camera, one per entry of ``ycb_ids``), ``pose_m``
``[1, 51]`` (MANO PCA pose, 48, and translation, 3) and ``seg``. The 21 joints are in the
project's own order (wrist, then thumb to little finger, base to tip), so no gather is needed.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Final

import numpy as np

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.data.adapters.frame import HandObjectFrame, finite_array

__all__ = ["YCB_OBJECTS", "load_dexycb_frame"]

#: YCB object names by DexYCB's ``ycb_ids`` (1-based).
YCB_OBJECTS: Final[dict[int, str]] = {
    1: "002_master_chef_can", 2: "003_cracker_box", 3: "004_sugar_box",
    4: "005_tomato_soup_can", 5: "006_mustard_bottle", 6: "007_tuna_fish_can",
    7: "008_pudding_box", 8: "009_gelatin_box", 9: "010_potted_meat_can", 10: "011_banana",
    11: "019_pitcher_base", 12: "021_bleach_cleanser", 13: "024_bowl", 14: "025_mug",
    15: "035_power_drill", 16: "036_wood_block", 17: "037_scissors", 18: "040_large_marker",
    19: "051_large_clamp", 20: "052_extra_large_clamp", 21: "061_foam_brick",
}  # fmt: skip


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise HalohandInputError(f"{path}: no such {what} file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{path}: cannot read {what} ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise CorruptFileError(f"{path}: {what} is not a YAML mapping")
    return data


def _find_intrinsics(label: Path) -> Path:
    """``calibration/intrinsics/<serial>_640x480.yml`` in the first ancestor that has it."""
    serial = label.parent.name
    for root in label.parents:
        candidate = root / "calibration" / "intrinsics" / f"{serial}_640x480.yml"
        if candidate.is_file():
            return candidate
    raise HalohandInputError(
        f"{label}: no calibration/intrinsics/{serial}_640x480.yml above it; pass intrinsics="
    )


def _intrinsics(path: Path) -> np.ndarray:
    color = _read_yaml(path, "DexYCB intrinsics").get("color")
    keys = ("fx", "fy", "ppx", "ppy")
    if not isinstance(color, dict) or any(k not in color for k in keys):
        raise HalohandInputError(f"{path}: expected color: {{fx, fy, ppx, ppy}}")
    fx, fy, cx, cy = (float(color[k]) for k in keys)
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def _read_label(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise HalohandInputError(f"{path}: no such DexYCB label file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        reason = type(exc).__name__
        raise CorruptFileError(f"{path}: cannot read DexYCB labels ({reason})") from None


def load_dexycb_frame(
    label: str | os.PathLike[str],
    meta: str | os.PathLike[str] | None = None,
    intrinsics: str | os.PathLike[str] | np.ndarray | None = None,
) -> HandObjectFrame:
    """One DexYCB frame.

    Args:
        label: a ``labels_XXXXXX.npz`` file.
        meta: the sequence's ``meta.yml`` (default: two folders up from ``label``).
        intrinsics: a ``<serial>_640x480.yml`` file or a ``[3, 3]`` ``K`` (default: found
            under ``calibration/intrinsics`` of an ancestor folder, by the camera serial,
            which is the label's folder name).

    Returns:
        The frame in the label camera's OpenCV frame, metres; ``keypoints_m`` is ``None``
        where the hand is not annotated (DexYCB writes -1 everywhere then). ``extras`` holds
        ``joint_2d`` (pixels) and ``pose_m`` (MANO PCA pose and translation).

    Raises:
        HalohandInputError: missing file or field, wrong shapes, non-finite values, a
            ``pose_y`` whose count differs from ``ycb_ids``, an unknown YCB id.
        CorruptFileError: a file that cannot be read.
    """
    path = Path(label)
    data = _read_label(path)
    src = str(path)
    for key in ("joint_3d", "pose_y"):
        if key not in data:
            raise HalohandInputError(f"{src}: no '{key}' (is this a DexYCB labels file?)")
    meta_path = Path(meta) if meta is not None else path.parent.parent / "meta.yml"
    info = _read_yaml(meta_path, "DexYCB meta")
    ids = info.get("ycb_ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise HalohandInputError(f"{meta_path}: ycb_ids must be a list of integers")
    unknown = [i for i in ids if i not in YCB_OBJECTS]
    if unknown:
        raise HalohandInputError(f"{meta_path}: unknown YCB ids {unknown} (known: 1-21)")
    sides = info.get("mano_sides", ["right"])
    side = sides[0] if isinstance(sides, list) and sides else "right"
    if side not in ("right", "left"):
        raise HalohandInputError(f"{meta_path}: mano_sides must be right or left, got {side!r}")
    grasp = info.get("ycb_grasp_ind")
    if grasp is not None and not (isinstance(grasp, int) and 0 <= grasp < len(ids)):
        raise HalohandInputError(f"{meta_path}: ycb_grasp_ind {grasp!r} is not an index of ycb_ids")

    joints = finite_array(data["joint_3d"], (1, 21, 3), "joint_3d", src)[0]
    keypoints = None if np.all(joints == -1.0) else joints
    poses_34 = finite_array(data["pose_y"], (len(ids), 3, 4), "pose_y", src)
    poses = np.tile(np.eye(4), (len(ids), 1, 1))
    poses[:, :3, :] = poses_34
    if isinstance(intrinsics, np.ndarray):
        k = finite_array(intrinsics, (3, 3), "intrinsics", src)
    else:
        k = _intrinsics(Path(intrinsics) if intrinsics is not None else _find_intrinsics(path))
    extras = {key: np.asarray(data[key]) for key in ("joint_2d", "pose_m") if key in data}
    return HandObjectFrame(
        keypoints_m=keypoints,
        side=side,
        object_names=tuple(YCB_OBJECTS[i] for i in ids),
        object_poses=poses,
        intrinsics=k,
        grasped=grasp,
        source=src,
        extras=extras,
    )
