"""Hand sources: anything that samples :class:`PosedHand` records for the data engine."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.handmodel.hand import PosedHand

SOURCES = ("webxr", "mano")


@runtime_checkable
class HandSource(Protocol):
    """Samples posed hands; the same generator state gives the same hand."""

    name: str

    def sample(self, rng: np.random.Generator, side: str = "right") -> PosedHand:
        """Draw one identity and one natural pose and return the posed hand."""
        ...


def make_source(name: str = "webxr", mano_model: Path | None = None) -> HandSource:
    """Build a hand source by name: ``"webxr"`` (embedded default) or ``"mano"``.

    ``"mano"`` needs ``mano_model``, the path of a user-supplied ``MANO_RIGHT.pkl``.
    """
    if name == "webxr":
        from halohand.handmodel.webxr import WebXRHandSource

        return WebXRHandSource()
    if name == "mano":
        if mano_model is None:
            raise HalohandInputError("--source mano needs --mano-model PATH/TO/MANO_RIGHT.pkl")
        from halohand.handmodel.mano import ManoHandSource

        return ManoHandSource(Path(mano_model))
    raise HalohandInputError(f"unknown hand source {name!r}; expected one of {', '.join(SOURCES)}")
