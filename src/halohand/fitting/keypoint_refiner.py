"""Learned refinement of noisy keypoints of one or two hands (Im2Hands' keypoint refiner).

Estimators that read keypoints off images leave errors a hand cannot have: bones of the
wrong length, depth off along the viewing ray, fingers swapped. The refiner sees all 42
keypoints of a pair at once (absent hands masked out) and predicts a correction per joint:

    noisy [B, 2, 21, 3] -> per-keypoint encoder (position + joint embedding)
                        -> graph convolutions over the two-hand skeleton (bones, wrist-wrist)
                        -> self-attention over the 42 joints
                        -> offset [B, 2, 21, 3];  refined = noisy + offset

Slot 0 is the right hand, slot 1 the left, both in one world frame (metres, project
order). Inputs are centred on the mean of the present joints and scaled by
:data:`UNIT` (10 cm), so the network sees sizes of about 1 whatever the frame.
Trained by ``halohand train-refiner`` (:mod:`halohand.training.keypoint_refiner`) on hands
of the embedded model with Gaussian and structured noise; weights ship in
``weights/keypoint_refiner.safetensors`` with ``KEYPOINT_REFINER_CARD.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import torch
from torch import Tensor, nn

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.weights_file import load_model_file, save_model, shipped_weights
from halohand.skeleton.bones import PARENTS

__all__ = ["UNIT", "KeypointRefiner", "RefinerConfig", "refine_keypoints", "skeleton_adjacency"]

#: Length (metres) that the network's inputs are divided by.
UNIT: Final = 0.1
#: Joints per hand and hands per input.
JOINTS: Final = 21
HANDS: Final = 2


@dataclass(frozen=True)
class RefinerConfig:
    """Size of the refiner network."""

    width: int = 64
    graph_layers: int = 2
    attention_layers: int = 2
    heads: int = 4


def skeleton_adjacency() -> Tensor:
    """``[42, 42]`` row-normalised adjacency of the two-hand skeleton graph: each hand's
    bones, the two wrists joined, self loops."""
    a = torch.eye(HANDS * JOINTS)
    for h in range(HANDS):
        for child, parent in enumerate(PARENTS):
            if parent >= 0:
                i, j = h * JOINTS + child, h * JOINTS + int(parent)
                a[i, j] = a[j, i] = 1.0
    a[0, JOINTS] = a[JOINTS, 0] = 1.0
    return a / a.sum(-1, keepdim=True)


class _GraphLayer(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)

    def forward(self, h: Tensor, adjacency: Tensor) -> Tensor:
        return h + torch.relu(self.linear(adjacency @ self.norm(h)))


class KeypointRefiner(nn.Module):
    """The refiner network; see the module docstring. Use :meth:`refine` on metres."""

    def __init__(self, config: RefinerConfig | None = None) -> None:
        super().__init__()
        self.config = config or RefinerConfig()
        w = self.config.width
        self.encode = nn.Sequential(nn.Linear(3, w), nn.ReLU(), nn.Linear(w, w))
        self.joint_embedding = nn.Parameter(torch.zeros(HANDS * JOINTS, w))
        nn.init.normal_(self.joint_embedding, std=0.02)
        self.graph = nn.ModuleList(_GraphLayer(w) for _ in range(self.config.graph_layers))
        layer = nn.TransformerEncoderLayer(
            w, self.config.heads, dim_feedforward=2 * w, dropout=0.0,
            batch_first=True, norm_first=True,
        )  # fmt: skip
        self.attention = nn.TransformerEncoder(
            layer, self.config.attention_layers, enable_nested_tensor=False
        )
        self.head = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, 3))
        nn.init.zeros_(self.head[1].weight)
        nn.init.zeros_(self.head[1].bias)
        self.register_buffer("adjacency", skeleton_adjacency(), persistent=False)

    def forward(self, x: Tensor, present: Tensor) -> Tensor:
        """Offsets in network units.

        Args:
            x: ``[B, 42, 3]`` normalised keypoints (centred, divided by :data:`UNIT`).
            present: ``[B, 2]`` bool, which hands are given.

        Returns:
            ``[B, 42, 3]`` corrections (network units); zero for absent hands.
        """
        token_present = present.repeat_interleave(JOINTS, dim=1)  # [B, 42]
        h = self.encode(x) + self.joint_embedding
        # Absent joints neither send nor receive along the graph.
        adjacency = self.adjacency * token_present[:, None, :] * token_present[:, :, None]
        for layer in self.graph:
            h = layer(h, adjacency)
        # An item without any hand would mask every key (NaN in softmax); it has nothing to
        # refine and its output is zeroed below, so let its tokens attend.
        padding = ~token_present & token_present.any(1, keepdim=True)
        h = self.attention(h, src_key_padding_mask=padding)
        return self.head(h) * token_present[..., None]

    def refine(self, keypoints: Tensor, present: Tensor | None = None) -> Tensor:
        """``[B, 2, 21, 3]`` metres -> refined ``[B, 2, 21, 3]`` metres (same frame)."""
        b = keypoints.shape[0]
        if present is None:
            present = torch.ones(b, HANDS, dtype=torch.bool, device=keypoints.device)
        x = keypoints.reshape(b, HANDS * JOINTS, 3)
        mask = present.repeat_interleave(JOINTS, dim=1)[..., None].to(x.dtype)
        centre = (x * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp_min(1.0)
        dt = next(self.parameters()).dtype
        offset = self((x - centre).to(dt) / UNIT, present).to(x.dtype) * UNIT
        return (x + offset).reshape(b, HANDS, JOINTS, 3)


_WEIGHTS: Final = "keypoint_refiner.safetensors"


def save_refiner(model: KeypointRefiner, path: str | os.PathLike[str]) -> None:
    """Write the weights and config to a safetensors file atomically."""
    save_model(path, model, "halohand.keypoint-refiner", model.config)


def load_refiner(path: str | os.PathLike[str] | None = None) -> KeypointRefiner:
    """The shipped refiner, or one saved by :func:`save_refiner`.

    Raises:
        CorruptFileError: a missing, unreadable or foreign file.
    """
    if path is None:
        path = shipped_weights(_WEIGHTS)
        if path is None:
            raise CorruptFileError("no keypoint refiner weights shipped in this build")
    return load_model_file(
        path, "halohand.keypoint-refiner", "keypoint refiner",
        lambda cfg: KeypointRefiner(RefinerConfig(**cfg)),
    )  # fmt: skip


def refine_keypoints(
    keypoints: Any,
    sides: tuple[str, ...] | None = None,
    model: KeypointRefiner | None = None,
) -> np.ndarray:
    """Refine the keypoints of one hand or a pair with the shipped refiner.

    Args:
        keypoints: metres, project order, one world frame: ``[21, 3]`` (one hand),
            ``[2, 21, 3]`` or ``[42, 3]`` (right then left, as :data:`sides` says).
        sides: the side of each given hand (default ``("right",)`` for one hand,
            ``("right", "left")`` for two).
        model: a refiner (default :func:`load_refiner`).

    Returns:
        The refined keypoints, shaped as given (metres).

    Raises:
        HalohandInputError: wrong shape, NaN, sides that do not match the hands.
    """
    arr = np.asarray(keypoints, dtype=np.float64)
    shape = arr.shape
    if shape == (HANDS * JOINTS, 3):
        arr = arr.reshape(HANDS, JOINTS, 3)
    if arr.shape == (JOINTS, 3):
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (JOINTS, 3) or len(arr) not in (1, 2):
        raise HalohandInputError(
            f"keypoints must be [21, 3], [2, 21, 3] or [42, 3], got {list(shape)}"
        )
    if not np.isfinite(arr).all():
        raise HalohandInputError("keypoints contain NaN or inf")
    sides = sides or (("right",) if len(arr) == 1 else ("right", "left"))
    if (
        len(sides) != len(arr)
        or len(set(sides)) != len(sides)
        or not set(sides)
        <= {
            "right",
            "left",
        }
    ):
        raise HalohandInputError(f"sides {sides} do not fit {len(arr)} hand(s) (right and/or left)")
    full = np.zeros((1, HANDS, JOINTS, 3))
    present = torch.zeros(1, HANDS, dtype=torch.bool)
    for hand, side in zip(arr, sides, strict=True):
        slot = 0 if side == "right" else 1
        full[0, slot] = hand
        present[0, slot] = True
    model = model or load_refiner()
    with torch.no_grad():
        out = model.refine(torch.from_numpy(full), present).numpy()[0]
    refined = np.stack([out[0 if s == "right" else 1] for s in sides])
    return refined.reshape(shape)
