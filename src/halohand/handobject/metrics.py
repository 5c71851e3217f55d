"""Hand-object pose metrics of HOISDF's tables (all in millimetres, per image).

* **MJE**: mean joint error of the 21 joints after moving the predicted wrist onto the
  true one (root-relative, as DexYCB protocols report it).
* **PA-MJE**: the same after the least-squares similarity (Procrustes) alignment.
* **OCE**: object centre error: distance between the predicted and the true object origin
  (registry objects are centred there), root-relative.
* **MCE**: mean corner error: mean distance between the eight corners of the object's
  axis-aligned box (its own frame) placed by the predicted and by the true pose.
* **ADD-S**: mean over the object's surface points at the true pose of the distance to the
  closest surface point at the predicted pose (symmetric objects are not penalised for
  their symmetry).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from halohand.core.alignment import procrustes_align

__all__ = ["add_s", "hand_object_errors"]


def add_s(
    points: Tensor, rot_pred: Tensor, t_pred: Tensor, rot_true: Tensor, t_true: Tensor
) -> Tensor:
    """``[B]`` ADD-S (units of the inputs) of model ``points [B, P, 3]`` under predicted and
    true poses (``[B, 3, 3]``, ``[B, 3]``)."""
    pred = points @ rot_pred.transpose(1, 2) + t_pred[:, None]
    true = points @ rot_true.transpose(1, 2) + t_true[:, None]
    return torch.cdist(true, pred).min(-1).values.mean(-1)


def hand_object_errors(pred: dict[str, Tensor], batch: dict[str, Tensor]) -> dict[str, np.ndarray]:
    """Per-image ``mje``, ``pa_mje``, ``oce``, ``mce``, ``add_s`` (mm) of a model's output
    ``pred`` against a :meth:`HOIData.batch <halohand.handobject.data.HOIData.batch>`."""
    with torch.no_grad():
        j_pred = pred["joints"].double()
        j_true = batch["joints"].double()
        aligned = j_pred - j_pred[:, :1] + j_true[:, :1]
        mje = (aligned - j_true).norm(dim=-1).mean(-1)
        pa = [
            np.linalg.norm(procrustes_align(p, t) - t, axis=-1).mean()
            for p, t in zip(j_pred.numpy(), j_true.numpy(), strict=True)
        ]
        r_p, t_p = pred["object_rotation"].double(), pred["object_translation"].double()
        r_t, t_t = batch["object_rotation"].double(), batch["object_translation"].double()
        oce = (t_p - t_t).norm(dim=-1)
        c = batch["object_corners"].double()
        corners_p = c @ r_p.transpose(1, 2) + t_p[:, None]
        corners_t = c @ r_t.transpose(1, 2) + t_t[:, None]
        mce = (corners_p - corners_t).norm(dim=-1).mean(-1)
        adds = add_s(batch["object_model"].double(), r_p, t_p, r_t, t_t)
    mm = lambda x: 1e3 * np.asarray(x, dtype=np.float64)  # noqa: E731
    return {"mje": mm(mje), "pa_mje": mm(pa), "oce": mm(oce), "mce": mm(mce), "add_s": mm(adds)}
