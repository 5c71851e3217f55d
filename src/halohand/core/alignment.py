"""Point-set alignment: the least-squares similarity between corresponding point sets.

One implementation for every place that aligns joints (the template fit's and the photo
fit's palm start, PA-MPJPE in the benchmarks): the closed form of the best ``dst ~ s R src
+ t`` (SVD of the cross-covariance, with the reflection removed, Umeyama 1991).
"""

from __future__ import annotations

import numpy as np


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The similarity ``x -> s R x + t`` that takes ``src`` closest to ``dst`` (least squares).

    Args:
        src, dst: ``[N, 3]`` corresponding points (N >= 3, not all collinear for a unique
            rotation), same units.

    Returns:
        ``(s, R [3, 3], t [3])``: scale (> 0 unless ``src`` is one point repeated), a proper
        rotation (det +1), translation in the points' units.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 3 or src.shape != dst.shape:
        raise ValueError(f"expected two [N, 3] arrays, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a)
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ fix @ vt
    spread = float((a * a).sum())
    scale = float((sig * np.diag(fix)).sum() / spread) if spread > 0 else 1.0
    return scale, rot, mu_d - scale * rot @ mu_s


def procrustes_align(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``pred`` ``[N, 3]`` moved onto ``target`` by their best similarity (for PA errors)."""
    scale, rot, trans = similarity_transform(pred, target)
    return scale * np.asarray(pred, dtype=np.float64) @ rot.T + trans
