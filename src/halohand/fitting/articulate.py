"""Moving a 21-joint skeleton by joint rotations that keep every bone's length.

Refinements that must not distort a hand (:mod:`~halohand.fitting.pair_refine`,
:mod:`~halohand.fitting.contact_refine`) move keypoints through this forward kinematics
instead of free per-joint offsets: bone ``j`` (from its parent ``p`` to ``j``) is turned by
the product of the rotations of ``p`` and all of ``p``'s ancestors, so lengths stay exact
and a rotation at a knuckle moves the whole finger below it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from halohand.core.rotations import axis_angle_to_matrix
from halohand.skeleton.bones import PARENTS

__all__ = ["articulate"]


def articulate(base: Tensor, turns: Tensor, shift: Tensor | None = None) -> Tensor:
    """Posed keypoints ``[B, 21, 3]`` from rest keypoints and joint rotations.

    Args:
        base: ``[B, 21, 3]`` keypoints (any length unit), project order.
        turns: ``[B, J, 3]`` axis-angle (radians) at joints ``0..J-1`` (``J`` = 1: the whole
            hand about the wrist; ``J`` = 21: every joint; a tip's rotation moves nothing).
        shift: ``[B, 1, 3]`` or ``[B, 3]`` translation added last (same unit as ``base``).

    Returns:
        ``[B, 21, 3]``: the wrist stays (before ``shift``); every bone keeps its length.
    """
    b, j = turns.shape[0], turns.shape[1]
    rot = axis_angle_to_matrix(turns)  # [B, J, 3, 3]
    eye = torch.eye(3, dtype=base.dtype, device=base.device).expand(b, 3, 3)
    acc = [rot[:, 0]] + [eye] * 20  # accumulated rotation of the bones leaving each joint
    out = [base[:, 0]]
    for k in range(1, 21):
        p = int(PARENTS[k])
        bone = (base[:, k] - base[:, p])[:, None] @ acc[p].transpose(-1, -2)
        out.append(out[p] + bone[:, 0])
        acc[k] = acc[p] @ rot[:, k] if k < j else acc[p]
    posed = torch.stack(out, dim=1)
    if shift is not None:
        posed = posed + shift.reshape(b, 1, 3)
    return posed
