"""Per-grasp energies shared by generation, refinement, training and evaluation.

* :func:`interior_points`: points inside an object (for penetration);
* :func:`valid_hands`: hands the canonicalization layer accepts;
* :func:`interpenetration`: HALO occupancy of a hand at object interior points, with
  gradients to the keypoints (HALO-VAE's interpenetration loss and refinement energy);
* :func:`bone_lengths`: lengths of the project's 20 bones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from halohand.canonical import canonicalize
from halohand.core.errors import HalohandInputError
from halohand.skeleton.bones import BONES

__all__ = ["bone_lengths", "interior_points", "interpenetration", "valid_hands"]


def interior_points(obj: Any, n: int, seed: int) -> np.ndarray:
    """``[n, 3]`` points uniform inside a :class:`~halohand.objects.registry.GraspObject` (m)."""
    return obj.interior_points(n, seed)


def bone_lengths(keypoints: Tensor) -> Tensor:
    """``[..., 20]`` lengths of the project's bones (same unit as ``keypoints [..., 21, 3]``)."""
    parent = torch.tensor([p for p, _ in BONES])
    child = torch.tensor([c for _, c in BONES])
    return torch.linalg.vector_norm(keypoints[..., child, :] - keypoints[..., parent, :], dim=-1)


def valid_hands(keypoints: Tensor) -> Tensor:
    """``[B]`` bool: hands the canonicalization layer accepts (no degenerate bone)."""
    kp = keypoints.detach().double()
    try:
        canonicalize(kp, "right")
        return torch.ones(len(kp), dtype=torch.bool)
    except HalohandInputError:
        pass
    ok = torch.zeros(len(kp), dtype=torch.bool)
    for i in range(len(kp)):
        try:
            canonicalize(kp[i : i + 1], "right")
            ok[i] = True
        except HalohandInputError:
            pass
    return ok


def interpenetration(halo: Any, keypoints_cm: Tensor, interior_cm: Tensor) -> Tensor:
    """Mean over ``[B, I, 3]`` interior points of HALO occupancy where it exceeds 0.5, ``[B]``.

    Gradients flow into the keypoints through the canonicalization layer; the occupancy
    network's own weights are not trained. A hand with a degenerate bone (a decoder can
    produce one) scores 0 and passes no gradient.
    """

    def loss(kp: Tensor) -> Tensor:
        occ = halo.occupancy(interior_cm / 100.0, kp / 100.0, side="right", units="m", grad=True)
        return (occ * (occ > 0.5)).mean(-1)

    try:  # the usual case: every hand is valid, and the batch is canonicalized once
        return loss(keypoints_cm)
    except HalohandInputError:
        ok = valid_hands(keypoints_cm)
        if ok.all():
            raise
    if not ok.any():
        return keypoints_cm.new_zeros(len(keypoints_cm))
    stand_in = keypoints_cm[int(torch.nonzero(ok)[0, 0])].detach()
    return loss(torch.where(ok[:, None, None], keypoints_cm, stand_in)) * ok.to(torch.float32)
