"""Scenes as values: hands, objects and a camera, validated once, exportable as one file.

A :class:`Scene` holds any number of :class:`Hand` s (keypoints in any supported joint
order and unit, each with its side), rigid :class:`SceneObject` s (a mesh in metres and a
pose) and an optional :class:`Camera` (pinhole intrinsics, extrinsics, image). Two
interacting hands, a hand holding an object or a photo's hand are the same value with
different contents; :meth:`halohand.HALO.reconstruct_scene` meshes every hand of a scene.

>>> scene = Scene(hands=(Hand.from_keypoints(kp_right), Hand.from_keypoints(kp_left, "left")))
>>> HALO.pretrained().reconstruct_scene(scene).export("two_hands.glb")
"""

from halohand.scene.camera import Camera
from halohand.scene.hand import Hand
from halohand.scene.scene import Scene, SceneObject

__all__ = ["Camera", "Hand", "Scene", "SceneObject"]
