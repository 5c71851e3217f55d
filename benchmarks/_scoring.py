"""Shared pieces of the benchmarks that score a model file directly: which model, which
hands of a split, and the model's decisions on a hand's stored query points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


def model_or_shipped(path: str | None) -> tuple[str, Any]:
    """``(path, network)`` of the model file ``path``, or of the shipped weights."""
    from halohand.fields.io import load_any_model
    from halohand.inference.halo import pretrained_path

    checkpoint = path or str(pretrained_path())
    return checkpoint, load_any_model(checkpoint)


#: A plain per-part MLP network (no grids, no point features): the default model until stop
#: 42, kept for benchmarks that add features to, or widen, such a network.
MLP_BASELINE = Path(__file__).resolve().parent / "baselines" / "halo_mlp_v1.safetensors"


def hand_indices(split: str, available: int, n: int) -> list[int]:
    """``n`` hands of a split with ``available`` hands: evenly spaced over ``train``, the
    first ones of ``val`` and ``test``."""
    n = min(n, available)
    step = max(1, available // n) if split == "train" and n else 1
    return list(range(0, step * n, step))


def stored_decisions(
    net: Any, hand: dict[str, Any], item: dict[str, Any], key: str
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """The hand's stored ``points_{key}`` (``[N, 3]`` float32 metres), the model's
    decisions there (probability >= its ``iso_level``) and the labels (``[N]`` bool each).
    ``hand`` / ``item``: ``OccupancyDataset.hand(i)`` / ``OccupancyDataset[i]``."""
    from halohand.training.trainer import predict_points

    points = torch.from_numpy(np.asarray(hand[f"points_{key}"], dtype=np.float32))
    prob = predict_points(net, net.config, item, points, torch.device("cpu")).numpy()
    label = np.asarray(hand[f"occ_{key}"]).astype(bool)
    return points, prob >= net.config.iso_level, label
