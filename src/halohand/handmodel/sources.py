"""Hand sources: anything that samples :class:`PosedHand` records for the data engine."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.handmodel.hand import PosedHand
from halohand.handmodel.prior import IdentityPrior
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
    name: str = "webxr", mano_model: Path | None = None, bone_length_std: float | None = None
) -> HandSource:
    """Build a hand source by name (one of :data:`SOURCES`).

    ``"webxr"``: the embedded hand (default); ``"mano"``: a user-supplied MANO model, at
    ``mano_model`` (the path of ``MANO_RIGHT.pkl``); ``"toy"``: synthetic watertight capsule
    hands for tests and benchmarks. MANO (torch) and the toy hands (trimesh) are imported
    only when asked for. ``bone_length_std`` replaces the embedded hand's per-bone length
    spread (:attr:`~halohand.handmodel.prior.IdentityPrior.bone_std`, log std; webxr only).
    """
    if bone_length_std is not None and name != "webxr":
        raise HalohandInputError("a bone-length spread is a setting of the webxr source only")
    if name == "webxr":
        if bone_length_std is None:
            return WebXRHandSource()
        return WebXRHandSource(identity_prior=IdentityPrior(bone_std=bone_length_std))
    if name == "mano":
        if mano_model is None:
            raise HalohandInputError("--source mano needs --mano-model PATH/TO/MANO_RIGHT.pkl")
        from halohand.handmodel.mano import ManoHandSource

        return ManoHandSource(Path(mano_model))
    if name == "toy":
        from halohand.handmodel.toy import ToyHandSource

        return ToyHandSource()
    raise HalohandInputError(f"unknown hand source {name!r}; expected one of {', '.join(SOURCES)}")
