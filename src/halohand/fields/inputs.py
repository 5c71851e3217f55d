"""Network inputs of a batch of data hands, for both transform sources of the variants.

Frames and units (see ``docs/training.md``):

* Data points are metres in the hand frame (wrist at the origin), as the data engine stores
  them (:mod:`halohand.data.constants`).
* ``transforms="keypoints"`` (``halo``, the default): the canonicalization layer on the 21
  keypoints gives ``G`` (hand frame -> HALO frame) and the part matrices in HALO units; points
  enter the network as ``G p / 0.4`` (:meth:`HandConditioning.to_halo_frame`). The layer runs
  in float64 under ``no_grad``: the network's gradient w.r.t. the keypoints is never needed
  for training the occupancy network, so no autograd graph is built for it.
* ``transforms="mano"`` (``nasa*``, ``halo_gt``): the ground-truth part transforms ``T_k`` of
  the data (posed -> canonical, metres, hand frame) are used directly. Points enter as
  ``p / 0.4`` and the part matrices are ``M_k = S^-1 F T_k S`` with ``S = diag(.4, .4, .4, 1)``
  (the same HALO-unit convention as the keypoint pipeline: canonical coordinates in HALO
  units) and ``F = diag(-1, 1, 1, 1)`` for left hands, identity for right ones. Left hands
  in the data are mirrored right hands (``T_left = F T_right F``), so ``F T_left = T_right F``
  maps a left hand into the *right* canonical hand, as the keypoint pipeline does; without
  ``F`` left and right hands would land in mirrored canonical spaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from halohand.core.units import HALO_UNIT_M
from halohand.fields.conditioning import hand_conditioning
from halohand.fields.knuckles import knuckle_spread
from halohand.fields.occupancy import OccupancyConfig

__all__ = ["NetworkInputs", "network_inputs"]


@dataclass(frozen=True)
class NetworkInputs:
    """Per-hand network inputs, float32, on the batch's device.

    Attributes:
        part_matrices: ``[B, 16, 4, 4]`` network frame -> canonical part frames, HALO units.
        bone_lengths: ``[B, 16]`` metres.
        rotation: ``[B, 3, 3]`` and ``translation`` ``[B, 3]``: hand frame (metres) ->
            network input frame (HALO units), ``x_net = R p + t``.
        keypoints: ``[B, 21, 3]`` metres, hand frame (for part supports), when given.
        canonical_keypoints: ``[B, 21, 3]`` the canonical skeleton, metres (keypoint
            pipeline only; read by bone- and finger-frame grids).
    """

    part_matrices: Tensor
    bone_lengths: Tensor
    rotation: Tensor
    translation: Tensor
    keypoints: Tensor | None = None
    canonical_keypoints: Tensor | None = None

    def points(self, points_m: Tensor) -> Tensor:
        """``[B, N, 3]`` metres (hand frame) -> ``[B, N, 3]`` network input frame, float32."""
        p = points_m.to(self.rotation.dtype)
        return torch.einsum("bij,bnj->bni", self.rotation, p) + self.translation[:, None]

    #: The name :func:`halohand.inference.query.query_occupancy` calls it by.
    to_halo_frame = points

    @property
    def knuckle_spread(self) -> Tensor | None:
        """``[B]`` the hands' standardized knuckle spread
        (:func:`~halohand.fields.knuckles.knuckle_spread`), ``None`` without keypoints."""
        if self.keypoints is None:
            return None
        return knuckle_spread(self.keypoints.to(self.rotation.dtype))


def _mirror_left(side: Tensor, dtype: torch.dtype) -> Tensor:
    """``[B, 4, 4]`` F = diag(-1, 1, 1, 1) for left hands, identity for right hands."""
    diag = torch.ones(side.shape[0], 4, dtype=dtype, device=side.device)
    diag[:, 0] = torch.where(side.bool(), -1.0, 1.0).to(dtype)
    return torch.diag_embed(diag)


def network_inputs(
    config: OccupancyConfig,
    keypoints_m: Tensor,
    side: Tensor,
    part_transforms_m: Tensor | None = None,
    bone_lengths_m: Tensor | None = None,
) -> NetworkInputs:
    """Conditioning of a batch of hands for ``config.transforms``.

    Args:
        config: the model's config (reads ``transforms``).
        keypoints_m: ``[B, 21, 3]`` metres, hand frame, project order.
        side: ``[B]`` int/bool, 1/True = left.
        part_transforms_m: ``[B, 16, 4, 4]`` ground-truth posed -> canonical maps (metres);
            needed for ``transforms="mano"``.
        bone_lengths_m: ``[B, 16]`` ground-truth bone lengths (metres); needed for
            ``transforms="mano"`` (the keypoint pipeline measures them on the keypoints).

    Returns:
        :class:`NetworkInputs` in float32.
    """
    f32 = torch.float32
    if config.transforms == "keypoints":
        with torch.no_grad():
            hc = hand_conditioning(keypoints_m, side=side.bool())
            g = hc.global_transform
            return NetworkInputs(
                part_matrices=hc.part_matrices.to(f32),
                bone_lengths=hc.bone_lengths.to(f32),
                rotation=(g[:, :3, :3] / HALO_UNIT_M).to(f32),
                translation=(g[:, :3, 3] / HALO_UNIT_M).to(f32),
                keypoints=keypoints_m,
                canonical_keypoints=hc.canonical_keypoints.to(f32),
            )
    if part_transforms_m is None or bone_lengths_m is None:
        raise ValueError(
            "transforms='mano' needs the ground-truth part transforms and bone lengths"
        )
    t = part_transforms_m.to(torch.float64)
    s = torch.diag(torch.tensor([HALO_UNIT_M] * 3 + [1.0], dtype=t.dtype, device=t.device))
    s_inv = torch.diag(torch.tensor([1 / HALO_UNIT_M] * 3 + [1.0], dtype=t.dtype, device=t.device))
    m = s_inv @ _mirror_left(side, t.dtype)[:, None] @ t @ s
    b = t.shape[0]
    eye = torch.eye(3, dtype=f32, device=t.device).expand(b, 3, 3)
    return NetworkInputs(
        part_matrices=m.to(f32),
        bone_lengths=bone_lengths_m.to(f32),
        rotation=eye / HALO_UNIT_M,
        translation=torch.zeros(b, 3, dtype=f32, device=t.device),
        keypoints=keypoints_m,
    )
