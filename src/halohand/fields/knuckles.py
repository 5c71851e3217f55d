"""The knuckle spread: the palm width that the canonical skeleton drops.

A hand's girth follows its palm width: the embedded hand model scales every finger part
radially by ``sqrt(length factor * palm width)`` and the palm's width by the palm-width
factor (:meth:`halohand.handmodel.pose.HandIdentity.thickness_factors`), as real hands
with broad palms have thick fingers. The keypoints show the palm width through the knuckle
spread (index to little knuckle: ``~ palm_width^0.64`` at fixed size on that model), but
the canonical skeleton does not (it rebuilds the palm from the part bone lengths:
``~ palm_width^0.06``), so a network that reads only bone lengths, pose code and canonical
skeleton meets hands of one skeleton and several girths. Measured on the shipped model
before it read the spread, the median signed distance of its surface to the truth went
from -0.7 to +0.8 mm over the test hands, correlated -0.79 with the spread
(``benchmarks/studies/girth_level.py``).

:func:`knuckle_spread` is the feature a network with ``knuckle_spread = true``
(:class:`~halohand.fields.occupancy.OccupancyConfig`) reads as one more context input.
"""

from __future__ import annotations

import torch
from torch import Tensor

from halohand.core.errors import HalohandInputError

__all__ = ["KNUCKLE_SPREAD_LIMIT", "KNUCKLE_SPREAD_MEAN", "KNUCKLE_SPREAD_STD", "knuckle_spread"]

#: Mean and standard deviation of ``log(|k5 - k17| / |k0 - k9|)`` over the embedded hand
#: model's identity prior (2,000 identities; the palm is rigid, so any pose gives the same
#: value): the spread is read in these standard deviations about this mean.
KNUCKLE_SPREAD_MEAN = -0.413
KNUCKLE_SPREAD_STD = 0.035

#: The standardized spread is clipped to +- this many standard deviations (the prior's
#: palm-width factor is clipped at 2.5): hands beyond it are read as the widest or
#: narrowest the network was trained on, not extrapolated.
KNUCKLE_SPREAD_LIMIT = 3.0


def knuckle_spread(keypoints: Tensor) -> Tensor:
    """Standardized knuckle spread of hands.

    Args:
        keypoints: ``[B, 21, 3]`` project order, any frame and length unit (a ratio of
            distances: invariant to rotation, translation, scale and mirroring).

    Returns:
        ``[B]`` ``(log(|k5 - k17| / |k0 - k9|) - KNUCKLE_SPREAD_MEAN) / KNUCKLE_SPREAD_STD``
        (index to little knuckle over wrist to middle knuckle) clipped to
        ``+-KNUCKLE_SPREAD_LIMIT``, in the keypoints' dtype; differentiable in them.
    """
    if keypoints.ndim != 3 or keypoints.shape[1:] != (21, 3):
        raise HalohandInputError(f"keypoints must be [B, 21, 3], got {list(keypoints.shape)}")
    spread = torch.linalg.vector_norm(keypoints[:, 5] - keypoints[:, 17], dim=-1)
    palm = torch.linalg.vector_norm(keypoints[:, 0] - keypoints[:, 9], dim=-1)
    if not bool(((spread > 0) & (palm > 0)).all()):
        raise HalohandInputError("the knuckle spread needs distinct wrist and knuckles")
    x = (torch.log(spread / palm) - KNUCKLE_SPREAD_MEAN) / KNUCKLE_SPREAD_STD
    return x.clamp(-KNUCKLE_SPREAD_LIMIT, KNUCKLE_SPREAD_LIMIT)
