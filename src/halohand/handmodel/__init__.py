"""Hand models: the embedded WebXR rig (default) and MANO when the user supplies it.

Quick start::

    import numpy as np
    from halohand.handmodel import HandIdentity, HandPose, PosePrior, WebXRHandModel

    model = WebXRHandModel.load()
    hand = model.pose(HandPose.from_degrees(index_mcp=45, index_pip=60),
                      HandIdentity(hand_length=0.19), side="left")
    pose = PosePrior().sample(np.random.default_rng(0))
"""

from halohand.handmodel.hand import PosedHand
from halohand.handmodel.pose import (
    JOINT_LIMITS_DEG,
    POSE_JOINTS,
    HandIdentity,
    HandPose,
)
from halohand.handmodel.prior import GESTURES, IdentityPrior, PosePrior
from halohand.handmodel.sources import SOURCES, HandSource, make_source
from halohand.handmodel.webxr import WebXRHandModel, WebXRHandSource

__all__ = [
    "GESTURES", "JOINT_LIMITS_DEG", "POSE_JOINTS", "SOURCES", "HandIdentity", "HandPose",
    "HandSource", "IdentityPrior", "PosePrior", "PosedHand", "WebXRHandModel",
    "WebXRHandSource", "make_source",
]  # fmt: skip
