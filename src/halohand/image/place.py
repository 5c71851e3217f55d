"""Placing a hand in the camera frame: the translation that makes its metric joints
reproject onto its pixel joints.

The landmark model gives the joints in metres around the hand's centre (camera axes) and,
separately, in pixels. With a pinhole camera, a translation ``t`` of the metric joints
``X`` reprojects them to ``u = fx (X + t)_x / (X + t)_z + cx`` (and ``v`` likewise): the
hand's metric size against its pixel spread sets the depth. Multiplying out the division
makes every joint two linear equations in ``t``; their least-squares solution starts a few
Gauss-Newton steps on the reprojection error itself (the linear form weighs far joints
more).

The model's metric joints do not quite have the shape of its pixel joints (on the test
photos the best rigid placement, even with a free rotation, stays 10-20 px off, 3-5 % of
the hand's size): the pixel joints are the sharper of the two. So each joint is then moved
onto its pixel's ray at the depth the rigid placement gave it (:func:`snap_to_rays`): the
hand reprojects onto the photo exactly, keeps the metric depth and size, and its bones
change by a few millimetres.
"""

from __future__ import annotations

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.scene.camera import Camera

#: Nearest a hand may be placed (metres from the camera centre).
MIN_DEPTH = 0.05
GAUSS_NEWTON_STEPS = 5


def default_focal_px(width: int, height: int) -> float:
    """The focal length assumed when the photo says none: the image diagonal in pixels
    (a 53 degree diagonal field of view, about a 43 mm lens on 35 mm film: a phone's main
    camera is 24-28 mm, a portrait lens longer; the depth scales with it, the hand's
    shape and its reprojection do not)."""
    return float(np.hypot(width, height))


def photo_camera(width: int, height: int, focal_px: float, image: np.ndarray | None = None):
    """A :class:`~halohand.scene.Camera` for a ``width x height`` photo: square pixels,
    principal point at the image centre, the camera frame as the world frame."""
    if not (np.isfinite(focal_px) and focal_px > 0):
        raise HalohandInputError(
            f"focal length must be a positive number of pixels, got {focal_px}"
        )
    k = np.array([[focal_px, 0.0, width / 2.0], [0.0, focal_px, height / 2.0], [0.0, 0.0, 1.0]])
    return Camera(k, image=image)


def _residuals(t: np.ndarray, world: np.ndarray, pixels: np.ndarray, k: np.ndarray):
    p = world + t
    z = np.maximum(p[:, 2], 1e-9)
    u = k[0, 0] * p[:, 0] / z + k[0, 2]
    v = k[1, 1] * p[:, 1] / z + k[1, 2]
    r = np.concatenate([u - pixels[:, 0], v - pixels[:, 1]])
    # d(u)/dt = fx * [1/z, 0, -x/z^2]; d(v)/dt = fy * [0, 1/z, -y/z^2]
    jac = np.zeros((2 * len(p), 3))
    jac[: len(p), 0] = k[0, 0] / z
    jac[: len(p), 2] = -k[0, 0] * p[:, 0] / z**2
    jac[len(p) :, 1] = k[1, 1] / z
    jac[len(p) :, 2] = -k[1, 1] * p[:, 1] / z**2
    return r, jac


def solve_translation(world: np.ndarray, pixels: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """``[3]`` translation (metres) placing ``[21, 3]`` metric joints (camera axes) so that
    they reproject onto ``[21, 2]`` pixel joints through ``[3, 3]`` intrinsics."""
    world = np.asarray(world, dtype=np.float64)
    pixels = np.asarray(pixels, dtype=np.float64)
    k = np.asarray(intrinsics, dtype=np.float64)
    du = pixels[:, 0] - k[0, 2]
    dv = pixels[:, 1] - k[1, 2]
    n = len(world)
    # fx tx - du tz = du Xz - fx Xx ;  fy ty - dv tz = dv Xz - fy Xy
    a = np.zeros((2 * n, 3))
    a[:n, 0] = k[0, 0]
    a[:n, 2] = -du
    a[n:, 1] = k[1, 1]
    a[n:, 2] = -dv
    b = np.concatenate(
        [du * world[:, 2] - k[0, 0] * world[:, 0], dv * world[:, 2] - k[1, 1] * world[:, 1]]
    )
    t = np.linalg.lstsq(a, b, rcond=None)[0]
    t[2] = max(t[2], MIN_DEPTH - world[:, 2].min())
    for _ in range(GAUSS_NEWTON_STEPS):
        r, jac = _residuals(t, world, pixels, k)
        step = np.linalg.lstsq(jac, -r, rcond=None)[0]
        t = t + step
        t[2] = max(t[2], MIN_DEPTH - world[:, 2].min())
    return t


def snap_to_rays(points: np.ndarray, pixels: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """``[21, 3]`` points (camera frame, metres) moved onto the rays of ``[21, 2]`` pixels,
    each keeping its depth ``z``."""
    pts = np.asarray(points, dtype=np.float64)
    rays = (
        np.concatenate([pixels, np.ones((len(pixels), 1))], axis=1)
        @ np.linalg.inv(np.asarray(intrinsics, dtype=np.float64)).T
    )
    return rays * pts[:, 2:3]


def reprojection_px(points: np.ndarray, pixels: np.ndarray, camera: Camera) -> np.ndarray:
    """``[21]`` distances (pixels) between ``[21, 3]`` placed joints' projections and the
    ``[21, 2]`` pixel joints."""
    return np.linalg.norm(camera.project(points) - pixels, axis=1)
