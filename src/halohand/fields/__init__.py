"""HALO occupancy network: batched part MLPs, variants, keypoint glue, skipping, save/load.

Main entry points:

* :class:`OccupancyNetwork` (alias :data:`HALONet`) with :class:`OccupancyConfig` and the
  paper's variants in :data:`VARIANTS` / :func:`variant_config`;
* :func:`hand_conditioning`: keypoints (metres) -> canonicalization layer -> network
  inputs (the query loop is :mod:`halohand.inference.query`);
* :func:`skip_mask` and :data:`DEFAULT_SKIP_RADII_M`: optional part skipping;
* :func:`save_model` / :func:`load_model`: safetensors + JSON config.
"""

from halohand.fields.conditioning import (
    HALO_UNIT_M,
    HandConditioning,
    hand_conditioning,
)
from halohand.fields.io import load_model, save_model
from halohand.fields.occupancy import (
    VARIANTS,
    HALONet,
    OccupancyConfig,
    OccupancyNetwork,
    count_parameters,
    part_inputs,
    variant_config,
)
from halohand.fields.parts import PartLinear, PartMLP
from halohand.fields.skipping import (
    DEFAULT_SKIP_RADII_M,
    fit_skip_radii,
    part_distances,
    skip_agreement,
    skip_mask,
)

__all__ = [
    "DEFAULT_SKIP_RADII_M", "HALO_UNIT_M", "VARIANTS", "HALONet", "HandConditioning",
    "OccupancyConfig", "OccupancyNetwork", "PartLinear", "PartMLP", "count_parameters",
    "fit_skip_radii", "hand_conditioning", "load_model",
    "part_distances", "part_inputs", "save_model", "skip_agreement", "skip_mask",
    "variant_config",
]  # fmt: skip
