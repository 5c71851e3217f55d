"""Signed distance of a HALO hand, differentiable w.r.t. the hand's keypoints.

HALO is an occupancy network, not a distance network: its surface is the level set
``occupancy = iso_level`` of ``sigmoid(max_k logit_k)``, and the logit grows ~1,700 per
metre across the surface (measured on the shipped model: one logit unit per ~0.6 mm), so a
distance has to be derived. Two methods, both giving metres, positive outside:

- ``"first_order"`` (no mesh; network queries with their point gradient): one Newton step
  towards the level set, ``d ~ (level - logit(x)) / |grad_x logit(x)|`` with
  ``level = logit(iso_level)``, clamped to ``+-clamp`` metres. Exact for a field whose
  logit is linear in the distance (a single capsule of :class:`tests.halo_fakes.CapsuleNet`),
  good within a few millimetres of a learned surface, meaningless far from it (the logit
  saturates; float32 probabilities stop resolving it past ~10 mm), hence the clamp.
  The gradient norm is held constant (detached): the keypoint gradient is then
  ``-grad_kp logit / |grad_x logit|``, the first-order motion of the surface along its
  normal, and no second derivative of the network is needed (the sparse differentiable
  query has none). The point gradient is the unit normal ``-grad_x logit / |.|``.
- ``"mesh"`` (default): the exact signed distance to the mesh HALO extracts from these
  keypoints (:meth:`HALO.reconstruct <halohand.inference.halo.HALO.reconstruct>` at
  ``resolution``, 0.7-1.6 s at 256 on the loaded 2-core CPU), valid at any distance.
  The mesh does not depend differentiably on the keypoints, so the keypoint gradient is
  supplied by the first-order surface motion at each point's closest surface point ``c``:
  ``d = d_mesh(x) - (s(c) - stop_grad(s(c)))`` with ``s(c) = (logit(c) - level) /
  |grad_x logit(c)|``: the value is exactly the mesh distance, and moving the keypoints so
  the surface moves out by ``ds`` along its normal at ``c`` lowers ``d`` by ``ds``.

Errors against the true distance to the extracted mesh, in bands near the surface, and
checks of the keypoint gradient: ``docs/interaction.md``
(``benchmarks/studies/interaction_fields.py``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import trimesh
from torch import Tensor

from halohand.core.errors import HalohandInputError
from halohand.inference.halo import HALO
from halohand.interaction.object_field import MeshDistance, mesh_signed_distance

__all__ = ["METHODS", "HandField"]

METHODS = ("mesh", "first_order")

#: Probabilities are clamped to ``[eps, 1 - eps]`` before the logit: float32 occupancy
#: resolves ``1 - p`` down to ~6e-8 (logit ~16).
_PROB_EPS = 1e-7


def _to_logit(occupancy: Tensor) -> Tensor:
    p = occupancy.to(torch.float64).clamp(_PROB_EPS, 1.0 - _PROB_EPS)
    return torch.log(p) - torch.log1p(-p)


class HandField:
    """The signed distance field of one hand of a :class:`~halohand.inference.halo.HALO`.

    Args:
        model: the HALO model.
        keypoints: ``[21, 3]`` metres, OpenPose order (a tensor with ``requires_grad`` gets
            gradients from every query).
        side: ``"right"`` or ``"left"``.
        method: ``"mesh"`` or ``"first_order"`` (see the module docstring).
        clamp: ``first_order`` only: bound (metres) of the returned distance.
        resolution: ``mesh`` only: extraction lattice cells per axis.
        mesh: ``mesh`` only: a mesh already extracted from these keypoints (metres), to
            skip the extraction.

    One field is for one value of the keypoints: gradients are taken at that value. In an
    optimisation loop build a new field per step (``first_order`` costs nothing to build,
    ``mesh`` one extraction).
    """

    def __init__(
        self,
        model: HALO,
        keypoints: Tensor | np.ndarray,
        side: str = "right",
        *,
        method: str = "mesh",
        clamp: float = 0.005,
        resolution: int = 256,
        mesh: trimesh.Trimesh | None = None,
    ) -> None:
        if method not in METHODS:
            raise HalohandInputError(f"method must be one of {METHODS}, got {method!r}")
        if not clamp > 0:
            raise HalohandInputError(f"clamp must be positive, got {clamp}")
        kp = keypoints if isinstance(keypoints, Tensor) else torch.as_tensor(keypoints)
        if kp.shape != (21, 3):
            raise HalohandInputError(f"keypoints must be [21, 3] metres, got {list(kp.shape)}")
        self.model = model
        self.keypoints = kp if kp.is_floating_point() else kp.to(torch.float64)
        self.side = side
        self.method = method
        self.clamp = float(clamp)
        level = min(max(float(model.iso_level), _PROB_EPS), 1.0 - _PROB_EPS)
        self.level_logit = math.log(level / (1.0 - level))
        self.mesh: trimesh.Trimesh | None = None
        if method == "mesh":
            if mesh is None:
                kp_np = self.keypoints.detach().cpu().numpy().astype(np.float64)
                # rig placement, as the occupancy queried beside it
                mesh = model.reconstruct(
                    kp_np, side, units="m", resolution=resolution, colors=False,
                    convention="rig",
                )  # fmt: skip
            if len(mesh.faces) == 0:
                raise HalohandInputError("HALO predicts no surface for these keypoints")
            self.mesh = mesh
            self.distance = MeshDistance(mesh.vertices, mesh.faces)

    def _logit(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """Logit ``[N]`` (float64, with its graph to the keypoints when they require grad)
        and its detached point gradient ``[N, 3]`` at detached ``[N, 3]`` points.

        Two queries: the point gradient from one with the keypoints detached, the logit's
        graph to the keypoints from another. One graph used twice (point gradient now,
        keypoint gradient at the caller's backward) is not possible: the sparse
        differentiable query frees its plan after its one backward pass."""
        pts = points.detach().to(torch.float64).requires_grad_(True)
        kp = self.keypoints.detach()
        occ = self.model.occupancy(pts, kp, self.side, units="m", grad=True)
        logit = _to_logit(occ)
        (g,) = torch.autograd.grad(logit.sum(), pts)
        if not self.keypoints.requires_grad:
            return logit.detach(), g
        occ = self.model.occupancy(pts.detach(), self.keypoints, self.side, units="m", grad=True)
        return _to_logit(occ), g

    def surface_shift(self, points: Tensor) -> Tensor:
        """First-order outward displacement ``[N]`` (metres) of the level set near
        ``[N, 3]`` points: ``(logit - level) / |grad_x logit|`` (positive inside), with the
        graph to the keypoints and the gradient norm held constant."""
        logit, g = self._logit(points)
        norm = torch.linalg.vector_norm(g, dim=-1).clamp_min(1e-6)
        return (logit - self.level_logit) / norm

    def __call__(self, points: Tensor) -> Tensor:
        """Signed distance ``[...]`` (metres, positive outside) at ``[..., 3]`` points
        (metres, the keypoints' frame), in the points' dtype."""
        if not isinstance(points, Tensor) or points.shape[-1:] != (3,):
            raise HalohandInputError(
                f"points must be a [..., 3] tensor, got {list(getattr(points, 'shape', ()))}"
            )
        flat = points.reshape(-1, 3)
        if len(flat) == 0:
            return points.new_zeros(points.shape[:-1])
        if self.method == "first_order":
            d = self._first_order(flat)
        else:
            d = self._mesh_distance(flat)
        if not (points.requires_grad or self.keypoints.requires_grad):
            d = d.detach()  # the network query always builds a graph (for the normal)
        return d.to(points.dtype).reshape(points.shape[:-1])

    def _first_order(self, flat: Tensor) -> Tensor:
        logit, g = self._logit(flat)
        norm = torch.linalg.vector_norm(g, dim=-1, keepdim=True)
        normal = -g / norm.clamp_min(1e-6)  # outward: the logit falls going out
        d = (self.level_logit - logit) / norm[:, 0].clamp_min(1e-6)
        # Saturated probabilities (far from the surface) have no gradient: their side of
        # the surface is still known from the logit.
        d = torch.where(norm[:, 0] > 1e-6, d, torch.sign(self.level_logit - logit) * self.clamp)
        d = d.clamp(-self.clamp, self.clamp)
        # Point gradient: the normal (only where unclamped), added without changing values.
        inside_band = (d.detach().abs() < self.clamp).to(d.dtype)[:, None]
        x = flat.to(torch.float64)
        return d + ((x - x.detach()) * normal * inside_band).sum(-1)

    def _mesh_distance(self, flat: Tensor) -> Tensor:
        d = mesh_signed_distance(flat.to(torch.float64), self.distance)
        if not self.keypoints.requires_grad:
            return d
        _, closest, _ = self.distance.query(flat.detach().cpu().numpy())
        c = torch.as_tensor(closest, dtype=torch.float64, device=flat.device)
        s = self.surface_shift(c)
        return d - (s - s.detach())

    def __repr__(self) -> str:
        return f"HandField(method={self.method!r}, side={self.side!r})"
