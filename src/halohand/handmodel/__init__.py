"""Hand models: the embedded WebXR rig (default) and MANO when the user supplies it."""

from halohand.handmodel.hand import PosedHand
from halohand.handmodel.sources import SOURCES, HandSource, make_source

__all__ = ["SOURCES", "HandSource", "PosedHand", "make_source"]
