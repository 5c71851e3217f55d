"""Posing MANO: PCA finger poses, forward kinematics and linear blend skinning.

smplx-style linear blend skinning, batched over leading dimensions, numpy or torch in, same
type out (torch keeps gradients). ``pose`` is the *absolute* axis-angle pose of the 16
joints in MANO's kinematic order (global orientation first); :func:`mano_pose` builds it
from PCA coefficients or a 45-d finger pose, adding ``hands_mean`` unless
``flat_hand_mean=True`` (smplx / manopth semantics). Rotations, forward kinematics and
skinning are :mod:`halohand.core.rotations` and :mod:`halohand.core.skinning`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import torch

from halohand.core.errors import HalohandInputError
from halohand.core.rotations import axis_angle_to_matrix
from halohand.core.skinning import forward_kinematics, homogeneous, skin
from halohand.handmodel.mano.loader import NUM_MANO_VERTICES, ManoModel
from halohand.skeleton import to_openpose

#: Fingertip vertex ids (thumb, index, middle, ring, pinky) per convention.
TIP_CONVENTIONS: Final[dict[str, tuple[int, int, int, int, int]]] = {
    "smplx": (744, 320, 443, 554, 671),
    "youtube3d": (744, 320, 443, 554, 671),
    "manopth": (745, 317, 444, 556, 673),
    "freihand": (744, 320, 443, 555, 672),
}


class ManoOutput(NamedTuple):
    """Result of :func:`mano_forward`; ``...`` are the broadcast batch dimensions.

    Attributes:
        vertices: ``[..., 778, 3]`` posed vertices.
        joints: ``[..., 16, 3]`` posed joints, MANO order (= ``transforms[..., :3, 3]``).
        transforms: ``[..., 16, 4, 4]`` world transforms of the joints (joint frames).
        skinning_transforms: ``[..., 16, 4, 4]`` rigid maps from the rest hand (plus pose
            correctives) to the posed hand, per joint; ``transforms`` with the rest joint
            subtracted (smplx's ``A``).
        rest_vertices: ``[..., 778, 3]`` zero-pose vertices of the same betas.
        rest_joints: ``[..., 16, 3]`` zero-pose joints.
        pose_offsets: ``[..., 778, 3]`` pose-corrective offsets added before skinning.
    """

    vertices: Any
    joints: Any
    transforms: Any
    skinning_transforms: Any
    rest_vertices: Any
    rest_joints: Any
    pose_offsets: Any


def _to_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x if x.is_floating_point() else x.double()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HalohandInputError(f"{name} must be a numeric array ({exc})") from None
    return torch.from_numpy(arr)


def _check_finite(t: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(t.detach()).all()):
        raise HalohandInputError(f"{name} has NaN or inf values")


def _model_tensor(arr: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(np.asarray(arr), dtype=like.dtype, device=like.device)


def mano_pose(
    model: ManoModel,
    pca: Any = None,
    hand_pose: Any = None,
    global_orient: Any = None,
    flat_hand_mean: bool = False,
) -> Any:
    """Build the absolute axis-angle pose ``[..., 16, 3]`` that :func:`mano_forward` takes.

    Args:
        model: the MANO model.
        pca: ``[..., K']`` PCA coefficients (``K' <= K``; the first ``K'`` components).
        hand_pose: ``[..., 45]`` finger pose (axis-angle of joints 1..15); exclusive with pca.
        global_orient: ``[..., 3]`` wrist rotation; default zero.
        flat_hand_mean: False (default, smplx / manopth / HALO data): ``hands_mean`` is
            added to the finger pose, so zero coefficients give MANO's relaxed mean hand.
            True: zero coefficients give the flat hand.

    Returns:
        ``[..., 16, 3]``, torch if any input is a tensor, else numpy.
    """
    if (pca is None) == (hand_pose is None):
        raise HalohandInputError("mano_pose needs exactly one of pca or hand_pose")
    use_torch = any(isinstance(v, torch.Tensor) for v in (pca, hand_pose, global_orient))
    if pca is not None:
        c = _to_tensor(pca, "pca")
        k = model.hands_components.shape[0]
        if c.ndim < 1 or not 1 <= c.shape[-1] <= k:
            raise HalohandInputError(f"pca must have shape [..., K<={k}], got {list(c.shape)}")
        comps = _model_tensor(model.hands_components[: c.shape[-1]], c)
        hand = c @ comps
    else:
        hand = _to_tensor(hand_pose, "hand_pose")
        if hand.ndim < 1 or hand.shape[-1] != 45:
            raise HalohandInputError(f"hand_pose must have shape [..., 45], got {list(hand.shape)}")
    if not flat_hand_mean:
        hand = hand + _model_tensor(model.hands_mean, hand)
    if global_orient is None:
        glob = hand.new_zeros((*hand.shape[:-1], 3))
    else:
        glob = _to_tensor(global_orient, "global_orient").to(hand.dtype)
        if glob.ndim < 1 or glob.shape[-1] != 3:
            raise HalohandInputError(
                f"global_orient must have shape [..., 3], got {list(glob.shape)}"
            )
    batch = torch.broadcast_shapes(glob.shape[:-1], hand.shape[:-1])
    glob = glob.expand(*batch, 3)
    hand = hand.expand(*batch, 45)
    pose = torch.cat([glob, hand], dim=-1).reshape(*batch, 16, 3)
    return pose if use_torch else pose.numpy()


def mano_forward(
    model: ManoModel,
    pose: Any = None,
    betas: Any = None,
    *,
    pca: Any = None,
    flat_hand_mean: bool = False,
    pose_correctives: bool = True,
) -> ManoOutput:
    """Pose MANO by linear blend skinning (smplx's ``lbs``), batched.

    Args:
        model: the MANO model.
        pose: absolute axis-angle pose ``[..., 16, 3]`` (or ``[..., 48]``), MANO joint
            order, joint 0 = global orientation. Applied as given (no ``hands_mean``).
        betas: ``[..., S']`` shape coefficients (``S' <= S``, usually 10); default zero.
        pca: instead of ``pose``, PCA finger coefficients ``[..., K']`` decoded by
            :func:`mano_pose` (no global rotation; ``flat_hand_mean`` applies).
        flat_hand_mean: see :func:`mano_pose` (PCA input only).
        pose_correctives: add MANO's pose-corrective blend shapes (default, as MANO).

    Returns:
        :class:`ManoOutput`, in metres and MANO's frame; torch tensors if ``pose``/``pca``
        or ``betas`` is a tensor (differentiable), else float64 numpy arrays.
    """
    if (pose is None) == (pca is None):
        raise HalohandInputError("mano_forward needs exactly one of pose or pca")
    use_torch = any(isinstance(v, torch.Tensor) for v in (pose, pca, betas))
    if pca is not None:
        pose = mano_pose(model, pca=_to_tensor(pca, "pca"), flat_hand_mean=flat_hand_mean)
    p = _to_tensor(pose, "pose")
    if p.ndim >= 1 and p.shape[-1] == 48:
        p = p.reshape(*p.shape[:-1], 16, 3)
    if p.ndim < 2 or p.shape[-2:] != (16, 3):
        raise HalohandInputError(
            f"pose must have shape [..., 16, 3] or [..., 48], got {list(p.shape)}"
        )
    _check_finite(p, "pose")
    s_model = model.num_betas
    if betas is None:
        b = p.new_zeros((s_model,))
    else:
        b = _to_tensor(betas, "betas").to(p.dtype)
        if b.ndim < 1 or not 1 <= b.shape[-1] <= s_model:
            raise HalohandInputError(
                f"betas must have shape [..., S<={s_model}], got {list(b.shape)}"
            )
        _check_finite(b, "betas")
    batch = torch.broadcast_shapes(p.shape[:-2], b.shape[:-1])
    n = math.prod(batch)
    p = p.expand(*batch, 16, 3).reshape(n, 16, 3)
    b = b.expand(*batch, b.shape[-1]).reshape(n, -1)

    v_template = _model_tensor(model.v_template, p)
    shapedirs = _model_tensor(model.shapedirs[..., : b.shape[-1]], p)
    j_reg = _model_tensor(model.J_regressor, p)
    weights = _model_tensor(model.weights, p)

    v_shaped = v_template + torch.einsum("vcs,bs->bvc", shapedirs, b)
    joints = torch.einsum("jv,bvc->bjc", j_reg, v_shaped)
    rots = axis_angle_to_matrix(p)  # [n, 16, 3, 3]
    if pose_correctives:
        eye = torch.eye(3, dtype=p.dtype, device=p.device)
        feat = (rots[:, 1:] - eye).reshape(n, 9 * 15)
        offsets = torch.einsum("vcp,bp->bvc", _model_tensor(model.posedirs, p), feat)
    else:
        offsets = torch.zeros_like(v_shaped)
    v_posed = v_shaped + offsets

    parents = [int(i) for i in model.parents]
    rel = joints.clone()
    rel[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    world = forward_kinematics(homogeneous(rots, rel), parents)
    # smplx's A: the joint frames with the rest joint taken out (rest hand -> posed hand).
    world_r, world_t = world[..., :3, :3], world[..., :3, 3]
    skinning = homogeneous(world_r, world_t - (world_r @ joints[..., None])[..., 0])
    verts = skin(v_posed, weights, skinning)

    def out(t: torch.Tensor) -> Any:
        t = t.reshape(*batch, *t.shape[1:])
        return t if use_torch else t.detach().numpy()

    return ManoOutput(
        vertices=out(verts),
        joints=out(world[..., :3, 3]),
        transforms=out(world),
        skinning_transforms=out(skinning),
        rest_vertices=out(v_shaped),
        rest_joints=out(joints),
        pose_offsets=out(offsets),
    )


def tip_ids(tips: str | Sequence[int] = "smplx") -> np.ndarray:
    """Fingertip vertex ids (thumb, index, middle, ring, pinky) for a convention name.

    Names: ``"smplx"`` / ``"youtube3d"`` (default, [744, 320, 443, 554, 671]),
    ``"manopth"`` ([745, 317, 444, 556, 673]; manopth's left model uses 445 for the middle
    finger), ``"freihand"``; or five explicit vertex ids.
    """
    if isinstance(tips, str):
        key = tips.lower()
        if key not in TIP_CONVENTIONS:
            raise HalohandInputError(
                f"unknown fingertip convention {tips!r}; expected one of "
                f"{', '.join(TIP_CONVENTIONS)} or 5 vertex ids"
            )
        return np.array(TIP_CONVENTIONS[key], dtype=np.int64)
    ids = np.asarray(tips, dtype=np.int64).reshape(-1)
    if ids.shape != (5,) or ids.min() < 0 or ids.max() >= NUM_MANO_VERTICES:
        raise HalohandInputError(f"tips must be 5 vertex ids in 0..{NUM_MANO_VERTICES - 1}")
    return ids


def mano_keypoints(vertices: Any, joints: Any, tips: str | Sequence[int] = "smplx") -> Any:
    """21 keypoints in the project's (OpenPose) order.

    ``vertices [..., 778, 3]`` and ``joints [..., 16, 3]`` -> ``[..., 21, 3]``: the 16
    regressed joints plus the 5 fingertip vertices of the ``tips`` convention.
    """
    ids = tip_ids(tips)
    if isinstance(vertices, torch.Tensor):
        tip = vertices[..., torch.as_tensor(ids, device=vertices.device), :]
        kp = torch.cat([joints, tip], dim=-2)
    else:
        kp = np.concatenate([np.asarray(joints), np.asarray(vertices)[..., ids, :]], axis=-2)
    return to_openpose(kp, "mano")
