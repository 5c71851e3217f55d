"""Where a keypoint source puts its joints on the hand: the embedded rig's convention and
MANO's, told apart and mapped onto each other.

The same 21 joint names mean different places in different sources. The embedded rig (the
WebXR/OpenXR hand the default model is trained on) puts every joint at a joint centre, the
fingertip joint included: its tip sits about one distal-bone length *inside* the finger's
end (``TIP_EXTENSION``). MANO-based datasets (HO3D, DexYCB, FreiHAND, InterHand2.6M) and
MediaPipe put the fingertip keypoint *on the skin* at the end of the finger. A model trained
on the rig reads a MANO tip as a distal bone twice as long and grows a finger ~2 cm past it.

The two are told apart by the tip bone's length over the middle phalanx's (index, middle and
ring fingers): about 0.44-0.48 on the rig, 1.0-1.2 on MANO-based data (median over the real
HO3D-derived frames of ``../shared/reference``). :func:`to_rig` moves each fingertip of a
skin-tip hand back along its distal bone to where the rig's tip joint would be for a finger
that ends ``TIP_MARGIN_M`` beyond the given tip: with the rig's finger extending
``TIP_EXTENSION[f] x`` its distal bone past the tip joint, the distal bone becomes
``(|tip - dip| + margin) / (1 + TIP_EXTENSION[f])``, for the four fingers
(``MOVED_TIPS``). The thumb is left as given: on the real frames the default model's thumb
read as given already ends 3.4 mm past its tip keypoint (median; target 0-5 mm), and moved
by the same rule it would end 3.2 mm short of it; why the model's thumb behaves unlike its
fingers here is not understood (``docs/conventions.md``). The other joints are kept: the
rig's and MANO's knuckles differ too, but by amounts that change the surface far less than
the tips.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import torch

from halohand.skeleton.orders import FINGER_CHAINS

__all__ = [
    "CONVENTIONS", "FINGER_CHAINS", "MANO_RATIO_THRESHOLD", "MOVED_TIPS", "TIP_EXTENSION",
    "TIP_MARGIN_M",
    "detect_convention", "from_rig", "resolve_convention", "tip_ratio", "to_rig",
]  # fmt: skip

#: Conventions a caller may name (``"auto"`` is resolved by :func:`detect_convention`).
CONVENTIONS: Final = ("rig", "mano")

#: How far the embedded hand's skin reaches past each tip joint along the distal bone, over
#: the distal bone's length (thumb to little finger), measured on the template
#: (``tests/test_conventions.py`` measures it again).
TIP_EXTENSION: Final = (0.67, 0.96, 1.03, 0.97, 0.80)

#: The skin-tip keypoint is placed this far inside the finger's end (metres): a surface
#: point of the source's mesh should come out inside, not on, the reconstruction.
TIP_MARGIN_M: Final = 0.002

#: Fingers whose skin tip :func:`to_rig` moves (index to little finger; module docstring).
MOVED_TIPS: Final = (1, 2, 3, 4)

#: Tip bone over middle phalanx above which a hand is read as skin-tipped (MANO-like).
MANO_RATIO_THRESHOLD: Final = 0.75


def _norm(x: Any) -> Any:
    return np.linalg.norm(x, axis=-1) if isinstance(x, np.ndarray) else x.norm(dim=-1)


def tip_ratio(keypoints: Any) -> Any:
    """Tip bone length over middle phalanx length per finger.

    Args:
        keypoints: ``[..., 21, 3]`` project order (any unit; numpy or torch).

    Returns:
        ``[..., 5]`` thumb to little finger (the thumb's "middle phalanx" is MCP -> IP).
    """
    chains = np.asarray(FINGER_CHAINS)
    mid = _norm(keypoints[..., chains[:, 2], :] - keypoints[..., chains[:, 1], :])
    tip = _norm(keypoints[..., chains[:, 3], :] - keypoints[..., chains[:, 2], :])
    if isinstance(tip, np.ndarray):
        with np.errstate(divide="ignore", invalid="ignore"):  # degenerate bones: nan / inf
            return tip / mid
    return tip / mid


def detect_convention(keypoints: Any, pooled: bool = False) -> list[str]:
    """``"mano"`` or ``"rig"`` per hand, from the median tip ratio of the index, middle and
    ring fingers (module docstring).

    Args:
        keypoints: ``[21, 3]`` or ``[N, 21, 3]`` project order (numpy or torch).
        pooled: one reading for all ``N`` hands, from the median over hands and fingers:
            the hands of one sequence or pair come from one source, and noise on single
            frames (which lengthens the short tip bones more than the others) is outvoted.

    Returns:
        one name per hand (a list of one for a single hand).
    """
    kp = keypoints.detach().cpu().numpy() if hasattr(keypoints, "detach") else keypoints
    kp = np.asarray(kp, dtype=np.float64).reshape(-1, 21, 3)
    ratio = np.median(tip_ratio(kp)[:, 1:4], axis=-1)
    if pooled:
        ratio = np.full_like(ratio, np.median(ratio))
    # a degenerate hand (nan ratio) reads as the rig's: its validation says what is wrong
    return ["mano" if r > MANO_RATIO_THRESHOLD else "rig" for r in ratio]


def resolve_convention(convention: str, keypoints: Any) -> list[str]:
    """``convention`` (``"auto"``, ``"rig"`` or ``"mano"``) as one name per hand; ``"auto"``
    reads all the hands of one call alike (:func:`detect_convention` with ``pooled``): a
    call's hands are taken to come from one source.

    Raises:
        ValueError: an unknown name (callers turn it into their own input error).
    """
    if convention == "auto":
        return detect_convention(keypoints, pooled=True)
    if convention not in CONVENTIONS:
        raise ValueError(
            f"unknown keypoint convention {convention!r}: use auto, {', '.join(CONVENTIONS)}"
        )
    n = 1 if keypoints.ndim == 2 else int(keypoints.shape[0])
    return [convention] * n


def to_rig(
    keypoints: Any,
    conventions: list[str],
    scale: float = 1.0,
    fingers: tuple[int, ...] = MOVED_TIPS,
) -> Any:
    """Keypoints in the rig's convention: the fingers' skin tips moved back onto the rig's
    tip joints (the thumb's is kept; module docstring).

    Differentiable (torch) in the keypoints.

    Args:
        keypoints: ``[21, 3]`` or ``[N, 21, 3]`` project order, ``1 / scale`` metres per
            unit (numpy or torch).
        conventions: one name per hand (:func:`resolve_convention`); ``"rig"`` hands are
            returned unchanged.
        scale: metres per input unit (the margin is in metres).
        fingers: the fingers whose tips move (0: thumb ... 4: little); the default is
            :data:`MOVED_TIPS`, a study may move the thumb's by the same rule.

    Returns:
        the same shape and type; a new array or tensor when a hand is moved.
    """
    margin = TIP_MARGIN_M / scale
    return _move_tips(
        keypoints, conventions, lambda length, ext: (length + margin) / (1 + ext), fingers
    )


def from_rig(
    keypoints: np.ndarray,
    conventions: list[str],
    scale: float = 1.0,
    fingers: tuple[int, ...] = MOVED_TIPS,
) -> np.ndarray:
    """The inverse of :func:`to_rig`: rig-placed keypoints given back in each hand's own
    convention (a ``"mano"`` hand's tips moved out to where its finger's skin ends, less
    the margin), so that results go back to a user in the placement they came in.

    Args:
        keypoints: ``[21, 3]`` or ``[N, 21, 3]`` numpy, project order, ``1 / scale`` metres
            per unit.
        conventions: one name per hand.
        scale: metres per input unit.
        fingers: the fingers whose tips move back: those :func:`to_rig` moved.

    Returns:
        the same shape; the input itself when every hand is ``"rig"``.
    """
    margin = TIP_MARGIN_M / scale
    if all(c == "rig" for c in conventions):
        return keypoints
    kp = np.asarray(keypoints, dtype=np.float64)
    return _move_tips(kp, conventions, lambda length, ext: length * (1 + ext) - margin, fingers)


def _move_tips(
    keypoints: Any, conventions: list[str], new_length: Any, fingers: tuple[int, ...] = MOVED_TIPS
) -> Any:
    """``keypoints`` (numpy or torch, ``[21, 3]`` or ``[N, 21, 3]``) with each ``"mano"``
    hand's tips of ``fingers`` moved along their distal bones to ``new_length(length,
    extension)`` from the DIP joint (``extension``: :data:`TIP_EXTENSION` of the finger)."""
    if all(c == "rig" for c in conventions):
        return keypoints
    single = keypoints.ndim == 2
    kp = keypoints[None] if single else keypoints
    chains = np.asarray(FINGER_CHAINS)[list(fingers)]
    dip, tip = kp[:, chains[:, 2], :], kp[:, chains[:, 3], :]
    bone = tip - dip
    length = _norm(bone)[..., None]
    if isinstance(kp, np.ndarray):
        ext = np.asarray(TIP_EXTENSION)[list(fingers), None]
        with np.errstate(divide="ignore", invalid="ignore"):  # zero-length tip bones
            moved = dip + bone / length * new_length(length, ext)
        moved = np.where(length > 0, moved, tip)
        mano = np.asarray([c == "mano" for c in conventions])[:, None, None]
        out = kp.copy()
        out[:, chains[:, 3], :] = np.where(mano, moved, tip)
    else:
        ext = torch.as_tensor(TIP_EXTENSION, dtype=kp.dtype, device=kp.device)
        moved = dip + bone / length * new_length(length, ext[list(fingers), None])
        mano = torch.as_tensor([c == "mano" for c in conventions], device=kp.device)
        out = kp.clone()
        out[:, chains[:, 3], :] = torch.where(mano[:, None, None], moved, tip)
    return out[0] if single else out
