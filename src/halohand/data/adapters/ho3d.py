"""HO3D annotations: one ``meta/XXXX.pkl`` pickle per frame.

Layout (as published): ``<root>/<train|evaluation>/<sequence>/meta/0000.pkl`` beside
``rgb/0000.jpg``. A training frame's dict holds ``handJoints3D`` ``[21, 3]`` (metres, MANO
order with the five tips appended thumb to little, i.e. the project's ``"mano"`` format),
``camMat`` ``[3, 3]``, ``objRot`` (axis-angle, ``[3]`` or ``[3, 1]``), ``objTrans`` ``[3]``,
``objName`` and MANO's ``handPose``/``handBeta``/``handTrans``. Coordinates are OpenGL
camera coordinates (y up, the camera looking down -z): the reader turns them into the
OpenCV frame (x right, y down, z forward) by negating y and z, as the dataset's own
projection does. Evaluation-split frames annotate only the root joint (``[3]``); they are
refused with a message, since there are no keypoints to reconstruct from.

The pickles were written by Python 2 with numpy arrays; they are read with a restricted
unpickler that resolves numpy's array machinery and nothing else.
"""

from __future__ import annotations

import builtins
import codecs
import importlib
import os
import pickle
from pathlib import Path
from typing import Any, Final

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.core.rotations import axis_angle_to_matrix
from halohand.core.unpickle import restricted_loads
from halohand.data.adapters.frame import HandObjectFrame, finite_array, pose_matrix
from halohand.skeleton.orders import to_openpose

__all__ = ["GL_TO_CV", "load_ho3d_frame"]

#: OpenGL camera frame -> OpenCV camera frame (negate y and z).
GL_TO_CV: Final = np.diag([1.0, -1.0, -1.0])

_BUILTINS: Final = ("list", "dict", "tuple", "int", "float", "str", "bytes", "bool", "set")
_ALLOWED: Final[dict[tuple[str, str], Any]] = {
    **{
        (mod, name): getattr(builtins, name)
        for mod in ("builtins", "__builtin__")
        for name in _BUILTINS
    },
    # Python 2 pickles of numpy arrays carry their bytes through codecs.encode.
    ("_codecs", "encode"): codecs.encode,
}
_NUMPY_NAMES: Final = frozenset({"_reconstruct", "ndarray", "dtype", "scalar"})


def _numpy_only(module: str, name: str) -> Any:
    """numpy's array globals (``numpy.core`` of old pickles read as ``numpy._core``)."""
    if module.split(".")[0] == "numpy" and name in _NUMPY_NAMES:
        for candidate in (module, module.replace("numpy.core", "numpy._core", 1)):
            try:
                return getattr(importlib.import_module(candidate), name)
            except (ImportError, AttributeError):
                continue
    raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise HalohandInputError(f"{path}: no such HO3D meta file")
    data = restricted_loads(
        path.read_bytes(), _ALLOWED, path=path, what="HO3D meta",
        fallback=_numpy_only, encoding="latin1",
    )  # fmt: skip
    if not isinstance(data, dict):
        raise HalohandInputError(f"{path}: HO3D meta is not a dict")
    return data


def load_ho3d_frame(meta: str | os.PathLike[str]) -> HandObjectFrame:
    """One HO3D training frame (a right hand and one YCB object).

    Args:
        meta: a ``meta/XXXX.pkl`` file.

    Returns:
        The frame in the OpenCV camera frame, metres, project joint order. ``extras`` keeps
        ``handPose``, ``handBeta``, ``handTrans`` as read (OpenGL frame, MANO's).

    Raises:
        HalohandInputError: a missing field, wrong shapes, non-finite values, or an
            evaluation-split frame (root joint only).
        CorruptFileError: a file that is not a readable pickle, or names other globals.
    """
    path = Path(meta)
    data = _read_meta(path)
    src = str(path)
    for key in ("handJoints3D", "camMat", "objRot", "objTrans", "objName"):
        if key not in data or data[key] is None:
            raise HalohandInputError(f"{src}: no '{key}' (is this an HO3D meta file?)")
    joints_raw = np.asarray(data["handJoints3D"])
    if joints_raw.shape == (3,):
        raise HalohandInputError(
            f"{src}: an evaluation-split frame (only the root joint is annotated)"
        )
    joints_gl = finite_array(joints_raw, (21, 3), "handJoints3D", src)
    keypoints = to_openpose(joints_gl @ GL_TO_CV.T, "mano")
    rvec = finite_array(np.asarray(data["objRot"]).reshape(-1), (3,), "objRot", src)
    trans = finite_array(np.asarray(data["objTrans"]).reshape(-1), (3,), "objTrans", src)
    pose = pose_matrix(GL_TO_CV @ axis_angle_to_matrix(rvec), GL_TO_CV @ trans)
    k = finite_array(data["camMat"], (3, 3), "camMat", src)
    name = data["objName"]
    if not isinstance(name, str) or not name:
        raise HalohandInputError(f"{src}: objName must be a non-empty string")
    extras = {
        key: np.asarray(data[key]) for key in ("handPose", "handBeta", "handTrans")
        if data.get(key) is not None
    }  # fmt: skip
    return HandObjectFrame(
        keypoints_m=keypoints,
        side="right",
        object_names=(name,),
        object_poses=pose[None],
        intrinsics=k,
        grasped=0,
        source=src,
        extras=extras,
    )
