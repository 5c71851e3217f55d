"""Training of the learned two-hand refinement (:mod:`halohand.inference.pair_refiner`).

Data: a ``pairs`` dataset of ``halohand data pairs`` (train and val splits). HALO is frozen,
so everything it contributes is computed once per pair into a cache
(``OUT/cache_<split>.npz``, :func:`build_cache`): the keypoints, both hands' initial
surface points (vertices of HALO's meshes at the refiner's ``surface_resolution``, thinned
by farthest points), and a pool of query points with both hands' labels and HALO's
probabilities there: ``near`` points of the stored near-surface set (N(0, (4 mm)^2) about
either hand) and ``uniform`` points of the stored uniform set that fall in the pair's
extraction box (each hand's keypoint box grown by HALO's padding), where the refined
field is meshed.

Each step draws ``batch`` pairs and ``points`` pool points per pair; the loss is BCE of the
refined level logits against both hands' labels plus ``penetration_weight`` times
Im2Hands' Eq. 9 (:func:`~halohand.inference.pair_refiner.penetration_loss`). Validation on
the val cache: per-hand IoU of the refined and of HALO's fields at the mesh level on the
val pools, and the fraction of points both hands claim. Checkpoints (``OUT/checkpoint.pt``,
atomic) make the run resumable; progress goes to ``OUT/train.log``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from halohand.core.atomic import atomic_path, write_text_atomic
from halohand.core.checkpoint import load_checkpoint, save_checkpoint
from halohand.core.device import select_device
from halohand.core.errors import HalohandInputError
from halohand.core.schedule import cosine
from halohand.data.dataset import PairDataset
from halohand.inference.halo import HALO, keypoint_box
from halohand.inference.pair_refiner import (
    PairOccupancyRefiner,
    PairRefinerConfig,
    penetration_loss,
    save_pair_refiner,
)
from halohand.inference.two_hands import PAIR_SIDES, initial_surface
from halohand.training.run import text_logger

__all__ = [
    "PRESETS", "PairRefinerTrainConfig", "build_cache", "config_with", "mean_iou",
    "network_digest", "split_caches", "train_on_caches", "train_pair_refiner",
]  # fmt: skip

#: A training config with a ``model`` config (:func:`config_with`).
TrainConfig = TypeVar("TrainConfig")

_FORMAT = "halohand.pair-refiner-checkpoint"
#: 2: the settings name HALO's weights (a digest), not only its level.
_CACHE_VERSION = 2


@dataclass(frozen=True)
class PairRefinerTrainConfig:
    """The CPU recipe by default: 1,000 steps of 4 pairs x 2,048 points, one torch thread
    (3.2 min of steps after a 4.4 min cache of 352 pairs on the loaded 2-core machine,
    docs/two_hands.md). Longer runs overfit 320 training pairs: 4,000 steps (with Im2Hands'
    penetration weight 0.001) ended at val IoU 0.859 after 0.866 at step 750. :data:`PRESETS`
    ``gpu`` scales it up, for more pairs than that."""

    steps: int = 1000
    batch: int = 4
    points: int = 2048
    lr: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 0
    pool_near: int = 12_000
    pool_uniform: int = 4_000
    val_points: int = 4096
    checkpoint_every: int = 250
    device: str = "cpu"
    model: PairRefinerConfig = PairRefinerConfig()


#: Named recipes: ``cpu`` (the default) and ``gpu`` (wider, more anchors, larger batches;
#: meant for a few thousand training pairs, whose generation stays on the CPU).
PRESETS: dict[str, PairRefinerTrainConfig] = {
    "cpu": PairRefinerTrainConfig(),
    "gpu": PairRefinerTrainConfig(
        steps=4000,
        batch=32,
        points=8192,
        lr=5e-4,
        device="cuda",
        model=PairRefinerConfig(iso_points=512, anchors=128, width=128, context_layers=2),
    ),
}


# --------------------------------------------------------------------------- cache


def _pair_pool(
    item: dict[str, Any], padding_m: float, n_near: int, n_uniform: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(points [M, 3] float32, labels [M, 2] bool)`` of one stored pair (module docstring)."""
    near = rng.choice(len(item["points_near"]), n_near, replace=False)
    boxes = [keypoint_box(k, padding_m) for k in item["keypoints"]]
    u = item["points_uniform"]
    inside = np.zeros(len(u), dtype=bool)
    for lo, hi in boxes:
        inside |= ((u >= lo) & (u <= hi)).all(-1)
    candidates = np.flatnonzero(inside)
    if len(candidates) == 0:
        raise HalohandInputError("a stored pair has no uniform point in its extraction box")
    uni = rng.choice(candidates, n_uniform, replace=len(candidates) < n_uniform)
    points = np.concatenate([item["points_near"][near], u[uni]])
    labels = np.concatenate([item["occ_near"][:, near], item["occ_uniform"][:, uni]], 1).T
    return points.astype(np.float32), labels


def network_digest(network: torch.nn.Module) -> str:
    """sha256 (hex) of a network's state (names, dtypes, shapes and values, in order): a
    cache of its outputs is stale when this changes, whatever its level says."""
    digest = hashlib.sha256()
    for name, tensor in network.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def build_cache(
    halo: HALO,
    root: str | Path,
    split: str,
    model_config: PairRefinerConfig,
    config: PairRefinerTrainConfig,
    path: str | Path,
    log: Callable[[str], None] = print,
) -> dict[str, np.ndarray]:
    """Compute (or read, when ``path`` holds a cache of the same settings) the frozen
    HALO's share of every pair of ``split``: ``keypoints [P, 2, 21, 3]``, ``iso
    [P, 2, n, 3]`` (metres), ``points [P, M, 3]``, ``labels [P, M, 2]`` and ``prob
    [P, M, 2]`` (right, left). The cache is rebuilt when any setting or HALO's weights
    (:func:`network_digest`) differ from the stored ones."""
    path = Path(path)
    settings = {
        "version": _CACHE_VERSION, "root": str(Path(root).resolve()), "split": split,
        "surface_resolution": model_config.surface_resolution,
        "iso_points": model_config.iso_points, "pool_near": config.pool_near,
        "pool_uniform": config.pool_uniform, "seed": config.seed, "iso_level": halo.iso_level,
        "halo": network_digest(halo.network),
    }  # fmt: skip
    if path.is_file():
        with np.load(path) as f:
            if json.loads(str(f["settings"])) == settings:
                return {k: f[k] for k in f.files if k != "settings"}
        log(f"{path}: settings changed, rebuilding")
    ds = PairDataset(root, split)
    if len(ds) == 0:
        raise HalohandInputError(f"{root}: split {split!r} holds no pairs")
    out: dict[str, list[np.ndarray]] = {
        k: [] for k in ("keypoints", "iso", "points", "labels", "prob")
    }
    t0 = time.perf_counter()
    for i in range(len(ds)):
        item = ds.pair(i)
        rng = np.random.default_rng([config.seed, i, 7])
        points, labels = _pair_pool(
            item, halo.padding_m, config.pool_near, config.pool_uniform, rng
        )
        kp = item["keypoints"]
        prepared = halo.prepare(kp, list(PAIR_SIDES), "m", convention="rig")
        iso = initial_surface(
            halo, prepared, model_config.surface_resolution, model_config.iso_points
        )
        with torch.no_grad():
            prob = halo.occupancy(points.astype(np.float64), kp, side=list(PAIR_SIDES), units="m")
        out["keypoints"].append(kp.astype(np.float32))
        out["iso"].append(iso.astype(np.float32))
        out["points"].append(points)
        out["labels"].append(labels)
        out["prob"].append(prob.T.float().cpu().numpy())
        if (i + 1) % 32 == 0 or i + 1 == len(ds):
            log(f"cache {split}: {i + 1}/{len(ds)} pairs, {time.perf_counter() - t0:.0f} s")
    arrays = {k: np.stack(v) for k, v in out.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, settings=np.array(json.dumps(settings)), **arrays)
    return arrays


# --------------------------------------------------------------------------- training


def _losses(
    model: PairOccupancyRefiner, batch: dict[str, Tensor], level: float, weight: float
) -> tuple[Tensor, Tensor, Tensor]:
    """``(total, bce, penetration)`` of one batch."""
    logits = model(batch["iso"], batch["keypoints"], batch["points"], batch["prob"], level)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"])
    inside = torch.sigmoid(logits)
    pen = penetration_loss(inside[..., 0], inside[..., 1])
    return bce + weight * pen, bce, pen


def _batch(cache: dict[str, Tensor], pairs: Tensor, idx: Tensor) -> dict[str, Tensor]:
    rows = pairs[:, None]
    return {
        "keypoints": cache["keypoints"][pairs], "iso": cache["iso"][pairs],
        "points": cache["points"][rows, idx], "labels": cache["labels"][rows, idx],
        "prob": cache["prob"][rows, idx],
    }  # fmt: skip


def mean_iou(inside: Tensor, labels: Tensor) -> float:
    """Mean over pairs and hands of the IoU of ``[P, N, 2]`` bools."""
    inter = (inside & labels).sum(1).float()
    union = (inside | labels).sum(1).float().clamp_min(1.0)
    return float((inter / union).mean())


def evaluate_cache(
    model: PairOccupancyRefiner, val: dict[str, Tensor], level: float, chunk: int = 8
) -> dict[str, float]:
    """Per-hand IoU at the mesh level and the fraction of points both hands claim, of the
    refined and of HALO's fields, on the val pools (``val_points`` per pair)."""
    model.eval()
    refined = []
    with torch.no_grad():
        for s in range(0, len(val["keypoints"]), chunk):
            sl = slice(s, s + chunk)
            logits = model(
                val["iso"][sl], val["keypoints"][sl], val["points"][sl], val["prob"][sl], level
            )
            refined.append(logits > 0)
    model.train()
    inside = torch.cat(refined)
    halo = val["prob"] > level
    labels = val["labels"] > 0.5
    return {
        "iou_refined": mean_iou(inside, labels), "iou_halo": mean_iou(halo, labels),
        "both_refined": float((inside[..., 0] & inside[..., 1]).float().mean()),
        "both_halo": float((halo[..., 0] & halo[..., 1]).float().mean()),
        "both_truth": float((labels[..., 0] & labels[..., 1]).float().mean()),
    }  # fmt: skip


def split_caches(
    halo: HALO,
    roots: Sequence[Path],
    model: PairRefinerConfig,
    config: PairRefinerTrainConfig,
    out: Path,
    say: Callable[[str], None],
) -> dict[str, list[tuple[int, dict[str, np.ndarray]]]]:
    """Per split (``train``, ``val``), ``(dataset index, cache)`` of the datasets ``roots``
    that have pairs in it (:func:`build_cache`, in ``out/cache_<split>.npz`` for the first
    dataset and ``out/cache_<split>_<i>.npz`` for the others).

    Raises:
        HalohandInputError: a split without pairs in any dataset.
    """
    caches: dict[str, list[tuple[int, dict[str, np.ndarray]]]] = {}
    for split in ("train", "val"):
        parts = []
        for i, root in enumerate(roots):
            if len(PairDataset(root, split)) == 0:
                continue
            name = f"cache_{split}.npz" if i == 0 else f"cache_{split}_{i}.npz"
            parts.append((i, build_cache(halo, root, split, model, config, out / name, say)))
        if not parts:
            raise HalohandInputError(f"no {split} pairs in {', '.join(map(str, roots))}")
        caches[split] = parts
    return caches


def train_pair_refiner(
    config: PairRefinerTrainConfig,
    data: str | Path | Sequence[str | Path],
    out: str | Path,
    resume: bool = False,
    halo: HALO | None = None,
    log: Callable[[str], None] = print,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train on one or more pair datasets (their train splits pooled, their val splits
    pooled; a dataset without val pairs gives none): the caches of :func:`build_cache` in
    ``out`` (``cache_<split>.npz`` for the first dataset, ``cache_<split>_<i>.npz`` for
    the others), then :func:`train_on_caches`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = text_logger(out, log)
    halo = halo or HALO.pretrained()
    roots = [Path(data)] if isinstance(data, str | Path) else [Path(d) for d in data]
    t_cache = time.perf_counter()
    caches = {
        split: {k: np.concatenate([c[k] for _, c in parts]) for k in parts[0][1]}
        for split, parts in split_caches(halo, roots, config.model, config, out, say).items()
    }
    extra = {"data": [str(r) for r in roots], "cache_s": round(time.perf_counter() - t_cache, 1)}
    return train_on_caches(
        config, caches["train"], caches["val"], float(halo.iso_level), out, resume=resume,
        log=log, stop_after=stop_after, extra=extra,
    )  # fmt: skip


def train_on_caches(
    config: PairRefinerTrainConfig,
    train_cache: dict[str, np.ndarray],
    val_cache: dict[str, np.ndarray],
    level: float,
    out: str | Path,
    resume: bool = False,
    log: Callable[[str], None] = print,
    stop_after: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on caches of :func:`build_cache` (HALO's mesh level ``level``),
    checkpointing to ``out/checkpoint.pt`` (resumable with ``resume``); writes
    ``out/pair_refiner.safetensors`` and ``out/summary.json`` and returns the summary.
    ``stop_after``: stop once this many steps are done, with a checkpoint and without the
    weights (a later ``resume`` goes on as if never stopped)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = text_logger(out, log)
    device = select_device(config.device)
    mcfg = config.model
    train, val_full = (
        {k: torch.from_numpy(np.asarray(v)).to(device) for k, v in c.items()}
        for c in (train_cache, val_cache)
    )
    for c in (train, val_full):
        c["labels"] = c["labels"].float()
    gen = torch.Generator().manual_seed(config.seed + 1)
    m_val = min(config.val_points, val_full["points"].shape[1])
    val_idx = torch.randperm(val_full["points"].shape[1], generator=gen)[:m_val].to(device)
    val = dict(val_full)
    for k in ("points", "labels", "prob"):
        val[k] = val_full[k][:, val_idx]
    torch.manual_seed(config.seed)
    model = PairOccupancyRefiner(mcfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step, elapsed = 0, 0.0
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt, format_tag=_FORMAT, required=("step", "model"))
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state["elapsed_s"])
        gen.set_state(state["rng"])
        say(f"resumed at step {step}")
    n_pairs, pool = train["points"].shape[:2]

    def checkpoint() -> None:
        save_checkpoint(
            ckpt,
            {
                "step": step,
                "elapsed_s": elapsed,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "rng": gen.get_state(),
                "config": json.loads(json.dumps(asdict(config))),
            },
            format_tag=_FORMAT,
        )

    if step == 0:
        say(f"step 0 {evaluate_cache(model, val, level)}")
    t_start = time.perf_counter() - elapsed
    model.train()
    loss = bce = pen = torch.zeros(())
    while step < config.steps:
        if stop_after is not None and step >= stop_after:
            checkpoint()
            return {"steps": step, "stopped": True}
        for group in opt.param_groups:
            group["lr"] = cosine(step, config.steps, config.lr, 0.0)
        pairs = torch.randint(n_pairs, (config.batch,), generator=gen).to(device)
        idx = torch.randint(pool, (config.batch, config.points), generator=gen).to(device)
        loss, bce, pen = _losses(model, _batch(train, pairs, idx), level, mcfg.penetration_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        elapsed = time.perf_counter() - t_start
        if step % config.checkpoint_every == 0 or step == config.steps:
            metrics = evaluate_cache(model, val, level)
            say(
                f"step {step} loss {loss.item():.4f} bce {bce.item():.4f} pen {pen.item():.3f} "
                f"val {json.dumps({k: round(v, 5) for k, v in metrics.items()})} {elapsed:.0f} s"
            )
            checkpoint()
    model.eval()
    metrics = evaluate_cache(model, val, level)
    summary = {
        "config": json.loads(json.dumps(asdict(config))), **(extra or {}), "steps": step,
        "train_pairs": int(n_pairs), "val_pairs": int(val["points"].shape[0]),
        "train_wall_s": round(elapsed, 1),
        "parameters": sum(p.numel() for p in model.parameters()), "val": metrics,
    }  # fmt: skip
    save_pair_refiner(model.cpu(), out / "pair_refiner.safetensors", {"summary": summary})
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2))
    say(f"done: {json.dumps(metrics)}")
    return summary


def config_with(base: TrainConfig, **changes: Any) -> TrainConfig:
    """``base`` (a training config whose ``model`` is the network's config) with training
    fields and model fields (``anchors``, ``width``, ``penetration_weight``, ...) changed
    by name; ``None`` values are ignored."""
    model_fields = set(type(base.model).__dataclass_fields__)
    train = {k: v for k, v in changes.items() if v is not None and k not in model_fields}
    model = {k: v for k, v in changes.items() if v is not None and k in model_fields}
    return replace(base, model=replace(base.model, **model), **train)
