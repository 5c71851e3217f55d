"""Training configuration: a flat TOML file (plus a ``[model]`` table) -> :class:`TrainConfig`.

Example (``configs/recipes/halo_default.toml``)::

    data = "data/hands"        # folder written by `halohand data generate`
    out = "runs/halo"          # checkpoints, logs and exported models
    variant = "halo"           # halo | halo_gt | nasa_bone_length | nasa_resampled | nasa
    batch_size = 16            # hands per optimizer step (all processes together)
    max_steps = 100000

    [model]                    # optional OccupancyConfig overrides of the variant preset
    smooth_max = false

Relative ``data`` / ``out`` paths are resolved against the current working directory (so a
shipped config works from the repository root); ``halohand train --data/--out`` override
them. Unknown keys, wrong types and out-of-range values raise
:class:`~halohand.core.errors.HalohandInputError` naming the key and the file.

Units: lengths in metres, learning rate per step, times in minutes / hours as named.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halohand.core.errors import HalohandInputError
from halohand.fields import OccupancyConfig, variant_config

__all__ = ["RUN_CONTROL_KEYS", "TrainConfig", "load_config", "read_toml"]

#: Keys that may differ between a run and its ``--resume``: they change how long or how a
#: session runs, not the optimization trajectory.
RUN_CONTROL_KEYS = frozenset(
    {"data", "out", "max_steps", "max_hours", "checkpoint_minutes", "log_every", "workers",
     "threads", "device", "progress"}
)  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``halohand train`` needs (see ``docs/training.md`` for each key).

    Attributes:
        data: data folder written by ``halohand data generate``.
        out: output folder (``checkpoint.pt``, ``log.csv``, ``best.safetensors``, ...).
        variant: model preset (:data:`halohand.fields.VARIANTS`).
        model: :class:`~halohand.fields.OccupancyConfig` field overrides of the preset.
        seed: seeds model init, the hand order and every point subsample.
        device: ``"auto"`` (cuda if available, else cpu), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        batch_size: hands per optimizer step, over all processes (original: 64).
        micro_batch: hands per forward/backward chunk inside a step (gradients accumulate;
            the result equals the full-batch step). 0 = auto: 1 on CPU (activations stay in
            cache, ~2.4x faster than one 16-hand pass when measured), the whole per-process
            batch on GPU and for networks with feature grids (their backward fills a dense
            table gradient per chunk: ~0.7x the step time of 1-hand chunks on CPU,
            ``benchmarks/results/speed/bench_train_step_grids_micro_batch.json``).
        points_per_hand: occupancy query points per hand and step (half uniform, half near
            the surface, drawn with replacement; original 2048).
        surface_per_hand: labelled surface samples per hand for the skinning loss (2000).
        lr: Adam learning rate (1e-4; betas 0.9/0.999, eps 1e-8, no weight decay).
        lr_schedule: ``"constant"`` (the original) or ``"cosine"``: decay from ``lr`` to
            ``lr_min`` over ``max_steps`` (then ``max_steps`` is part of the trajectory and
            may not change on ``--resume``).
        lr_min: final learning rate of the cosine schedule.
        skinning_weight: weight of the skinning loss while it is on (0.5; 0 disables it).
        skinning_off_iou: the skinning loss switches off for good once the validation IoU
            (``val_metric``) reaches this value (0.8, the paper's schedule); > 1 never.
        tip_loss_weight: weight of the occupancy loss at query points within
            ``tip_loss_radius_m`` of a fingertip keypoint (1: every point alike, the
            original); the loss stays a sum over points divided by their count.
        tip_loss_radius_m: that radius (metres; 0.015 reaches the skin past the rig's tip
            joints).
        grid_smoothness: weight of the feature grids' smoothness term
            (:meth:`~halohand.fields.grids.PartGrids.smoothness`, added once per step; 0:
            none; read only for a network with grids).
        grid_curvature: weight of the feature grids' curvature term, their second
            differences (:meth:`~halohand.fields.grids.PartGrids.curvature`; ripples of a
            cell's size), added like ``grid_smoothness``.
        max_steps: optimizer steps of the whole training.
        max_hours: training wall-time budget over all sessions (0 = no limit).
        validate_every: steps between validations (also validated at the last step).
        val_hands: validation hands (the first ones of the ``val`` split).
        val_points: query points per validation hand: 0 = all (100k uniform + 100k near,
            as the original); N > 0 = a fixed seeded subsample (half uniform, half near;
            faster, noisier).
        val_metric: ``"iou_mixed"`` (uniform + near-surface points, the original's 0.9358)
            or ``"iou_uniform"``; selects the best model and drives ``skinning_off_iou``.
        checkpoint_minutes: minutes between checkpoints (also written at the end / on stop).
        log_every: steps between CSV log rows (losses averaged over those steps).
        workers: DataLoader worker processes (0: load in the training process).
        threads: torch CPU threads per process (0 = auto: cores / local processes).
        progress: show a tqdm progress bar (rank 0).
        init_weights: optional model file (``*.safetensors`` or a ``checkpoint.pt``) whose
            weights start a fresh run instead of a random init (fine-tuning / a second
            learning-rate cycle); its architecture must equal this run's, or differ only
            in wider part MLPs (one hidden width throughout), ``point_scale`` or a larger
            pose input, which start as the same function
            (:func:`halohand.training.widen.adapt_network`). The optimizer,
            step count and skinning schedule start fresh. Relative to the cwd.
    """

    data: str = "data/hands"
    out: str = "runs/halo"
    variant: str = "halo"
    model: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    batch_size: int = 16
    micro_batch: int = 0
    points_per_hand: int = 2048
    surface_per_hand: int = 2000
    lr: float = 1e-4
    lr_schedule: str = "constant"
    lr_min: float = 0.0
    skinning_weight: float = 0.5
    skinning_off_iou: float = 0.8
    tip_loss_weight: float = 1.0
    tip_loss_radius_m: float = 0.015
    grid_smoothness: float = 0.0
    grid_curvature: float = 0.0
    max_steps: int = 100_000
    max_hours: float = 0.0
    validate_every: int = 500
    val_hands: int = 10
    val_points: int = 0
    val_metric: str = "iou_mixed"
    checkpoint_minutes: float = 10.0
    log_every: int = 10
    workers: int = 0
    threads: int = 0
    progress: bool = True
    init_weights: str = ""

    def __post_init__(self) -> None:
        _check_types(self, where="config")
        positive = ("batch_size", "points_per_hand", "max_steps", "validate_every", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise HalohandInputError(f"config: {name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "micro_batch",
            "surface_per_hand",
            "workers",
            "threads",
            "val_hands",
            "val_points",
        ):
            if getattr(self, name) < 0:
                raise HalohandInputError(f"config: {name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr", "checkpoint_minutes", "tip_loss_weight", "tip_loss_radius_m"):
            if not getattr(self, name) > 0:
                raise HalohandInputError(f"config: {name} must be > 0, got {getattr(self, name)}")
        for name in ("lr", "lr_min", "skinning_weight", "skinning_off_iou", "max_hours",
                     "tip_loss_weight", "tip_loss_radius_m", "grid_smoothness",
                     "grid_curvature"):  # fmt: skip
            value = getattr(self, name)
            if not math.isfinite(value):
                raise HalohandInputError(f"config: {name} must be finite, got {value}")
        for name in (
            "skinning_weight", "skinning_off_iou", "max_hours", "grid_smoothness",
            "grid_curvature",
        ):  # fmt: skip
            if getattr(self, name) < 0:
                raise HalohandInputError(f"config: {name} must be >= 0, got {getattr(self, name)}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise HalohandInputError(
                f"config: lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}"
            )
        if not 0 <= self.lr_min <= self.lr:
            raise HalohandInputError(f"config: lr_min must be in [0, lr], got {self.lr_min}")
        if self.val_metric not in ("iou_mixed", "iou_uniform"):
            raise HalohandInputError(
                f"config: val_metric must be 'iou_mixed' or 'iou_uniform', got {self.val_metric!r}"
            )
        if self.skinning_weight > 0 and self.surface_per_hand < 1:
            raise HalohandInputError("config: surface_per_hand must be >= 1 with a skinning loss")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise HalohandInputError(
                f"config: device must be auto, cpu or cuda[:N], got {self.device!r}"
            )
        self.model_config()  # validates variant and overrides

    def model_config(self):  # -> OccupancyConfig (import kept lazy)
        """The :class:`~halohand.fields.OccupancyConfig` of the variant with the overrides."""

        names = {f.name for f in dataclasses.fields(OccupancyConfig)}
        unknown = sorted(set(self.model) - names)
        if unknown:
            raise HalohandInputError(
                f"config: unknown [model] key(s) {', '.join(unknown)}; allowed: "
                f"{', '.join(sorted(names - {'variant'}))}"
            )
        if "variant" in self.model:
            raise HalohandInputError("config: set the variant with the top-level 'variant' key")
        overrides = dict(self.model)
        if "hidden" in overrides:
            overrides["hidden"] = tuple(overrides["hidden"])
        try:
            return variant_config(self.variant, **overrides)
        except (ValueError, TypeError) as exc:
            raise HalohandInputError(f"config: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (TOML/JSON-compatible)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], where: str = "config") -> TrainConfig:
        """Build from a parsed document; unknown keys raise ``HalohandInputError``."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(doc) - set(names))
        if unknown:
            raise HalohandInputError(
                f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(names)}"
            )
        if "model" in doc and not isinstance(doc["model"], dict):
            raise HalohandInputError(f"{where}: 'model' must be a table ([model])")
        values = dict(doc)
        # TOML has no int/float distinction for 1 vs 1.0 in users' minds: accept ints for floats.
        for f in dataclasses.fields(cls):
            if f.type == "float" and isinstance(values.get(f.name), int):
                if not isinstance(values[f.name], bool):
                    values[f.name] = float(values[f.name])
        try:
            return cls(**values)
        except HalohandInputError as exc:
            raise HalohandInputError(f"{where}: {str(exc).removeprefix('config: ')}") from None

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_types(cfg: TrainConfig, where: str) -> None:
    kinds = {"str": str, "int": int, "float": float, "bool": bool}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name == "model":
            if not isinstance(value, dict):
                raise HalohandInputError(f"{where}: 'model' must be a table")
            continue
        kind = kinds[str(f.type)]
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(cfg, f.name, float(value))
            ok = True
        if not ok:
            raise HalohandInputError(
                f"{where}: {f.name} must be {kind.__name__}, got {type(value).__name__} {value!r}"
            )


def load_config(path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
    """Read a TOML training config; ``overrides`` (e.g. ``data=...``) replace its keys.

    Raises:
        HalohandInputError: missing/unreadable file, TOML syntax error, unknown key, bad value.
    """
    doc = read_toml(path)
    doc.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(doc, where=str(path))


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The table of a TOML config file.

    Raises:
        HalohandInputError: missing or unreadable file, or a TOML syntax error (one line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HalohandInputError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HalohandInputError(f"{path}: cannot read config ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HalohandInputError(f"{path}: invalid TOML ({exc})") from None
