"""InterHand2.6M annotations -> two hands in the project's joint order, in metres.

InterHand2.6M (Moon et al., ECCV 2020) stores per split
``InterHand2.6M_<split>_joint_3d.json``::

    {capture_id: {frame_idx: {"world_coord": [[x, y, z] x 42],   # millimetres, world frame
                              "joint_valid": [[0|1] x 42],       # or a flat list of 42
                              "hand_type": "right" | "left" | "interacting",
                              "hand_type_valid": 0 | 1}}}

and ``InterHand2.6M_<split>_camera.json``::

    {capture_id: {"campos": {cam: [3]},  "camrot": {cam: [[3] x 3]},     # mm, world -> camera
                  "focal": {cam: [fx, fy]}, "princpt": {cam: [cx, cy]}}}  # pixels

Joint order (the dataset's ``skeleton.txt``): right hand at 0-20, left hand at 21-41, each
``thumb4, thumb3, thumb2, thumb1, index4 ... index1, middle4 ... middle1, ring4 ... ring1,
pinky4 ... pinky1, wrist``, where 4 is the fingertip and 1 the joint nearest the palm (the
thumb's 1 is its CMC joint): fingertip first, wrist last
(:data:`halohand.skeleton.orders.OPENPOSE_FROM_INTERHAND` converts one hand). A camera
point is ``camrot @ (world - campos)`` (millimetres); its pixel is ``focal * xy / z +
princpt``.

Everything returned here is ``[2, 21, 3]`` (right, left), the project's (OpenPose) order, in
metres, in the world frame or, given a camera, in that camera's frame (x right, y down, z
forward, as the dataset's cameras).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.units import UNIT_SCALE
from halohand.inference.two_hands import pair_keypoints
from halohand.skeleton.orders import split_interhand
from halohand.skeleton.validation import resolve_units

#: InterHand2.6M joint names of one hand, in its order (index 0-20; the left hand adds 21).
INTERHAND_JOINT_NAMES = (
    *(f"{f}{k}" for f in ("thumb", "index", "middle", "ring", "pinky") for k in (4, 3, 2, 1)),
    "wrist",
)
#: ``hand_type`` values and which hands (right, left) each says are present.
HAND_TYPES: dict[str, tuple[bool, bool]] = {
    "right": (True, False),
    "left": (False, True),
    "interacting": (True, True),
}
MM_TO_M = UNIT_SCALE["mm"]


@dataclass(frozen=True)
class InterHandCamera:
    """One InterHand2.6M camera.

    Attributes:
        campos: ``[3]`` camera centre in the world frame (mm).
        camrot: ``[3, 3]`` world -> camera rotation.
        focal: ``[2]`` (fx, fy) pixels. princpt: ``[2]`` (cx, cy) pixels.
    """

    campos: np.ndarray
    camrot: np.ndarray
    focal: np.ndarray
    princpt: np.ndarray

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """``[..., 3]`` world points (mm) -> the camera frame (mm)."""
        return (np.asarray(points) - self.campos) @ self.camrot.T

    def world_to_camera_m(self, points_m: np.ndarray) -> np.ndarray:
        """``[..., 3]`` world points in metres -> camera frame in metres."""
        return (np.asarray(points_m) - self.campos * MM_TO_M) @ self.camrot.T

    def project(self, camera_points: np.ndarray) -> np.ndarray:
        """``[..., 3]`` camera-frame points (any unit) -> ``[..., 2]`` pixels."""
        p = np.asarray(camera_points, dtype=np.float64)
        return p[..., :2] / p[..., 2:3] * self.focal + self.princpt


@dataclass(frozen=True)
class InterHandFrame:
    """One annotated frame.

    Attributes:
        capture / frame: the dataset's ids (strings, as the JSON keys).
        hand_type: ``right``, ``left`` or ``interacting``.
        keypoints: ``[2, 21, 3]`` float64 metres (right, left), project order, world frame
            or the camera's (see ``frame_of``).
        valid: ``[2, 21]`` bool, the dataset's ``joint_valid`` in the same order.
        present: ``[2]`` bool: the hand type names the hand.
        frame_of: ``"world"`` or ``"camera <id>"``.
    """

    capture: str
    frame: str
    hand_type: str
    keypoints: np.ndarray
    valid: np.ndarray
    present: np.ndarray
    frame_of: str = "world"

    @property
    def complete(self) -> np.ndarray:
        """``[2]`` bool: present with all 21 joints valid (what reconstruction needs)."""
        return self.present & self.valid.all(-1)


def interhand_pairs(world_coord: Any) -> np.ndarray:
    """``[42, 3]`` or ``[N, 42, 3]`` InterHand-order millimetres -> ``[2, 21, 3]`` /
    ``[N, 2, 21, 3]`` metres (right, left), project order."""
    arr = np.asarray(world_coord, dtype=np.float64)
    if arr.ndim not in (2, 3) or arr.shape[-2:] != (42, 3):
        raise HalohandInputError(
            f"InterHand2.6M joints must have shape [42, 3] or [N, 42, 3], got {list(arr.shape)}"
        )
    right, left = split_interhand(arr)
    return np.stack([right, left], axis=-3) * MM_TO_M


def pair_array_m(keypoints: Any, fmt: str | None = None, units: str = "auto") -> np.ndarray:
    """A two-hand array, ``[42, 3]`` (InterHand layout) or ``[2, J, 3]`` (right, left, each
    in ``fmt``), as ``[2, 21, 3]`` metres in the project's order (``units="auto"`` reads
    the unit off the hands' size)."""
    kp, _ = pair_keypoints(keypoints, fmt)
    kp = np.asarray(kp, dtype=np.float64)
    return kp * UNIT_SCALE[resolve_units(units, kp)]


def _valid_flags(raw: Any, where: str) -> np.ndarray:
    flags = np.asarray(raw, dtype=np.float64).reshape(-1)
    if flags.shape != (42,):
        raise CorruptFileError(f"{where}: joint_valid must hold 42 flags, got {flags.size}")
    return flags > 0


def parse_frame(
    record: Mapping[str, Any],
    capture: str = "",
    frame: str = "",
    camera: InterHandCamera | None = None,
    camera_id: str | None = None,
) -> InterHandFrame:
    """One ``joint_3d`` record -> an :class:`InterHandFrame` (world frame, or ``camera``'s)."""
    where = f"capture {capture} frame {frame}" if capture or frame else "InterHand record"
    if not isinstance(record, Mapping) or "world_coord" not in record:
        raise CorruptFileError(f"{where}: not an InterHand2.6M joint record (no world_coord)")
    try:
        world = np.asarray(record["world_coord"], dtype=np.float64)
    except (TypeError, ValueError):
        raise CorruptFileError(f"{where}: world_coord is not numeric") from None
    if world.shape != (42, 3):
        raise CorruptFileError(f"{where}: world_coord must be [42, 3], got {list(world.shape)}")
    hand_type = record.get("hand_type", "interacting")
    if hand_type not in HAND_TYPES:
        raise CorruptFileError(
            f"{where}: hand_type {hand_type!r}; expected right, left or interacting"
        )
    valid42 = (
        _valid_flags(record["joint_valid"], where)
        if "joint_valid" in record
        else np.ones(42, dtype=bool)
    )
    # invalid joints may hold anything (often zeros); keep them finite for the caller
    world = np.where(np.isfinite(world), world, 0.0)
    valid42 &= np.isfinite(np.asarray(record["world_coord"], dtype=np.float64)).all(-1)
    points = world if camera is None else camera.world_to_camera(world)
    kp = interhand_pairs(points)
    valid = np.stack(split_interhand(valid42[:, None].repeat(3, 1)))[..., 0]
    return InterHandFrame(
        capture=str(capture),
        frame=str(frame),
        hand_type=hand_type,
        keypoints=kp,
        valid=valid.astype(bool),
        present=np.array(HAND_TYPES[hand_type]),
        frame_of="world" if camera is None else f"camera {camera_id}",
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HalohandInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"{path}: unreadable JSON ({exc})") from None


def _sort_key(key: str) -> tuple[int, str]:
    return (int(key), key) if str(key).isdigit() else (1 << 62, str(key))


def read_cameras(path: str | os.PathLike[str]) -> dict[str, dict[str, InterHandCamera]]:
    """``InterHand2.6M_<split>_camera.json`` -> ``{capture: {camera id: camera}}``."""
    path = Path(path)
    doc = _read_json(path)
    if not isinstance(doc, dict):
        raise CorruptFileError(f"{path}: not an InterHand2.6M camera file")
    out: dict[str, dict[str, InterHandCamera]] = {}
    for capture, cams in doc.items():
        try:
            ids = list(cams["campos"])
            out[str(capture)] = {
                str(c): InterHandCamera(
                    campos=np.asarray(cams["campos"][c], dtype=np.float64).reshape(3),
                    camrot=np.asarray(cams["camrot"][c], dtype=np.float64).reshape(3, 3),
                    focal=np.asarray(cams["focal"][c], dtype=np.float64).reshape(2),
                    princpt=np.asarray(cams["princpt"][c], dtype=np.float64).reshape(2),
                )
                for c in ids
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptFileError(
                f"{path}: capture {capture}: incomplete camera ({type(exc).__name__}: {exc})"
            ) from None
    return out


def is_joint_file(doc: Any) -> bool:
    """Whether parsed JSON is an InterHand2.6M joint annotation: one record (an object
    with ``world_coord``) or the ``joint_3d`` file (captures -> frames -> records)."""
    if isinstance(doc, dict) and "world_coord" in doc:
        return True
    if not isinstance(doc, dict) or not doc:
        return False
    first = next(iter(doc.values()))
    if not isinstance(first, dict) or not first:
        return False
    record = next(iter(first.values()))
    return isinstance(record, dict) and "world_coord" in record


def iter_frames(
    doc: Any,
    cameras: Mapping[str, Mapping[str, InterHandCamera]] | None = None,
    camera_id: str | None = None,
    where: str = "InterHand2.6M joints",
) -> Iterator[InterHandFrame]:
    """The frames of a parsed joint annotation (one record, or the ``joint_3d`` file, in
    capture then frame order), in the world frame or camera ``camera_id``'s."""
    if isinstance(doc, dict) and "world_coord" in doc:
        if camera_id is not None:
            raise HalohandInputError(f"{where}: a single record names no capture for a camera")
        yield parse_frame(doc)
        return
    if not is_joint_file(doc):
        raise CorruptFileError(f"{where}: not an InterHand2.6M joint annotation")
    for capture in sorted(doc, key=_sort_key):
        camera = None
        if camera_id is not None:
            try:
                camera = (cameras or {})[str(capture)][str(camera_id)]
            except KeyError:
                raise HalohandInputError(
                    f"{where}: no camera {camera_id} for capture {capture} in the camera file"
                ) from None
        frames = doc[capture]
        for frame in sorted(frames, key=_sort_key):
            yield parse_frame(frames[frame], str(capture), str(frame), camera, camera_id)


def read_interhand(
    joints: str | os.PathLike[str],
    cameras: str | os.PathLike[str] | None = None,
    camera_id: str | None = None,
) -> list[InterHandFrame]:
    """Read an InterHand2.6M joint annotation file (``*_joint_3d.json``, or one record).

    Args:
        joints: the joint file.
        cameras: the split's ``*_camera.json`` (needed for ``camera_id``).
        camera_id: a camera id (e.g. ``"400262"``): keypoints in that camera's frame;
            ``None``: the world frame.

    Returns:
        the frames, in capture then frame order, keypoints in metres.
    """
    if camera_id is not None and cameras is None:
        raise HalohandInputError("a camera frame needs the camera file (cameras=...)")
    cams = read_cameras(cameras) if cameras is not None else None
    path = Path(joints)
    return list(iter_frames(_read_json(path), cams, camera_id, where=str(path)))
