"""The training loop of ``halohand train`` (spec ``halo-model-training-eval.md`` section 2).

Per step, for a batch of ``batch_size`` hands (split over the processes of a ``torchrun``
launch):

* conditioning (:func:`~halohand.fields.inputs.network_inputs`): canonicalization of
  the keypoints under ``no_grad`` (float64), or the ground-truth transforms for the
  ``transforms="mano"`` variants;
* occupancy loss: MSE between the max-combined probability and the {0, 1} labels, mean over
  hands x ``points_per_hand`` (a Brier loss, as the original; not BCE);
* skinning loss (while on): MSE between the 16 per-part probabilities at labelled surface
  samples and the target 0.5 for the owning part, 0 for the others, mean over
  hands x ``surface_per_hand`` x 16; weight ``skinning_weight`` (0.5). It is switched off for
  good the first time the validation IoU reaches ``skinning_off_iou`` (0.8), the paper's
  schedule (:class:`SkinningSchedule`);
* Adam (lr 1e-4, betas 0.9/0.999, eps 1e-8), no clipping; by default a constant rate as
  the original, optionally a cosine decay to ``lr_min`` over ``max_steps``
  (:func:`learning_rate`);
* part supports (``[model] part_radii_m``): only (point, part) pairs within the part's
  radius are evaluated (:func:`~halohand.fields.skipping.skip_mask`, measured on the
  hand-frame points and keypoints), in training, validation and inference alike.

Determinism: the model init, the hand order and every point subsample derive from
``seed``; step ``s`` always sees the same hands and points (:class:`StreamBatchSampler`), so a
run resumed from a checkpoint ends with the same weights as an uninterrupted one.

Outputs in ``out``: ``checkpoint.pt`` (atomic, every ``checkpoint_minutes``, at the end, and
on SIGINT/SIGTERM), ``log.csv`` (append-only rows, trimmed back to the checkpoint's step on
resume), ``best.safetensors`` (best validation ``val_metric``), ``last.safetensors`` and
``config.json``. A :class:`~halohand.training.run.Run` keeps the folder, the checkpoint, the
log and the config file, the stop signals, the wall time and the learning-rate schedule.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from halohand.core.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_KEYS
from halohand.core.device import select_device
from halohand.core.errors import HalohandInputError
from halohand.data.dataset import OccupancyDataset
from halohand.data.engine import verify
from halohand.evaluation import iou
from halohand.evaluation.evaluate import predict_points
from halohand.fields import OccupancyNetwork, save_model
from halohand.fields.inputs import network_inputs
from halohand.fields.io import load_any_model
from halohand.fields.skipping import skip_mask
from halohand.inference.threads import fair_threads, torch_threads
from halohand.skeleton.orders import FINGER_CHAINS
from halohand.training.config import RUN_CONTROL_KEYS, TrainConfig
from halohand.training.run import Run, lr_schedule
from halohand.training.widen import adapt_network

__all__ = [
    "LOG_COLUMNS", "SkinningSchedule", "StreamBatchSampler", "TrainResult", "Trainer",
    "select_device", "train",
]  # fmt: skip

#: Columns of ``log.csv``. Losses are means over the steps since the previous row; val
#: columns are filled on validation steps only; wall_s is training wall time (all sessions).
LOG_COLUMNS = (
    "step", "epoch", "wall_s", "loss", "loss_occ", "loss_skin", "skin_weight", "lr",
    "steps_per_s", "val_iou_mixed", "val_iou_uniform", "best_val",
)  # fmt: skip

_SKIN_TARGET = 0.5  # per-part probability target at the owning part (the iso-level)


# --------------------------------------------------------------------------- schedule


class SkinningSchedule:
    """Skinning-loss weight: ``weight`` until the validation metric first reaches
    ``off_at``, then 0 for good (the paper's schedule; the original switched it by hand).

    Args:
        weight: weight while on (0 = never on).
        off_at: validation IoU at which it switches off (> 1: never).
    """

    def __init__(self, weight: float, off_at: float) -> None:
        self.initial = float(weight)
        self.off_at = float(off_at)
        self.off_step: int | None = None if weight > 0 else 0

    @property
    def weight(self) -> float:
        """Current weight."""
        return 0.0 if self.off_step is not None else self.initial

    def update(self, metric: float, step: int) -> bool:
        """Feed a validation result; returns True when this call switches the loss off."""
        if self.off_step is None and math.isfinite(metric) and metric >= self.off_at:
            self.off_step = int(step)
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"initial": self.initial, "off_at": self.off_at, "off_step": self.off_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.initial = float(state["initial"])
        self.off_at = float(state["off_at"])
        off = state["off_step"]
        self.off_step = None if off is None else int(off)


# --------------------------------------------------------------------------- data order


class StreamBatchSampler(Sampler[list[tuple[int, int]]]):
    """Deterministic, resumable, distributed batches of ``(epoch, hand index)`` keys.

    The training hands form an endless stream: epoch ``e`` is a permutation of all hands
    drawn from ``SeedSequence(seed, spawn_key=(7, e))``. The global batch of step ``s`` is
    stream positions ``[s B, (s + 1) B)``; process ``rank`` of ``world`` takes the
    ``rank``-th contiguous slice of ``B / world`` of them. Like ``DistributedSampler`` every
    process sees disjoint hands of one shared permutation per epoch, but batches are indexed
    by step, so a resumed run continues mid-epoch exactly where it stopped (and the
    trajectory does not depend on the number of processes). The epoch travels with the key
    so the dataset draws the points of that epoch (``OccupancyDataset.set_epoch``).
    """

    def __init__(
        self,
        num_items: int,
        global_batch: int,
        seed: int,
        start_step: int,
        end_step: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if num_items < 1:
            raise HalohandInputError("the training split holds no hands")
        if global_batch % world:
            raise HalohandInputError(
                f"batch_size {global_batch} is not divisible by the {world} processes"
            )
        self.num_items = num_items
        self.global_batch = global_batch
        self.local_batch = global_batch // world
        self.seed = seed
        self.start_step = start_step
        self.end_step = end_step
        self.rank = rank
        self._perm_epoch = -1
        self._perm = np.arange(0)

    def permutation(self, epoch: int) -> np.ndarray:
        """The hand order of ``epoch``."""
        if epoch != self._perm_epoch:
            rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(7, epoch)))
            self._perm = rng.permutation(self.num_items)
            self._perm_epoch = epoch
        return self._perm

    def batch(self, step: int) -> list[tuple[int, int]]:
        """Keys of this process's part of the batch of ``step``."""
        first = step * self.global_batch + self.rank * self.local_batch
        keys = []
        for pos in range(first, first + self.local_batch):
            epoch, k = divmod(pos, self.num_items)
            keys.append((epoch, int(self.permutation(epoch)[k])))
        return keys

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.end_step):
            yield self.batch(step)

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step)


class _EpochItems(Dataset):
    """Map ``(epoch, index)`` keys to items of an ``OccupancyDataset`` drawn for that epoch."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Tensor]:
        epoch, index = key
        self.dataset.set_epoch(epoch)
        return self.dataset[index]


# --------------------------------------------------------------------------- helpers


class _Query(nn.Module):
    """``net.query`` as a module ``forward`` (what DistributedDataParallel wraps)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(
        self,
        points: Tensor,
        part_matrices: Tensor,
        bone_lengths: Tensor,
        part_mask: Tensor | None = None,
        canonical_keypoints: Tensor | None = None,
        knuckle_spread: Tensor | None = None,
    ):
        return self.net.query(
            points, part_matrices, bone_lengths, return_parts=True, part_mask=part_mask,
            canonical_keypoints=canonical_keypoints, knuckle_spread=knuckle_spread,
        )  # fmt: skip


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based).

    ``constant``: ``lr``. ``cosine``: ``lr_min + (lr - lr_min) (1 + cos(pi s / max_steps)) / 2``
    (a function of the step only, so resumed runs follow the same curve;
    :func:`~halohand.training.run.lr_schedule`).
    """
    return lr_schedule(cfg.lr_schedule, cfg.lr, cfg.lr_min, cfg.max_steps)(step)


def tip_loss_weights(
    points_m: Tensor, keypoints_m: Tensor, weight: float, radius_m: float
) -> Tensor | None:
    """Per-point weights of the occupancy loss: ``weight`` within ``radius_m`` of one of the
    five fingertip keypoints, 1 elsewhere; ``None`` when ``weight`` is 1.

    Args:
        points_m: ``[B, N, 3]`` query points, hand frame, metres.
        keypoints_m: ``[B, 21, 3]`` the same frame, metres.
    """
    if weight == 1.0:
        return None
    tips = keypoints_m[:, [chain[3] for chain in FINGER_CHAINS]].to(points_m.dtype)
    near = torch.cdist(points_m, tips).amin(dim=-1) < radius_m
    return torch.where(near, weight, 1.0).to(points_m.dtype)


def support_mask(model_config: Any, points_m: Tensor, keypoints_m: Tensor) -> Tensor | None:
    """``[B, N, K]`` pairs inside the parts' supports, or ``None`` for a model without them.

    Args:
        model_config: the network's :class:`~halohand.fields.OccupancyConfig`.
        points_m: ``[B, N, 3]`` hand frame, metres.
        keypoints_m: ``[B, 21, 3]`` the same frame, metres.
    """
    radii = tuple(getattr(model_config, "part_radii_m", ()) or ())
    if not radii:
        return None

    return skip_mask(points_m.float(), keypoints_m.float(), radii)


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> _Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(
            rank=int(os.environ["RANK"]),
            world=world,
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            local_world=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
        )


@dataclass
class TrainResult:
    """Summary of a :func:`train` session."""

    step: int
    finished: bool
    elapsed_s: float
    session_steps: int
    session_train_s: float
    best_metric: float
    best_step: int
    skinning_off_step: int | None
    out: Path

    @property
    def steps_per_s(self) -> float:
        """Training steps per second of this session (validation excluded)."""
        return self.session_steps / self.session_train_s if self.session_train_s > 0 else 0.0


def _fmt(x: float | None) -> str:
    if isinstance(x, int):
        return str(x)
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:.6g}"


# --------------------------------------------------------------------------- trainer


class Trainer:
    """One training session (fresh or resumed). Use :func:`train`.

    Args:
        config: the run's configuration.
        resume: continue from ``out/checkpoint.pt``.
        stop_after: stop (with a checkpoint, resumable) once this many steps are done in
            total, without the end-of-training validation/export; for smoke tests and to
            split a run into sessions.
    """

    def __init__(
        self, config: TrainConfig, resume: bool = False, stop_after: int | None = None
    ) -> None:
        self.cfg = cfg = config
        self.dist = dist = _Dist.from_env()
        self.run_state = Run(
            cfg.out, cfg.to_dict(), columns=LOG_COLUMNS, format_tag=CHECKPOINT_FORMAT,
            required=CHECKPOINT_KEYS,
            learning_rate=lr_schedule(cfg.lr_schedule, cfg.lr, cfg.lr_min, cfg.max_steps),
            checkpoint_every_s=cfg.checkpoint_minutes * 60.0, main=dist.main, format_value=_fmt,
        )  # fmt: skip
        self.out = self.run_state.folder
        self.ckpt_path = self.run_state.checkpoint_path
        self.log_path = self.run_state.log_path
        self.stop_after = stop_after
        self.device = select_device(cfg.device, dist.local_rank)
        self._threads_before: int | None = None
        self._owns_group = False
        try:
            self._setup(resume)
        except BaseException:
            self.close()
            raise

    def _setup(self, resume: bool) -> None:

        cfg, dist = self.cfg, self.dist
        if self.device.type == "cpu":
            threads = cfg.threads or max(1, (os.cpu_count() or 1) // dist.local_world)
            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(threads)
        if dist.enabled and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            torch.distributed.init_process_group(backend)
            self._owns_group = True
        # nccl reduces CUDA tensors only; gloo CPU ones.
        self._reduce_device = self.device if self.device.type == "cuda" else torch.device("cpu")

        doc = self.run_state.open(resume)
        if doc is not None:
            self._check_resume_config(doc["config"])

        self.model_config = cfg.model_config()
        torch.manual_seed(cfg.seed)
        self.net = OccupancyNetwork(self.model_config).to(self.device)
        self.optimizer = torch.optim.Adam(
            self.net.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8
        )
        self.schedule = SkinningSchedule(cfg.skinning_weight, cfg.skinning_off_iou)
        self.best_metric = -math.inf
        self.best_step = -1
        self.last_val: dict[str, float] = {}
        if doc is not None:
            self.net.load_state_dict(doc["model"])
            self.optimizer.load_state_dict(doc["optimizer"])
            self.schedule.load_state_dict(doc["skinning"])
            best = doc.get("best") or {}
            self.best_metric = float(best.get("metric", -math.inf))
            self.best_step = int(best.get("step", -1))
            self.last_val = dict(doc.get("last_val") or {})
            rng = doc.get("rng") or {}
            if "torch" in rng:
                torch.set_rng_state(rng["torch"])
            if "cuda" in rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        elif cfg.init_weights:
            self._load_init_weights(Path(cfg.init_weights))

        self.query: nn.Module = _Query(self.net)
        if dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.query = nn.parallel.DistributedDataParallel(self.query, device_ids=ids)

        root = Path(cfg.data)
        # The shards are checked (hashes, CRCs) before anything is written to the run
        # folder: a damaged data folder fails here, in seconds, and leaves no run behind.
        verify(root, splits=("train", "val"))
        # a network trained on both fingertip placements sees each hand in one of them
        placement = "mixed" if "mano" in self.model_config.keypoint_conventions else "rig"
        self.train_set = OccupancyDataset(
            root, "train", n_points=cfg.points_per_hand,
            n_surface=max(1, cfg.surface_per_hand), seed=cfg.seed,
            keypoint_convention=placement,
        )  # fmt: skip
        self.val_set = OccupancyDataset(
            root,
            "val",
            n_points=cfg.val_points or None,
            n_surface=1,
            seed=cfg.seed,
            keypoint_convention=placement,
        )  # epoch 0 forever: the same validation points every time
        self.val_indices = list(range(min(cfg.val_hands, len(self.val_set))))
        if cfg.batch_size % dist.world:
            raise HalohandInputError(
                f"batch_size {cfg.batch_size} is not divisible by the {dist.world} processes"
            )
        self.local_batch = cfg.batch_size // dist.world
        if cfg.micro_batch:
            self.micro_batch = min(cfg.micro_batch, self.local_batch)
        elif self.device.type == "cpu" and not self.model_config.grid_resolution:
            self.micro_batch = 1
        else:
            # GPU; or feature grids, whose backward fills a dense table gradient once per
            # chunk (whole batches: ~0.7x the step time of one hand per chunk on CPU)
            self.micro_batch = self.local_batch

    # ------------------------------------------------------------------ bookkeeping

    @property
    def step(self) -> int:
        """Optimizer steps done (all sessions)."""
        return self.run_state.step

    @step.setter
    def step(self, value: int) -> None:
        self.run_state.step = int(value)

    def _load_init_weights(self, path: Path) -> None:

        source = load_any_model(path)
        if source.config != self.model_config:
            # Wider part MLPs, another point_scale or a larger pose input: start from the
            # same function (halohand.training.widen), seeded by the run's seed.

            generator = torch.Generator().manual_seed(self.cfg.seed)
            try:
                source = adapt_network(source, self.model_config, generator)
            except ValueError as exc:
                raise HalohandInputError(
                    f"init_weights {path}: its architecture differs from this run's ({exc}: "
                    f"{source.config.to_json()} vs {self.model_config.to_json()})"
                ) from None
        self.net.load_state_dict(source.state_dict())

    def _check_resume_config(self, saved: dict[str, Any]) -> None:
        current = self.cfg.to_dict()
        # Keys added after a checkpoint was written take their defaults (same behaviour).
        saved = {**TrainConfig().to_dict(), **saved}
        free = set(RUN_CONTROL_KEYS)
        if current.get("lr_schedule") != "constant":
            free.discard("max_steps")  # the decay is spread over max_steps
        diff = sorted(
            k for k in set(saved) | set(current)
            if k not in free and saved.get(k) != current.get(k)
        )  # fmt: skip
        if diff:
            detail = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in diff)
            raise HalohandInputError(
                f"{self.ckpt_path}: the config differs from the checkpoint's ({detail}); only "
                f"{', '.join(sorted(RUN_CONTROL_KEYS))} may change on --resume"
            )

    def _state(self) -> dict[str, Any]:
        """The checkpoint's contents but the run's own (step, elapsed_s, log_window)."""
        rng: dict[str, Tensor] = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "model": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "model_config": self.model_config.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "skinning": self.schedule.state_dict(),
            "best": {"metric": self.best_metric, "step": self.best_step},
            "last_val": dict(self.last_val),
            "config": self.cfg.to_dict(),
        }

    def _window(self) -> dict[str, float]:
        """The log window (:meth:`Run.add`) with the loss sums of all processes (collective);
        ``steps`` and ``train_s`` are this process's."""
        window = self.run_state.window
        occ, skin = self._agree([window.get("occ", 0.0), window.get("skin", 0.0)], "sum")
        return {**window, "occ": occ, "skin": skin}

    def _save_checkpoint(self, elapsed: float | None = None) -> None:
        """Write ``checkpoint.pt`` (collective: every process calls it)."""
        window = self._window()
        self.run_state.save(self._state() if self.dist.main else {}, elapsed, window)

    def _export(self, name: str, extra: dict[str, Any]) -> None:

        meta = {"step": str(self.step), "train_config": json.dumps(self.cfg.to_dict())}
        meta.update({k: str(v) for k, v in extra.items()})
        save_model(self.out / name, self.net, extra_metadata=meta)

    # ------------------------------------------------------------------ the step

    def _batch_to_device(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        nb = self.device.type == "cuda"
        return {k: v.to(self.device, non_blocking=nb) for k, v in batch.items()}

    def train_step(self, batch: dict[str, Tensor]) -> tuple[float, float]:
        """One optimizer step on this process's part of a batch.

        Args:
            batch: collated items of :class:`~halohand.data.dataset.OccupancyDataset`
                (``[b, ...]``), on the training device.

        Returns:
            ``(loss_occ, loss_skin)`` of this process's hands (floats; skin 0 when off).
        """
        # Small kernels: on a shared machine, OpenMP threads that a neighbour deschedules
        # stall every parallel region; fair_threads drops to the cores free right now.
        with torch_threads(fair_threads(torch.get_num_threads())):
            return self._train_step(batch)

    def _train_step(self, batch: dict[str, Tensor]) -> tuple[float, float]:
        """:meth:`train_step` at the thread count it chose."""
        w_skin = self.schedule.weight
        inputs = network_inputs(
            self.model_config, batch["keypoints"], batch["side"],
            batch["part_transforms"], batch["bone_lengths"],
        )  # fmt: skip
        points_m = batch["points"]  # [b, N, 3] hand frame
        occ_gt = batch["occupancies"]
        b, n = occ_gt.shape
        if w_skin > 0:
            labels = batch["surface_labels"]
            s = labels.shape[1]
            k = self.model_config.num_parts
            points_m = torch.cat([points_m, batch["surface_points"]], dim=1)
        points = inputs.points(points_m)  # network frame
        mask = support_mask(self.model_config, points_m, batch["keypoints"])
        spread = inputs.knuckle_spread if self.model_config.knuckle_spread else None
        tip_weight = tip_loss_weights(
            points_m[:, :n], batch["keypoints"], self.cfg.tip_loss_weight,
            self.cfg.tip_loss_radius_m,
        )  # fmt: skip
        self.run_state.set_lr(self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        total_occ = torch.zeros((), device=self.device)
        total_skin = torch.zeros((), device=self.device)
        mb = self.micro_batch
        starts = list(range(0, b, mb))
        for i, start in enumerate(starts):
            sl = slice(start, start + mb)
            sync = i == len(starts) - 1
            ctx = (
                self.query.no_sync() if self.dist.enabled and not sync else contextlib.nullcontext()
            )
            with ctx:
                occ, parts = self.query(
                    points[sl],
                    inputs.part_matrices[sl],
                    inputs.bone_lengths[sl],
                    None if mask is None else mask[sl],
                    None if inputs.canonical_keypoints is None else inputs.canonical_keypoints[sl],
                    None if spread is None else spread[sl],
                )
                sq = (occ[:, :n] - occ_gt[sl]).square()
                if tip_weight is not None:
                    sq = sq * tip_weight[sl]
                loss_occ = sq.sum() / (b * n)
                loss = loss_occ
                if w_skin > 0:
                    target = torch.zeros_like(parts[:, n:])
                    target.scatter_(2, labels[sl, :, None], _SKIN_TARGET)
                    loss_skin = (parts[:, n:] - target).square().sum() / (b * s * k)
                    loss = loss + w_skin * loss_skin
                    total_skin += loss_skin.detach()
                loss.backward()
            total_occ += loss_occ.detach()
        grids = self.net.grids
        if grids is not None:
            terms = ((self.cfg.grid_smoothness, grids.smoothness),
                     (self.cfg.grid_curvature, grids.curvature))  # fmt: skip
            penalties = [weight * term() for weight, term in terms if weight > 0]
            if penalties:
                sum(penalties).backward()
        self.optimizer.step()
        return float(total_occ), float(total_skin)

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self, chunk: int | None = None) -> dict[str, float]:
        """Per-hand IoU on the validation hands (mean over hands, all processes).

        Returns:
            ``{"iou_mixed": ..., "iou_uniform": ..., "hands": n}``: IoU of (p >= 0.5) vs the
            labels on the hand's uniform + near-surface points (all 100k + 100k unless
            ``val_points``), and on the uniform ones only.
        """

        sums = torch.zeros(3, dtype=torch.float64, device=self._reduce_device)
        for idx in self.val_indices[self.dist.rank :: self.dist.world]:
            item = self.val_set[idx]
            occ = predict_points(
                self.net, self.model_config, item, item["points"], self.device, chunk
            )
            pred = (occ >= 0.5).cpu().numpy()
            gt = item["occupancies"].numpy() >= 0.5
            uni = item["point_is_uniform"].numpy()
            sums += torch.tensor(
                [iou(pred, gt), iou(pred[uni], gt[uni]), 1.0],
                dtype=torch.float64,
                device=sums.device,
            )
        if self.dist.enabled:
            torch.distributed.all_reduce(sums)
        count = float(sums[2])
        if count == 0:
            return {"iou_mixed": math.nan, "iou_uniform": math.nan, "hands": 0.0}
        return {
            "iou_mixed": float(sums[0]) / count,
            "iou_uniform": float(sums[1]) / count,
            "hands": count,
        }

    # ------------------------------------------------------------------ the loop

    def _loader(self, end_step: int) -> DataLoader:
        sampler = StreamBatchSampler(
            len(self.train_set), self.cfg.batch_size, self.cfg.seed, self.step, end_step,
            self.dist.rank, self.dist.world,
        )  # fmt: skip
        return DataLoader(
            _EpochItems(self.train_set),
            batch_sampler=sampler,
            num_workers=self.cfg.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    def _agree(self, values: list[float], op: str = "max") -> list[float]:
        """Reduce small per-process values (stop flags, timers) so every process agrees."""
        if not self.dist.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self._reduce_device)
        torch.distributed.all_reduce(
            t, op=torch.distributed.ReduceOp.MAX if op == "max" else torch.distributed.ReduceOp.SUM
        )
        return t.tolist()

    def run(self) -> TrainResult:
        """Train until ``max_steps`` / ``max_hours`` (finished) or ``stop_after`` / a signal."""
        from tqdm import tqdm

        cfg, run = self.cfg, self.run_state
        run.start()
        if self.dist.enabled:
            torch.distributed.barrier()
        if not self.val_indices and self.dist.main and self.schedule.off_step is None:
            print(
                "warning: no validation hands (val_hands = 0 or an empty val split): the "
                "skinning loss never switches off and best.safetensors is the last model",
                file=sys.stderr,
            )
        budget_s = cfg.max_hours * 3600.0 if cfg.max_hours > 0 else math.inf
        end_step = cfg.max_steps
        if self.stop_after is not None:
            end_step = min(end_step, max(self.step, self.stop_after))
        train_s = 0.0
        session_steps = 0
        finished = self.step >= cfg.max_steps or run.elapsed_prev >= budget_s
        bar = tqdm(
            total=cfg.max_steps, initial=self.step, disable=not (cfg.progress and self.dist.main),
            dynamic_ncols=True, desc="train", file=sys.stderr,
        )  # fmt: skip

        with run.stop_signals(), bar:
            loader_iter = iter(self._loader(end_step)) if not finished else iter(())
            while not finished and self.step < end_step:
                t0 = time.monotonic()
                batch = self._batch_to_device(next(loader_iter))
                w_skin = self.schedule.weight
                l_occ, l_skin = self.train_step(batch)
                self.step += 1
                dt = time.monotonic() - t0
                train_s += dt
                session_steps += 1
                # losses and training seconds since the last log row
                run.add(occ=l_occ, skin=l_skin, steps=1.0, train_s=dt)
                bar.update(1)
                flags = self._agree([
                    float(run.stop_requested), float(run.elapsed() >= budget_s),
                    float(run.checkpoint_due()),
                ])  # fmt: skip
                interrupted, done_budget, checkpoint_due = (f > 0 for f in flags)
                finished = self.step >= cfg.max_steps or done_budget
                row: dict[str, Any] = {}
                if self.step % cfg.log_every == 0 or finished:
                    window = self._window()
                    run.take_window()
                    k = max(window.get("steps", 0.0) * self.dist.world, 1.0)
                    occ_m, skin_m, win_s = window["occ"], window["skin"], window.get("train_s")
                    row.update(
                        loss=(occ_m + w_skin * skin_m) / k, loss_occ=occ_m / k,
                        loss_skin=skin_m / k if w_skin > 0 else None,
                        steps_per_s=window["steps"] / win_s if win_s else None,
                    )  # fmt: skip
                    bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
                if self.val_indices and (self.step % cfg.validate_every == 0 or finished):
                    val = self.validate()
                    metric = val[cfg.val_metric]
                    self.last_val = {**val, "step": float(self.step)}
                    row.update(val_iou_mixed=val["iou_mixed"], val_iou_uniform=val["iou_uniform"])
                    if metric > self.best_metric:
                        self.best_metric, self.best_step = metric, self.step
                        if self.dist.main:
                            self._export(
                                "best.safetensors", {f"val_{k}": v for k, v in val.items()}
                            )
                    if self.schedule.update(metric, self.step) and self.dist.main:
                        tqdm.write(
                            f"step {self.step}: validation {cfg.val_metric} {metric:.4f} >= "
                            f"{self.schedule.off_at}: skinning loss switched off",
                            file=sys.stderr,
                        )
                    bar.set_postfix(iou=f"{metric:.4f}", refresh=False)
                if row:
                    row.update(
                        step=self.step, epoch=self.step * cfg.batch_size / len(self.train_set),
                        wall_s=run.elapsed(), skin_weight=w_skin, lr=run.lr(self.step - 1),
                        best_val=self.best_metric if self.best_step >= 0 else None,
                    )  # fmt: skip
                    run.log(row)
                if checkpoint_due:
                    self._save_checkpoint()
                if interrupted:
                    # No row for the steps since the last one: they stay in the checkpoint's
                    # log window, and the resumed run's next row covers them.
                    break
        total = run.elapsed()
        self._save_checkpoint(total)
        if finished and self.dist.main:
            self._export("last.safetensors", {"val": json.dumps(self.last_val)})
            if self.best_step < 0:  # no validation hands: the last model is the best we know
                self._export("best.safetensors", {"val": "none"})
        if self.dist.enabled:
            torch.distributed.barrier()
        return TrainResult(
            step=self.step, finished=finished, elapsed_s=total, session_steps=session_steps,
            session_train_s=train_s, best_metric=self.best_metric, best_step=self.best_step,
            skinning_off_step=self.schedule.off_step, out=self.out,
        )  # fmt: skip

    def close(self) -> None:
        """Release the run folder; tear down the process group this trainer created; restore
        the thread count."""
        if getattr(self, "run_state", None) is not None:
            self.run_state.close()
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
            self._threads_before = None
        if self._owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            self._owns_group = False


def train(config: TrainConfig, resume: bool = False, stop_after: int | None = None) -> TrainResult:
    """Run (or resume) a training session; see :class:`Trainer` and the module docstring."""
    trainer = Trainer(config, resume=resume, stop_after=stop_after)
    try:
        return trainer.run()
    finally:
        trainer.close()
