"""Fitting the hand model to a photo's landmarks: accurate and plausible keypoints.

The landmark model's joints are accurate in the image (pixels) but its metric joints are
coarse, and the placed keypoints (:mod:`halohand.image.place`, each joint snapped onto its
pixel's ray) inherit bone lengths that change from photo to photo and angles no finger can
bend to. Fitting the embedded hand model (:class:`~halohand.handmodel.WebXRHandModel`)
gives keypoints that reproject onto the landmarks *and* belong to a real hand: bone
proportions within the identity prior, joint angles within the joint limits.

1. **Analytic start (twist-swing).** The palm's global similarity comes from the palm
   joints (wrist, thumb base, the four knuckles), which the pose does not move. Down each
   finger, every joint's rotation is split into a *swing* (the flexion and abduction that
   turn the bone from its rest direction onto the landmarks' bone direction, solved in
   closed form in the joint's frame) and a *twist* about the bone, which one bone's
   direction cannot show: it is chosen so that the next, hinge-like joint bends in its own
   flexion plane (the least abduction there), near the pose prior's mean twist when the
   finger is straight and the plane undefined. Started from it, the angles each finger
   needs with the least excess beyond the limits (:func:`needed_angles`) measure how far
   keypoints are from a real hand (:func:`plausibility`).
2. **Optimisation.** Adam on the pose angles (projected onto the joint limits after every
   step), the identity (the identity prior's own terms, per finger, per bone, palm length
   and width, each a bounded map of a free value, so the bone proportions cannot leave the
   prior's range), the global rotation, the overall size (projected so that the hand's
   length stays in 12-26 cm) and the camera translation, minimising (squared standardised
   residuals)::

       sum |project(kp_j) - u_j|^2 / sigma_px^2               (reprojection: accuracy)
     + sum |(kp_j - c) - (w_j - c_w)|^2 / sigma_3d^2           (the metric joints' shape,
                                                               centred: depth cues)
     + pose prior (diagonal Gaussian) + identity prior         (plausibility)

   ``sigma_px`` is a fraction of the hand's size in the photo, so the balance does not
   depend on the resolution. Every fit is inside the priors by construction; on the
   held-out rendered photos :func:`plausibility` finds all 114 fitted hands so (and all
   150 true hands; ``benchmarks/results/studies/photo_benchmark_fit.json``). Left hands
   are fitted as mirrored right hands (a mirrored camera) and mirrored back.

All hands of a photo are fitted in one batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.optimize import least_squares

from halohand.core.alignment import similarity_transform
from halohand.core.errors import HalohandInputError
from halohand.core.rotations import axis_angle_to_matrix
from halohand.handmodel.pose import (
    ABDUCTION_SIGN,
    HAND_LENGTH_RANGE,
    JOINT_LIMITS,
    LENGTH_FACTOR_RANGE,
    PALM_WIDTH_RANGE,
    POSE_PART,
    POSE_WEBXR_JOINT,
    HandIdentity,
    HandPose,
)
from halohand.handmodel.prior import IdentityPrior, pose_prior_stats
from halohand.handmodel.template import JOINT_PART
from halohand.handmodel.torch_model import TorchHandModel
from halohand.skeleton import NUM_PARTS, PARENTS, PART_NAMES

#: Palm keypoints (wrist, thumb CMC, index/middle/ring/pinky MCP): rigid in the model.
PALM_KEYPOINTS = (0, 1, 5, 9, 13, 17)
#: Per pose joint, the keypoints of its bone (joint -> child): thumb_cmc 1 -> 2, ...
BONE_FROM = np.array([1 + 4 * (i // 3) + i % 3 for i in range(15)])
BONE_TO = BONE_FROM + 1
#: The next joint must bend more than this (sine of ~15 degrees) for the plane of two bones
#: to show a chain's roll.
_MIN_BEND_SIN = math.sin(math.radians(15.0))
#: Weight of the hinge axis against the bone's direction (the axis, from two short bones, is
#: the noisier of the two).
_HINGE_WEIGHT = 0.3
#: Weight of the pull toward the prior's mean abduction and twist (in prior stds) against
#: the rotation's match (matrix entries): small, so it only decides what the bones leave
#: open.
_GIMBAL_PULL = 0.02


@dataclass(frozen=True)
class FitSettings:
    """Settings of :func:`fit_landmarks`.

    Attributes:
        iterations: Adam steps (0: the analytic start only).
        lr: peak learning rate (radians, log factors); cosine decay to 1 %.
        pixel_sigma: reprojection noise as a fraction of the hand's size in pixels (the
            landmarks' spread along the wrist-middle-tip chain).
        metric_sigma_m: noise of the landmark model's metric joints (metres, centred).
        pose_prior_weight / identity_prior_weight: multipliers of the prior terms.

    ``pose_prior_weight`` 4 and ``metric_sigma_m`` 0.015 were chosen on rendered photos of
    a validation seed (``benchmarks/studies/photo_fit_tuning.py --seed 777002 --n 60``, 44
    hands; ``benchmarks/results/studies/photo_fit_tuning.json``: PA-MPJPE median 11.5 mm at
    1 and 0.012, 11.2 at 3, 11.0 at 4, 10.8 at 4 and 0.015, 10.7 at 6 and 0.015, at 0.35-0.5
    px more reprojection error): those renders' poses come from the same pose prior, so a
    stronger prior than that would fit the benchmark more than photos.
    """

    iterations: int = 120
    lr: float = 0.04
    pixel_sigma: float = 0.01
    metric_sigma_m: float = 0.015
    pose_prior_weight: float = 4.0
    identity_prior_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise HalohandInputError(f"iterations must be >= 0, got {self.iterations}")
        if not (self.lr > 0 and self.pixel_sigma > 0 and self.metric_sigma_m > 0):
            raise HalohandInputError("lr, pixel_sigma and metric_sigma_m must be positive")


@dataclass(frozen=True, eq=False)
class LandmarkFit:
    """One hand fitted to its landmarks (metres, camera frame; pixels).

    Attributes:
        keypoints: ``[21, 3]`` the fitted model's keypoints (``openpose`` order).
        vertices: ``[1159, 3]`` the fitted model's mesh vertices; ``faces`` ``[F, 3]``.
        pose: :class:`HandPose` (within the joint limits); identity: :class:`HandIdentity`.
        rotation: ``[3, 3]`` model -> camera rotation (after the mirror of a left hand).
        translation: ``[3]`` metres.
        reprojection_px: ``[21]`` pixel distance of each fitted keypoint's projection to its
            landmark.
        start_reprojection_px: ``[21]`` the same for the analytic start.
        seconds: wall time per hand (the batch's time divided by its hands).
    """

    keypoints: np.ndarray
    vertices: np.ndarray
    faces: np.ndarray
    pose: HandPose
    identity: HandIdentity
    rotation: np.ndarray
    translation: np.ndarray
    reprojection_px: np.ndarray
    start_reprojection_px: np.ndarray
    seconds: float


@lru_cache(maxsize=1)
def _model() -> TorchHandModel:
    return TorchHandModel()


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The model's local rest rotations ``[25, 3, 3]``, offsets ``[25, 3]`` and parents."""
    m = _model()
    return m.local_rot.numpy(), m.local_offset.numpy(), m.parents


def _rx(t: float) -> np.ndarray:
    c, s = math.cos(t), math.sin(t)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(t: float) -> np.ndarray:
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(t: float) -> np.ndarray:
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def swing(rest: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """The flexion ``f`` and the rotation ``a`` about local +Y (radians) with
    ``R_y(a) R_x(-f) rest ~ target`` for two ``[3]`` directions in the joint's frame.

    ``R_x(-f)`` keeps ``x`` and turns ``(y, z)``; ``R_y`` keeps ``y``. So ``f`` makes the
    ``y`` components agree (``r_y cos f + r_z sin f = d_y``), and ``a`` then turns the
    ``(x, z)`` components onto each other; of the two solutions the one with the smaller
    ``|a|``. Exact when the target's ``y`` is reachable.
    """
    r = rest / np.linalg.norm(rest)
    d = target / max(np.linalg.norm(target), 1e-12)
    rho = math.hypot(r[1], r[2])
    phi = math.atan2(r[1], r[2])
    base = math.asin(float(np.clip(d[1] / max(rho, 1e-12), -1.0, 1.0)))
    best = (0.0, math.inf)
    # Two solutions of sin(f + phi) = d_y / rho (a bent finger past 90 degrees and its
    # mirror short of 90 turned half round): the one that needs the least rotation about
    # +Y, which is the small abduction of a real joint.
    for f in (_wrap(base - phi), _wrap(math.pi - base - phi)):
        q = _rx(-f) @ r
        a = _wrap(math.atan2(d[0], d[2]) - math.atan2(q[0], q[2]))
        if abs(a) < abs(best[1]):
            best = (f, a)
    return best


def _wrap(t: float) -> float:
    """``t`` wrapped into ``[-pi, pi)``."""
    return (t + math.pi) % (2.0 * math.pi) - math.pi


def twist_swing_angles(
    keypoints: np.ndarray,
    length_factors: np.ndarray | None = None,
    palm_width: float = 1.0,
    clamp: bool = True,
) -> np.ndarray:
    """``[15, 3]`` pose angles (flexion, abduction, twist; radians) whose bones point along
    the bones of ``[21, 3]`` keypoints given in the right-hand model's frame at unit size
    (the palm already aligned: see :func:`analytic_start`).

    Down each finger, in each joint's frame: the swing that turns the rest bone onto the
    observed bone is solved in closed form (:func:`swing`, twist at the prior's mean);
    where the next joint (a hinge) bends visibly (over ~15 degrees), the plane of the two
    bones shows the hinge's axis, and the joint's full rotation (with its twist) is the
    least-squares match of both the bone and that axis, started from the swing. A weak
    pull toward the prior's mean abduction and twist settles what the bones leave open (a
    joint flexed near 90 degrees, where abduction and twist turn about one axis; the twist
    of a straight finger). ``clamp`` projects every angle onto the joint limits as the
    chain is built (the start of a fit); without it the angles are what the keypoints
    need (to measure them against the limits).
    """
    local_rot, local_off, parents = _tables()
    factors = np.ones(NUM_PARTS) if length_factors is None else np.asarray(length_factors)
    lengths = factors[JOINT_PART]
    width = np.where(JOINT_PART == 0, palm_width, 1.0)
    scale = np.stack([width, np.ones_like(lengths), lengths], axis=-1)
    offsets = local_off.copy()
    offsets[1:] *= scale[parents[1:]]
    mean, prior_std = pose_prior_stats()
    lo, hi = JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1]
    kp = np.asarray(keypoints, dtype=np.float64)
    angles = np.zeros((15, 3))
    world_rot = np.zeros((len(parents), 3, 3))
    pose_index = {int(j): i for i, j in enumerate(POSE_WEBXR_JOINT)}

    def unit(v: np.ndarray) -> np.ndarray:
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def joint_rot(i: int, f: float, a: float, t: float) -> np.ndarray:
        return _ry(ABDUCTION_SIGN[i] * a) @ _rx(-f) @ _rz(-t)

    def solve(i: int, j: int, frame: np.ndarray) -> tuple[float, float, float]:
        d = unit(frame.T @ (kp[BONE_TO[i]] - kp[BONE_FROM[i]]))
        r = unit(_rz(-mean[i, 2]) @ offsets[j + 1])
        f, a = swing(r, d)
        x0 = np.array([f, a * ABDUCTION_SIGN[i], mean[i, 2]])
        r = unit(offsets[j + 1])
        targets = [(r, d)]
        if i % 3 < 2:
            d2 = unit(frame.T @ (kp[BONE_TO[i + 1]] - kp[BONE_FROM[i + 1]]))
            cross = np.cross(d, d2)
            if np.linalg.norm(cross) > _MIN_BEND_SIN:
                # The hinge's axis is normal to the plane of the two bones; of its two
                # directions, the one nearer the axis at the swing start (a hinge bent
                # backwards flips the bones' cross product).
                axis = local_rot[j + 1][:, 0]
                n = unit(cross)
                if (joint_rot(i, *x0) @ axis) @ n < 0:
                    n = -n
                targets.append((_HINGE_WEIGHT * axis, _HINGE_WEIGHT * n))

        def residuals(x: np.ndarray) -> np.ndarray:
            rot = joint_rot(i, *x)
            match = [rot @ src - dst for src, dst in targets]
            pull = _GIMBAL_PULL * (x[1:] - mean[i, 1:]) / prior_std[i, 1:]
            return np.concatenate([*match, pull])

        x = least_squares(residuals, x0, method="lm", xtol=1e-10).x
        return float(x[0]), float(x[1]), float(x[2])

    for j in range(len(parents)):
        base = local_rot[j] if parents[j] < 0 else world_rot[parents[j]] @ local_rot[j]
        i = pose_index.get(j)
        if i is None:
            world_rot[j] = base
            continue
        f, a, t = solve(i, j, base)
        if clamp:
            f, a, t = (float(np.clip(v, lo[i, c], hi[i, c])) for c, v in enumerate((f, a, t)))
        angles[i] = (f, a, t)
        world_rot[j] = base @ joint_rot(i, f, a, t)
    return angles


#: Per finger (thumb, index, middle, ring, pinky), its three pose joints.
_CHAINS = np.arange(15).reshape(5, 3)
#: Weight of a radian beyond a joint limit against a radian of a bone's direction in
#: :func:`needed_angles`: small, so the bones are matched first and the limits only choose
#: among the angles that match them (a tenth leaves ~1 % of a needed excess unexplained).
_EXCESS_WEIGHT = 0.1
#: The pull toward the prior's mean abduction and twist in :func:`needed_angles`: far
#: weaker than the excess (a degree beyond a limit outweighs tens of degrees of abduction or
#: twist off the mean), so it only settles what the bones and the limits leave open.
_NEEDED_PULL = 0.0005


def needed_angles(keypoints: np.ndarray) -> np.ndarray:
    """``[15, 3]`` pose angles (radians) that point every bone along the bones of ``[21, 3]``
    keypoints (right-hand model's frame, unit size, palm aligned: :func:`analytic_start`)
    with the least excess beyond the joint limits.

    One bone's direction fixes two of its joint's three angles; which twist, and so which
    abduction further down the finger, is left open. Measured one joint at a time, the open
    angles take whatever the greedy choice gives, and hands posed within the limits read as
    outside them by several degrees at the hinges. So per finger the three joints' nine
    angles are solved together (least squares, started from the clamped twist-swing
    angles): the three bones' directions, the excess beyond the limits weighted
    :data:`_EXCESS_WEIGHT`, and the weak pull toward the prior's mean abduction and twist.
    Keypoints of a pose within the limits need no excess; a finger bent backwards needs
    its full excess.
    """
    local_rot, local_off, parents = _tables()
    kp = np.asarray(keypoints, dtype=np.float64)
    start = twist_swing_angles(kp, clamp=True)
    mean, prior_std = pose_prior_stats()
    lo, hi = JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1]
    rest_dir = local_off / np.maximum(np.linalg.norm(local_off, axis=-1, keepdims=True), 1e-12)
    out = start.copy()
    for chain in _CHAINS:
        joints = POSE_WEBXR_JOINT[chain]
        # the (unposed) frame the chain hangs from: the wrist and, for a long finger, its
        # metacarpal
        frame = np.eye(3)
        path = []
        j = int(parents[joints[0]])
        while j >= 0:
            path.append(j)
            j = int(parents[j])
        for j in reversed(path):
            frame = frame @ local_rot[j]
        bones = kp[BONE_TO[chain]] - kp[BONE_FROM[chain]]
        target = bones / np.maximum(np.linalg.norm(bones, axis=-1, keepdims=True), 1e-12)

        def residuals(x: np.ndarray, chain=chain, joints=joints, frame=frame, target=target):
            ang = x.reshape(3, 3)
            rot = frame
            res = []
            for k, (i, j) in enumerate(zip(chain, joints, strict=True)):
                f, a, t = ang[k]
                rot = rot @ local_rot[j] @ _ry(ABDUCTION_SIGN[i] * a) @ _rx(-f) @ _rz(-t)
                res.append(rot @ rest_dir[j + 1] - target[k])
            excess = np.maximum(ang - hi[chain], 0.0) + np.maximum(lo[chain] - ang, 0.0)
            pull = _NEEDED_PULL * (ang[:, 1:] - mean[chain, 1:]) / prior_std[chain, 1:]
            return np.concatenate([*res, _EXCESS_WEIGHT * excess.ravel(), pull.ravel()])

        x = least_squares(residuals, start[chain].ravel(), method="trf", xtol=1e-10).x
        out[chain] = x.reshape(3, 3)
    return out


def _rest_keypoints(palm_length: float = 1.0, palm_width: float = 1.0) -> np.ndarray:
    """``[21, 3]`` keypoints of the right-hand model at rest, unit scale, unit identity but
    for the palm's length and width factors."""
    m = _model()
    dt = torch.float64
    factors = torch.ones(1, NUM_PARTS, dtype=dt)
    factors[0, 0] = palm_length
    out = m(torch.zeros(1, 15, 3, dtype=dt), factors,
            torch.tensor([palm_width], dtype=dt), torch.ones(1, dtype=dt))  # fmt: skip
    return out.keypoints[0].numpy()


def _palm_frame(keypoints: np.ndarray) -> np.ndarray:
    """``[21, 3]`` right-hand keypoints moved into the model's frame at unit size by the
    similarity that takes the model's rest palm onto theirs, the rest palm's length and
    width factors fitted too (within the identity prior's range): a palm wider or longer
    than the template's, aligned as the template's, turns the whole hand by a degree or
    two, which reads as angles beyond the limits."""
    kp = np.asarray(keypoints, dtype=np.float64)
    palm = list(PALM_KEYPOINTS)
    bound = _PRIOR_CLIP * IdentityPrior().palm_length_std

    def aligned(x: np.ndarray) -> tuple[np.ndarray, tuple]:
        rest = _rest_keypoints(math.exp(x[0]), math.exp(x[1]))[palm]
        scale, rot, trans = similarity_transform(rest, kp[palm])
        return scale * rest @ rot.T + trans, (scale, rot, trans)

    def residuals(x: np.ndarray) -> np.ndarray:
        return (aligned(x)[0] - kp[palm]).ravel()

    x = least_squares(residuals, np.zeros(2), bounds=(-bound, bound), xtol=1e-8).x
    scale, rot, trans = aligned(x)[1]
    return (kp - trans) @ rot / scale


def analytic_start(
    keypoints: np.ndarray, clamp: bool = True
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """The twist-swing start for ``[21, 3]`` right-hand keypoints (metres, any frame).

    Returns:
        ``(angles [15, 3], scale, rotation [3, 3], translation [3])``: the model (unit
        identity) at ``scale`` (metres per model unit), rotated and translated, has the
        palm of the keypoints and bones along theirs.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    palm = list(PALM_KEYPOINTS)
    rest = _rest_keypoints()
    scale, rot, trans = similarity_transform(rest[palm], kp[palm])
    local = (kp - trans) @ rot / scale
    return twist_swing_angles(local, clamp=clamp), scale, rot, trans


class _IdentityMap:
    """The identity prior's shape as a bounded map from free latent values.

    :class:`~halohand.handmodel.prior.IdentityPrior` draws each finger bone's log length
    factor as a per-finger term plus a per-bone term, and the palm's length and width
    factors, each term a Gaussian clipped at 2.5 std. Writing every term as
    ``2.5 std tanh(z)`` keeps any latent ``z`` inside the prior's support (no projection
    needed, so the fit cannot leave it), and the prior is the terms' own Gaussians.

    Latent layout ``[B, 22]``: 5 finger terms, 15 bone terms (finger parts in
    ``PART_NAMES`` order), palm length, palm width.
    """

    def __init__(self) -> None:
        p = IdentityPrior()
        fingers = ("thumb", "index", "middle", "ring", "pinky")
        finger_of = [fingers.index(name[:-1]) for name in PART_NAMES[1:]]
        # [17, 22]: log identity (16 log factors, log palm width) = terms @ mix.T
        mix = np.zeros((NUM_PARTS + 1, 22))
        for k, f in enumerate(finger_of, start=1):
            mix[k, f] = 1.0
            mix[k, 5 + k - 1] = 1.0
        mix[0, 20] = 1.0
        mix[NUM_PARTS, 21] = 1.0
        std = np.array([p.finger_std] * 5 + [p.bone_std] * 15
                       + [p.palm_length_std, p.palm_width_std])  # fmt: skip
        self.size = 22
        self.mix = torch.tensor(mix, dtype=torch.float64)
        self.bound = torch.tensor(_PRIOR_CLIP * std, dtype=torch.float64)
        self.inv_std = torch.tensor(1.0 / std, dtype=torch.float64)

    def terms(self, latent: torch.Tensor) -> torch.Tensor:
        return self.bound * torch.tanh(latent)

    def log_identity(self, latent: torch.Tensor) -> torch.Tensor:
        """``[B, 17]``: log length factors of the 16 parts, log palm width."""
        return self.terms(latent) @ self.mix.T

    def prior(self, latent: torch.Tensor) -> torch.Tensor:
        """``[B]`` squared standardised terms (the prior's negative log density x 2)."""
        return (self.terms(latent) * self.inv_std).square().sum(-1)


#: The identity prior clips each of its Gaussian terms at this many std.
_PRIOR_CLIP = 2.5


def _length_bounds(
    model: TorchHandModel, ident: _IdentityMap, latent: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    """``log_scale`` ``[B]`` clamped so that the hand's length (wrist to middle tip, metres)
    stays in :data:`~halohand.handmodel.pose.HAND_LENGTH_RANGE`."""
    with torch.no_grad():
        log_id = ident.log_identity(latent)
        unit = model.unit_hand_length(torch.exp(log_id[:, :NUM_PARTS]), torch.exp(log_id[:, -1]))
        lo = math.log(HAND_LENGTH_RANGE[0]) - torch.log(unit)
        hi = math.log(HAND_LENGTH_RANGE[1]) - torch.log(unit)
        return torch.minimum(torch.maximum(log_scale, lo), hi)


def _mirror_pixels(pixels: np.ndarray, k: np.ndarray) -> np.ndarray:
    out = np.array(pixels, dtype=np.float64)
    out[..., 0] = 2.0 * k[0, 2] - out[..., 0]
    return out


def _project(points: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``[B, N, 3]`` camera-frame metres -> ``[B, N, 2]`` pixels."""
    z = points[..., 2:3].clamp_min(1e-4)
    uv = points[..., :2] / z
    return uv * torch.stack([k[0, 0], k[1, 1]]) + torch.stack([k[0, 2], k[1, 2]])


def fit_landmarks(
    pixels: np.ndarray,
    world: np.ndarray,
    placed: np.ndarray,
    sides: list[str],
    intrinsics: np.ndarray,
    settings: FitSettings | None = None,
) -> list[LandmarkFit]:
    """Fit the hand model to the landmarks of ``N`` hands of one photo.

    Args:
        pixels: ``[N, 21, 2]`` landmark pixels.
        world: ``[N, 21, 3]`` the landmark model's metric joints (metres, camera axes,
            around the hand's centre).
        placed: ``[N, 21, 3]`` the placed keypoints (metres, camera frame): the start's
            3D bone directions and depth.
        sides: ``N`` sides.
        intrinsics: ``[3, 3]`` pinhole camera.
        settings: :class:`FitSettings`.

    Returns:
        ``N`` :class:`LandmarkFit`.
    """
    cfg = FitSettings() if settings is None else settings
    t0 = time.perf_counter()
    k_np = np.asarray(intrinsics, dtype=np.float64)
    n = len(sides)
    if n == 0:
        return []
    flip = np.array([[-1.0 if s == "left" else 1.0, 1.0, 1.0] for s in sides])
    px = np.stack(
        [_mirror_pixels(p, k_np) if s == "left" else np.asarray(p, float)
         for p, s in zip(pixels, sides, strict=True)]
    )  # fmt: skip
    w3 = np.asarray(world, dtype=np.float64) * flip[:, None]
    kp3 = np.asarray(placed, dtype=np.float64) * flip[:, None]

    starts = [analytic_start(kp) for kp in kp3]
    model = _model()
    dt = torch.float64
    angles = torch.tensor(np.stack([s[0] for s in starts]), dtype=dt)
    log_scale = torch.tensor([math.log(s[1]) for s in starts], dtype=dt)
    rot0 = torch.tensor(np.stack([s[2] for s in starts]), dtype=dt)
    trans = torch.tensor(np.stack([s[3] for s in starts]), dtype=dt)
    rvec = torch.zeros(n, 3, dtype=dt)
    log_id = torch.zeros(n, NUM_PARTS + 1, dtype=dt)
    k = torch.tensor(k_np, dtype=dt)
    target_px = torch.tensor(px, dtype=dt)
    target_w = torch.tensor(w3 - w3.mean(1, keepdims=True), dtype=dt)
    # The hand's size in pixels: the wrist-middle-fingertip chain of the landmarks.
    chain = px[:, [0, 9, 10, 11, 12]]
    size_px = np.linalg.norm(np.diff(chain, axis=1), axis=-1).sum(1)
    inv_px = torch.tensor(1.0 / (cfg.pixel_sigma * np.maximum(size_px, 10.0)), dtype=dt)
    # Translation steps in decimetres of the hand's depth scale: Adam's step is per unit.
    depth = torch.tensor(np.maximum(kp3[:, :, 2].mean(1), 0.05), dtype=dt)

    mean, std = pose_prior_stats()
    mu, inv_std = torch.tensor(mean, dtype=dt), torch.tensor(1.0 / std, dtype=dt)
    lo, hi = (
        torch.tensor(JOINT_LIMITS[..., 0], dtype=dt),
        torch.tensor(JOINT_LIMITS[..., 1], dtype=dt),
    )
    ident = _IdentityMap()
    latent = torch.zeros(n, ident.size, dtype=dt)
    dtrans = torch.zeros(n, 3, dtype=dt)
    inv_m = 1.0 / cfg.metric_sigma_m
    len_lo, len_hi = (math.log(v) for v in HAND_LENGTH_RANGE)

    def forward(with_vertices: bool = False):
        log_id = ident.log_identity(latent)
        return model(
            angles,
            torch.exp(log_id[:, :NUM_PARTS]),
            torch.exp(log_id[:, NUM_PARTS]),
            torch.exp(log_scale),
            global_rot=rot0 @ axis_angle_to_matrix(rvec),
            translation=trans + 0.1 * depth[:, None] * dtrans,
            with_vertices=with_vertices,
        )

    def objective() -> tuple[torch.Tensor, torch.Tensor]:
        kp = forward().keypoints
        rep = ((_project(kp, k) - target_px) * inv_px[:, None, None]).square().sum((-1, -2))
        centred = kp - kp.mean(1, keepdim=True)
        metric = ((centred - target_w) * inv_m).square().sum((-1, -2))
        pose = ((angles - mu) * inv_std).square().sum((-1, -2))
        total = 0.5 * (rep + metric + cfg.pose_prior_weight * pose
                       + cfg.identity_prior_weight * ident.prior(latent))  # fmt: skip
        return total, kp

    with torch.no_grad():
        start_kp = forward().keypoints
        start_px = torch.linalg.vector_norm(_project(start_kp, k) - target_px, dim=-1)
    params = [angles, log_scale, rvec, dtrans, latent]
    if cfg.iterations:
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=cfg.lr)
        for it in range(cfg.iterations):
            # Cosine decay to 1 %: large first steps leave the start, small last ones settle.
            frac = it / max(cfg.iterations - 1, 1)
            for g in opt.param_groups:
                g["lr"] = cfg.lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * frac)))
            opt.zero_grad(set_to_none=True)
            loss, kp = objective()
            loss.sum().backward()
            with torch.no_grad():
                # the hand's length at unit scale, from the keypoints (pose-free: the
                # middle finger's chain): the identity's, a step behind, which saves a pass
                # of the model; the last projection below is exact
                chain = kp[:, [0, 9, 10, 11, 12]]
                length = torch.linalg.vector_norm(torch.diff(chain, dim=1), dim=-1).sum(-1)
                log_unit = torch.log(length) - log_scale
            opt.step()
            with torch.no_grad():
                # Projected steps: the pose inside the joint limits, the hand's length
                # inside its range (the identity is inside its prior by its map).
                angles.copy_(torch.minimum(torch.maximum(angles, lo), hi))
                log_scale.copy_(torch.minimum(torch.maximum(log_scale, len_lo - log_unit),
                                              len_hi - log_unit))  # fmt: skip
    with torch.no_grad():
        log_scale.copy_(_length_bounds(model, ident, latent, log_scale))
        out = forward(with_vertices=True)
        fit_px = torch.linalg.vector_norm(_project(out.keypoints, k) - target_px, dim=-1)
        log_id = ident.log_identity(latent)
        factors = torch.exp(log_id[:, :NUM_PARTS])
        width = torch.exp(log_id[:, NUM_PARTS])
        unit_len = model.unit_hand_length(factors, width)
        rot = rot0 @ axis_angle_to_matrix(rvec)
        final_t = trans + 0.1 * depth[:, None] * dtrans
    seconds = (time.perf_counter() - t0) / n

    results = []
    for i in range(n):
        f = flip[i]
        mirror = np.diag(f)
        ang = np.clip(angles[i].detach().numpy(), JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1])
        length = float(np.exp(log_scale[i].item()) * unit_len[i].item())
        identity = HandIdentity(
            hand_length=float(np.clip(length, *HAND_LENGTH_RANGE)),
            length_factors=np.clip(factors[i].numpy(), *LENGTH_FACTOR_RANGE),
            palm_width=float(np.clip(width[i].item(), *PALM_WIDTH_RANGE)),
        )
        results.append(
            LandmarkFit(
                keypoints=out.keypoints[i].numpy() * f,
                vertices=out.vertices[i].numpy() * f,
                faces=model.mesh_faces(sides[i]),
                pose=HandPose.from_array(ang),
                identity=identity,
                rotation=mirror @ rot[i].numpy() @ mirror,
                translation=final_t[i].numpy() * f,
                reprojection_px=fit_px[i].numpy(),
                start_reprojection_px=start_px[i].numpy(),
                seconds=seconds,
            )
        )
    return results


# -- plausibility ---------------------------------------------------------------------------

#: Per bone of the skeleton (child keypoint 1..20), the HALO part whose length factor scales
#: it (palm bones: the palm).
_BONE_PART = np.array(
    [0 if (j - 1) % 4 == 0 else POSE_PART[3 * ((j - 1) // 4) + (j - 1) % 4 - 1]
     for j in range(1, 21)]
)  # fmt: skip


def _bone_lengths(kp: np.ndarray) -> np.ndarray:
    return np.linalg.norm(kp[1:] - kp[PARENTS[1:]], axis=-1)


#: Slack on a bone's log length ratio (a measured bone is a keypoint's width off).
_BONE_SLACK = 0.01


@lru_cache(maxsize=1)
def _prior_bone_sigma() -> np.ndarray:
    """``[20]`` the largest log length factor (over ``k_sigma``) of each bone under
    :class:`IdentityPrior`: a finger bone's factor is a per-finger plus a per-bone term, so
    their stds add; a palm bone's is the palm's length or width factor (the larger std)."""
    p = IdentityPrior()
    finger = p.finger_std + p.bone_std
    palm = max(p.palm_length_std, p.palm_width_std)
    return np.array([palm if part == 0 else finger for part in _BONE_PART])


def plausibility(keypoints: np.ndarray, side: str, k_sigma: float = 2.5) -> dict[str, float]:
    """How far ``[21, 3]`` keypoints (metres) are from a real hand.

    * Bone proportions: each bone's length over the template's, divided by the hand's
      size, against the identity prior's range: the prior clips each of its terms at
      ``k_sigma`` std, so a finger bone's log factor reaches ``k_sigma`` times the
      per-finger plus the per-bone std, a palm bone's ``k_sigma`` times the palm's (0.01
      of slack). The size (drawn apart from the proportions) is the common factor that
      leaves the fewest bones outside. ``bones_outside``: how many of the 20 bones fall
      outside; ``bone_ratio_worst``: the ratio (over the size) furthest from 1.
    * Joint angles: the angles the keypoints need (:func:`needed_angles`: every bone along
      the keypoints' bones, with the least excess beyond the limits, palm aligned as in
      :func:`analytic_start`) against :data:`~halohand.handmodel.pose.JOINT_LIMITS`;
      ``limit_violations``: flexion and abduction angles beyond a limit by more than 1
      degree (of 30); ``limit_excess_deg``: the sum of the excesses (degrees). Hands
      posed within the limits need none (the ground truth of the photo benchmark: 0 of 60
      hands), whatever their unobservable twists.
    """
    kp = np.asarray(keypoints, dtype=np.float64) * (
        np.array([-1.0, 1.0, 1.0]) if side == "left" else 1.0
    )
    rest = _rest_keypoints()
    log_ratio = np.log(_bone_lengths(kp) / _bone_lengths(rest))
    bound = k_sigma * _prior_bone_sigma() + _BONE_SLACK
    # The prior draws the hand's size apart from its proportions: the size is the common
    # log factor that leaves the fewest bones outside (one of the bounds' ends; ties: the
    # one nearest the median).
    sizes = np.concatenate([log_ratio - bound, log_ratio + bound, [np.median(log_ratio)]])
    counts = (np.abs(log_ratio[None] - sizes[:, None]) > bound + 1e-12).sum(1)
    best = np.flatnonzero(counts == counts.min())
    size = sizes[best[np.argmin(np.abs(sizes[best] - np.median(log_ratio)))]]
    ratio = np.exp(log_ratio - size)
    outside = np.abs(log_ratio - size) > bound + 1e-12
    worst = float(ratio[np.argmax(np.abs(np.log(ratio)))])
    angles = needed_angles(_palm_frame(kp))
    excess = np.maximum(angles - JOINT_LIMITS[..., 1], 0) + np.maximum(
        JOINT_LIMITS[..., 0] - angles, 0
    )
    excess_deg = np.degrees(excess[:, :2])
    return {
        "bones_outside": int(outside.sum()),
        "bone_ratio_worst": round(worst, 3),
        "limit_violations": int((excess_deg > 1.0).sum()),
        "limit_excess_deg": round(float(excess_deg.sum()), 1),
    }


__all__ = [
    "FitSettings", "LandmarkFit", "analytic_start", "fit_landmarks", "needed_angles",
    "plausibility", "swing",
    "twist_swing_angles",
]  # fmt: skip
