"""HALO's canonicalization layer: any 21-keypoint hand -> per-bone maps to a canonical pose.

One forward pass, batched over any leading shape, float32 or float64, differentiable. The
algorithm is that of ``/work/shared/specs/canonicalization.md`` (HALO, Karunratanakul et al.
3DV 2021), re-implemented from the description:

1. Global normalization ``G`` (spec section 3): wrist to the origin, middle root bone along
   -x, palm normal (middle x index) along +y, index MCP at z > 0. Built directly as the
   orthonormal frame with those axes, which equals the spec's ``Pi R2 R1`` composition of
   two minimal rotations but has no antiparallel special case.
2. Palm normalization ``N_f`` (section 5): rotate the thumb, ring and pinky chains so the
   root-bone plane angles become (+0.8, -0.2, -0.2) and the spread angles (0.4, 0.2, 0.2,
   0.2); the root bones then point along constant directions ``u_f``.
3. Per finger, walk the chain with twist-free transported frames (section 6), measure
   flexion/abduction with ``atan2`` and undo them (sections 7-8, straight canonical pose).
4. ``M_b = [R_b | C_par - R_b P_par]``: rigid maps taking each posed bone of the normalized
   skeleton onto the canonical skeleton, which keeps the subject's bone lengths.

Conventions of the public API (all arrays have the input's leading shape ``...``):

* Keypoints are in the project's order (``halohand.skeleton.JOINT_NAMES``) and any length
  unit; outputs are in the same unit. The "HALO units" outputs assume metres (/0.4 m).
* The 20 bones are indexed by their child joint in the project's order: bone ``j`` goes from
  ``halohand.skeleton.PARENTS[j + 1]`` to joint ``j + 1`` (same as ``skeleton.BONES``).
* The 15 finger bones (flexion/abduction) are ordered by child joint in the project's order:
  child joints :data:`FINGER_BONE_CHILDREN` = 2, 3, 4 (thumb), 6, 7, 8 (index), ..., 18,
  19, 20 (pinky).
* The 16 parts are in HALO's order (``halohand.skeleton.PART_NAMES``); part 0 (palm) is the
  identity, part k >= 1 is the bone starting at its MANO joint.

Gradients. Everything stays in the autograd graph: the global normalization ``G``, the
palm rotations and the transported local frames (the reference detaches ``G`` and the
frames). With all of it attached, the backward pass is the true derivative of the map, which
``torch.autograd.gradcheck`` verifies in float64. Detaching as the reference does changes the
keypoint gradient by about its own norm (median) for query-point and matrix losses and saves
under 10% of the forward+backward time (``benchmarks/studies/canonical_detach_gradients.py``).

Degeneracy rules (checked when ``check=True``, the default; each violation raises
:class:`halohand.core.errors.HalohandInputError` naming the joint/bone and the number of hands):

* non-finite keypoints (NaN/inf);
* a bone shorter than ``MIN_BONE_RATIO`` (1e-3) times the hand's mean bone length (covers
  a zero-length bone and a hand whose joints all coincide);
* two neighbouring root bones (wrist -> thumb CMC / index, middle, ring, pinky MCP), whose
  planes define the palm, within ``MIN_ROOT_SINE`` (sine 1e-3, about 0.06 deg) of parallel or
  antiparallel: the plane normals and hence ``G`` and ``N_f`` are undefined there;
* a finger bone within ``MIN_SWING_COS`` (cos(abduction) < 1e-3) of its local +-y axis
  (|abduction| within 1e-3 of 90 deg): flexion is undefined at that gimbal point and the
  result would depend on rounding.

The thresholds are relative (scale free), so any length unit works. Exactly straight
fingers, coplanar palms and hands already in canonical pose are not degenerate: their
angles are exactly 0 or the targets and the gradients there are finite and exact. The
antiparallel cases of the spec's ``align`` do not arise: ``G`` is built as a frame and the
palm rotations use explicit plane normals. With ``check=False`` nothing is verified (no
host synchronisation) and degenerate hands give meaningless but finite-or-NaN values.

Left hands are mirrored (x -> -x), canonicalized as right hands, and the mirror is folded
into ``G`` (``det G = -1``), so every transform acts on the original left-hand coordinates;
the canonical skeleton and ``M_b`` are those of the mirrored (right) hand. Nothing is
flipped a second time (spec section 1.4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import torch
from torch import Tensor

from halohand.core.errors import HalohandInputError
from halohand.core.rotations import (
    angle_between,
    rodrigues,
    signed_angle,
    swing,
    unit,
)
from halohand.core.units import HALO_UNIT_M
from halohand.skeleton.bones import PARENTS, PART_BONES
from halohand.skeleton.orders import (
    BIOMECH_FROM_OPENPOSE,
    JOINT_NAMES,
    OPENPOSE_FROM_BIOMECH,
)

__all__ = [
    "CANONICAL_PLANE_ANGLES",
    "CANONICAL_SPREAD_ANGLES",
    "FINGER_BONE_CHILDREN",
    "HALO_UNIT",
    "MIN_BONE_RATIO",
    "MIN_ROOT_SINE",
    "MIN_SWING_COS",
    "PART_BONE_INDEX",
    "Canonicalization",
    "canonical_frames",
    "canonical_root_directions",
    "canonicalize",
    "points_to_part_frames",
    "skeleton_from_angles",
]

#: Relative threshold: a bone shorter than this times the mean bone length is degenerate.
MIN_BONE_RATIO: Final = 1e-3
#: Neighbouring root bones whose sine of angle is below this are (anti)parallel.
MIN_ROOT_SINE: Final = 1e-3
#: Finger bones with cos(abduction) below this sit at the flexion gimbal point.
MIN_SWING_COS: Final = 1e-3

#: Target signed plane angles (rad) of the root-bone planes (spec 5.1): thumb/index vs
#: index/middle about the index, ring/middle vs index/middle about the middle, pinky/ring vs
#: ring/middle about the ring.
CANONICAL_PLANE_ANGLES: Final = (0.8, -0.2, -0.2)
#: Target angles (rad) between neighbouring root bones: thumb-index, index-middle,
#: middle-ring, ring-pinky (spec 5.2).
CANONICAL_SPREAD_ANGLES: Final = (0.4, 0.2, 0.2, 0.2)
#: HALO's length unit in metres (network inputs are metres / 0.4); the one definition is
#: :data:`halohand.core.units.HALO_UNIT_M`.
HALO_UNIT: Final = HALO_UNIT_M

# ---- index bookkeeping between biomech (internal) and project (public) orders ----------
# Biomech bone b goes from joint _PAR[b] to joint b + 1 (level-major order, spec 1.2).
_PAR: Final = np.array([0] * 5 + [b - 4 for b in range(5, 20)])
# Gathers between bone orders, named like skeleton.orders (``bio = pub[_BIO_FROM_PUB]``).
# Public bone j = child project joint - 1; biomech bone b has child biomech joint b + 1.
_BIO_FROM_PUB_BONE: Final = BIOMECH_FROM_OPENPOSE[1:] - 1
_PUB_FROM_BIO_BONE: Final = np.argsort(_BIO_FROM_PUB_BONE)
#: Child joints (project order) of the 15 finger bones, in output order.
FINGER_BONE_CHILDREN: Final = np.sort(BIOMECH_FROM_OPENPOSE[6:])
# The same for the 15 finger bones; biomech slot = b - 5 (level-major).
_PUB_FROM_BIO_FINGER: Final = np.argsort(BIOMECH_FROM_OPENPOSE[6:])
_BIO_FROM_PUB_FINGER: Final = np.argsort(_PUB_FROM_BIO_FINGER)
#: Public bone index (0..19) of each HALO part 1..15 (part 0, the palm, has no bone).
PART_BONE_INDEX: Final = PART_BONES[1:, 1] - 1
# Readable names for error messages, per biomech bone.
_BONE_NAMES: Final = tuple(
    f"{JOINT_NAMES[PARENTS[j + 1]]}->{JOINT_NAMES[j + 1]}" for j in _BIO_FROM_PUB_BONE
)
_ROOT_PAIRS: Final = ((0, 1), (1, 2), (2, 3), (3, 4))  # fingers sharing a palm plane
_FINGER_NAMES: Final = ("thumb", "index", "middle", "ring", "pinky")


def _constants64() -> tuple[Tensor, Tensor]:
    """Closed-form root directions ``u_f`` [5, 3] and level-1 frames [5, 3, 3] (spec 9.3)."""
    f64 = torch.float64

    def rot(axis: Tensor, angle: float) -> Tensor:
        return rodrigues(unit(axis), torch.tensor(angle, dtype=f64))

    y = torch.tensor([0.0, 1.0, 0.0], dtype=f64)
    middle = torch.tensor([-1.0, 0.0, 0.0], dtype=f64)
    index = rot(y, 0.2) @ middle
    thumb = rot(rot(index, -0.8) @ y, 0.4) @ index
    n2 = rot(middle, 0.2) @ y
    ring = rot(n2, -0.2) @ middle
    pinky = rot(rot(ring, 0.2) @ n2, -0.2) @ ring
    u = torch.stack([thumb, index, middle, ring, pinky])

    # Section 6.1: pair normals (u_k x u_k+1), finger-plane normals, frames with z = u_f.
    p = unit(torch.linalg.cross(u[:-1], u[1:]))
    fpn = torch.stack([p[0], p[1], (p[1] + p[2]) / 2, (p[2] + p[3]) / 2, p[3]])
    ay = unit(torch.linalg.cross(u, fpn))
    ax = unit(torch.linalg.cross(ay, u))
    frames = torch.stack([ax, ay, u], dim=-2)  # rows are the local axes
    return u, frames


_U64, _F1_64 = _constants64()


def canonical_root_directions(dtype: torch.dtype = torch.float64, device=None) -> Tensor:
    """The constant canonical root-bone directions ``u_f`` (spec 9.3): ``[5, 3]``.

    Rows: thumb, index, middle, ring, pinky, in the HALO frame.
    """
    return _U64.to(dtype=dtype, device=device)


def canonical_frames(dtype: torch.dtype = torch.float64, device=None) -> Tensor:
    """The constant level-1 local frames ``F_1,f`` (spec 6.1 / 9.3): ``[5, 3, 3]``.

    Rows of each frame are its x (palmar / flexion side), y and z (= ``u_f``) axes in the
    HALO frame; fingers thumb..pinky.
    """
    return _F1_64.to(dtype=dtype, device=device)


@dataclass(frozen=True, eq=False)  # tensor fields: identity equality
class Canonicalization:
    """Result of :func:`canonicalize`. ``...`` is the input's leading (batch) shape.

    Frames: the *input* frame of the keypoints; the *HALO* frame (after ``G``: wrist at
    the origin, middle root bone along -x, back of the hand +y, thumb side +z); the
    *canonical* frame (the straight canonical hand, also HALO axes). Lengths are in the
    input's unit unless a name says "halo_units".

    Attributes:
        global_transform: ``[..., 4, 4]`` ``G``, input frame -> HALO frame (rigid; for left
            hands it includes the mirror, ``det = -1``).
        normalized_keypoints: ``[..., 21, 3]`` ``P = G J``, project order, HALO frame.
        bone_transforms: ``[..., 20, 4, 4]`` rigid posed -> canonical maps ``M_b`` acting on
            HALO-frame points, bone ``j`` = child joint ``j + 1`` (project order).
        part_transforms: ``[..., 16, 4, 4]`` the 16 HALO part matrices (HALO part order,
            palm = identity), input unit; see also :attr:`part_transforms_halo_units`.
        canonical_keypoints: ``[..., 21, 3]`` canonical skeleton ``C``, project order.
        bone_lengths: ``[..., 20]`` bone lengths, indexed like ``bone_transforms``.
        part_bone_lengths: ``[..., 16]`` HALO per-part lengths (palm = wrist-middle MCP).
        flexion: ``[..., 15]`` flexion ``theta`` (rad, + toward the palm) of the finger
            bones, ordered by :data:`FINGER_BONE_CHILDREN` (thumb 1-3, index 1-3, ...).
        abduction: ``[..., 15]`` abduction ``phi`` (rad, + toward local -y), same order.
        palm_normal: ``[..., 3]`` unit normal of the (wrist, index MCP, middle MCP) plane in
            the input frame, pointing to the back of the hand (``G`` maps it to +y).
        plane_angles: ``[..., 3]`` measured signed root-plane angles, targets
            :data:`CANONICAL_PLANE_ANGLES`.
        spread_angles: ``[..., 4]`` measured angles between neighbouring root bones,
            targets :data:`CANONICAL_SPREAD_ANGLES`.
        is_left: ``[...]`` bool, hands that were mirrored.
    """

    global_transform: Tensor
    normalized_keypoints: Tensor
    bone_transforms: Tensor
    part_transforms: Tensor
    canonical_keypoints: Tensor
    bone_lengths: Tensor
    part_bone_lengths: Tensor
    flexion: Tensor
    abduction: Tensor
    palm_normal: Tensor
    plane_angles: Tensor
    spread_angles: Tensor
    is_left: Tensor

    @property
    def batch_shape(self) -> torch.Size:
        """The leading shape ``...`` of every field."""
        return self.is_left.shape

    @property
    def part_transforms_halo_units(self) -> Tensor:
        """``[..., 16, 4, 4]`` network matrices ``S^-1 M S``, ``S = diag(.4, .4, .4, 1)``.

        They take HALO-frame points in HALO units (metres / 0.4) to canonical part
        coordinates in HALO units (spec 9.2). Assumes metre input.
        """
        m = self.part_transforms.clone()
        m[..., :3, 3] = m[..., :3, 3] / HALO_UNIT
        return m

    @property
    def pose_code(self) -> Tensor:
        """``[..., 16, 3]`` HALO's pose code: each ``S^-1 M S`` applied to the origin.

        HALO units (metres / 0.4); the palm row is 0 (spec 9.5).
        """
        return self.part_transforms[..., :3, 3] / HALO_UNIT

    @property
    def bone_transforms_from_input(self) -> Tensor:
        """``[..., 20, 4, 4]`` ``M_b G``: input-frame points -> canonical frame."""
        return self.bone_transforms @ self.global_transform[..., None, :, :]

    @property
    def part_transforms_from_input(self) -> Tensor:
        """``[..., 16, 4, 4]`` ``M_k G``: input-frame points -> canonical part frame k."""
        return self.part_transforms @ self.global_transform[..., None, :, :]

    def points_to_part_frames(self, points: Tensor, halo_units: bool = True) -> Tensor:
        """See :func:`points_to_part_frames`."""
        return points_to_part_frames(self, points, halo_units=halo_units)


def points_to_part_frames(
    canon: Canonicalization, points: Tensor, halo_units: bool = True
) -> Tensor:
    """Map query points from the input frame into the 16 canonical part frames.

    ``q_k = M_k G x`` (input unit), or ``q_k / 0.4`` with ``halo_units`` (equal to HALO's
    ``S^-1 M_k S`` applied to ``G x / 0.4``; spec 2, 9.5). Differentiable in both arguments.

    Args:
        canon: a :class:`Canonicalization` with batch shape ``...``.
        points: ``[..., N, 3]`` points in the input frame of the keypoints (for left hands:
            the original, unmirrored coordinates).
        halo_units: divide by :data:`HALO_UNIT` (metre input -> HALO units).

    Returns:
        ``[..., N, 16, 3]`` the points in each part frame, parts in HALO order.
    """
    t = canon.part_transforms_from_input  # [..., 16, 4, 4]
    if points.shape[-1] != 3 or tuple(points.shape[:-2]) != tuple(canon.batch_shape):
        raise HalohandInputError(
            f"points must have shape [{', '.join(map(str, canon.batch_shape))}"
            f"{', ' if len(canon.batch_shape) else ''}N, 3], got {list(points.shape)}"
        )
    rot = t[..., :3, :3].to(points.dtype)
    trans = t[..., :3, 3].to(points.dtype)
    q = torch.einsum("...kij,...nj->...nki", rot, points) + trans[..., None, :, :]
    return q / HALO_UNIT if halo_units else q


# ---- input handling ---------------------------------------------------------------------


def _as_keypoints(keypoints) -> Tensor:
    kp = keypoints if isinstance(keypoints, Tensor) else torch.as_tensor(np.asarray(keypoints))
    if kp.dim() < 2 or tuple(kp.shape[-2:]) != (21, 3):
        raise HalohandInputError(f"keypoints must have shape [..., 21, 3], got {list(kp.shape)}")
    if kp.dtype not in (torch.float32, torch.float64):
        raise HalohandInputError(f"keypoints must be float32 or float64, got {kp.dtype}")
    return kp


def _left_mask(side, batch_shape: torch.Size, device) -> Tensor:
    if isinstance(side, str):
        if side not in ("right", "left"):
            raise HalohandInputError(f"side must be 'right' or 'left', got {side!r}")
        return torch.full(batch_shape, side == "left", dtype=torch.bool, device=device)
    mask = torch.as_tensor(side, device=device)
    if mask.dtype != torch.bool:
        raise HalohandInputError("side must be 'right', 'left' or a bool tensor (True = left)")
    try:
        return mask.broadcast_to(batch_shape)
    except RuntimeError:
        raise HalohandInputError(
            f"side mask of shape {list(mask.shape)} does not match the batch shape "
            f"{list(batch_shape)}"
        ) from None


def _raise_if(
    bad: Tensor,
    describe: Callable[[int], str],
    batch_shape: torch.Size,
    problem: str = "degenerate skeleton",
) -> None:
    """Raise if any hand of ``bad [B, K]`` is flagged; ``describe(k)`` names item ``k``.

    The message names the first flagged item of the first bad hand and counts bad hands.
    """
    per_hand = bad.any(-1)
    count = int(per_hand.sum())
    if count == 0:
        return
    flat = int(per_hand.nonzero()[0, 0])
    item = int(bad[flat].nonzero()[0, 0])
    where = ""
    if len(batch_shape):
        hand = [int(i) for i in np.unravel_index(flat, tuple(batch_shape))]
        where = f" (first: hand {hand})"
    raise HalohandInputError(
        f"{problem} in {count} of {bad.shape[0]} hands: {describe(item)}{where}"
    )


# ---- the layer ----------------------------------------------------------------------------


def canonicalize(keypoints, side="right", *, check: bool = True) -> Canonicalization:
    """Canonicalize hands: global normalization plus per-bone posed -> canonical maps.

    Args:
        keypoints: ``[..., 21, 3]`` float32/float64 tensor (or array) of keypoints in the
            project's order, any length unit (HALO-unit outputs assume metres).
        side: ``"right"``, ``"left"``, or a bool tensor broadcastable to ``...`` that is
            True for left hands.
        check: validate the input (finite, non-degenerate; see the module docstring) and
            raise :class:`~halohand.core.errors.HalohandInputError` on failure.

    Returns:
        A :class:`Canonicalization` with the input's leading shape, dtype and device.
    """
    kp = _as_keypoints(keypoints)
    batch_shape = kp.shape[:-2]
    left = _left_mask(side, batch_shape, kp.device)
    flat = kp.reshape(-1, 21, 3)
    if check and flat.shape[0] > 0:
        _raise_if(
            ~torch.isfinite(flat).all(-1),
            lambda k: f"keypoint {JOINT_NAMES[k]} is NaN or inf",
            batch_shape,
            problem="non-finite keypoints",
        )
    j = flat[:, BIOMECH_FROM_OPENPOSE]  # biomech order inside
    is_left = left.reshape(-1)
    out = _canonicalize_biomech(j, is_left, check, batch_shape)
    return Canonicalization(**{k: _unflatten(v, batch_shape) for k, v in out.items()})


def _unflatten(x: Tensor, batch_shape: torch.Size) -> Tensor:
    return x.reshape(tuple(batch_shape) + tuple(x.shape[1:]))


def _canonicalize_biomech(
    j: Tensor, is_left: Tensor, check: bool, batch_shape: torch.Size
) -> dict[str, Tensor]:
    """The layer on ``[B, 21, 3]`` biomech-order joints; returns public-order fields."""
    dtype, device = j.dtype, j.device
    n_hands = j.shape[0]
    eye3 = torch.eye(3, dtype=dtype, device=device)
    tiny = torch.finfo(dtype).tiny

    # Mirror left hands (x -> -x) first; the mirror is folded into G below.
    sign = torch.where(is_left, -1.0, 1.0).to(dtype)
    mirror = torch.stack([sign, torch.ones_like(sign), torch.ones_like(sign)], -1)  # [B, 3]
    jm = j * mirror[:, None, :]

    # Bones in the (mirrored) input frame; lengths and directions are rotation invariant.
    vec = jm[:, 1:] - jm[:, _PAR]  # [B, 20, 3]
    length = torch.linalg.vector_norm(vec, dim=-1)  # [B, 20]
    direction = vec / length.clamp_min(tiny)[..., None]
    if check and n_hands > 0:
        _raise_if(
            length <= MIN_BONE_RATIO * length.mean(-1, keepdim=True),
            lambda b: (
                f"bone {_BONE_NAMES[b]} is shorter than {MIN_BONE_RATIO:g} x the mean bone length"
            ),
            batch_shape,
        )
        roots = direction[:, :5]
        sines = torch.stack(
            [
                torch.linalg.vector_norm(torch.linalg.cross(roots[:, a], roots[:, b]), dim=-1)
                for a, b in _ROOT_PAIRS
            ],
            -1,
        )
        _raise_if(
            sines < MIN_ROOT_SINE,
            lambda k: (
                f"the {_FINGER_NAMES[_ROOT_PAIRS[k][0]]} and "
                f"{_FINGER_NAMES[_ROOT_PAIRS[k][1]]} root bones (wrist to CMC/MCP) are parallel "
                f"or antiparallel (sine < {MIN_ROOT_SINE:g}): the palm plane is undefined"
            ),
            batch_shape,
        )

    # ---- 1. global normalization G (spec 3) as a frame: rows are the new x, y, z axes.
    x_axis = -direction[:, 2]  # middle root bone -> -x
    y_axis = unit(torch.linalg.cross(direction[:, 2], direction[:, 1]), tiny)  # palm normal
    z_axis = torch.linalg.cross(x_axis, y_axis)
    rot_g = torch.stack([x_axis, y_axis, z_axis], dim=-2)  # [B, 3, 3]
    g = torch.zeros(n_hands, 4, 4, dtype=dtype, device=device)
    g[:, :3, :3] = rot_g * mirror[:, None, :]  # R D
    g[:, :3, 3] = -(rot_g @ jm[:, 0, :, None])[..., 0]
    g[:, 3, 3] = 1.0
    p = (jm - jm[:, :1]) @ rot_g.transpose(-1, -2)  # [B, 21, 3] HALO frame
    d = direction @ rot_g.transpose(-1, -2)  # bone directions in the HALO frame

    # ---- 2. palm normalization N_f (spec 5).
    r = d[:, :5]
    r0, r1, r2, r3, r4 = r.unbind(1)
    n1 = torch.linalg.cross(r2, r1)
    a0 = signed_angle(torch.linalg.cross(r1, r0), n1, r1)
    q_thumb = rodrigues(r1, a0 - CANONICAL_PLANE_ANGLES[0])
    a2 = signed_angle(torch.linalg.cross(r3, r2), n1, r2)
    q_ring = rodrigues(r2, a2 - CANONICAL_PLANE_ANGLES[1])
    r3q = _mv(q_ring, r3)
    a3 = signed_angle(torch.linalg.cross(_mv(q_ring, r4), r3q), torch.linalg.cross(r3q, r2), r3q)
    q_pinky = rodrigues(r3q, a3 - CANONICAL_PLANE_ANGLES[2]) @ q_ring

    s0, s3, s4 = _mv(q_thumb, r0), r3q, _mv(q_pinky, r4)
    b1 = angle_between(r2, r1)
    w_index = rodrigues(unit(torch.linalg.cross(r2, r1), tiny), CANONICAL_SPREAD_ANGLES[1] - b1)
    s1w, s0w = _mv(w_index, r1), _mv(w_index, s0)
    b0 = angle_between(s1w, s0w)
    w_thumb = (
        rodrigues(unit(torch.linalg.cross(s1w, s0w), tiny), CANONICAL_SPREAD_ANGLES[0] - b0)
        @ w_index
    )
    b2 = angle_between(s3, r2)
    w_ring = rodrigues(unit(torch.linalg.cross(s3, r2), tiny), b2 - CANONICAL_SPREAD_ANGLES[2])
    s3w, s4w = _mv(w_ring, s3), _mv(w_ring, s4)
    b3 = angle_between(s4w, s3w)
    w_pinky = (
        rodrigues(unit(torch.linalg.cross(s4w, s3w), tiny), b3 - CANONICAL_SPREAD_ANGLES[3])
        @ w_ring
    )
    eye_b = eye3.expand(n_hands, 3, 3)
    palm = torch.stack(
        [w_thumb @ q_thumb, w_index, eye_b, w_ring @ q_ring, w_pinky @ q_pinky], dim=1
    )  # [B, 5, 3, 3]

    # ---- 3. finger chains: transported frames, atan2 angles, undo the swing (spec 6-8).
    f1 = _F1_64.to(dtype=dtype, device=device)  # [5, 3, 3] constant level-1 frames
    e = _mv(palm[:, None], d.reshape(n_hands, 4, 5, 3))  # [B, 4 levels, 5 fingers, 3]
    chain = eye3.expand(n_hands, 5, 3, 3)  # H = Q_1 ... Q_l of each finger
    rots = [palm]
    flex, abd, swing_cos = [], [], []
    for level in range(1, 4):
        local = _mv(chain.transpose(-1, -2) @ f1, e[:, level])  # l = H^T F_1 e_b
        lx, ly, lz = local.unbind(-1)
        lxz = torch.hypot(lx, lz)
        theta = torch.atan2(lx, lz)
        phi = torch.atan2(-ly, lxz)
        chain = chain @ swing(theta, phi)
        rots.append(f1.transpose(-1, -2) @ chain.transpose(-1, -2) @ f1 @ palm)  # A_b N_f
        flex.append(theta)
        abd.append(phi)
        swing_cos.append(lxz / torch.linalg.vector_norm(local, dim=-1).clamp_min(tiny))
    if check and n_hands > 0:
        _raise_if(
            torch.cat(swing_cos, -1) < MIN_SWING_COS,
            lambda k: (
                f"bone {_BONE_NAMES[k + 5]} is at +-90 deg abduction "
                f"(cos < {MIN_SWING_COS:g}), where flexion is undefined"
            ),
            batch_shape,
        )
    rot = torch.cat(rots, dim=1)  # [B, 20, 3, 3] biomech bones

    # ---- 4. canonical skeleton and the rigid maps M_b = [R_b | C_par - R_b P_par].
    step = length[..., None] * _mv(rot, d)  # L_b R_b d_b (= L_b u_f up to rounding)
    canon = [torch.zeros_like(p[:, 0])]
    for b in range(20):
        canon.append(canon[_PAR[b]] + step[:, b])
    c = torch.stack(canon, dim=1)  # [B, 21, 3] biomech
    m = torch.zeros(n_hands, 20, 4, 4, dtype=dtype, device=device)
    m[..., :3, :3] = rot
    m[..., :3, 3] = c[:, _PAR] - _mv(rot, p[:, _PAR])
    m[..., 3, 3] = 1.0

    # ---- public orders.
    bone_m = m[:, _PUB_FROM_BIO_BONE]
    parts = torch.cat(
        [torch.eye(4, dtype=dtype, device=device).expand(n_hands, 1, 4, 4),
         bone_m[:, PART_BONE_INDEX]],
        dim=1,
    )  # fmt: skip
    kp_len = length[:, _PUB_FROM_BIO_BONE]
    pj = torch.as_tensor(PART_BONES, device=device)
    p_op = p[:, OPENPOSE_FROM_BIOMECH]
    return {
        "global_transform": g,
        "normalized_keypoints": p_op,
        "bone_transforms": bone_m,
        "part_transforms": parts,
        "canonical_keypoints": c[:, OPENPOSE_FROM_BIOMECH],
        "bone_lengths": kp_len,
        "part_bone_lengths": torch.linalg.vector_norm(
            p_op[:, pj[:, 1]] - p_op[:, pj[:, 0]], dim=-1
        ),
        "flexion": torch.cat(flex, -1)[:, _PUB_FROM_BIO_FINGER],
        "abduction": torch.cat(abd, -1)[:, _PUB_FROM_BIO_FINGER],
        "palm_normal": y_axis * mirror,
        "plane_angles": torch.stack([a0, a2, a3], -1),
        "spread_angles": torch.stack([b0, b1, b2, b3], -1),
        "is_left": is_left,
    }


def _mv(mat: Tensor, vec: Tensor) -> Tensor:
    """Batched matrix-vector product ``[..., 3, 3] x [..., 3] -> [..., 3]``."""
    return (mat @ vec[..., None])[..., 0]


def skeleton_from_angles(flexion: Tensor, abduction: Tensor, bone_lengths: Tensor) -> Tensor:
    """Forward kinematics on the canonical palm: the inverse of the finger-angle measurement.

    The global direction of a finger's level-l bone is ``F_1^T Q_1 ... Q_l z`` with
    ``Q_i = swing(theta_i, phi_i)`` (spec 11, item 10); root bones point along ``u_f``.
    Canonicalizing the result returns ``flexion``/``abduction`` (for |theta| < pi,
    |phi| < pi/2) and a global transform equal to the identity.

    Args:
        flexion: ``[..., 15]`` rad, ordered by :data:`FINGER_BONE_CHILDREN`.
        abduction: ``[..., 15]`` rad, same order.
        bone_lengths: ``[..., 20]`` bone lengths indexed by child joint (project order).

    Returns:
        ``[..., 21, 3]`` keypoints in the project's order, HALO frame (wrist at the origin).
    """
    shape = torch.broadcast_shapes(
        flexion.shape[:-1], abduction.shape[:-1], bone_lengths.shape[:-1]
    )
    dtype = bone_lengths.dtype
    theta = flexion.broadcast_to(*shape, 15)[..., _BIO_FROM_PUB_FINGER].reshape(*shape, 3, 5)
    phi = abduction.broadcast_to(*shape, 15)[..., _BIO_FROM_PUB_FINGER].reshape(*shape, 3, 5)
    lengths = bone_lengths.broadcast_to(*shape, 20)[..., _BIO_FROM_PUB_BONE]  # biomech bones
    f1 = _F1_64.to(dtype=dtype, device=bone_lengths.device)
    z = torch.tensor([0.0, 0.0, 1.0], dtype=dtype, device=bone_lengths.device)
    dirs = [f1[:, 2].expand(*shape, 5, 3)]
    chain = torch.eye(3, dtype=dtype, device=bone_lengths.device).expand(*shape, 5, 3, 3)
    for level in range(3):
        chain = chain @ swing(theta[..., level, :], phi[..., level, :])
        dirs.append(_mv(f1.transpose(-1, -2) @ chain, z))
    step = torch.cat(dirs, dim=-2) * lengths[..., None]  # [..., 20, 3] biomech bones
    joints = [torch.zeros_like(step[..., 0, :])]
    for b in range(20):
        joints.append(joints[_PAR[b]] + step[..., b, :])
    return torch.stack(joints, dim=-2)[..., OPENPOSE_FROM_BIOMECH, :]
