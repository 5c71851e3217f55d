"""Hand models: the embedded WebXR rig (default) and MANO when the user supplies it."""

from halohand.handmodel.hand import PosedHand

__all__ = ["PosedHand"]
