"""Training data and loop of the keypoint refiner (:mod:`halohand.fitting.keypoint_refiner`).

Clean hands come from the embedded hand model: poses from the pose prior, identities from
the identity prior, a bank of right hands in the model frame (``[N, 21, 3]`` metres). A
training pair takes two bank hands, mirrors the second into a left hand, turns each by its
own random rotation and places the left wrist 5-20 cm from the right one in a random
direction; 30 % of the items keep one hand only. The noise imitates keypoints read off
images (:func:`corrupt`): isotropic Gaussian, depth error along a viewing direction, a
finger shifted as a whole, two neighbouring fingers swapped.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from halohand.core.checkpoint import load_checkpoint, save_checkpoint
from halohand.core.rotations import rotation_6d_to_matrix
from halohand.core.schedule import cosine
from halohand.fitting.keypoint_refiner import (
    HANDS,
    JOINTS,
    KeypointRefiner,
    RefinerConfig,
    save_refiner,
)
from halohand.handmodel.prior import IdentityPrior, PosePrior
from halohand.handmodel.torch_model import TorchHandModel
from halohand.skeleton.orders import FINGER_CHAINS

__all__ = ["RefinerTrainConfig", "clean_pairs", "corrupt", "hand_bank", "train_refiner"]

_FORMAT = "halohand.keypoint-refiner-checkpoint"
#: Finger joints (MCP/CMC to tip) of each finger in the project order.
_FINGER_JOINTS = np.asarray(FINGER_CHAINS)


@dataclass(frozen=True)
class RefinerTrainConfig:
    """CPU recipe by default (~0.09 s a step on one core: ~15 min); ``batch``, ``steps``,
    ``width`` and the layer counts scale up on a GPU."""

    steps: int = 8000
    batch: int = 128
    lr: float = 1e-3
    bank: int = 20000
    seed: int = 0
    width: int = 64
    graph_layers: int = 2
    attention_layers: int = 2
    heads: int = 4
    max_sigma_mm: float = 20.0
    checkpoint_every: int = 500

    def model_config(self) -> RefinerConfig:
        return RefinerConfig(self.width, self.graph_layers, self.attention_layers, self.heads)


def random_rotations(n: int, gen: torch.Generator, dtype: torch.dtype = torch.float64) -> Tensor:
    """``[n, 3, 3]`` rotations, uniform over SO(3) (Gram-Schmidt of Gaussian 6D vectors)."""
    return rotation_6d_to_matrix(torch.randn(n, 6, generator=gen, dtype=dtype))


def hand_bank(n: int, seed: int) -> Tensor:
    """``[n, 21, 3]`` float64 right hands in the model frame (metres), wrist at the origin."""
    rng = np.random.default_rng(seed)
    poses, identities = PosePrior(), IdentityPrior()
    angles = np.stack([poses.sample_angles(rng) for _ in range(n)])
    ids = [identities.sample(rng) for _ in range(n)]
    model = TorchHandModel()
    length = torch.tensor([i.hand_length for i in ids], dtype=torch.float64)
    factors = torch.tensor(np.stack([i.length_factors for i in ids]), dtype=torch.float64)
    width = torch.tensor([i.palm_width for i in ids], dtype=torch.float64)
    out = []
    for s in range(0, n, 4096):
        sl = slice(s, s + 4096)
        scale = model.scale_for_hand_length(length[sl], factors[sl], width[sl])
        kp = model(torch.from_numpy(angles[sl]), factors[sl], width[sl], scale).keypoints
        out.append(kp - kp[:, :1])
    return torch.cat(out)


def clean_pairs(bank: Tensor, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``([n, 2, 21, 3], present [n, 2])``: random pairs from the bank (module docstring)."""
    idx = torch.randint(len(bank), (n, 2), generator=gen)
    right = bank[idx[:, 0]]
    left = bank[idx[:, 1]] * torch.tensor([-1.0, 1.0, 1.0], dtype=bank.dtype)
    right = right @ random_rotations(n, gen, bank.dtype).transpose(-1, -2)
    left = left @ random_rotations(n, gen, bank.dtype).transpose(-1, -2)
    direction = torch.nn.functional.normalize(
        torch.randn(n, 3, generator=gen, dtype=bank.dtype), dim=-1
    )
    distance = 0.05 + 0.15 * torch.rand(n, 1, generator=gen, dtype=bank.dtype)
    left = left + (direction * distance)[:, None]
    present = torch.ones(n, 2, dtype=torch.bool)
    single = torch.rand(n, generator=gen) < 0.3
    which = torch.randint(2, (n,), generator=gen)
    present[single, which[single]] = False
    return torch.stack([right, left], dim=1), present


def corrupt(
    clean: Tensor,
    gen: torch.Generator,
    max_sigma_mm: float = 20.0,
    structured: bool = True,
) -> Tensor:
    """Noisy copy of ``[n, 2, 21, 3]`` metres.

    Per item: isotropic Gaussian with sigma ~ U(0, ``max_sigma_mm``) per axis; with
    ``structured``: with probability 0.5 an extra depth error per joint along a random
    viewing direction (sigma ~ U(0, ``max_sigma_mm``)); with probability 0.15 one finger of
    one hand shifted as a whole (up to 2 sigma); with probability 0.1 two neighbouring
    fingers of one hand swapped.
    """
    n = clean.shape[0]
    dt = clean.dtype
    sigma = max_sigma_mm * 1e-3 * torch.rand(n, 1, 1, 1, generator=gen, dtype=dt)
    noisy = clean + sigma * torch.randn(clean.shape, generator=gen, dtype=dt)
    if not structured:
        return noisy
    view = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen, dtype=dt), dim=-1)
    depth_on = (torch.rand(n, generator=gen) < 0.5).to(dt)
    depth_sigma = max_sigma_mm * 1e-3 * torch.rand(n, generator=gen, dtype=dt) * depth_on
    depth = depth_sigma[:, None, None] * torch.randn(n, HANDS, JOINTS, generator=gen, dtype=dt)
    noisy = noisy + depth[..., None] * view[:, None, None]
    hand = torch.randint(HANDS, (n,), generator=gen)
    finger = torch.randint(5, (n,), generator=gen)
    shift_on = torch.rand(n, generator=gen) < 0.15
    shift = 2.0 * sigma[:, 0, 0] * torch.randn(n, 3, generator=gen, dtype=dt)
    joints = torch.from_numpy(_FINGER_JOINTS)[finger]  # [n, 4]
    rows = torch.nonzero(shift_on).flatten()
    for k in range(4):
        noisy[rows, hand[rows], joints[rows, k]] += shift[rows]
    swap_on = torch.rand(n, generator=gen) < 0.1
    first = torch.randint(1, 4, (n,), generator=gen)  # index/middle, middle/ring, ring/pinky
    rows = torch.nonzero(swap_on).flatten()
    a = torch.from_numpy(_FINGER_JOINTS)[first[rows]]
    b = torch.from_numpy(_FINGER_JOINTS)[first[rows] + 1]
    h = hand[rows][:, None]
    r = rows[:, None]
    va, vb = noisy[r, h, a].clone(), noisy[r, h, b].clone()
    noisy[r, h, a], noisy[r, h, b] = vb, va
    return noisy


def mpjpe(pred: Tensor, target: Tensor, present: Tensor) -> Tensor:
    """Mean per-joint position error (metres) over the present hands: scalar."""
    err = torch.linalg.vector_norm(pred - target, dim=-1)  # [n, 2, 21]
    w = present[..., None].to(err.dtype).expand_as(err)
    return (err * w).sum() / w.sum()


def train_refiner(
    config: RefinerTrainConfig,
    out: str | Path,
    resume: bool = False,
    log: Any = print,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train, checkpointing to ``out/checkpoint.pt`` (resumable with ``resume``) and
    writing the weights to ``out/keypoint_refiner.safetensors`` and a summary
    ``out/summary.json``. Returns the summary.

    ``stop_after``: stop once this many steps are done in total, with a checkpoint and
    without the weights (a later ``resume`` goes on as if never stopped).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pt"
    torch.manual_seed(config.seed)
    model = KeypointRefiner(config.model_config())
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    step, elapsed = 0, 0.0
    gen = torch.Generator().manual_seed(config.seed)
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt, format_tag=_FORMAT, required=("step", "model"))
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state["elapsed_s"])
        gen.set_state(state["rng"])
        log(f"resumed at step {step}")
    t0 = time.perf_counter()
    bank = hand_bank(config.bank, config.seed).to(torch.float32)
    log(f"bank of {len(bank)} hands in {time.perf_counter() - t0:.1f} s")
    val_gen = torch.Generator().manual_seed(config.seed + 1)
    val_bank = hand_bank(2000, config.seed + 10_000).to(torch.float32)
    val_clean, val_present = clean_pairs(val_bank, 2000, val_gen)
    val_noisy = corrupt(val_clean, val_gen, config.max_sigma_mm)

    def checkpoint() -> None:
        save_checkpoint(
            ckpt,
            {
                "step": step,
                "elapsed_s": elapsed,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "rng": gen.get_state(),
                "config": asdict(config),
            },  # fmt: skip
            format_tag=_FORMAT,
        )

    t_start = time.perf_counter() - elapsed
    model.train()
    while step < config.steps:
        if stop_after is not None and step >= stop_after:
            checkpoint()
            return {"steps": step, "stopped": True}
        for group in opt.param_groups:
            group["lr"] = cosine(step, config.steps, config.lr, 0.0)
        clean, present = clean_pairs(bank, config.batch, gen)
        noisy = corrupt(clean, gen, config.max_sigma_mm)
        refined = model.refine(noisy, present)
        loss = mpjpe(refined, clean, present)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        elapsed = time.perf_counter() - t_start
        if step % config.checkpoint_every == 0 or step == config.steps:
            model.eval()
            with torch.no_grad():
                val = mpjpe(model.refine(val_noisy, val_present), val_clean, val_present)
                base = mpjpe(val_noisy, val_clean, val_present)
            model.train()
            log(
                f"step {step} loss {loss.item() * 1e3:.2f} mm  val {val.item() * 1e3:.2f} mm "
                f"(noisy {base.item() * 1e3:.2f} mm)  {elapsed:.0f} s"
            )
            checkpoint()
    model.eval()
    save_refiner(model, out / "keypoint_refiner.safetensors")
    with torch.no_grad():
        val = mpjpe(model.refine(val_noisy, val_present), val_clean, val_present).item()
        base = mpjpe(val_noisy, val_clean, val_present).item()
    summary = {
        "config": asdict(config), "steps": step, "wall_time_s": round(elapsed, 1),
        "val_mpjpe_noisy_mm": round(base * 1e3, 3), "val_mpjpe_refined_mm": round(val * 1e3, 3),
        "parameters": sum(p.numel() for p in model.parameters()),
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
