"""From a photo to hands: palm detection, 21 landmarks in pixels and metres, and each hand
placed in the photo's camera frame, ready for :class:`halohand.HALO`.

>>> result = from_image("photo.jpg")
>>> [h.side for h in result.hands]
['right']
>>> meshes = result.meshes(HALO.pretrained())  # metres, camera frame

The models are the shipped pretrained palm detector and hand landmark model
(``weights/mediapipe/``, Apache-2.0), run by the TFLite runtime; modules: :mod:`.io`
(decoding, limits, orientation), :mod:`.detect` (palms), :mod:`.landmarks` (joints),
:mod:`.find` (all hands of a photo), :mod:`.place` (camera and depth), :mod:`.photo`.
"""

from halohand.image.io import Photo, load_photo
from halohand.image.photo import PhotoHand, PhotoHands, from_image

__all__ = ["Photo", "PhotoHand", "PhotoHands", "from_image", "load_photo"]
