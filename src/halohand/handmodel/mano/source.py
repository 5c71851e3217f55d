"""MANO hands as :class:`~halohand.handmodel.hand.PosedHand` records, and the hand source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.core.skinning import homogeneous, rigid_inverse
from halohand.handmodel.hand import PosedHand
from halohand.handmodel.mano.loader import NUM_MANO_JOINTS, ManoModel, load_mano
from halohand.handmodel.mano.posing import mano_forward, mano_keypoints, mano_pose, tip_ids
from halohand.handmodel.mano.sealing import WRIST_RING, boundary_loop, seal_wrist
from halohand.skeleton import mirror, part_bone_lengths


def _make_posed_hand(**values: Any) -> PosedHand:
    names = {f.name for f in fields(PosedHand)}
    return PosedHand(**{k: v for k, v in values.items() if k in names})


def mano_posed_hand(
    model: ManoModel,
    pose: Any,
    betas: Any = None,
    *,
    tips: str | Sequence[int] = "smplx",
    pose_correctives: bool = True,
    faces: np.ndarray | None = None,
    ring: Sequence[int] | np.ndarray | None = WRIST_RING,
) -> PosedHand:
    """One posed MANO hand as a sealed :class:`PosedHand` of the model's side.

    Args:
        model: the MANO model.
        pose: absolute axis-angle pose ``[16, 3]`` (see :func:`mano_forward`).
        betas: ``[S']`` shape coefficients; default zero.
        tips: fingertip convention (:func:`tip_ids`).
        pose_correctives: add the pose-corrective blend shapes (module docstring).
        faces: override the model's faces (e.g. orientation-fixed); default ``model.faces``.
        ring: the wrist loop to seal (:func:`seal_wrist`); default MANO's 16 vertices.

    Returns:
        A closed hand (779 vertices) in metres with the wrist joint at the origin.
    """
    p = np.asarray(pose, dtype=np.float64)
    if p.shape not in ((16, 3), (48,)):
        raise HalohandInputError(f"pose must have shape [16, 3], got {list(p.shape)}")
    b = None if betas is None else np.asarray(betas, dtype=np.float64)
    if b is not None and b.ndim != 1:
        raise HalohandInputError(f"betas must have shape [S], got {list(b.shape)}")
    out = mano_forward(model, p, b, pose_correctives=pose_correctives)
    root = out.joints[0].copy()
    verts = out.vertices - root
    rest = out.rest_vertices - root
    ids = tip_ids(tips)
    keypoints = mano_keypoints(out.vertices, out.joints, ids) - root
    rest_keypoints = mano_keypoints(out.rest_vertices, out.rest_joints, ids) - root
    to_root, from_root = homogeneous(np.eye(3), -root), homogeneous(np.eye(3), root)
    part_transforms = to_root @ rigid_inverse(out.skinning_transforms) @ from_root

    tri = model.faces if faces is None else np.asarray(faces, dtype=np.int64)
    sealed_v, sealed_f = seal_wrist(verts, tri, ring)
    sealed_rest, _ = seal_wrist(rest, tri, ring)
    palm = np.zeros((1, NUM_MANO_JOINTS))
    palm[0, 0] = 1.0
    weights = np.concatenate([model.weights, palm])
    weights = weights / weights.sum(axis=1, keepdims=True)
    return _make_posed_hand(
        vertices=sealed_v,
        faces=sealed_f,
        keypoints=keypoints,
        part_transforms=part_transforms,
        canonical_vertices=sealed_rest,
        bone_lengths=part_bone_lengths(keypoints),
        skin_weights=weights,
        part_labels=np.argmax(weights, axis=1).astype(np.int64),
        side=model.side,
        rest_keypoints=rest_keypoints,
    )


def mirror_hand(hand: PosedHand) -> PosedHand:
    """The mirror image (x -> -x) of a hand, with flipped faces and the other side label."""
    s = np.diag([-1.0, 1.0, 1.0, 1.0])
    values = {f.name: getattr(hand, f.name) for f in fields(PosedHand)}
    for name in ("vertices", "keypoints", "canonical_vertices", "rest_keypoints"):
        if name in values and isinstance(values[name], np.ndarray):
            values[name] = mirror(values[name])
    values["faces"] = hand.faces[:, [0, 2, 1]]
    values["part_transforms"] = s @ hand.part_transforms @ s
    values["side"] = "left" if hand.side == "right" else "right"
    return PosedHand(**values)


def sample_mano_params(
    model: ManoModel,
    rng: np.random.Generator,
    *,
    ncomps: int | None = None,
    pose_scale: float = 1.0,
    clip: float = 2.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a natural MANO pose and shape.

    Finger pose: PCA coefficients ``z_k * pca_std_k * pose_scale`` with ``z ~ N(0, 1)``
    clipped to ``[-clip, clip]``, decoded with ``hands_mean`` added (``flat_hand_mean=False``,
    like HALO's manopth data). ``pca_std`` comes from the file's ``hands_coeffs`` (MANO's
    training poses). No global rotation. Betas ``~ N(0, 1)`` clipped to ``[-clip, clip]``.
    Draws betas first, then the pose; the same generator state gives the same result.

    Returns:
        ``(pose [16, 3], betas [S])`` float64.
    """
    k = model.hands_components.shape[0] if ncomps is None else int(ncomps)
    if not 1 <= k <= model.hands_components.shape[0]:
        raise HalohandInputError(f"ncomps must be in 1..{model.hands_components.shape[0]}")
    betas = np.clip(rng.standard_normal(model.num_betas), -clip, clip)
    z = np.clip(rng.standard_normal(k), -clip, clip)
    coeffs = z * model.pca_std[:k] * pose_scale
    pose = mano_pose(model, pca=coeffs, flat_hand_mean=False)
    return np.asarray(pose, dtype=np.float64), betas


class ManoHandSource:
    """Hand source backed by a user-supplied MANO model (``make_source("mano", path)``).

    Args:
        model_path: ``MANO_RIGHT.pkl`` or ``MANO_LEFT.pkl`` (or a folder holding them).
        tips: fingertip convention for the keypoints (:func:`tip_ids`).
        ncomps: PCA components used by the pose prior (default all 45).
        pose_scale: multiplies the natural pose spread.
        pose_correctives: add MANO's pose-corrective blend shapes (module docstring).
        side: the side the file models; default from its name.

    Checked once at construction: the wrist ring is MANO's 16 vertices if they form the
    mesh's open boundary, otherwise the mesh's single boundary loop (``wrist_ring``); if
    the sealed template has negative volume (inward faces), the faces are flipped so the
    output is outward-oriented.
    """

    name = "mano"

    def __init__(
        self,
        model_path: Path,
        *,
        tips: str | Sequence[int] = "smplx",
        ncomps: int | None = None,
        pose_scale: float = 1.0,
        pose_correctives: bool = True,
        side: str | None = None,
    ) -> None:
        self.model = load_mano(model_path, side=side)
        self.tips = tip_ids(tips)
        self.ncomps = ncomps
        self.pose_scale = float(pose_scale)
        self.pose_correctives = pose_correctives
        try:
            v, f = seal_wrist(self.model.v_template, self.model.faces)
            self.wrist_ring = WRIST_RING
        except HalohandInputError:
            try:
                self.wrist_ring = boundary_loop(self.model.faces)
            except HalohandInputError as exc:
                raise HalohandInputError(
                    f"{self.model.path}: cannot seal the wrist: {exc}"
                ) from None
            v, f = seal_wrist(self.model.v_template, self.model.faces, self.wrist_ring)
        tri = v[f]
        volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
        self.faces = self.model.faces if volume >= 0 else self.model.faces[:, [0, 2, 1]]

    def sample(self, rng: np.random.Generator, side: str = "right") -> PosedHand:
        """Draw one identity and one natural pose; the other side is mirrored."""
        if side not in ("right", "left"):
            raise HalohandInputError(f"side must be 'right' or 'left', got {side!r}")
        pose, betas = sample_mano_params(
            self.model, rng, ncomps=self.ncomps, pose_scale=self.pose_scale
        )
        hand = mano_posed_hand(
            self.model, pose, betas, tips=self.tips,
            pose_correctives=self.pose_correctives, faces=self.faces, ring=self.wrist_ring,
        )  # fmt: skip
        return hand if side == self.model.side else mirror_hand(hand)
