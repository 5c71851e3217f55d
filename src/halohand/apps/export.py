"""Mesh export: PLY, OBJ and GLB with per-vertex part colours; GLB also holds the skeleton.

Meshes are written in whatever frame and units their vertices are in (the reconstruction
API returns them in the input keypoints' frame and units; note that glTF viewers assume
metres). Every file is written atomically (:mod:`halohand.core.atomic`).

GLB layout: node ``hand`` (the triangle mesh with vertex colours), node ``skeleton`` (the
20 bones as line segments, glTF mode LINES) and node ``keypoints`` (the 21 joints as
points), all in the same frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import trimesh

from halohand.core.atomic import write_bytes_atomic
from halohand.core.errors import HalohandInputError

#: Output formats :func:`export_mesh` writes.
EXTENSIONS = ("ply", "obj", "glb")


def check_extension(ext: str) -> str:
    """Lower-cased extension without the dot; raises for unsupported ones."""
    key = str(ext).lower().lstrip(".")
    if key not in EXTENSIONS:
        raise HalohandInputError(f"unknown mesh format {ext!r}; use one of {', '.join(EXTENSIONS)}")
    return key


def skeleton_scene(mesh: trimesh.Trimesh, keypoints: np.ndarray | None) -> trimesh.Scene:
    """Scene with the mesh (node ``hand``) and, if given, the ``[21, 3]`` keypoints as
    bones (node ``skeleton``) and joints (node ``keypoints``)."""
    from halohand.skeleton import BONES

    scene = trimesh.Scene()
    scene.add_geometry(mesh, node_name="hand", geom_name="hand")
    if keypoints is not None:
        kp = np.asarray(keypoints, dtype=np.float64)
        if kp.shape != (21, 3):
            raise HalohandInputError(f"skeleton keypoints must be [21, 3], got {list(kp.shape)}")
        bones = trimesh.load_path(kp[BONES])  # [20, 2, 3] segments
        scene.add_geometry(bones, node_name="skeleton", geom_name="skeleton")
        scene.add_geometry(trimesh.PointCloud(kp), node_name="keypoints", geom_name="keypoints")
    return scene


def mesh_bytes(mesh: trimesh.Trimesh, ext: str, keypoints: np.ndarray | None = None) -> bytes:
    """Serialize ``mesh`` as ``ply`` (binary), ``obj`` (with vertex colours) or ``glb``.

    Args:
        mesh: the mesh; its vertex colours are written when it has them.
        ext: output format.
        keypoints: ``[21, 3]`` skeleton for GLB, in the mesh's frame and units (ignored by
            PLY / OBJ).
    """
    ext = check_extension(ext)
    if ext == "glb":
        return bytes(skeleton_scene(mesh, keypoints).export(file_type="glb"))
    if ext == "obj":
        data = mesh.export(file_type="obj", include_color=True, include_normals=False)
    else:
        data = mesh.export(file_type="ply", encoding="binary")
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def export_mesh(
    mesh: trimesh.Trimesh,
    path: str | os.PathLike[str],
    keypoints: np.ndarray | None = None,
) -> Path:
    """Write ``mesh`` atomically to ``path``; the format follows the suffix (.ply/.obj/.glb)."""
    path = Path(path)
    data = mesh_bytes(mesh, path.suffix, keypoints)
    write_bytes_atomic(path, data)
    return path


def hands_scene(hands: list[tuple[str, trimesh.Trimesh, np.ndarray | None]]) -> trimesh.Scene:
    """Several hands in one scene: per ``(name, mesh, keypoints)`` a node ``hand_<name>``
    and, with ``[21, 3]`` keypoints, ``skeleton_<name>`` (bones as lines); e.g. the
    ``hand_right`` / ``hand_left`` nodes of a two-hand GLB."""
    from halohand.skeleton import BONES

    scene = trimesh.Scene()
    for name, mesh, keypoints in hands:
        scene.add_geometry(mesh, node_name=f"hand_{name}", geom_name=f"hand_{name}")
        if keypoints is not None:
            kp = np.asarray(keypoints, dtype=np.float64)
            if kp.shape != (21, 3):
                raise HalohandInputError(
                    f"skeleton keypoints must be [21, 3], got {list(kp.shape)}"
                )
            scene.add_geometry(
                trimesh.load_path(kp[BONES]),
                node_name=f"skeleton_{name}",
                geom_name=f"skeleton_{name}",
            )
    return scene


def export_scene(scene: trimesh.Scene, path: str | os.PathLike[str]) -> Path:
    """Write a scene atomically as GLB (the only scene format written)."""
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise HalohandInputError(f"{path}: scenes are written as .glb")
    write_bytes_atomic(path, bytes(scene.export(file_type="glb")))
    return path
