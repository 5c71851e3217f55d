"""A pinhole camera of a scene: intrinsics, extrinsics and (optionally) its image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from halohand.core.errors import HalohandInputError


def _matrix(value: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise HalohandInputError(
            f"{name} must be a {shape[0]}x{shape[1]} matrix of numbers"
        ) from None
    if arr.shape != shape:
        raise HalohandInputError(f"{name} must be {list(shape)}, got {list(arr.shape)}")
    if not np.isfinite(arr).all():
        raise HalohandInputError(f"{name} contains NaN or inf")
    return arr


def rigid_transform(value: Any, name: str) -> np.ndarray:
    """``value`` as a finite ``[4, 4]`` float64 rigid transform (rotation with det +1 and a
    translation); anything else is a one-line error naming it."""
    m = _matrix(value, (4, 4), name)
    r = m[:3, :3]
    if not np.allclose(r @ r.T, np.eye(3), atol=1e-6) or np.linalg.det(r) <= 0:
        raise HalohandInputError(f"{name} must be a rigid transform (rotation, det +1)")
    return m


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera.

    Attributes:
        intrinsics: ``[3, 3]`` ``K`` (pixels): ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.
        extrinsics: ``[4, 4]`` world -> camera (metres); the camera looks along its +z.
        image: optional ``[H, W, 3]`` uint8 RGB image taken by this camera.
    """

    intrinsics: np.ndarray
    extrinsics: np.ndarray = field(default_factory=lambda: np.eye(4))
    image: np.ndarray | None = None

    def __post_init__(self) -> None:
        k = _matrix(self.intrinsics, (3, 3), "intrinsics")
        if not (k[0, 0] > 0 and k[1, 1] > 0) or not np.allclose(k[2], (0.0, 0.0, 1.0)):
            raise HalohandInputError(
                "intrinsics must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0"
            )
        e = rigid_transform(self.extrinsics, "extrinsics")
        object.__setattr__(self, "intrinsics", k)
        object.__setattr__(self, "extrinsics", e)
        if self.image is not None:
            img = np.asarray(self.image)
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or img.size == 0:
                raise HalohandInputError(
                    f"image must be an [H, W, 3] uint8 RGB array, got {img.dtype} {list(img.shape)}"
                )
            object.__setattr__(self, "image", img)

    @classmethod
    def from_fov(cls, width: int, height: int, fov_deg: float, **kwargs: Any) -> Camera:
        """A camera with square pixels, the principal point at the image centre and a
        horizontal field of view of ``fov_deg`` degrees."""
        if not (width > 0 and height > 0 and 0.0 < fov_deg < 180.0):
            raise HalohandInputError("width, height must be > 0 and fov in (0, 180) degrees")
        f = 0.5 * width / np.tan(np.radians(fov_deg) / 2.0)
        k = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])
        return cls(k, **kwargs)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """``[..., 3]`` world points (metres) -> camera frame (metres)."""
        p = np.asarray(points, dtype=np.float64)
        return p @ self.extrinsics[:3, :3].T + self.extrinsics[:3, 3]

    def project(self, points: np.ndarray) -> np.ndarray:
        """``[..., 3]`` world points (metres) -> ``[..., 2]`` pixel coordinates ``(u, v)``.

        Points at or behind the camera plane (``z <= 0``) project to NaN.
        """
        pc = self.to_camera(points)
        z = pc[..., 2:3]
        uvw = pc @ self.intrinsics.T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = uvw[..., :2] / z
        return np.where(z > 0, uv, np.nan)
