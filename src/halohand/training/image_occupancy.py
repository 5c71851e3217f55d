"""Training of the image-conditioned initial occupancy (:mod:`halohand.inference.image_occupancy`).

Data: a ``pairs`` dataset (``halohand data pairs``) and its renders (``halohand data
pair-images``, same splits). HALO is frozen: its share of every pair (keypoints, a pool of
query points with both hands' labels and HALO's probabilities) is the pair refiner's cache
(:func:`halohand.training.pair_refiner.build_cache`, ``OUT/cache_<split>.npz``; a cache of
``halohand train-pair-refiner`` with the same settings can be copied in). The renders are
read whole into memory (uint8; 320 pairs x 4 views of 128^2 are 63 MB).

Each step draws ``batch`` pairs, one of each pair's views at random and ``points`` pool
points per pair; the loss is BCE of the refined level logits against both hands' labels
plus ``mask_weight`` times the cross entropy of the encoder's auxiliary segmentation
(background / right / left, at stride 2) against the render's mask. The run ends after
``steps`` steps or ``seconds`` of steps, whichever comes first; the learning rate follows
a cosine over the farther of the two (so two runs with one wall-clock budget both end at
a learning rate of zero, the A/B of docs/two_hands.md). Validation: per-hand IoU at the
mesh level of the refined and of HALO's fields on the val pools, each val pair seen in its
view 0. Checkpoints (``OUT/checkpoint.pt``, atomic) make the run resumable; progress goes
to ``OUT/train.log``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from halohand.core.atomic import write_text_atomic
from halohand.core.checkpoint import load_checkpoint, save_checkpoint
from halohand.core.device import select_device
from halohand.core.errors import HalohandInputError
from halohand.core.schedule import cosine
from halohand.inference.halo import HALO
from halohand.inference.image_occupancy import (
    ImageOccupancy,
    ImageOccupancyConfig,
    prepare_image,
    save_image_occupancy,
)
from halohand.inference.pair_refiner import PairRefinerConfig, level_logits
from halohand.training.pair_refiner import (
    PairRefinerTrainConfig,
    config_with,
    mean_iou,
    split_caches,
)
from halohand.training.run import text_logger

__all__ = [
    "PRESETS", "ImageOccupancyTrainConfig", "config_with", "load_renders",
    "train_image_occupancy", "train_on_data",
]  # fmt: skip

_FORMAT = "halohand.image-occupancy-checkpoint"


@dataclass(frozen=True)
class ImageOccupancyTrainConfig:
    """The CPU recipe by default (one torch thread): 4 pairs x 2,048 points a step, until
    ``steps`` or ``seconds``; with ``keep_best`` the weights written are those of the best
    validation IoU of the evaluations every ``checkpoint_every`` steps (early stopping on
    the val split). :data:`PRESETS` ``gpu`` scales it up."""

    steps: int = 4000
    seconds: float | None = None
    batch: int = 4
    points: int = 2048
    lr: float = 1e-3
    weight_decay: float = 1e-5
    mask_weight: float = 0.1
    seed: int = 0
    pool_near: int = 12_000
    pool_uniform: int = 4_000
    val_points: int = 4096
    checkpoint_every: int = 250
    keep_best: bool = True
    device: str = "cpu"
    model: ImageOccupancyConfig = field(default_factory=ImageOccupancyConfig)

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "points", "val_points", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise HalohandInputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seconds is not None and not self.seconds > 0:
            raise HalohandInputError(f"seconds must be > 0, got {self.seconds}")
        if not self.mask_weight >= 0:
            raise HalohandInputError(f"mask_weight must be >= 0, got {self.mask_weight}")


#: Named recipes: ``cpu`` (the default) and ``gpu`` (256^2 views, a wider encoder and
#: MLP, larger batches; for a few thousand rendered pairs).
PRESETS: dict[str, ImageOccupancyTrainConfig] = {
    "cpu": ImageOccupancyTrainConfig(),
    "gpu": ImageOccupancyTrainConfig(
        steps=20_000,
        batch=32,
        points=8192,
        lr=5e-4,
        device="cuda",
        model=ImageOccupancyConfig(image_size=256, channels=(32, 64, 128), width=128, layers=4),
    ),
}


def load_renders(folder: str | Path, keypoints: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """The renders of one split (``halohand data pair-images`` ``OUT/<split>``) for the
    cache's pairs: ``images [P, V, S, S, 3]`` uint8 at ``size``, ``masks [P, V, S/2, S/2]``
    (stride 2), ``intrinsics [P, V, 3, 3]`` (of ``size``), ``rotation``, ``translation``.

    Raises:
        HalohandInputError: a missing render, or one of another pair (keypoints differ).
    """
    folder = Path(folder)
    out: dict[str, list[np.ndarray]] = {
        k: [] for k in ("images", "masks", "intrinsics", "rotation", "translation")
    }
    for i, kp in enumerate(keypoints):
        path = folder / f"p_{i:05d}.npz"
        if not path.is_file():
            raise HalohandInputError(f"{path}: missing (render the split with data pair-images)")
        with np.load(path) as f:
            if not np.allclose(f["keypoints"], kp, atol=1e-5):
                raise HalohandInputError(f"{path}: rendered from another pair than the data's")
            images, ks = [], []
            for img, k in zip(f["images"], f["intrinsics"], strict=True):
                px, k2 = prepare_image(img, k, size)
                # kept as uint8 in memory; prepare_image's normalisation is undone here
                images.append(np.clip((px.numpy() * 0.25 + 0.5) * 255.0 + 0.5, 0, 255))
                ks.append(k2.numpy())
            masks = torch.as_tensor(f["masks"].astype(np.float32))[:, None]
            masks = torch.nn.functional.interpolate(masks, (size // 2, size // 2), mode="nearest")
            out["images"].append(np.stack(images).astype(np.uint8).transpose(0, 2, 3, 1))
            out["masks"].append(masks[:, 0].numpy().astype(np.int64))
            out["intrinsics"].append(np.stack(ks))
            out["rotation"].append(f["rotation"])
            out["translation"].append(f["translation"])
    return {k: np.stack(v) for k, v in out.items()}


def _pixels(images: Tensor) -> Tensor:
    """``[B, S, S, 3]`` uint8 -> ``[B, 3, S, S]`` normalised as :func:`prepare_image`."""
    return (images.permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.25


def _forward(
    model: ImageOccupancy, d: dict[str, Tensor], pairs: Tensor, views: Tensor, idx: Tensor,
    level: float,
) -> tuple[Tensor, list[Tensor]]:  # fmt: skip
    """Refined level logits ``[B, N, 2]`` and the encoder's maps of one batch."""
    rows = pairs[:, None]
    camera = (d["intrinsics"][pairs, views], d["rotation"][pairs, views],
              d["translation"][pairs, views])  # fmt: skip
    maps = model.encode(_pixels(d["images"][pairs, views])) if model.config.image else []
    logits = level_logits(d["prob"][rows, idx], level)
    res = model.residual(maps, d["points"][rows, idx], logits, d["keypoints"][pairs], camera)
    return logits + res, maps


def evaluate(
    model: ImageOccupancy, val: dict[str, Tensor], idx: Tensor, level: float, chunk: int = 8
) -> dict[str, float]:
    """Per-hand IoU at the mesh level of the refined and of HALO's fields on the val
    pools (points ``idx`` of every pair, view 0)."""
    model.eval()
    n = val["keypoints"].shape[0]
    inside = []
    with torch.no_grad():
        for s in range(0, n, chunk):
            pairs = torch.arange(s, min(s + chunk, n), device=idx.device)
            views = torch.zeros_like(pairs)
            logits, _ = _forward(model, val, pairs, views, idx[None].expand(len(pairs), -1), level)
            inside.append(logits > 0)
    model.train()
    refined = torch.cat(inside)
    labels = val["labels"][:, idx] > 0.5
    return {"iou_refined": mean_iou(refined, labels),
            "iou_halo": mean_iou(val["prob"][:, idx] > level, labels)}  # fmt: skip


def train_image_occupancy(
    config: ImageOccupancyTrainConfig,
    data: str | Path | Sequence[str | Path],
    images: str | Path | Sequence[str | Path],
    out: str | Path,
    resume: bool = False,
    halo: HALO | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train on one or more pair datasets ``data`` and their renders ``images`` (one
    folder per dataset, same order; train splits pooled, val splits pooled): the caches of
    :func:`~halohand.training.pair_refiner.build_cache` in ``out`` (``cache_<split>.npz``
    for the first dataset, ``cache_<split>_<i>.npz`` for the others), the renders, then
    :func:`train_on_data`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = text_logger(out, log)
    roots = [Path(data)] if isinstance(data, str | Path) else [Path(d) for d in data]
    renders = [Path(images)] if isinstance(images, str | Path) else [Path(d) for d in images]
    if len(roots) != len(renders):
        raise HalohandInputError(
            f"one render folder per pair dataset: {len(roots)} datasets, {len(renders)} folders"
        )
    halo = halo or HALO.pretrained()
    # the pair refiner's cache settings: its iso points are computed (and unused here) so
    # that a cache of train-pair-refiner is reused as it is
    cache_cfg = PairRefinerTrainConfig(
        seed=config.seed, pool_near=config.pool_near, pool_uniform=config.pool_uniform
    )
    t0 = time.perf_counter()
    sets = {}
    caches = split_caches(halo, roots, PairRefinerConfig(), cache_cfg, out, say)
    for split, found in caches.items():
        parts = []
        for i, cache in found:
            cache.pop("iso")
            size = config.model.image_size
            shown = load_renders(renders[i] / split, cache["keypoints"], size)
            parts.append({**cache, **shown})
        sets[split] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    extra = {"data": [str(r) for r in roots], "images": [str(r) for r in renders],
             "cache_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    return train_on_data(
        config, sets["train"], sets["val"], float(halo.iso_level), out, resume, log, extra
    )


def train_on_data(
    config: ImageOccupancyTrainConfig,
    train_set: dict[str, np.ndarray],
    val_set: dict[str, np.ndarray],
    level: float,
    out: str | Path,
    resume: bool = False,
    log: Callable[[str], None] = print,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on in-memory sets (cache arrays and :func:`load_renders` arrays), checkpointing
    to ``out/checkpoint.pt``; writes ``out/image_occupancy.safetensors`` and
    ``out/summary.json`` and returns the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = text_logger(out, log)
    device = select_device(config.device)
    train, val = (
        {k: torch.from_numpy(np.asarray(v)).to(device) for k, v in s.items()}
        for s in (train_set, val_set)
    )
    for s in (train, val):
        s["labels"] = s["labels"].float()
    gen = torch.Generator().manual_seed(config.seed + 1)
    m_val = min(config.val_points, val["points"].shape[1])
    val_idx = torch.randperm(val["points"].shape[1], generator=gen)[:m_val].to(device)
    torch.manual_seed(config.seed)
    model = ImageOccupancy(config.model).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step, elapsed = 0, 0.0
    ckpt = out / "checkpoint.pt"
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"iou_refined": -1.0}
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt, format_tag=_FORMAT, required=("step", "model"))
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state["elapsed_s"])
        gen.set_state(state["rng"])
        history = list(state.get("history", []))
        best = state.get("best", best)
        say(f"resumed at step {step}")
    n_pairs, n_views = train["images"].shape[:2]
    pool = train["points"].shape[1]

    def checkpoint() -> None:
        save_checkpoint(
            ckpt,
            {"step": step, "elapsed_s": elapsed, "model": model.state_dict(),
             "optimizer": opt.state_dict(), "rng": gen.get_state(), "history": history,
             "best": best, "config": json.loads(json.dumps(asdict(config)))},
            format_tag=_FORMAT,
        )  # fmt: skip

    def progress() -> float:
        by_time = elapsed / config.seconds if config.seconds else 0.0
        return max(step / config.steps, by_time)

    if step == 0:
        say(f"step 0 {evaluate(model, val, val_idx, level)}")
    t_start = time.perf_counter() - elapsed
    model.train()
    loss = bce = seg = torch.zeros(())
    while progress() < 1.0:
        for group in opt.param_groups:
            group["lr"] = cosine(progress(), 1.0, config.lr, 0.0)
        pairs = torch.randint(n_pairs, (config.batch,), generator=gen).to(device)
        views = torch.randint(n_views, (config.batch,), generator=gen).to(device)
        idx = torch.randint(pool, (config.batch, config.points), generator=gen).to(device)
        logits, maps = _forward(model, train, pairs, views, idx, level)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, train["labels"][pairs[:, None], idx]
        )
        loss = bce
        if maps and config.mask_weight > 0:
            seg = torch.nn.functional.cross_entropy(
                model.segment(maps[0]), train["masks"][pairs, views]
            )
            loss = bce + config.mask_weight * seg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        elapsed = time.perf_counter() - t_start
        if step % config.checkpoint_every == 0 or progress() >= 1.0:
            metrics = evaluate(model, val, val_idx, level)
            history.append({"step": step, "elapsed_s": round(elapsed, 1), **metrics})
            if metrics["iou_refined"] > best["iou_refined"]:
                kept = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best = {**history[-1], "state": kept}
            say(
                f"step {step} loss {loss.item():.4f} bce {bce.item():.4f} seg {seg.item():.3f} "
                f"val {json.dumps({k: round(v, 5) for k, v in metrics.items()})} {elapsed:.0f} s"
            )
            checkpoint()
    final = evaluate(model, val, val_idx, level)
    if config.keep_best and "state" in best:
        model.load_state_dict(best["state"])
    model.eval()
    metrics = evaluate(model, val, val_idx, level)
    summary = {
        "config": json.loads(json.dumps(asdict(config))), **(extra or {}), "steps": step,
        "train_pairs": int(n_pairs), "val_pairs": int(val["points"].shape[0]),
        "train_wall_s": round(elapsed, 1),
        "parameters": sum(p.numel() for p in model.parameters()), "val": metrics,
        "final_val": final, "kept_step": int(best.get("step", step)) if config.keep_best else step,
        "history": history,
    }  # fmt: skip
    save_image_occupancy(model.cpu(), out / "image_occupancy.safetensors", {"summary": summary})
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2))
    say(f"done: {json.dumps(metrics)}")
    return summary
