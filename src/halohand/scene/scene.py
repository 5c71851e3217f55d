"""A scene: hands, rigid objects and a camera, exportable as one ``trimesh.Scene``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trimesh

from halohand.core.errors import HalohandInputError
from halohand.objects.registry import GraspObject, object_from_spec
from halohand.scene.camera import Camera, rigid_transform
from halohand.scene.hand import Hand

#: Colour of objects in exported scenes (RGBA).
OBJECT_COLOR = (150, 165, 185, 255)


@dataclass(frozen=True, eq=False)
class SceneObject:
    """A rigid object placed in the world.

    Attributes:
        mesh: watertight ``trimesh.Trimesh`` in metres, in the object's own frame.
        pose: ``[4, 4]`` object -> world (metres).
        name: what the scene calls it.
    """

    mesh: trimesh.Trimesh
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))
    name: str = "object"

    def __post_init__(self) -> None:
        object.__setattr__(self, "pose", rigid_transform(self.pose, "object pose"))

    @classmethod
    def load(
        cls, spec: str | Any, pose: np.ndarray | None = None, units: str = "auto"
    ) -> SceneObject:
        """An object from a registry id, a mesh file or a trimesh (metres after ``units``),
        kept in its file's frame (converted to metres): the object frame is the input's."""
        obj: GraspObject = object_from_spec(spec, units=units, orient="keep")
        mesh = obj.mesh.copy()
        mesh.apply_translation(obj.offset_m)  # back to the input's frame, in metres
        return cls(mesh, np.eye(4) if pose is None else pose, obj.object_id)

    def world_mesh(self) -> trimesh.Trimesh:
        """The mesh in world coordinates (metres)."""
        mesh = self.mesh.copy()
        mesh.apply_transform(self.pose)
        return mesh


@dataclass(frozen=True, eq=False)
class Scene:
    """Hands, objects and an optional camera, all in one world frame."""

    hands: tuple[Hand, ...] = ()
    objects: tuple[SceneObject, ...] = ()
    camera: Camera | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "hands", tuple(self.hands))
        object.__setattr__(self, "objects", tuple(self.objects))
        for h in self.hands:
            if not isinstance(h, Hand):
                raise HalohandInputError(f"scene hands must be Hand values, got {type(h).__name__}")
        for o in self.objects:
            if not isinstance(o, SceneObject):
                raise HalohandInputError(
                    f"scene objects must be SceneObject values, got {type(o).__name__}"
                )

    def keypoints_m(self) -> np.ndarray:
        """``[H, 21, 3]`` every hand's keypoints in metres, project order, world frame."""
        if not self.hands:
            return np.zeros((0, 21, 3))
        return np.stack([h.keypoints_m for h in self.hands])

    def to_trimesh(self, hand_meshes: list[trimesh.Trimesh] | None = None) -> trimesh.Scene:
        """One ``trimesh.Scene`` (metres) of the objects and, when given, one mesh per hand
        (in metres, world frame: e.g. :meth:`halohand.HALO.reconstruct_scene`'s)."""
        if hand_meshes is not None and len(hand_meshes) != len(self.hands):
            raise HalohandInputError(
                f"{len(hand_meshes)} hand meshes for a scene of {len(self.hands)} hands"
            )
        out = trimesh.Scene()
        for i, obj in enumerate(self.objects):
            mesh = obj.world_mesh()
            mesh.visual.vertex_colors = np.tile(OBJECT_COLOR, (len(mesh.vertices), 1))
            out.add_geometry(mesh, node_name=f"object_{i}_{obj.name}", geom_name=f"object_{i}")
        for i, mesh in enumerate(hand_meshes or []):
            side = self.hands[i].side
            out.add_geometry(mesh, node_name=f"hand_{i}_{side}", geom_name=f"hand_{i}")
        return out
