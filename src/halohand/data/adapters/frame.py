"""One annotated hand-object frame, in the camera frame of its image."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.scene.camera import Camera
from halohand.scene.hand import Hand
from halohand.scene.scene import Scene, SceneObject


@dataclass(frozen=True, eq=False)
class HandObjectFrame:
    """A hand and the objects of one image, as a dataset annotates them.

    Attributes:
        keypoints_m: ``[21, 3]`` float64 hand joints, project (OpenPose) order, metres, in
            the OpenCV camera frame; ``None`` where the frame has no hand annotation.
        side: ``"right"`` or ``"left"``.
        object_names: names of the annotated objects (dataset names, e.g.
            ``"006_mustard_bottle"``), one per pose.
        object_poses: ``[K, 4, 4]`` float64 object -> camera (metres), rows as ``object_names``.
        intrinsics: ``[3, 3]`` pinhole ``K`` (pixels).
        grasped: index into ``object_names`` of the object the hand holds, if known.
        source: the file the annotation came from.
        extras: dataset fields kept as read (e.g. MANO pose and shape), for reference.
    """

    keypoints_m: np.ndarray | None
    side: str
    object_names: tuple[str, ...]
    object_poses: np.ndarray
    intrinsics: np.ndarray
    grasped: int | None = None
    source: str = ""
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def camera(self) -> Camera:
        """The frame's camera; the world frame of :meth:`to_scene` is the camera frame."""
        return Camera(self.intrinsics)

    def to_scene(self, meshes: Mapping[str, Any] | None = None, units: str = "auto") -> Scene:
        """The frame as a :class:`~halohand.scene.Scene` in the camera frame.

        Args:
            meshes: object name -> mesh file, registry id or ``trimesh.Trimesh`` (in the
                object's model frame, as the dataset's poses expect). Objects without a mesh
                are left out of the scene.
            units: units of the mesh files (``"auto"``, ``"m"``, ``"cm"``, ``"mm"``).

        Raises:
            HalohandInputError: a mesh for a name the frame does not have.
        """
        meshes = dict(meshes or {})
        unknown = sorted(set(meshes) - set(self.object_names))
        if unknown:
            raise HalohandInputError(
                f"meshes for objects not in the frame: {', '.join(unknown)} "
                f"(frame has {', '.join(self.object_names) or 'none'})"
            )
        objects = tuple(
            SceneObject.load(meshes[name], pose=pose, units=units)
            for name, pose in zip(self.object_names, self.object_poses, strict=True)
            if name in meshes
        )
        hands: tuple[Hand, ...] = ()
        if self.keypoints_m is not None:
            hands = (Hand.from_keypoints(self.keypoints_m, side=self.side, units="m"),)
        return Scene(hands, objects, self.camera)


def pose_matrix(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """``[4, 4]`` rigid transform from ``[3, 3]`` rotation and ``[3]`` translation."""
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = translation
    return out


def finite_array(value: Any, shape: tuple[int, ...], name: str, source: str) -> np.ndarray:
    """``value`` as a finite float64 array of ``shape``, else a one-line error naming the
    field and the file."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise HalohandInputError(f"{source}: {name} is not numeric") from None
    if arr.shape != shape:
        raise HalohandInputError(f"{source}: {name} must be {list(shape)}, got {list(arr.shape)}")
    if not np.isfinite(arr).all():
        raise HalohandInputError(f"{source}: {name} contains NaN or inf")
    return arr
