"""Differentiable (torch) forward of the embedded WebXR hand model.

:class:`TorchHandModel` reproduces :meth:`halohand.handmodel.WebXRHandModel.pose` (numpy,
the reference) in torch so that keypoints and vertices can be differentiated with respect to
the pose angles, the identity and a global rigid transform. It follows the same steps as
``webxr.py`` (identity rest frames from scaled offsets, joint rotations
``R_y(abduction) R_x(-flexion) R_z(-twist)`` appended to the rest rotations, forward
kinematics, linear blend skinning of ``P_j S_j Gt_j^-1``, overall scale, mirror for left
hands), batched over a leading dimension ``B``. ``tests/test_fitting.py`` checks it against
the numpy model to 1e-6 m.

The palm is rigid in the model, so only the 15 pose joints rotate. Rotations, forward
kinematics and skinning are :mod:`halohand.core.rotations` and :mod:`halohand.core.skinning`,
the functions the numpy model uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from halohand.core.rotations import rot_x, rot_y, rot_z
from halohand.core.skinning import forward_kinematics, homogeneous, rigid_inverse, skin
from halohand.handmodel.pose import ABDUCTION_SIGN, POSE_WEBXR_JOINT, THICKNESS_LENGTH_EXPONENT
from halohand.handmodel.shape import basis_for
from halohand.handmodel.template import JOINT_PART, KEYPOINT_JOINT, HandTemplate, load_template
from halohand.skeleton import NUM_PARTS

#: Joints of the middle-finger chain in the project's keypoint order (wrist, MCP, PIP, DIP,
#: tip): their segment lengths sum to the hand length (``halohand.skeleton.hand_length``).
_MIDDLE_CHAIN = (0, 9, 10, 11, 12)


@dataclass
class TorchHandOutput:
    """Result of :meth:`TorchHandModel.forward` (metres, after mirror and global transform).

    Attributes:
        keypoints: ``[B, 21, 3]`` keypoints in the project's order.
        vertices: ``[B, V, 3]`` posed mesh vertices, or ``None`` if not requested.
        rest_frames_scale: ``[B]`` overall scale that was applied (model units -> metres).
    """

    keypoints: torch.Tensor
    vertices: torch.Tensor | None
    rest_frames_scale: torch.Tensor


class TorchHandModel:
    """Batched, differentiable copy of :class:`~halohand.handmodel.WebXRHandModel`.

    Constant tables are float64 tensors on ``device``; inputs are cast to float64 so the
    result matches the numpy model to rounding.
    """

    def __init__(self, template: HandTemplate | None = None, device: str = "cpu") -> None:
        tpl = load_template() if template is None else template
        self.template = tpl
        dt = torch.float64
        self.device = torch.device(device)
        rest = tpl.rest_frames
        rest_inv = rigid_inverse(rest)
        local = rest.copy()
        local[1:] = rest_inv[tpl.parents[1:]] @ rest[1:]
        self.parents = [int(p) for p in tpl.parents]
        self.local_rot = torch.tensor(local[:, :3, :3], dtype=dt, device=self.device)
        self.local_offset = torch.tensor(local[:, :3, 3], dtype=dt, device=self.device)
        self.rest_inv = torch.tensor(rest_inv, dtype=dt, device=self.device)
        self.joint_part = torch.tensor(JOINT_PART, device=self.device)
        self.is_palm = torch.tensor(JOINT_PART == 0, device=self.device)
        self.pose_joints = [int(j) for j in POSE_WEBXR_JOINT]
        self.abduction_sign = torch.tensor(ABDUCTION_SIGN, dtype=dt, device=self.device)
        self.keypoint_joint = torch.tensor(KEYPOINT_JOINT, device=self.device)
        # Only joints that carry skin weight matter for the vertices (the tips carry none).
        weights = tpl.joint_weights
        self.skin_joints = torch.tensor(np.flatnonzero(weights.sum(0) > 0), device=self.device)
        self.skin_weights = torch.tensor(
            weights[:, self.skin_joints.cpu().numpy()], dtype=dt, device=self.device
        )
        self.template_vertices = torch.tensor(tpl.vertices, dtype=dt, device=self.device)
        self.faces = np.ascontiguousarray(tpl.faces)

    @cached_property
    def shape_basis(self) -> torch.Tensor:
        """``[NUM_SHAPES, V, 3]`` soft-tissue correctives (metres per mm, template size),
        built at first use."""
        return torch.tensor(basis_for(self.template), dtype=torch.float64, device=self.device)

    # -- pieces -----------------------------------------------------------------------------

    def _compose(self, rot: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """``[B, 25, 4, 4]`` world frames from local ``[B, 25, 3, 3]`` rotations and
        ``[B, 25, 3]`` offsets (forward kinematics)."""
        return forward_kinematics(homogeneous(rot, offset), self.parents)

    def joint_rotations(self, angles: torch.Tensor) -> torch.Tensor:
        """``[B, 15, 3]`` (flexion, abduction, twist) radians -> ``[B, 15, 3, 3]``."""
        flex, abd, twist = angles.unbind(-1)
        return rot_y(self.abduction_sign * abd) @ rot_x(-flex) @ rot_z(-twist)

    def offsets(self, length_factors: torch.Tensor, palm_width: torch.Tensor) -> torch.Tensor:
        """``[B, 25, 3]`` child offsets of the identity at unit size (see ``webxr.py``)."""
        lengths = length_factors[:, self.joint_part]  # [B, 25]
        width = torch.where(self.is_palm, palm_width[:, None], torch.ones_like(lengths))
        offset_scale = torch.stack([width, torch.ones_like(lengths), lengths], dim=-1)
        parent_idx = torch.tensor(self.parents[1:], device=self.device)
        scaled = self.local_offset[1:] * offset_scale[:, parent_idx]
        return torch.cat([self.local_offset[:1].expand(len(lengths), 1, 3), scaled], dim=1)

    def unit_hand_length(
        self, length_factors: torch.Tensor, palm_width: torch.Tensor
    ) -> torch.Tensor:
        """``[B]`` hand length of the identity at unit size (model units = template metres)."""
        offsets = self.offsets(length_factors, palm_width)
        rot = self.local_rot.expand(len(offsets), -1, -1, -1)
        world = self._compose(rot, offsets)
        kp = world[:, self.keypoint_joint[list(_MIDDLE_CHAIN)], :3, 3]
        return torch.linalg.vector_norm(kp[:, 1:] - kp[:, :-1], dim=-1).sum(-1)

    # -- forward ----------------------------------------------------------------------------

    def forward(
        self,
        angles: torch.Tensor,
        length_factors: torch.Tensor,
        palm_width: torch.Tensor,
        scale: torch.Tensor,
        side: str = "right",
        global_rot: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
        thickness_offsets: torch.Tensor | None = None,
        with_vertices: bool = False,
        shape: torch.Tensor | None = None,
    ) -> TorchHandOutput:
        """Pose a batch of hands.

        Args:
            angles: ``[B, 15, 3]`` radians (flexion, abduction, twist) per pose joint.
            length_factors: ``[B, 16]`` per HALO part (palm = palm length).
            palm_width: ``[B]`` knuckle spread / palm width factor.
            scale: ``[B]`` overall scale (model units -> metres); the numpy model's
                ``hand_length / unit_hand_length`` (:meth:`scale_for_hand_length`).
            side: ``"right"`` or ``"left"`` (left = mirror across model x = 0).
            global_rot: ``[B, 3, 3]`` rotation applied after the mirror (default identity).
            translation: ``[B, 3]`` metres, applied last (default zero).
            thickness_offsets: ``[B, 16]`` invisible thickness offsets (default zero).
            with_vertices: also skin the mesh (``[B, 1159, 3]``).
            shape: ``[B, NUM_SHAPES]`` soft-tissue correctives, mm at the template's size
                (:mod:`halohand.handmodel.shape`; default zero).

        Returns:
            :class:`TorchHandOutput`.
        """
        dt = torch.float64
        angles = angles.to(dt)
        length_factors = length_factors.to(dt)
        palm_width = palm_width.to(dt)
        scale = scale.to(dt)
        b = len(angles)
        offsets = self.offsets(length_factors, palm_width)
        rot = self.local_rot.expand(b, -1, -1, -1).clone()
        rot[:, self.pose_joints] = rot[:, self.pose_joints] @ self.joint_rotations(angles)
        world = self._compose(rot, offsets)
        mirror = torch.tensor(
            [-1.0 if side == "left" else 1.0, 1.0, 1.0], dtype=dt, device=self.device
        )

        def place(points: torch.Tensor) -> torch.Tensor:
            # Scale, mirror, then the global rigid transform: [B, N, 3] model -> world metres.
            out = points * scale[:, None, None] * mirror
            if global_rot is not None:
                out = out @ global_rot.to(dt).transpose(-1, -2)
            if translation is not None:
                out = out + translation.to(dt)[:, None]
            return out

        keypoints = place(world[:, self.keypoint_joint, :3, 3])
        vertices = None
        if with_vertices:
            vertices = place(
                self._skin(world, length_factors, palm_width, thickness_offsets, shape)
            )
        return TorchHandOutput(keypoints, vertices, scale)

    __call__ = forward

    def rest_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """The template's own hand at rest (zero angles, unit identity and scale), a right
        hand in model units: ``(keypoints [21, 3], vertices [V, 3])`` float64, e.g. for
        choosing template vertices by where they lie."""
        rest = self(
            torch.zeros(1, 15, 3), torch.ones(1, NUM_PARTS), torch.ones(1), torch.ones(1),
            with_vertices=True,
        )  # fmt: skip
        return rest.keypoints[0].cpu().numpy(), rest.vertices[0].cpu().numpy()

    def _skin(
        self,
        world: torch.Tensor,
        length_factors: torch.Tensor,
        palm_width: torch.Tensor,
        thickness_offsets: torch.Tensor | None,
        shape: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """LBS of the template (moved by the ``shape`` correctives) with
        ``P_j S_j Gt_j^-1`` at unit size: ``[B, V, 3]``."""
        offsets = (
            torch.zeros_like(length_factors) if thickness_offsets is None else thickness_offsets
        )
        thick_part = (length_factors * palm_width[:, None]) ** THICKNESS_LENGTH_EXPONENT * (
            1.0 + offsets.to(world.dtype)
        )
        thick = thick_part[:, self.joint_part]
        lengths = length_factors[:, self.joint_part]
        first = torch.where(self.is_palm, palm_width[:, None], thick)
        vscale = torch.stack([first, thick, lengths], dim=-1)  # [B, 25, 3]
        j = self.skin_joints
        stretch = homogeneous(torch.diag_embed(vscale[:, j])) @ self.rest_inv[j]
        rest = self.template_vertices
        if shape is not None:
            rest = rest + torch.einsum("bs,svc->bvc", shape.to(world.dtype), self.shape_basis)
        return skin(rest, self.skin_weights, world[:, j] @ stretch)

    def scale_for_hand_length(
        self, hand_length: torch.Tensor, length_factors: torch.Tensor, palm_width: torch.Tensor
    ) -> torch.Tensor:
        """``[B]`` overall scale giving hand length ``hand_length`` (metres) to the identity."""
        return hand_length.to(torch.float64) / self.unit_hand_length(
            length_factors.to(torch.float64), palm_width.to(torch.float64)
        )

    def mesh_faces(self, side: str = "right") -> np.ndarray:
        """``[F, 3]`` faces, re-wound for left hands (mirroring turns triangles inside out)."""
        return np.ascontiguousarray(self.faces[:, [0, 2, 1]] if side == "left" else self.faces)
