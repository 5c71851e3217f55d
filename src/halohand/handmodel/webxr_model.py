"""The embedded WebXR hand model (:class:`WebXRHandModel`).

Posing, for one identity and one pose (all at unit size; the overall size multiplies the
result at the end, which commutes with rotations about joints):

1. Identity rest frames ``G_j``: the template's joint rotations, with each child's offset
   in its parent's frame scaled by the bone-length factor of the parent's part (and by the
   palm width across the palm). Keypoints depend on these only, never on thickness.
2. Per-joint vertex maps ``S_j`` (in the template joint frame): length factor along the
   bone, thickness factor across it. The identity's rest mesh is the skinned blend of
   ``G_j S_j Gt_j^-1`` (``Gt_j`` = template frame).
3. Posed frames ``P_j`` by forward kinematics with the joint rotations of the pose; posed
   mesh = blend of ``P_j S_j Gt_j^-1``.
4. Part transform of part ``k`` (posed -> canonical) = ``G_k P_k^-1`` for the joint carrying
   the part. The palm is rigid, so vertices weighted to one part only map exactly.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.core.rotations import rot_x, rot_y, rot_z
from halohand.core.skinning import forward_kinematics, homogeneous, rigid_inverse, skin
from halohand.handmodel.collision import load_sphere_proxy
from halohand.handmodel.hand import PosedHand
from halohand.handmodel.pose import (
    ABDUCTION_SIGN,
    POSE_WEBXR_JOINT,
    HandIdentity,
    HandPose,
)
from halohand.handmodel.shape import basis_for
from halohand.handmodel.template import (
    JOINT_PART,
    KEYPOINT_JOINT,
    NUM_WEBXR_JOINTS,
    PART_JOINT,
    HandTemplate,
    load_template,
    read_template,
)
from halohand.skeleton import hand_length, part_bone_lengths

SIDES = ("right", "left")

_MIRROR = np.diag([-1.0, 1.0, 1.0, 1.0])


def check_side(side: str) -> str:
    """Return ``side`` if it is ``"right"`` or ``"left"``, else raise a one-line error."""
    if side not in SIDES:
        raise HalohandInputError(f"side must be 'right' or 'left', got {side!r}")
    return side


def _check_params(
    pose: HandPose | None, identity: HandIdentity | None
) -> tuple[HandPose, HandIdentity]:
    pose = HandPose() if pose is None else pose
    identity = HandIdentity() if identity is None else identity
    if not isinstance(pose, HandPose):
        raise HalohandInputError(f"pose must be a HandPose, got {type(pose).__name__}")
    if not isinstance(identity, HandIdentity):
        raise HalohandInputError(f"identity must be a HandIdentity, got {type(identity).__name__}")
    return pose, identity


class WebXRHandModel:
    """The rigged MIT-licensed WebXR hand: pose and identity in, :class:`PosedHand` out.

    Example::

        model = WebXRHandModel.load()
        hand = model.pose(HandPose.from_degrees(index_mcp=45), HandIdentity(hand_length=0.19))
    """

    def __init__(self, template: HandTemplate) -> None:
        self.template = template
        self.parents = template.parents
        self._rest = template.rest_frames
        self._rest_inv = rigid_inverse(self._rest)
        local = self._rest.copy()
        local[1:] = self._rest_inv[self.parents[1:]] @ self._rest[1:]
        #: ``[25, 3, 3]`` / ``[25, 3]`` template rotation and offset of each joint relative
        #: to its parent (the wrist: relative to the model frame).
        self._local_rot = local[:, :3, :3].copy()
        self._local_offset = local[:, :3, 3].copy()
        self._is_palm_joint = JOINT_PART == 0
        self.template_hand_length = float(hand_length(template.rest_keypoints))

    @classmethod
    def load(cls, path: Path | None = None) -> WebXRHandModel:
        """The model on the shipped template (or on a template file at ``path``)."""
        return cls(load_template() if path is None else read_template(path))

    # -- identity ---------------------------------------------------------------------------

    def _joint_scales(self, identity: HandIdentity) -> tuple[np.ndarray, np.ndarray]:
        """Per-joint ``[25, 3]`` scales along the joint's local (x, y, z) = (lateral, dorsal,
        along the bone), for the offsets of its children and for its vertices.

        Children's offsets: palm joints (palm width, 1, palm length), finger joints
        (1, 1, length): keypoints never see thickness. Vertices: palm joints (palm width,
        palm thickness, palm length), finger joints (thickness, thickness, length).
        """
        lengths = identity.length_factors[JOINT_PART]
        thick = identity.thickness_factors()[JOINT_PART]
        width = np.where(self._is_palm_joint, identity.palm_width, 1.0)
        offset_scale = np.stack([width, np.ones(NUM_WEBXR_JOINTS), lengths], axis=-1)
        vertex_scale = np.stack(
            [np.where(self._is_palm_joint, identity.palm_width, thick), thick, lengths], axis=-1
        )
        return offset_scale, vertex_scale

    def identity_frames(self, identity: HandIdentity) -> tuple[np.ndarray, np.ndarray, float]:
        """Rest frames of an identity at unit size and its overall scale.

        Returns:
            ``(frames [25, 4, 4], vertex_scale [25, 3], scale)``: rigid rest joint frames
            before the overall scaling, per-joint vertex scales (local x, y, z) and the
            overall scale factor that gives ``identity.hand_length``.
        """
        offset_scale, vertex_scale = self._joint_scales(identity)
        offsets = self._local_offset.copy()
        offsets[1:] *= offset_scale[self.parents[1:]]
        frames = forward_kinematics(homogeneous(self._local_rot, offsets), self.parents)
        if identity.hand_length is None:
            scale = 1.0
        else:
            unit_length = hand_length(frames[KEYPOINT_JOINT, :3, 3])
            scale = identity.hand_length / unit_length
        return frames, vertex_scale, float(scale)

    @cached_property
    def shape_basis(self) -> np.ndarray:
        """``[NUM_SHAPES, V, 3]`` the template's soft-tissue correctives (metres per mm),
        built at first use: most hands have none."""
        return basis_for(self.template)

    def rest_vertices(self, identity: HandIdentity) -> np.ndarray:
        """``[V, 3]`` template vertices with the identity's soft-tissue correctives
        (:mod:`halohand.handmodel.shape`), before stretching and skinning."""
        if not np.any(identity.shape):
            return self.template.vertices
        return self.template.vertices + np.einsum("s,svc->vc", identity.shape, self.shape_basis)

    def _stretch(self, vertex_scale: np.ndarray) -> np.ndarray:
        """``[25, 4, 4]`` template model coordinates -> scaled joint-local coordinates."""
        return homogeneous(vertex_scale[..., None] * np.eye(3)) @ self._rest_inv

    def self_penetration(self, pose: HandPose, identity: HandIdentity | None = None) -> float:
        """Deepest overlap (metres, at the identity's size) of the inscribed-sphere proxies
        of two non-adjacent bones; <= 0 when the pose is free of such collisions."""

        pose, identity = _check_params(pose, identity)
        proxy = load_sphere_proxy()
        rest, vertex_scale, scale = self.identity_frames(identity)
        posed = self.posed_frames(rest, pose)
        local_to_posed = posed @ homogeneous(vertex_scale[..., None] * np.eye(3))
        centers = proxy.centers(local_to_posed)
        radii = proxy.radii * vertex_scale[proxy.joint, :2].min(axis=1)
        return proxy.penetration(centers, radii) * scale

    # -- pose -------------------------------------------------------------------------------

    @staticmethod
    def joint_rotations(pose: HandPose) -> np.ndarray:
        """``[15, 3, 3]`` local rotations of the pose joints: abduction, flexion, twist."""
        return rot_y(ABDUCTION_SIGN * pose.abduction) @ rot_x(-pose.flexion) @ rot_z(-pose.twist)

    def posed_frames(self, identity_frames: np.ndarray, pose: HandPose) -> np.ndarray:
        """``[25, 4, 4]`` posed joint frames (unit size) from identity rest frames."""
        local = identity_frames.copy()
        local[1:] = rigid_inverse(identity_frames[self.parents[1:]]) @ identity_frames[1:]
        local[POSE_WEBXR_JOINT, :3, :3] = local[POSE_WEBXR_JOINT, :3, :3] @ self.joint_rotations(
            pose
        )
        return forward_kinematics(local, self.parents)

    def pose(
        self,
        pose: HandPose | None = None,
        identity: HandIdentity | None = None,
        side: str = "right",
    ) -> PosedHand:
        """Pose the hand.

        Args:
            pose: joint angles (default: the rest pose).
            identity: shape (default: the template's own shape).
            side: ``"right"`` or ``"left"`` (the mirror image across the model's x = 0).

        Returns:
            A :class:`PosedHand` in metres, wrist keypoint at the origin.
        """
        check_side(side)
        pose, identity = _check_params(pose, identity)
        rest, vertex_scale, scale = self.identity_frames(identity)
        posed = self.posed_frames(rest, pose)
        stretch = self._stretch(vertex_scale)
        tpl = self.template
        rest_vertices = self.rest_vertices(identity)
        vertices = skin(rest_vertices, tpl.joint_weights, posed @ stretch) * scale
        canonical = skin(rest_vertices, tpl.joint_weights, rest @ stretch) * scale
        keypoints = posed[KEYPOINT_JOINT, :3, 3] * scale
        rest_keypoints = rest[KEYPOINT_JOINT, :3, 3] * scale
        part_tf = rest[PART_JOINT] @ rigid_inverse(posed[PART_JOINT])
        part_tf[:, :3, 3] *= scale
        faces = tpl.faces
        if side == "left":
            flip = _MIRROR[:3, :3].diagonal()
            vertices, canonical = vertices * flip, canonical * flip
            keypoints, rest_keypoints = keypoints * flip, rest_keypoints * flip
            part_tf = _MIRROR @ part_tf @ _MIRROR
            # Mirroring turns the triangles inside out; swapping two corners restores it.
            faces = faces[:, [0, 2, 1]]
        return PosedHand(
            vertices=vertices,
            faces=np.ascontiguousarray(faces),
            keypoints=keypoints,
            part_transforms=part_tf,
            canonical_vertices=canonical,
            bone_lengths=np.asarray(part_bone_lengths(keypoints)),
            skin_weights=tpl.part_weights,
            part_labels=tpl.part_labels,
            side=side,
            rest_keypoints=rest_keypoints,
        )


@lru_cache(maxsize=1)
def default_model() -> WebXRHandModel:
    """The model on the shipped template, built once per process."""
    return WebXRHandModel.load()
