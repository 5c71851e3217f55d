"""Mesh reconstruction metrics, as HALO / Occupancy Networks define them.

- IoU of two occupancy sets on the same query points (both thresholded).
- Chamfer-L1 = 1/2 (completeness + accuracy): mean unsquared nearest-neighbour distance from
  ground-truth surface samples to predicted ones and back. Reported in the units of the input
  (metres in this project); multiply by 1000 for mm.
- Normal consistency = 1/2 (mean |n_gt . n_pred(nn)| + mean |n_pred . n_gt(nn)|), orientation
  ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from halohand.objects.inside import contains


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two boolean occupancy arrays of the same shape ``[N]``.

    Two empty sets give IoU 1 (nothing to disagree about); an empty prediction against a
    non-empty ground truth gives 0.
    """
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"occupancy shapes differ: {pred.shape} vs {gt.shape}")
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pred & gt) / union)


def chamfer_and_normals(
    pred_points: np.ndarray,
    pred_normals: np.ndarray,
    gt_points: np.ndarray,
    gt_normals: np.ndarray,
) -> tuple[float, float, float]:
    """Chamfer-L1, Chamfer-L2 and normal consistency between two oriented point samples.

    Args:
        pred_points: ``[P, 3]`` samples on the predicted surface.
        pred_normals: ``[P, 3]`` unit normals there.
        gt_points: ``[G, 3]`` samples on the ground-truth surface.
        gt_normals: ``[G, 3]`` unit normals there.

    Returns:
        ``(chamfer_l1, chamfer_l2, normal_consistency)``; L1 in input units, L2 in squared units.
    """
    if len(pred_points) == 0 or len(gt_points) == 0:
        raise ValueError("cannot compute Chamfer distance with an empty point set")
    d_completeness, idx_pred = cKDTree(pred_points).query(gt_points, workers=-1)
    d_accuracy, idx_gt = cKDTree(gt_points).query(pred_points, workers=-1)
    chamfer_l1 = 0.5 * (d_completeness.mean() + d_accuracy.mean())
    chamfer_l2 = 0.5 * ((d_completeness**2).mean() + (d_accuracy**2).mean())
    n_pred = _unit(pred_normals)
    n_gt = _unit(gt_normals)
    nc_completeness = np.abs((n_gt * n_pred[idx_pred]).sum(-1)).mean()
    nc_accuracy = np.abs((n_pred * n_gt[idx_gt]).sum(-1)).mean()
    return float(chamfer_l1), float(chamfer_l2), float(0.5 * (nc_completeness + nc_accuracy))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class MeshMetrics:
    """Metrics of one reconstructed hand (lengths in metres)."""

    iou: float
    chamfer_l1: float
    chamfer_l2: float
    normal_consistency: float

    @property
    def chamfer_l1_mm(self) -> float:
        return 1000.0 * self.chamfer_l1


def mesh_metrics(
    pred_mesh,  # trimesh.Trimesh
    iou_points: np.ndarray,
    iou_gt_occupancy: np.ndarray,
    gt_surface_points: np.ndarray,
    gt_surface_normals: np.ndarray,
    n_samples: int = 100_000,
    seed: int = 0,
) -> MeshMetrics:
    """Evaluate a predicted mesh against ground truth as the original evaluation does.

    Inside/outside of the predicted mesh at ``iou_points`` uses generalized winding numbers;
    ``n_samples`` area-uniform samples with face normals are drawn on the predicted mesh
    (fixed ``seed``). An empty mesh gives IoU 0 and infinite Chamfer distances.
    """

    if len(pred_mesh.faces) == 0:
        return MeshMetrics(0.0, float("inf"), float("inf"), 0.0)
    pred_occ = contains(pred_mesh.vertices, pred_mesh.faces, iou_points)
    rng = np.random.default_rng(seed)
    points, face_idx = _sample_surface(pred_mesh, n_samples, rng)
    normals = pred_mesh.face_normals[face_idx]
    cl1, cl2, nc = chamfer_and_normals(points, normals, gt_surface_points, gt_surface_normals)
    return MeshMetrics(iou(pred_occ, iou_gt_occupancy), cl1, cl2, nc)


def _sample_surface(mesh, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform samples ``[n, 3]`` and their face indices ``[n]`` (deterministic for rng)."""
    tri = mesh.vertices[mesh.faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=-1)
    face_idx = rng.choice(len(area), size=n, p=area / area.sum())
    u, v = rng.random((2, n))
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tri[face_idx]
    points = t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])
    return points, face_idx
