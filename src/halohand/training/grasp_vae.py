"""Training HALO-VAE on the grasp data engine's grasps (``halohand grasp train``).

Batches are grouped by object: ``objects_per_batch`` objects, ``grasps_per_object`` grasps
each, so the object encoder runs on a few point clouds per step instead of one per grasp.
Each object group gets one random rotation about the object's long axis (z) that turns its
surface points, interior points and grasps together: the objects' upright pose stays, their
heading is free.

Losses (spec section 9 and the issue; lengths in cm, angles in radians):

========================  =====================================================  ======
term                      definition                                             weight
========================  =====================================================  ======
``joints``                mean squared error of the 63 keypoint values           2
``bones``                 mean absolute error of the 20 bone lengths             2
``root_angles``           ``|d cos| + |d sin|`` of the 4 angles between root      1.5
                          bones (canonicalization ``spread_angles``)
``plane_angles``          the same for the 3 root-plane angles                   1.5
``angles``                the same for the 15 flexion and 15 abduction angles    1
``kl``                    KL to N(0, I), summed over the latent                  0.5
``hand_frame``            (``output="hand_frame"``) mean squared error of the    2
                          hand-frame keypoints against the canonicalization
                          layer's normalized keypoints of the target
``interpenetration``      HALO occupancy (frozen pretrained model) at points     4
                          inside the object, where above 0.5, mean over points
========================  =====================================================  ======

The angle terms and the interpenetration term start after ``warmup_fraction`` of the steps:
a freshly initialised decoder puts all joints near one point, where angles are undefined.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from halohand.canonical import canonicalize
from halohand.core.errors import HalohandInputError
from halohand.grasp.energies import bone_lengths, interior_points, interpenetration
from halohand.grasp.generate import grasp_halo
from halohand.grasp.synthesis import load_grasps
from halohand.grasp.vae import GraspVAE, VAEConfig, kl_divergence, save_vae
from halohand.objects.registry import load_object
from halohand.training.config import read_toml
from halohand.training.run import Run, lr_schedule

__all__ = ["GraspData", "VAETrainConfig", "grasp_losses", "load_vae_config", "train_vae"]

CHECKPOINT_FORMAT = "halohand.grasp-vae-checkpoint"
_CHECKPOINT_KEYS = ("config", "model", "optimizer", "generator", "step", "elapsed_s")
_LOG_FIELDS = [
    "step",
    "wall_s",
    "lr",
    "loss",
    "joints",
    "bones",
    "kl",
    "root_angles",
    "plane_angles",
    "angles",
    "interpenetration",
    "hand_frame",
]


@dataclass
class VAETrainConfig:
    """Everything a run needs (a TOML file's keys; ``[model]`` holds :class:`VAEConfig`)."""

    grasps: str = "data/grasps_r48"
    out_dir: str = "runs/grasp_vae"
    model: VAEConfig = field(default_factory=VAEConfig)
    seed: int = 0
    steps: int = 2000
    objects_per_batch: int = 4
    grasps_per_object: int = 32
    lr: float = 5e-4
    lr_min: float = 1e-5
    object_points: int = 600
    interior_points: int = 64
    warmup_fraction: float = 0.1
    rotate_z: bool = True
    w_joints: float = 2.0
    w_bones: float = 2.0
    w_root_angles: float = 1.5
    w_plane_angles: float = 1.5
    w_angles: float = 1.0
    w_kl: float = 0.5
    w_hand_frame: float = 2.0
    w_interpenetration: float = 4.0
    checkpoint_every_s: float = 120.0
    log_every: int = 25

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = VAEConfig(**self.model)
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise HalohandInputError(f"{f.name} must be a finite number, got {v}")
        for name in ("steps", "objects_per_batch", "grasps_per_object", "object_points"):
            if int(getattr(self, name)) < 1:
                raise HalohandInputError(f"{name} must be >= 1")
        if self.interior_points < 0 or not 0.0 <= self.warmup_fraction < 1.0:
            raise HalohandInputError("interior_points must be >= 0, warmup_fraction in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_vae_config(path: str | os.PathLike[str], **overrides: Any) -> VAETrainConfig:
    """Read a TOML config; ``overrides`` (not None) replace its top-level keys."""

    doc = read_toml(path)
    doc.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(VAETrainConfig)}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise HalohandInputError(f"{path}: unknown key(s) {', '.join(unknown)}")
    try:
        return VAETrainConfig(**doc)
    except TypeError as exc:
        raise HalohandInputError(f"{path}: {exc}") from None


class GraspData:
    """Grasps (cm, object frame) and, per object, surface and interior point banks (cm)."""

    def __init__(
        self,
        grasps_dir: str | os.PathLike[str],
        object_points: int = 600,
        clouds_per_object: int = 8,
        interior_bank: int = 1024,
    ) -> None:

        try:
            g = load_grasps(grasps_dir)
        except FileNotFoundError as exc:
            raise HalohandInputError(str(exc)) from None
        right = np.asarray(g["side"]).astype(str) == "right"
        kp = np.asarray(g["keypoints"], dtype=np.float64)[right] * 100.0
        ids = np.asarray(g["object_id"]).astype(str)[right]
        if len(kp) == 0:
            raise HalohandInputError(f"no accepted right-hand grasps under {grasps_dir}")
        self.object_ids = sorted(set(ids.tolist()))
        self.keypoints = torch.tensor(kp, dtype=torch.float32)
        self.grasp_object = torch.tensor([self.object_ids.index(o) for o in ids])
        self.by_object = [
            torch.nonzero(self.grasp_object == i)[:, 0] for i in range(len(self.object_ids))
        ]
        clouds, interiors = [], []
        for i, oid in enumerate(self.object_ids):
            obj = load_object(oid)
            clouds.append(
                np.stack(
                    [
                        obj.surface_points(object_points, seed=1000 * i + s)[0]
                        for s in range(clouds_per_object)
                    ]
                )
            )
            interiors.append(interior_points(obj, interior_bank, seed=i))
        self.clouds = torch.tensor(np.stack(clouds) * 100.0, dtype=torch.float32)
        self.interiors = torch.tensor(np.stack(interiors) * 100.0, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.keypoints)

    def batch(
        self,
        generator: torch.Generator,
        objects: int,
        per_object: int,
        interior: int,
        rotate_z: bool,
    ) -> dict[str, Tensor]:
        """A random object-grouped batch; every tensor in cm, rotated per group."""
        n_obj = len(self.object_ids)
        objs = torch.randperm(n_obj, generator=generator)[: min(objects, n_obj)]
        g = len(objs)
        kp, inner = [], []
        for o in objs.tolist():
            members = self.by_object[o]
            pick = members[torch.randint(len(members), (per_object,), generator=generator)]
            kp.append(self.keypoints[pick])
            sel = torch.randint(
                self.interiors.shape[1], (per_object, interior), generator=generator
            )
            inner.append(self.interiors[o][sel])
        cloud_idx = torch.randint(self.clouds.shape[1], (g,), generator=generator)
        clouds = self.clouds[objs, cloud_idx]
        keypoints = torch.stack(kp)  # [G, K, 21, 3]
        interiors = torch.stack(inner)  # [G, K, I, 3]
        if rotate_z:
            theta = torch.rand(g, generator=generator) * (2 * math.pi)
            c, s = torch.cos(theta), torch.sin(theta)
            rot = torch.zeros(g, 3, 3)
            rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = c, -s, s, c
            rot[:, 2, 2] = 1.0
            clouds = clouds @ rot.transpose(1, 2)
            keypoints = keypoints @ rot[:, None].transpose(-1, -2)
            interiors = interiors @ rot[:, None].transpose(-1, -2)
        return {
            "clouds": clouds,
            "keypoints": keypoints.reshape(-1, 21, 3),
            "interiors": interiors.reshape(g * per_object, -1, 3),
            "group": torch.arange(g).repeat_interleave(per_object),
        }


def _angle_error(a: Tensor, b: Tensor) -> Tensor:
    return ((a.cos() - b.cos()).abs() + (a.sin() - b.sin()).abs()).mean()


def grasp_losses(
    pred: Tensor,
    target: Tensor,
    mean: Tensor | None,
    log_std: Tensor | None,
    config: VAETrainConfig,
    *,
    angles: bool,
    halo=None,
    interior: Tensor | None = None,
    local: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Weighted total and the unweighted terms (floats) for ``[B, 21, 3]`` keypoints in cm."""

    terms: dict[str, Tensor] = {
        "joints": (pred - target).pow(2).mean(),
        "bones": (bone_lengths(pred) - bone_lengths(target)).abs().mean(),
    }
    if mean is not None and log_std is not None:
        terms["kl"] = kl_divergence(mean, log_std).mean()
    if local is not None or angles:
        ct = canonicalize(target.double(), "right", check=False)
    if local is not None:
        terms["hand_frame"] = (local - ct.normalized_keypoints.to(local.dtype)).pow(2).mean()
    if angles:
        cp = canonicalize(pred.double(), "right", check=False)
        terms["root_angles"] = _angle_error(cp.spread_angles, ct.spread_angles).float()
        terms["plane_angles"] = _angle_error(cp.plane_angles, ct.plane_angles).float()
        terms["angles"] = (
            0.5 * (_angle_error(cp.flexion, ct.flexion) + _angle_error(cp.abduction, ct.abduction))
        ).float()
    if halo is not None and interior is not None and interior.shape[1] > 0:
        terms["interpenetration"] = interpenetration(halo, pred, interior).mean()
    weights = {k: getattr(config, f"w_{k}") for k in terms}
    total = sum(weights[k] * v for k, v in terms.items())
    return total, {k: float(v.detach()) for k, v in terms.items()}


def train_vae(
    config: VAETrainConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    halo=None,
    data: GraspData | None = None,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train (or resume) a grasp VAE; writes ``checkpoint.pt``, ``log.csv``, ``config.json``
    and, at the end, ``model.safetensors`` (the folder is a :class:`~halohand.training.run.Run`).

    ``halo``: the frozen occupancy model for the interpenetration term (default: the
    pretrained one when ``w_interpenetration > 0``). ``stop_after``: leave after that many
    steps of this call with a checkpoint (a time-boxed run; ``resume`` continues it
    exactly); SIGINT/SIGTERM do the same after the running step. ``resume`` without a
    checkpoint starts fresh. Returns a summary dict (``finished`` False when stopped early).
    """
    from tqdm import tqdm

    run = Run(
        config.out_dir,
        config.to_dict(),
        columns=_LOG_FIELDS,
        format_tag=CHECKPOINT_FORMAT,
        required=_CHECKPOINT_KEYS,
        learning_rate=lr_schedule("cosine", config.lr, config.lr_min, config.steps),
        checkpoint_every_s=config.checkpoint_every_s,
    )
    doc = run.open(resume, fresh_if_missing=True)
    torch.manual_seed(config.seed)
    model = GraspVAE(config.model)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed)
    if doc is not None:
        # Keys added to the config after the checkpoint was written take their defaults.
        saved = {**VAETrainConfig().to_dict(), **doc["config"]}
        saved["model"] = {**asdict(VAEConfig()), **doc["config"].get("model", {})}
        if json.loads(json.dumps(saved)) != json.loads(json.dumps(config.to_dict())):
            raise HalohandInputError(f"{run.checkpoint_path} was written with another config")
        model.load_state_dict(doc["model"])
        opt.load_state_dict(doc["optimizer"])
        gen.set_state(doc["generator"])
    if data is None:
        data = GraspData(config.grasps, config.object_points)
    if halo is None and config.w_interpenetration > 0 and config.interior_points > 0:
        halo = grasp_halo()
    if halo is not None:
        for p in halo.network.parameters():
            p.requires_grad_(False)
    run.start()
    try:
        warm = int(config.warmup_fraction * config.steps)
        bar = tqdm(total=config.steps, initial=run.step, disable=not progress, desc="grasp VAE")
        model.train()
        row: dict[str, float] = {}

        def state() -> dict[str, Any]:
            return {
                "config": config.to_dict(),
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "generator": gen.get_state(),
            }

        last_step = config.steps if stop_after is None else min(config.steps, run.step + stop_after)
        with run.stop_signals():
            while run.step < last_step:
                step = run.step
                run.set_lr(opt)
                b = data.batch(
                    gen,
                    config.objects_per_batch,
                    config.grasps_per_object,
                    config.interior_points,
                    config.rotate_z,
                )
                code = model.encode_object(b["clouds"])[b["group"]]
                eps_gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
                pred, mean, log_std, local = model(b["keypoints"], code, generator=eps_gen)
                late = step >= warm
                total, terms = grasp_losses(
                    pred,
                    b["keypoints"],
                    mean,
                    log_std,
                    config,
                    angles=late,
                    halo=halo if late and config.w_interpenetration > 0 else None,
                    interior=b["interiors"],
                    local=local,
                )
                opt.zero_grad(set_to_none=True)
                total.backward()
                opt.step()
                run.step = step = step + 1
                bar.update(1)
                if step % config.log_every == 0 or step == config.steps:
                    row = {
                        "step": step,
                        "wall_s": round(run.elapsed(), 2),
                        "lr": run.lr(step - 1),
                        "loss": float(total.detach()),
                        **terms,
                    }
                    run.log(row)
                    bar.set_postfix(loss=f"{row['loss']:.3f}", joints=f"{terms['joints']:.2f}")
                if run.checkpoint_due():
                    run.save(state())
                if run.stop_requested:
                    break
        bar.close()
        run.save(state())
        wall = round(run.elapsed(), 1)
        if run.step < config.steps:
            return {"steps": run.step, "finished": False, "wall_s": wall, "grasps": len(data),
                    "last": row}  # fmt: skip
        meta = {
            "finished": True,
            "steps": run.step,
            "wall_s": wall,
            "grasps": len(data),
            "objects": data.object_ids,
            "config": config.to_dict(),
            "last": row,
        }
        save_vae(run.folder / "model.safetensors", model.eval(), meta)
        return meta
    finally:
        run.close()
