"""Hand-object pose from one image: HOISDF (signed distance fields of hand and object guide
the points that regress the hand's joints and the object's pose), its data and metrics."""

from halohand.handobject.data import HOIData, load_hoi
from halohand.handobject.metrics import add_s, hand_object_errors
from halohand.handobject.model import AUGMENTS, HOISDF, SAMPLINGS, HOISDFConfig

__all__ = [
    "AUGMENTS",
    "HOISDF",
    "SAMPLINGS",
    "HOIData",
    "HOISDFConfig",
    "add_s",
    "hand_object_errors",
    "load_hoi",
]
