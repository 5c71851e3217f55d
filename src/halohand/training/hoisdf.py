"""Training and evaluation of :class:`~halohand.handobject.HOISDF` on rendered hand-object
scenes (:mod:`halohand.apps.handobject_data`).

A run is bounded by wall time (``max_seconds``: the SDF / no-SDF comparison is at equal
time) or by steps (``max_steps``, then the budget the schedule follows); it checkpoints
atomically to ``out/checkpoint.pt`` every ``checkpoint_every`` steps (model, Adam, sampler
state, elapsed time) and resumes from it; progress goes to ``out/log.jsonl``. The learning
rate decays by a half cosine over the budget.

Points the regression heads see while training: for the first ``field_after`` of the budget
the points near the true surfaces (within 2 cm; the paper's training shortcut), then the
model's own sampling (random candidates in the volume, kept by the configured strategy) so
that the heads learn the test-time distribution. Variants without a field (``sdf=False``)
draw uniform points throughout.

Losses (centimetres where lengths): joints L1 and per-point vote L1 (the paper's
``L_off``); object centre L1, per-point centre-vote L1 and the ADD-S of the averaged pose on
128 model points (rotation through a symmetric-safe point loss: the registry has
cylinders, spheres and tori); hand and object SDF smooth-L1 on samples, targets clamped to
the output range; 3-class segmentation cross-entropy (the paper's 2D loss).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from halohand.core.atomic import write_text_atomic
from halohand.core.checkpoint import load_checkpoint, save_checkpoint
from halohand.core.errors import HalohandInputError
from halohand.core.schedule import cosine
from halohand.handobject import HOISDF, HOIData, HOISDFConfig, add_s, hand_object_errors

__all__ = [
    "HOISDFTrainConfig",
    "branch_run",
    "evaluate_hoisdf",
    "hoisdf_losses",
    "load_run",
    "train_hoisdf",
]

_FORMAT = "halohand.hoisdf-checkpoint"
METRICS = ("mje", "pa_mje", "oce", "mce", "add_s")


@dataclass(frozen=True)
class HOISDFTrainConfig:
    """Training settings (defaults: one CPU thread)."""

    batch: int = 16
    lr: float = 1e-3
    lr_min: float = 2e-5
    max_seconds: float = 1500.0
    max_steps: int = 0  #: 0: no step limit
    n_sdf: int = 512  #: SDF samples per view and step
    model_points: int = 128  #: object points of the ADD-S loss
    field_after: float = (
        0.7  #: share of the budget (steps if max_steps, else time) on true-surface points
    )
    sdf_weight: float = 1.0
    seg_weight: float = 0.5
    checkpoint_every: int = 100
    log_every: int = 25
    seed: int = 0
    threads: int = 1
    #: Training points of a model without fields: ``"cube"``, uniform in the whole cube
    #: (the runs before the equal-time pairs ``eq_*``), or ``"sampler"``, the model's own
    #: test-time draw (uniform candidates, those projecting into the image first: trained
    #: as it is tested, as the SDF model's uniform sampling is).
    plain_points: str = "cube"

    def __post_init__(self) -> None:
        if self.plain_points not in ("cube", "sampler"):
            raise HalohandInputError(
                f"plain_points must be 'cube' or 'sampler', got {self.plain_points!r}"
            )


def hoisdf_losses(
    model: HOISDF, out: dict[str, Tensor], batch: dict[str, Tensor], cfg: HOISDFTrainConfig
) -> dict[str, Tensor]:
    """The loss terms (see the module docstring) and their weighted ``total``."""
    cm = 100.0
    j_true = batch["joints"]
    terms = {
        "joints": (out["joints"] - j_true).abs().mean() * cm,
        "votes": (out["votes"] - j_true[:, None]).abs().mean() * cm,
        "center": (out["object_translation"] - batch["object_translation"]).abs().mean() * cm,
        "center_votes": (out["object_votes"] - batch["object_translation"][:, None]).abs().mean()
        * cm,
    }
    pts = batch["object_model"][:, : cfg.model_points]
    terms["add_s"] = (
        add_s(
            pts,
            out["object_rotation"],
            out["object_translation"],
            batch["object_rotation"],
            batch["object_translation"],
        ).mean()
        * cm
    )
    terms["seg"] = F.cross_entropy(out["segmentation"], batch["masks"]) * cfg.seg_weight
    if model.config.sdf and "sdf_hand" in out:
        c = model.config.sdf_clamp
        for name in ("sdf_hand", "sdf_object"):
            target = batch[name].clamp(-c, c)
            terms[name] = F.smooth_l1_loss(out[name] * cm, target * cm, beta=0.5) * cfg.sdf_weight
    terms["total"] = sum(terms.values())
    return terms


def _forward_train(
    model: HOISDF,
    batch: dict[str, Tensor],
    field_phase: bool,
    gen: torch.Generator,
    plain_points: str = "cube",
) -> dict[str, Tensor]:
    args = (batch["images"], batch["intrinsics"], batch["root"])
    sdf_pts = batch.get("sdf_points")
    if not model.config.sdf and plain_points == "sampler":
        return model(*args, generator=gen)
    if not model.config.sdf:
        h = model.config.volume_half
        b = len(batch["root"])
        hp = (2 * torch.rand(b, model.config.hand_points, 3, generator=gen) - 1) * h
        op = (2 * torch.rand(b, model.config.object_points, 3, generator=gen) - 1) * h
        return model(*args, hand_points=hp, object_points=op)
    if field_phase:
        return model(*args, sdf_points=sdf_pts, generator=gen)
    return model(
        *args,
        hand_points=batch["hand_near"],
        object_points=batch["object_near"],
        sdf_points=sdf_pts,
    )


def train_hoisdf(
    data: HOIData,
    out: str | Path,
    model_config: HOISDFConfig,
    config: HOISDFTrainConfig,
    resume: bool = True,
    log: Any = None,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train until ``max_seconds`` of training time (or ``max_steps``); returns a summary.
    Resumes from ``out/checkpoint.pt`` when it exists and ``resume``. ``stop_after``: stop
    (with a checkpoint) once this many steps are done, as if interrupted."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pt"
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    model = HOISDF(model_config)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    step, elapsed = 0, 0.0
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt, format_tag=_FORMAT, required=("step", "model", "optimizer"))
        if state["model_config"] != model_config.to_dict():
            raise HalohandInputError(f"{ckpt} is a run of another model config; use a new --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state["elapsed_s"])
        gen.set_state(state["rng"])
    log_path = out / "log.jsonl"

    def write_log(row: dict[str, Any]) -> None:
        with open(log_path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        if log is not None:
            log(row)

    def checkpoint() -> None:
        save_checkpoint(
            ckpt,
            {
                "step": step,
                "elapsed_s": elapsed,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "rng": gen.get_state(),
                "model_config": model_config.to_dict(),
                "config": asdict(config),
            },
            format_tag=_FORMAT,
        )

    if step:
        write_log({"event": "resumed", "step": step, "elapsed_s": round(elapsed, 1)})
    model.train()
    t_start = time.perf_counter() - elapsed
    window: dict[str, float] = {}
    n_window = 0
    n = len(data)
    while elapsed < config.max_seconds and not (config.max_steps and step >= config.max_steps):
        if stop_after is not None and step >= stop_after:
            checkpoint()
            return {"steps": step, "stopped": True}
        # share of the budget used: of the steps when they bound the run, else of the time
        frac = step / config.max_steps if config.max_steps else elapsed / config.max_seconds
        lr = cosine(frac, 1.0, config.lr, config.lr_min)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(n, (config.batch,), generator=gen)
        sdf = model_config.sdf
        batch = data.batch(
            idx,
            n_sdf=config.n_sdf if sdf else 0,
            k_near=model_config.hand_points if sdf else 0,
            generator=gen,
        )
        if sdf:
            # both kinds of near points are drawn with the hand's count; cut the object's
            batch["object_near"] = batch["object_near"][:, : model_config.object_points]
        field_phase = frac >= config.field_after
        outp = _forward_train(model, batch, field_phase, gen, config.plain_points)
        terms = hoisdf_losses(model, outp, batch, config)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        elapsed = time.perf_counter() - t_start
        for k, v in terms.items():
            window[k] = window.get(k, 0.0) + float(v.detach())
        n_window += 1
        if step % config.log_every == 0:
            row = {k: round(v / n_window, 4) for k, v in window.items()}
            write_log(
                {
                    "step": step,
                    "elapsed_s": round(elapsed, 1),
                    "lr": lr,
                    "field_phase": field_phase,
                    **row,
                }
            )
            window, n_window = {}, 0
        if step % config.checkpoint_every == 0:
            checkpoint()
            elapsed = time.perf_counter() - t_start
    checkpoint()
    summary = {
        "steps": step,
        "train_seconds": round(elapsed, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "model_config": model_config.to_dict(),
        "config": asdict(config),
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_log({"event": "done", **{k: summary[k] for k in ("steps", "train_seconds")}})
    return summary


def branch_run(
    source: str | Path, out: str | Path, model_config: HOISDFConfig, config: HOISDFTrainConfig
) -> int:
    """Start run ``out`` from ``source``'s checkpoint with another test-time ``sampling``.

    Sampling strategies act only in the field phase and at test time, so two runs that
    differ in nothing else are identical until ``field_after``: a branch taken before then
    equals training the variant from scratch (with the same seed). Refuses any other
    difference and a checkpoint already in the field phase. Returns the step branched at.
    """
    state = load_checkpoint(
        Path(source) / "checkpoint.pt",
        format_tag=_FORMAT,
        required=("step", "model", "model_config", "config"),
    )
    base = dict(state["model_config"], sampling=model_config.sampling)
    if base != model_config.to_dict() or state["config"] != asdict(config):
        raise HalohandInputError(f"{source} differs from this run in more than its sampling")
    if not config.max_steps or state["step"] >= config.field_after * config.max_steps:
        raise HalohandInputError(f"{source} is past the shared phase (step {state['step']})")
    state = {k: v for k, v in state.items() if k not in ("format", "version")}
    state["model_config"] = model_config.to_dict()
    save_checkpoint(Path(out) / "checkpoint.pt", state, format_tag=_FORMAT)
    return int(state["step"])


def load_run(out: str | Path) -> tuple[HOISDF, dict[str, Any]]:
    """The model of a run's last checkpoint (eval mode) and the checkpoint's metadata."""
    state = load_checkpoint(
        Path(out) / "checkpoint.pt", format_tag=_FORMAT, required=("step", "model", "model_config")
    )
    model = HOISDF(HOISDFConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    model.eval()
    meta = {k: state[k] for k in ("step", "elapsed_s", "model_config", "config")}
    return model, meta


def evaluate_hoisdf(
    model: HOISDF, data: HOIData, batch: int = 32, oracle_points: bool = False, **overrides: Any
) -> dict[str, Any]:
    """Mean metrics (mm) over all views of ``data`` with test-time sampling (the lattice, no
    ground truth but the root); ``overrides`` replace model config fields for the
    evaluation (e.g. ``grid``). Also per-object means.

    ``oracle_points``: query points drawn near the true surfaces instead (a diagnostic of
    what perfect fields would give the regression; not an estimate: it uses the truth)."""
    if overrides:
        model.config = model.config.with_(**overrides)
    model.eval()
    per: dict[str, list[np.ndarray]] = {k: [] for k in METRICS}
    with torch.no_grad():
        for s in range(0, len(data), batch):
            idx = torch.arange(s, min(s + batch, len(data)))
            if oracle_points:
                gen = torch.Generator().manual_seed(s)
                b = data.batch(idx, k_near=model.config.hand_points, generator=gen)
                pts = (b["hand_near"], b["object_near"][:, : model.config.object_points])
            else:
                b, pts = data.batch(idx), (None, None)
            out = model(b["images"], b["intrinsics"], b["root"], *pts)
            errs = hand_object_errors(out, b)
            for k in METRICS:
                per[k].append(errs[k])
    arr = {k: np.concatenate(v) for k, v in per.items()}
    objects = np.array(data.object_ids)[data.grasp.numpy()]
    by_object = {
        o: {k: round(float(arr[k][objects == o].mean()), 2) for k in METRICS}
        for o in dict.fromkeys(objects.tolist())
    }
    return {
        "images": len(data),
        **{k: round(float(arr[k].mean()), 2) for k in METRICS},
        "by_object": by_object,
    }
