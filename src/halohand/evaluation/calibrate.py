"""``halohand calibrate``: choose the probability level a model's meshes are extracted at.

A network trained with a binary cross-entropy is not bound to put its most accurate
surface at probability 0.5: a model that blurs the surface a little on the outside (it
hedges near thin fingers) is more accurate at a higher level. The command meshes the hands
of a held-out split (validation; the test split is refused, so that test figures stay
untuned) at each candidate level with :func:`halohand.evaluation.evaluate.evaluate`, picks
the level with the lowest mean Chamfer-L1 (ties: the higher IoU on uniform points), and
writes a copy of the model whose config carries it (``OccupancyConfig.iso_level``).
:class:`halohand.HALO` and ``halohand evaluate`` then mesh at that level by default.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from halohand.core.atomic import write_text_atomic
from halohand.core.errors import HalohandInputError
from halohand.evaluation.evaluate import evaluate
from halohand.fields import save_model
from halohand.fields.io import load_any_model

__all__ = ["DEFAULT_LEVELS", "calibrate"]

#: Candidate levels of ``halohand calibrate``.
DEFAULT_LEVELS = (0.4, 0.5, 0.55, 0.6, 0.65, 0.7)


def calibrate(
    checkpoint: str | os.PathLike[str],
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: str = "val",
    levels: Sequence[float] = DEFAULT_LEVELS,
    limit: int | None = None,
    json_out: str | os.PathLike[str] | None = None,
    resolution: int = 256,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` at each level on ``split`` and save it with the best one.

    Args:
        checkpoint: model file (``*.safetensors`` or a training ``checkpoint.pt``).
        data: data folder (``halohand data generate --out``).
        out: the calibrated model (safetensors, written atomically).
        split: ``val`` (default) or ``train``; ``test`` is refused.
        levels: candidate probability levels, each in (0, 1).
        limit: only the first ``limit`` hands of the split.
        json_out: also write the per-level means and the choice here.
        resolution: extraction lattice cells per axis.

    Returns:
        ``{"levels": {level: means}, "iso_level": chosen, ...}``.
    """

    if resolution < 2:
        raise HalohandInputError(f"resolution must be >= 2, got {resolution}")
    if split == "test":
        raise HalohandInputError(
            "calibrate on the validation split (--split val): choosing the level on the test "
            "split would tune the test figures"
        )
    levels = sorted({float(x) for x in levels})
    if not levels or not all(0.0 < x < 1.0 for x in levels):
        raise HalohandInputError(f"levels must be probabilities in (0, 1), got {levels}")
    net = load_any_model(checkpoint)  # validates the file before the long evaluation
    per_level: dict[str, dict[str, Any]] = {}
    for level in levels:
        doc = evaluate(
            checkpoint, data, split=split, resolution=resolution,
            coarse_resolution=min(32, resolution), limit=limit, progress=progress,
            threshold=level,
        )  # fmt: skip
        per_level[f"{level:g}"] = {"hands": doc["hands"], **doc["mean"]}

    def key(item: tuple[str, dict[str, Any]]) -> tuple[float, float]:
        m = item[1]
        chamfer = m["chamfer_l1_mm"] if m["chamfer_l1_mm"] is not None else float("inf")
        return (chamfer, -(m["iou_uniform"] or 0.0))

    best_name, best = min(per_level.items(), key=key)
    iso_level = float(best_name)
    net.config = dataclasses.replace(net.config, iso_level=iso_level)
    save_model(
        out, net,
        extra_metadata={"calibrated_from": str(checkpoint), "calibrated_on": f"{data}:{split}"},
    )  # fmt: skip
    report: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "data": str(data),
        "split": split,
        "hands": best["hands"],
        "resolution": resolution,
        "criterion": "lowest mean Chamfer-L1 (ties: highest IoU on uniform points)",
        "levels": per_level,
        "iso_level": iso_level,
        "out": str(out),
    }
    if json_out is not None:
        write_text_atomic(Path(json_out), json.dumps(report, indent=1, allow_nan=False) + "\n")
    return report
