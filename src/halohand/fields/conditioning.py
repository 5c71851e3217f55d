"""Keypoints -> network inputs of the occupancy field (the HALO keypoint conditioning).

Units and frames (HALO's inference convention, spec halo-model-training-eval.md 1.3):

* keypoints and query points in **metres**, in any common frame (the input frame);
* ``G`` (global normalization of the canonicalization layer) maps the input frame to the
  HALO frame; query points enter the network as ``G x / 0.4`` (HALO units);
* part matrices in HALO units ``S^-1 M_k S`` (``S = diag(.4, .4, .4, 1)``) map those to the
  16 canonical part frames; their translation columns are the pose code;
* bone lengths stay in metres.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from halohand.canonical import canonicalize
from halohand.core.errors import HalohandInputError
from halohand.core.units import HALO_UNIT_M
from halohand.fields.knuckles import knuckle_spread

__all__ = ["HALO_UNIT_M", "HandConditioning", "hand_conditioning"]


@dataclass(frozen=True)
class HandConditioning:
    """Everything the network needs about a batch of hands (besides the query points).

    Attributes:
        global_transform: ``[B, 4, 4]`` ``G``, input frame -> HALO frame, metres.
        part_matrices: ``[B, 16, 4, 4]`` HALO frame -> canonical part frames, HALO units.
        bone_lengths: ``[B, 16]`` per-part bone lengths, metres.
        keypoints: ``[B, 21, 3]`` the input keypoints (metres, input frame); used for
            part skipping.
        canonical_keypoints: ``[B, 21, 3]`` the canonical skeleton (metres), read by
            networks whose grids follow the skeleton (``grid_frame`` ``"bone"`` or ``"finger"``).
        spread_known: ``[B]`` bool, whether each hand's knuckle spread is read from its
            keypoints (:attr:`knuckle_spread`); ``None``: every hand's is. A hand whose
            knuckles a dataset places otherwise than the rig (MANO's regressed joints) has
            a spread that the rig's statistics do not describe, and reads as the typical
            hand instead (0).
    """

    global_transform: Tensor
    part_matrices: Tensor
    bone_lengths: Tensor
    keypoints: Tensor
    canonical_keypoints: Tensor | None = None
    spread_known: Tensor | None = None

    def select(self, index: int, device: torch.device | str | None = None) -> HandConditioning:
        """Hand ``index`` of the batch (every field ``[1, ...]``), on ``device`` if given."""

        def one(t: Tensor | None) -> Tensor | None:
            return None if t is None else t[index : index + 1].to(device)

        return HandConditioning(**{f.name: one(getattr(self, f.name)) for f in fields(self)})

    @property
    def knuckle_spread(self) -> Tensor:
        """``[B]`` the hands' standardized knuckle spread
        (:func:`~halohand.fields.knuckles.knuckle_spread` of the keypoints), 0 for the
        hands whose ``spread_known`` is false."""
        spread = knuckle_spread(self.keypoints)
        if self.spread_known is None:
            return spread
        return torch.where(self.spread_known.to(spread.device), spread, torch.zeros_like(spread))

    @property
    def pose_code(self) -> Tensor:
        """``[B, 16, 3]`` part matrices applied to the origin (HALO units)."""
        return self.part_matrices[..., :3, 3]

    def to_halo_frame(self, points_m: Tensor) -> Tensor:
        """``[B, N, 3]`` metres (input frame) -> network input frame, HALO units."""
        g = self.global_transform
        p = points_m.to(g.dtype)
        return (torch.einsum("bij,bnj->bni", g[:, :3, :3], p) + g[:, None, :3, 3]) / HALO_UNIT_M


def hand_conditioning(
    keypoints_m: Tensor, side: str | Tensor = "right", spread_known: Tensor | None = None
) -> HandConditioning:
    """Run the canonicalization layer (float64) and collect the network inputs.

    Args:
        keypoints_m: ``[B, 21, 3]`` keypoints in metres, the project's (OpenPose) order.
        side: ``"right"``, ``"left"`` or a ``[B]`` bool tensor (True = left); left hands
            are mirrored inside ``G``, so query points stay in their original coordinates.
        spread_known: optional ``[B]`` bool (:attr:`HandConditioning.spread_known`).
    """

    if keypoints_m.ndim != 3 or keypoints_m.shape[1:] != (21, 3):
        raise HalohandInputError(f"keypoints must be [B, 21, 3], got {list(keypoints_m.shape)}")
    kp = keypoints_m.to(torch.float64)
    canon = canonicalize(kp, side=side)
    return HandConditioning(
        global_transform=canon.global_transform,
        part_matrices=canon.part_transforms_halo_units,
        bone_lengths=canon.part_bone_lengths,
        keypoints=kp,
        canonical_keypoints=canon.canonical_keypoints,
        spread_known=None if spread_known is None else torch.as_tensor(spread_known, dtype=bool),
    )
