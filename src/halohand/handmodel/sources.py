"""Hand sources: anything that samples :class:`PosedHand` records for the data engine."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.handmodel.hand import PosedHand
from halohand.handmodel.prior import IdentityPrior
from halohand.handmodel.shape import SHAPE_PRIOR_STD_MM
from halohand.handmodel.webxr import WebXRHandSource

#: The hand sources :func:`make_source` builds, by name (the data engine's ``--source``).
SOURCES = ("webxr", "mano", "toy")


@runtime_checkable
class HandSource(Protocol):
    """Samples posed hands; the same generator state gives the same hand."""

    name: str

    def sample(self, rng: np.random.Generator, side: str = "right") -> PosedHand:
        """Draw one identity and one natural pose and return the posed hand."""
        ...


def make_source(
    name: str = "webxr",
    mano_model: Path | None = None,
    bone_length_std: float | None = None,
    shape_scale: float | None = None,
    thickness_mean: float | None = None,
) -> HandSource:
    """Build a hand source by name (one of :data:`SOURCES`).

    ``"webxr"``: the embedded hand (default); ``"mano"``: a user-supplied MANO model, at
    ``mano_model`` (the path of ``MANO_RIGHT.pkl``); ``"toy"``: synthetic watertight capsule
    hands for tests and benchmarks. MANO (torch) and the toy hands (trimesh) are imported
    only when asked for. ``bone_length_std`` replaces the embedded hand's per-bone length
    spread (:attr:`~halohand.handmodel.prior.IdentityPrior.bone_std`, log std; webxr only).
    ``shape_scale`` draws the soft-tissue correctives with ``shape_scale`` times
    :data:`~halohand.handmodel.shape.SHAPE_PRIOR_STD_MM` (webxr only; default none).
    ``thickness_mean`` shifts every part's relative thickness offset
    (:attr:`~halohand.handmodel.prior.IdentityPrior.thickness_mean`; webxr only).
    """
    settings = (bone_length_std, shape_scale, thickness_mean)
    if any(v is not None for v in settings) and name != "webxr":
        raise HalohandInputError(
            "bone-length, shape and thickness settings are of the webxr source only"
        )
    if name == "webxr":
        if all(v is None for v in settings):
            return WebXRHandSource()
        prior = IdentityPrior()
        if bone_length_std is not None:
            prior = dataclasses.replace(prior, bone_std=bone_length_std)
        if shape_scale is not None:
            prior = dataclasses.replace(
                prior, shape_std_mm=tuple(shape_scale * s for s in SHAPE_PRIOR_STD_MM)
            )
        if thickness_mean is not None:
            prior = dataclasses.replace(prior, thickness_mean=thickness_mean)
        return WebXRHandSource(identity_prior=prior)
    if name == "mano":
        if mano_model is None:
            raise HalohandInputError("--source mano needs --mano-model PATH/TO/MANO_RIGHT.pkl")
        from halohand.handmodel.mano import ManoHandSource

        return ManoHandSource(Path(mano_model))
    if name == "toy":
        from halohand.handmodel.toy import ToyHandSource

        return ToyHandSource()
    raise HalohandInputError(f"unknown hand source {name!r}; expected one of {', '.join(SOURCES)}")
