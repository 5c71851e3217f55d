"""Inside/outside queries for closed triangle meshes."""

from __future__ import annotations

import numpy as np


def winding_number(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Generalized winding number of ``[N, 3]`` points w.r.t. a mesh (``[V,3]``, ``[F,3]``).

    Uses libigl's fast (Barnes-Hut) winding number. For a closed, consistently oriented mesh it
    is 1 inside and 0 outside, and degrades gracefully on small defects.
    """
    import igl

    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    q = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    if len(q) == 0:
        return np.zeros(0)
    return np.asarray(igl.fast_winding_number(v, f, q))


def contains(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Boolean ``[N]``: which points lie inside the closed mesh (winding number >= 0.5)."""
    return winding_number(vertices, faces, points) >= 0.5
