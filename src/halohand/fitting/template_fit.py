"""Fit the embedded rigged hand model to 3D keypoints by optimisation.

The baseline of HALO's Table 2 ("fit a rigged template to the keypoints"): given target
keypoints ``[21, 3]`` (metres, the project's order) and the side, find the model parameters
whose keypoints match, and return the posed template mesh.

Parameters fitted (per hand):

- global similarity: rotation (axis-angle residual on top of a palm Kabsch/Umeyama
  alignment), translation and overall scale (the hand length);
- all 45 pose angles (flexion, abduction, twist at the 15 joints), kept inside the joint
  limits by projection (clamping after every step, so limits are hard constraints and poses
  at a limit, which the data's prior produces by clipping, are reachable);
- 16 bone-length factors and the palm width (log-parametrised, clamped to their validated
  ranges). The thickness offsets are invisible to keypoints and stay at their mean (zero).

Objective (a MAP estimate, all terms as squared standardised residuals, halved)::

    sum_k |kp_k - y_k|^2 / sigma_kp^2                 (keypoints, sigma_kp = 1 mm default)
  + w_pose * sum ((theta - mu) / s)^2                 (diagonal Gaussian of the pose prior)
  + w_id * x^T C^-1 x                                 (log length factors / palm width under
                                                      the identity prior's covariance)

The priors resolve what keypoints cannot see (twist of a straight finger, DIP twist, the
trade-off between the overall scale and all length factors together) and keep noisy inputs
natural. Optimiser: Adam with a cosine learning-rate decay, batched over hands and over
several initial poses ("starts"); the start with the lowest objective wins per hand.
Left hands are fitted as mirrored right hands (the model's left hand is the mirror image of
the right with the same parameters) and mirrored back.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from halohand.core.alignment import similarity_transform
from halohand.core.errors import HalohandInputError
from halohand.core.rotations import axis_angle_to_matrix
from halohand.core.schedule import cosine
from halohand.handmodel.pose import (
    HAND_LENGTH_RANGE,
    JOINT_LIMITS,
    LENGTH_FACTOR_RANGE,
    PALM_WIDTH_RANGE,
    HandIdentity,
    HandPose,
)
from halohand.handmodel.prior import GESTURES, pose_prior_stats
from halohand.handmodel.prior import identity_precision as _identity_precision
from halohand.handmodel.torch_model import TorchHandModel
from halohand.handmodel.webxr import check_side
from halohand.skeleton import NUM_PARTS, hand_length
from halohand.skeleton.validation import check_keypoints

__all__ = ["FitConfig", "FitResult", "fit_template", "fit_templates", "pose_prior_stats"]

#: Palm keypoints (wrist, thumb CMC, index/middle/ring/pinky MCP): rigid in the model, so a
#: similarity fit on them aligns the hand independently of the finger pose.
PALM_KEYPOINTS = (0, 1, 5, 9, 13, 17)


@dataclass(frozen=True)
class FitConfig:
    """Settings of :func:`fit_templates`.

    Attributes:
        iterations: Adam steps.
        lr: peak learning rate for angles (radians) and log factors; translation uses
            ``lr`` x 1 cm. Decays to 1 % with a cosine.
        keypoint_sigma_mm: expected keypoint noise; smaller trusts keypoints more.
        pose_prior_weight / identity_prior_weight: multipliers of the prior terms.
        fit_identity: fit length factors and palm width (else only pose, scale, rigid).
        starts: initial poses tried per hand: ``"mean"`` (pose prior mean) or gesture names
            of :data:`halohand.handmodel.GESTURES`.
        with_mesh: build the posed template mesh of each result.
        device: torch device.
    """

    iterations: int = 300
    lr: float = 0.05
    keypoint_sigma_mm: float = 1.0
    pose_prior_weight: float = 1.0
    identity_prior_weight: float = 1.0
    fit_identity: bool = True
    starts: tuple[str, ...] = ("mean", "fist", "flat")
    with_mesh: bool = True
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise HalohandInputError(f"iterations must be >= 1, got {self.iterations}")
        if not self.lr > 0 or not self.keypoint_sigma_mm > 0:
            raise HalohandInputError("lr and keypoint_sigma_mm must be positive")
        if self.pose_prior_weight < 0 or self.identity_prior_weight < 0:
            raise HalohandInputError("prior weights must be >= 0")
        if not self.starts:
            raise HalohandInputError("starts must name at least one initial pose")
        for s in self.starts:
            if s != "mean" and s not in GESTURES:
                raise HalohandInputError(
                    f"unknown start {s!r}; use 'mean' or one of {', '.join(GESTURES)}"
                )


@dataclass(frozen=True)
class FitResult:
    """One fitted hand (metres, in the frame of the target keypoints).

    Attributes:
        keypoints: ``[21, 3]`` keypoints of the fitted model.
        keypoint_error_mm: mean Euclidean distance to the targets over the 21 joints (mm).
        max_keypoint_error_mm: the largest of those distances (mm).
        pose: fitted :class:`HandPose` (within the joint limits).
        identity: fitted :class:`HandIdentity` (thickness offsets zero).
        rotation: ``[3, 3]`` global rotation applied after the mirror (left hands).
        translation: ``[3]`` metres.
        side: ``"right"`` or ``"left"``.
        start: the initial pose that won.
        objective: final value of the fitting objective.
        seconds: wall time per hand (the batch time divided by the hands fitted together).
        vertices / faces: ``[1159, 3]`` float64 metres and ``[2314, 3]`` int64 of the posed
            template mesh (``None`` if ``with_mesh`` was off).
    """

    keypoints: np.ndarray
    keypoint_error_mm: float
    max_keypoint_error_mm: float
    pose: HandPose
    identity: HandIdentity
    rotation: np.ndarray
    translation: np.ndarray
    side: str
    start: str
    objective: float
    seconds: float
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None

    @property
    def mesh(self):  # -> trimesh.Trimesh
        """The posed template as a ``trimesh.Trimesh`` (requires ``with_mesh``)."""
        import trimesh

        if self.vertices is None or self.faces is None:
            raise HalohandInputError("this fit was run with with_mesh=False")
        return trimesh.Trimesh(self.vertices, self.faces, process=False)


def _check_inputs(keypoints: object, sides: object) -> tuple[np.ndarray, list[str]]:
    """Validate ``[21, 3]`` / ``[N, 21, 3]`` metres and the side(s)."""
    kp, _ = check_keypoints(keypoints, "openpose", name="target keypoints")
    n = len(kp)
    side_list = [sides] * n if isinstance(sides, str) else list(sides)  # type: ignore[arg-type]
    if len(side_list) != n:
        raise HalohandInputError(f"got {len(side_list)} sides for {n} hands")
    side_list = [check_side(s) for s in side_list]
    length = np.asarray(hand_length(kp))
    lo, hi = HAND_LENGTH_RANGE
    for i, h in enumerate(length):
        if not 0.5 * lo <= h <= 2.0 * hi:
            unit = " (millimetres? pass metres)" if h > 2.0 * hi else ""
            raise HalohandInputError(
                f"hand {i}: wrist-to-middle-tip length {h:.4g} is not a hand in metres{unit}"
            )
        palm = kp[i, list(PALM_KEYPOINTS)]
        # Kabsch needs a non-degenerate palm: two directions of at least ~1 cm.
        sv = np.linalg.svd(palm - palm.mean(0), compute_uv=False)
        if sv[1] < 0.005:
            raise HalohandInputError(
                f"hand {i}: the palm keypoints (wrist, thumb CMC, MCPs) are collinear or "
                "coincide; cannot align the template"
            )
    return kp, side_list


def fit_template(
    keypoints: np.ndarray, side: str = "right", config: FitConfig | None = None
) -> FitResult:
    """Fit the rigged template to one hand's keypoints ``[21, 3]`` (metres).

    See :func:`fit_templates`; raises :class:`~halohand.core.errors.HalohandInputError` on bad
    input.
    """
    kp, _ = check_keypoints(keypoints, "openpose", name="target keypoints")
    if len(kp) != 1:
        raise HalohandInputError("fit_template takes one hand [21, 3]; use fit_templates")
    return fit_templates(kp, side, config)[0]


def fit_templates(
    keypoints: np.ndarray, sides: str | list[str] = "right", config: FitConfig | None = None
) -> list[FitResult]:
    """Fit the rigged template to a batch of hands (optimised together, independently).

    Args:
        keypoints: ``[N, 21, 3]`` (or ``[21, 3]``) target keypoints in metres, project order.
        sides: one side for all hands or a list of ``N`` sides.
        config: :class:`FitConfig` (default settings if ``None``).

    Returns:
        ``N`` :class:`FitResult`.
    """
    cfg = FitConfig() if config is None else config
    kp, side_list = _check_inputs(keypoints, sides)
    t0 = time.perf_counter()
    model = _torch_model(cfg.device)
    dev, dt = model.device, torch.float64
    n, k = len(kp), len(cfg.starts)

    # Left hands become right hands by mirroring the targets across x = 0.
    flip = np.array([[-1.0 if s == "left" else 1.0, 1.0, 1.0] for s in side_list])
    target_np = kp * flip[:, None]

    # Rigid + scale initialisation from the palm, which the pose does not move.
    ones16 = torch.ones(1, NUM_PARTS, dtype=dt, device=dev)
    one = torch.ones(1, dtype=dt, device=dev)
    rest_kp = model(torch.zeros(1, 15, 3, dtype=dt), ones16, one, one).keypoints[0].cpu().numpy()
    palm = list(PALM_KEYPOINTS)
    init = [similarity_transform(rest_kp[palm], t[palm]) for t in target_np]

    mean, std = pose_prior_stats()
    start_angles = np.stack([mean if s == "mean" else GESTURES[s] for s in cfg.starts])
    # Batch layout: hand-major, start-minor -> row = i * k + j.
    b = n * k
    target = torch.tensor(np.repeat(target_np, k, axis=0), dtype=dt, device=dev)
    rot0 = torch.tensor(np.repeat([r for _, r, _ in init], k, axis=0), dtype=dt, device=dev)
    trans0 = torch.tensor(np.repeat([t for _, _, t in init], k, axis=0), dtype=dt, device=dev)
    log_scale0 = torch.tensor(np.repeat([math.log(s) for s, _, _ in init], k), dtype=dt)

    angles = torch.tensor(np.tile(start_angles, (n, 1, 1)), dtype=dt, device=dev)
    rvec = torch.zeros(b, 3, dtype=dt, device=dev)
    dtrans = torch.zeros(b, 3, dtype=dt, device=dev)  # centimetres
    log_scale = log_scale0.clone().to(dev)
    log_id = torch.zeros(b, NUM_PARTS + 1, dtype=dt, device=dev)  # factors + palm width
    params = [angles, rvec, dtrans, log_scale] + ([log_id] if cfg.fit_identity else [])
    for p in params:
        p.requires_grad_(True)

    lo = torch.tensor(JOINT_LIMITS[..., 0], dtype=dt, device=dev)
    hi = torch.tensor(JOINT_LIMITS[..., 1], dtype=dt, device=dev)
    id_lo = torch.tensor(
        [math.log(LENGTH_FACTOR_RANGE[0])] * NUM_PARTS + [math.log(PALM_WIDTH_RANGE[0])],
        dtype=dt, device=dev,
    )  # fmt: skip
    id_hi = torch.tensor(
        [math.log(LENGTH_FACTOR_RANGE[1])] * NUM_PARTS + [math.log(PALM_WIDTH_RANGE[1])],
        dtype=dt, device=dev,
    )  # fmt: skip
    mu = torch.tensor(mean, dtype=dt, device=dev)
    inv_std = torch.tensor(1.0 / std, dtype=dt, device=dev)
    precision = torch.tensor(_identity_precision(), dtype=dt, device=dev)
    inv_sigma_m = 1.0 / (cfg.keypoint_sigma_mm * 1e-3)

    def objective() -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row objective ``[B]`` and fitted keypoints ``[B, 21, 3]``."""
        out = model(
            angles,
            torch.exp(log_id[:, :NUM_PARTS]),
            torch.exp(log_id[:, NUM_PARTS]),
            torch.exp(log_scale),
            global_rot=rot0 @ axis_angle_to_matrix(rvec),
            translation=trans0 + 0.01 * dtrans,
        )
        data = ((out.keypoints - target) * inv_sigma_m).square().sum((-1, -2))
        pose = ((angles - mu) * inv_std).square().sum((-1, -2))
        ident = torch.einsum("bi,ij,bj->b", log_id, precision, log_id)
        total = 0.5 * (data + cfg.pose_prior_weight * pose + cfg.identity_prior_weight * ident)
        return total, out.keypoints

    opt = torch.optim.Adam(params, lr=cfg.lr)
    for it in range(cfg.iterations):
        # Cosine decay to 1 % of the peak: large early steps escape the start pose, small
        # late steps settle to sub-millimetre accuracy.
        for g in opt.param_groups:
            g["lr"] = cfg.lr * cosine(it, cfg.iterations - 1, 1.0, 0.01)
        opt.zero_grad(set_to_none=True)
        loss, _ = objective()
        loss.sum().backward()  # rows are independent, so the sum gives per-row gradients
        opt.step()
        with torch.no_grad():
            angles.copy_(torch.minimum(torch.maximum(angles, lo), hi))
            log_id.copy_(torch.minimum(torch.maximum(log_id, id_lo), id_hi))

    with torch.no_grad():
        final, fitted = objective()
        best = final.reshape(n, k).argmin(1)
        rows = torch.arange(n, device=dev) * k + best
        factors = torch.exp(log_id[rows, :NUM_PARTS])
        width = torch.exp(log_id[rows, NUM_PARTS])
        scale = torch.exp(log_scale[rows])
        unit_len = model.unit_hand_length(factors, width)
        rot = rot0[rows] @ axis_angle_to_matrix(rvec[rows])
        trans = trans0[rows] + 0.01 * dtrans[rows]
        verts = None
        if cfg.with_mesh:
            verts = model(
                angles[rows], factors, width, scale, global_rot=rot, translation=trans,
                with_vertices=True,
            ).vertices  # fmt: skip
    seconds = (time.perf_counter() - t0) / n

    results = []
    for i in range(n):
        r = int(rows[i])
        f = flip[i]
        fit_kp = fitted[r].cpu().numpy() * f
        err = np.linalg.norm(fit_kp - kp[i], axis=-1) * 1e3
        mirror = np.diag(f)
        ang = np.clip(angles[r].detach().cpu().numpy(), JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1])
        length = float(np.clip(float(scale[i] * unit_len[i]), *HAND_LENGTH_RANGE))
        identity = HandIdentity(
            hand_length=length,
            length_factors=np.clip(factors[i].cpu().numpy(), *LENGTH_FACTOR_RANGE),
            palm_width=float(np.clip(float(width[i]), *PALM_WIDTH_RANGE)),
        )
        results.append(
            FitResult(
                keypoints=fit_kp,
                keypoint_error_mm=float(err.mean()),
                max_keypoint_error_mm=float(err.max()),
                pose=HandPose.from_array(ang),
                identity=identity,
                rotation=mirror @ rot[i].cpu().numpy() @ mirror,
                translation=trans[i].cpu().numpy() * f,
                side=side_list[i],
                start=cfg.starts[int(best[i])],
                objective=float(final[r]),
                seconds=seconds,
                vertices=None if verts is None else verts[i].cpu().numpy() * f,
                faces=None if verts is None else model.mesh_faces(side_list[i]),
            )
        )
    return results


@lru_cache(maxsize=4)
def _torch_model(device: str) -> TorchHandModel:
    return TorchHandModel(device=device)
