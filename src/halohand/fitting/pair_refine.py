"""Pushing two hands apart where their occupancy fields overlap (test-time refinement).

Two hands reconstructed one by one from their keypoints can pass into each other: a
finger through the other palm, interlaced fingers sharing space. This refinement moves
the keypoints of both hands as little as it can until the two HALO occupancy fields no
longer overlap. It optimises, with Adam, per hand a translation and a rotation at every
joint that turns the bones below it (forward kinematics on the 21-joint skeleton, so
every bone keeps its length exactly), for

    E = w_pen * sum_p [o_R, o_L > l] o_R(p) o_L(p) dV    Im2Hands Eq. 9 (cm^3)
      + w_data * mean |k - k0|^2 / (1 cm)^2 stay near the observed keypoints
      + w_turn * mean |r|^2 / (0.1 rad)^2   small joint rotations

where ``o_R``, ``o_L`` are the two hands' occupancies (:meth:`HALO.occupancy`, with
gradients) at the centres of a grid over the overlap of the hands' boxes (grown by the
surface margin), redrawn each step as the hands move, and only cells inside both surfaces
(both occupancies above the mesh level ``l``) count: hands that touch without entering
each other are left where they are. It stops once no cell is inside both. It is not
Im2Hands' learned refinement network: it needs no training and no image, and it changes
only the keypoints (the surfaces stay HALO's).

Two hands of one photo (``along_rays``, keypoints in the camera's frame): the photo shows
where each joint is across the image and barely how far away, so each hand only moves
along the ray through its centre (its depth changes, its place in the photo barely: a few
pixels of perspective) and its pose stays; the hands part in depth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from halohand.core.errors import HalohandInputError
from halohand.fitting.articulate import articulate

__all__ = ["PairRefineConfig", "PairRefineResult", "overlap_grid", "refine_pair"]


@dataclass(frozen=True)
class PairRefineConfig:
    """Weights and budget of :func:`refine_pair` (lengths in metres)."""

    steps: int = 100
    lr: float = 5e-4
    grid: int = 24
    margin: float = 0.012
    w_pen: float = 1.0
    w_data: float = 0.05
    w_turn: float = 0.05
    articulate: bool = True
    ray_lr: float = 2e-3


@dataclass(frozen=True)
class PairRefineResult:
    """Outcome of :func:`refine_pair`.

    Attributes:
        keypoints: ``[2, 21, 3]`` refined keypoints (metres, input frame and order).
        overlap_before_cm3 / overlap_after_cm3: volume of the grid cells inside both
            hands' surfaces (both occupancies above the mesh level), for the input and
            the refined keypoints.
        moved_mm: ``[2, 21]`` distance each keypoint moved (mm).
        steps: optimizer steps taken (stops early once the overlap is gone).
        seconds: wall time.
    """

    keypoints: np.ndarray
    overlap_before_cm3: float
    overlap_after_cm3: float
    moved_mm: np.ndarray
    steps: int
    seconds: float


def overlap_grid(keypoints: Tensor, margin: float, n: int) -> tuple[Tensor, float] | None:
    """Centres ``[M, 3]`` of an ``n``-per-side grid over the overlap of the two hands'
    keypoint boxes grown by ``margin`` (metres), and the volume of one cell (m^3); ``None``
    where the boxes do not meet."""
    kp = keypoints.detach()
    lo = torch.maximum(kp[0].min(0).values, kp[1].min(0).values) - margin
    hi = torch.minimum(kp[0].max(0).values, kp[1].max(0).values) + margin
    if bool((hi <= lo).any()):
        return None
    step = (hi - lo) / n
    axes = [lo[k] + step[k] * (torch.arange(n, dtype=kp.dtype) + 0.5) for k in range(3)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    return grid, float(step.prod())


def refine_pair(
    halo: Any,
    keypoints: Any,
    sides: tuple[str, str] = ("right", "left"),
    config: PairRefineConfig | None = None,
    *,
    along_rays: bool = False,
) -> PairRefineResult:
    """Move two hands' keypoints until their occupancy fields stop overlapping.

    Args:
        halo: a :class:`~halohand.inference.halo.HALO` model.
        keypoints: ``[2, 21, 3]`` or ``[42, 3]`` metres, project order, one world frame.
        sides: the side of each hand (a right and a left, or two of one side: two
            people's right hands in one photo).
        config: weights and budget (:class:`PairRefineConfig`).
        along_rays: the keypoints are in a photo's camera frame (camera at the origin,
            ``z`` ahead): each hand moves rigidly along the ray through its keypoints'
            centre, nothing else (module docstring); its step is ``ray_lr`` (metres).

    Returns:
        :class:`PairRefineResult`.

    Raises:
        HalohandInputError: wrong shape, NaN, sides that are not two of right / left, hands
            behind the camera (``along_rays``).
    """
    cfg = config or PairRefineConfig()
    kp0 = np.asarray(keypoints, dtype=np.float64)
    if kp0.shape == (42, 3):
        kp0 = kp0.reshape(2, 21, 3)
    if kp0.shape != (2, 21, 3):
        raise HalohandInputError(
            f"a pair needs [2, 21, 3] or [42, 3] keypoints, got {list(kp0.shape)}"
        )
    if not np.isfinite(kp0).all():
        raise HalohandInputError("keypoints contain NaN or inf")
    if along_rays and not (kp0[..., 2] > 0).all():
        raise HalohandInputError("along_rays: keypoints must lie in front of the camera (z > 0)")
    if len(sides) != 2 or any(s not in ("right", "left") for s in sides):
        raise HalohandInputError(f"a pair needs two sides, each right or left, got {sides}")
    t0 = time.perf_counter()
    base = torch.from_numpy(kp0)
    if along_rays:
        centre = base.mean(1, keepdim=True)
        ray = centre / torch.linalg.vector_norm(centre, dim=-1, keepdim=True)  # [2, 1, 3]
        depth = torch.zeros(2, 1, 1, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([depth], lr=cfg.ray_lr)

        def posed() -> Tensor:
            return base + depth * ray

    else:
        shift = torch.zeros(2, 1, 3, dtype=torch.float64, requires_grad=True)
        # Rotation at each joint (radians, axis-angle) of the bones below it; only the
        # wrist's without articulation. Radians are ~10x a length in metres here, so they
        # get 10x lr.
        turns = torch.zeros(2, 21 if cfg.articulate else 1, 3, dtype=torch.float64)
        turns.requires_grad_(True)
        opt = torch.optim.Adam(
            [{"params": [shift], "lr": cfg.lr}, {"params": [turns], "lr": 10.0 * cfg.lr}]
        )

        def posed() -> Tensor:
            return articulate(base, turns, shift)

    level = float(getattr(halo, "iso_level", 0.5))

    def overlap(kp: Tensor, grad: bool = True) -> tuple[Tensor, float] | None:
        """(penalty, volume cm^3) of the cells inside both hands' surfaces; None: apart."""
        got = overlap_grid(kp, cfg.margin, cfg.grid)
        if got is None:
            return None
        grid, cell = got
        occ = halo.occupancy(grid, kp, side=list(sides), units="m", grad=grad)  # [2, M]
        both = (occ[0] > level) & (occ[1] > level)
        penalty = (occ[0] * occ[1] * both).sum() * cell * 1e6
        return penalty, float(both.sum()) * cell * 1e6

    # The first step's keypoints are the input's (zero parameters): its overlap is the
    # "before"; a loop that stops because nothing overlaps needs no "after" query.
    before_cm3: float | None = None
    after_cm3: float | None = None
    steps = 0
    for steps in range(1, cfg.steps + 1):  # noqa: B007 - the count is reported
        kp = posed()
        got = overlap(kp)
        volume = 0.0 if got is None else got[1]
        if before_cm3 is None:
            before_cm3 = volume
        if volume == 0.0:
            steps -= 1
            after_cm3 = 0.0
            break
        pen = got[0]
        data = ((kp - base) ** 2).sum(-1).mean() / 1e-4
        loss = cfg.w_pen * pen + cfg.w_data * data
        if not along_rays:
            loss = loss + cfg.w_turn * (turns**2).sum(-1).mean() / 1e-2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = posed()
    if before_cm3 is None:  # no step was allowed
        first = overlap(base, grad=False)
        before_cm3 = 0.0 if first is None else first[1]
    if after_cm3 is None:
        after = overlap(final, grad=False)
        after_cm3 = 0.0 if after is None else after[1]
    moved = torch.linalg.vector_norm(final - base, dim=-1).numpy() * 1000.0
    return PairRefineResult(
        final.numpy(), before_cm3, after_cm3, moved, steps, time.perf_counter() - t0
    )
