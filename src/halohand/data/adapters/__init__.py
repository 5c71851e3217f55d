"""Readers of hand-object dataset annotations (DexYCB, HO3D) into one frame value.

Each reader turns one annotated frame into a :class:`HandObjectFrame`: the hand's 21
keypoints in the project's order and metres, object poses and the camera intrinsics, all in
the OpenCV camera frame (x right, y down, z forward). Object meshes are the user's; the
frame names them and :meth:`HandObjectFrame.to_scene` places the ones given.
"""

from halohand.data.adapters.dexycb import YCB_OBJECTS, load_dexycb_frame
from halohand.data.adapters.frame import HandObjectFrame
from halohand.data.adapters.ho3d import load_ho3d_frame

__all__ = ["YCB_OBJECTS", "HandObjectFrame", "load_dexycb_frame", "load_ho3d_frame"]
