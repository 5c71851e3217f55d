"""The embedded WebXR hand as a hand source (:class:`WebXRHandSource`), and its model.

The model (:class:`WebXRHandModel`, :func:`default_model`, :func:`check_side`) lives in
:mod:`halohand.handmodel.webxr_model`, below the pose prior, whose collision check poses
it; this module adds the source that draws from the priors, and answers for both.
"""

from __future__ import annotations

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.handmodel.hand import PosedHand
from halohand.handmodel.prior import IdentityPrior, PosePrior
from halohand.handmodel.webxr_model import SIDES, WebXRHandModel, check_side, default_model

__all__ = ["SIDES", "WebXRHandModel", "WebXRHandSource", "check_side", "default_model"]


class WebXRHandSource:
    """Hand source for the data engine: a random identity and a natural pose per call.

    ``sample(rng, side)`` draws the identity from :class:`IdentityPrior`, the pose from
    :class:`PosePrior` (checked for self-collision at that identity) and poses the model;
    the same generator state gives the same hand.
    """

    name = "webxr"

    def __init__(
        self,
        model: WebXRHandModel | None = None,
        pose_prior: PosePrior | None = None,
        identity_prior: IdentityPrior | None = None,
    ) -> None:
        self.model = default_model() if model is None else model
        self.pose_prior = PosePrior() if pose_prior is None else pose_prior
        self.identity_prior = IdentityPrior() if identity_prior is None else identity_prior

    def sample(self, rng: np.random.Generator, side: str = "right") -> PosedHand:
        """Draw one identity and one natural pose and return the posed hand."""
        check_side(side)
        if not isinstance(rng, np.random.Generator):
            raise HalohandInputError(
                f"rng must be a numpy.random.Generator, got {type(rng).__name__}"
            )
        identity = self.identity_prior.sample(rng)
        pose = self.pose_prior.sample(rng, identity, self.model)
        return self.model.pose(pose, identity, side)
