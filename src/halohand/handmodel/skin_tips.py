"""Fingertip keypoints on the skin: where MANO-based datasets and MediaPipe put them.

The rig places every fingertip keypoint at a joint centre about one distal-bone length
inside the finger's end; skin-tip sources place it on the surface at the end of the finger.
:func:`skin_tip_keypoints` moves each tip of a posed hand out to the skin along its distal
bone (where the ray from the DIP joint through the tip joint first leaves the skin), so
that training keypoints in the skin-tip convention come from the same posed meshes as the
rig's. The ray starts at the DIP joint, which is inside the finger, so the tip joint itself
may lie inside or outside the mesh; a curled finger's ray meets the palm only after it has
left its own finger.
"""

from __future__ import annotations

import numpy as np

from halohand.skeleton.orders import FINGER_CHAINS

__all__ = ["ray_exit_distances", "skin_tip_keypoints"]


def ray_exit_distances(
    vertices: np.ndarray, faces: np.ndarray, origins: np.ndarray, directions: np.ndarray
) -> np.ndarray:
    """Distance along each ray to its first crossing of a triangle mesh.

    Args:
        vertices: ``[V, 3]`` float.
        faces: ``[F, 3]`` int.
        origins: ``[R, 3]`` ray origins (same unit as ``vertices``).
        directions: ``[R, 3]`` unit directions.

    Returns:
        ``[R]`` float64: the smallest ``t > 0`` with ``origin + t direction`` on a face;
        ``inf`` where the ray meets none.
    """
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]  # [F, 3, 3]
    o = np.asarray(origins, dtype=np.float64)[:, None]  # [R, 1, 3]
    d = np.asarray(directions, dtype=np.float64)[:, None]
    e1, e2 = tri[None, :, 1] - tri[None, :, 0], tri[None, :, 2] - tri[None, :, 0]
    p = np.cross(d, e2)
    det = np.einsum("rfi,rfi->rf", e1, p)
    # Moller-Trumbore; rays parallel to a face (det ~ 0) cannot cross it
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / det
        s = o - tri[None, :, 0]
        u = np.einsum("rfi,rfi->rf", s, p) * inv
        q = np.cross(s, e1)
        v = np.einsum("rfi,rfi->rf", d, q) * inv
        t = np.einsum("rfi,rfi->rf", e2, q) * inv
        hit = (np.abs(det) > 1e-18) & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    return np.where(hit, t, np.inf).min(axis=1)


def skin_tip_keypoints(
    vertices: np.ndarray, faces: np.ndarray, keypoints: np.ndarray
) -> np.ndarray:
    """The hand's keypoints with each fingertip moved out to the skin along its distal bone.

    Args:
        vertices: ``[V, 3]`` the posed hand's watertight mesh (the keypoints' frame and unit).
        faces: ``[F, 3]``.
        keypoints: ``[21, 3]`` project order, rig placement (tip joints inside the fingers).

    Returns:
        ``[21, 3]`` float64: a copy with the five tips on the skin; a tip whose ray meets no
        face (its DIP joint outside the mesh) is kept where it is.
    """
    kp = np.array(keypoints, dtype=np.float64)
    chains = np.asarray(FINGER_CHAINS)
    dip, tip = kp[chains[:, 2]], kp[chains[:, 3]]
    bone = tip - dip
    direction = bone / np.linalg.norm(bone, axis=1, keepdims=True)
    t = ray_exit_distances(vertices, faces, dip, direction)
    kp[chains[:, 3]] = np.where(np.isfinite(t)[:, None], dip + t[:, None] * direction, tip)
    return kp
