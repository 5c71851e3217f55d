"""Evaluation metrics: IoU, Chamfer-L1 and normal consistency."""

from halohand.evaluation.metrics import (
    MeshMetrics,
    chamfer_and_normals,
    iou,
    mesh_metrics,
)

__all__ = ["MeshMetrics", "chamfer_and_normals", "iou", "mesh_metrics"]
