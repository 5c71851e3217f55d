"""Fitting the embedded rigged hand model to keypoints by optimisation (HALO's Table 2
baseline). See ``docs/fitting.md``.

    from halohand.fitting import fit_template
    result = fit_template(keypoints_m, side="right")   # [21, 3] metres, project order
    result.mesh, result.keypoint_error_mm, result.pose, result.identity, result.seconds
"""

from halohand.core.rotations import axis_angle_to_matrix
from halohand.fitting.template_fit import (
    FitConfig,
    FitResult,
    fit_template,
    fit_templates,
    pose_prior_stats,
)
from halohand.handmodel.torch_model import TorchHandModel

__all__ = [
    "FitConfig", "FitResult", "TorchHandModel", "axis_angle_to_matrix", "fit_template",
    "fit_templates", "pose_prior_stats",
]  # fmt: skip
