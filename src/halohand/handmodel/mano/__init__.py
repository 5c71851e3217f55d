"""MANO as an optional hand source: loader (no chumpy), batched LBS, wrist sealing, sampler.

MANO (Romero et al., 2017) cannot be shipped with halohand (license). When a user supplies
``MANO_RIGHT.pkl`` (or ``MANO_LEFT.pkl``) from https://mano.is.tue.mpg.de, this package turns
it into the same :class:`~halohand.handmodel.hand.PosedHand` records the embedded WebXR hand
produces, so the data engine can generate MANO hands.

Loading
    The official pickles are Python 2 pickles in which some entries (``shapedirs``, and in
    some releases ``J`` or ``v_template``) are ``chumpy`` objects. :func:`load_mano` reads
    them with a *restricted* unpickler: ``chumpy.*`` classes become inert stand-ins that
    keep their pickled state, from which the array is recovered (``x`` for ``Ch``, plus
    ``Reshape`` / ``transpose`` / a lone ndarray in the state); scipy sparse matrices are
    rebuilt from their state; numpy arrays load normally. No other global is resolved
    (unknown classes become inert stand-ins too), so a pickle cannot run code. chumpy is
    never imported.

Posing (:func:`mano_forward`)
    smplx-style linear blend skinning, batched over leading dimensions, numpy or torch in,
    same type out (torch keeps gradients). ``pose`` is the *absolute* axis-angle pose of
    the 16 joints in MANO's kinematic order (global orientation first); :func:`mano_pose`
    builds it from PCA coefficients or a 45-d finger pose, adding ``hands_mean`` unless
    ``flat_hand_mean=True`` (smplx / manopth semantics).

Conventions
    * Metres, MANO's own frame. :func:`mano_posed_hand` translates so the wrist joint is
      at the origin and applies no global rotation (``pose[0] = 0`` in the sampler).
    * Part order = MANO's 16 joints = HALO's parts, so ``weights`` are the part skinning
      weights. Keypoints: 16 regressed joints + 5 fingertip vertices, reordered to the
      project's OpenPose order. Fingertip ids follow ``tips`` (default ``"smplx"`` =
      YouTube3D ``[744, 320, 443, 554, 671]``; ``"manopth"``, ``"freihand"`` or 5 ids).
    * The canonical hand is the zero pose (flat hand) of the same betas, without pose
      corrective offsets. ``part_transforms[i]`` is the inverse of part ``i``'s skinning
      transform, so it maps a posed vertex fully weighted to part ``i`` exactly onto its
      canonical position *plus* its pose-corrective offset (``posedirs``; a few mm on real
      MANO). Pass ``pose_correctives=False`` to drop the correctives: the map is then exact.
    * The wrist is sealed as HALO did: one vertex at the mean of the 16-vertex wrist ring,
      fan-triangulated (778 -> 779 vertices, 1538 -> 1554 faces); the seal vertex is
      skinned to the palm (part 0).
    * Left hands: the other side is produced by mirroring (x -> -x, faces flipped,
      ``part_transforms`` conjugated by the mirror). A left model file (``LEFT`` in its
      name, or ``side="left"``) gets the known shapedirs fix ``shapedirs[:, 0, :] *= -1``
      (smplx#48) so equal betas give mirror-equal shapes; it is then the native side.

Modules: :mod:`~halohand.handmodel.mano.loader` (reading and checking the file),
:mod:`~halohand.handmodel.mano.posing` (PCA pose, forward kinematics and skinning),
:mod:`~halohand.handmodel.mano.sealing` (closing the wrist) and
:mod:`~halohand.handmodel.mano.source` (posed hands and the hand source).
"""

from halohand.handmodel.mano.loader import (
    FALLBACK_POSE_STD,
    MANO_PARENTS,
    NUM_MANO_JOINTS,
    NUM_MANO_VERTICES,
    ManoModel,
    load_mano,
)
from halohand.handmodel.mano.posing import (
    TIP_CONVENTIONS,
    ManoOutput,
    mano_forward,
    mano_keypoints,
    mano_pose,
    tip_ids,
)
from halohand.handmodel.mano.sealing import WRIST_RING, seal_wrist
from halohand.handmodel.mano.source import (
    ManoHandSource,
    mano_posed_hand,
    mirror_hand,
    sample_mano_params,
)

__all__ = [
    "FALLBACK_POSE_STD",
    "MANO_PARENTS",
    "NUM_MANO_JOINTS",
    "NUM_MANO_VERTICES",
    "TIP_CONVENTIONS",
    "WRIST_RING",
    "ManoHandSource",
    "ManoModel",
    "ManoOutput",
    "load_mano",
    "mano_forward",
    "mano_keypoints",
    "mano_pose",
    "mano_posed_hand",
    "mirror_hand",
    "sample_mano_params",
    "seal_wrist",
    "tip_ids",
]
