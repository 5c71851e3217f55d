"""Signed distance of a rigid object in a pose, differentiable w.r.t. points and pose.

A world point ``x`` is taken into the object's frame, ``q = R^T (x - t)`` (``R`` object ->
world rotation ``[3, 3]``, ``t`` translation ``[3]``, metres), and the object's own signed
distance is evaluated at ``q``. The frame change is plain torch, so autograd carries the
gradient to ``x``, ``R`` and ``t``; only ``q -> d`` needs a rule of its own:

- ``"exact"``: libigl's signed distance to the mesh (pseudonormal sign: exact for a closed,
  consistently wound mesh). Its gradient is the unit direction from the closest surface
  point to ``q`` (the distance's true gradient away from the medial axis), divided by the
  sign: ``(q - c) / d``; on the surface (``|d| < 1e-9`` m), libigl's pseudonormal there.
  This is :class:`MeshSignedDistance`, a custom autograd function usable for any closed mesh
  (the hand field uses it for HALO's meshes).
- ``"grid"``: :meth:`GraspObject.sdf_grid <halohand.objects.registry.GraspObject.sdf_grid>`
  (the signed distance sampled on a ``resolution^3`` lattice over the bounding box plus a
  margin, trilinear, differentiable through ``grid_sample``). Faster to query and to
  differentiate (no BVH walk), at a cost of accuracy that grows with the lattice step and
  the surface's curvature: measured in ``docs/interaction.md``
  (``benchmarks/studies/interaction_fields.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import trimesh
from torch import Tensor

from halohand.core.errors import HalohandInputError
from halohand.objects.registry import GraspObject, object_from_mesh

__all__ = [
    "MeshDistance", "MeshSignedDistance", "ObjectField", "closest_points", "mesh_signed_distance",
]  # fmt: skip

#: Below this distance (metres) the closest-point direction is ill-defined and the
#: pseudonormal is used as the gradient.
_ON_SURFACE = 1e-9


def closest_points(
    points: np.ndarray, vertices: np.ndarray, faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """libigl's signed distance ``[N]`` (metres, positive outside), closest surface points
    ``[N, 3]`` and pseudonormals there ``[N, 3]`` of ``[N, 3]`` points to a closed mesh."""
    import igl

    q = np.ascontiguousarray(np.asarray(points, dtype=np.float64).reshape(-1, 3))
    if len(q) == 0:
        return np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3))
    d, _, closest, normals = igl.signed_distance(
        q,
        np.ascontiguousarray(vertices, dtype=np.float64),
        np.ascontiguousarray(faces, dtype=np.int64),
        sign_type=igl.SIGNED_DISTANCE_TYPE_PSEUDONORMAL,
    )
    return np.asarray(d), np.asarray(closest), np.asarray(normals)


#: Barycentric coordinates below this put a closest point on an edge or a vertex.
_ON_FEATURE = 1e-9


class MeshDistance:
    """Signed distance to one closed mesh, its bounding-volume tree built once.

    ``igl.signed_distance`` builds its tree on every call (0.26 s for a HALO hand mesh of
    119k faces, ``benchmarks/speed/bench_mesh_distance.py``), which dominates the repeated
    small queries of an optimisation loop. Here the tree is libigl's ``AABB``, built at
    construction, and the sign is the angle-weighted pseudonormal test libigl uses
    (Baerentzen and Aanaes): the normal of the closest feature (face, edge or vertex) of
    the closest point, dotted with the direction to the query. Matches
    ``igl.signed_distance`` (pseudonormal) on closed, consistently wound meshes
    (``tests/test_interaction.py``).

    Args:
        vertices: ``[V, 3]`` metres.
        faces: ``[F, 3]`` outward-wound triangles.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        import igl

        v = np.ascontiguousarray(vertices, dtype=np.float64)
        f = np.ascontiguousarray(faces, dtype=np.int64)
        if f.ndim != 2 or f.shape[1:] != (3,) or len(f) == 0:
            raise HalohandInputError(f"a mesh distance needs [F, 3] triangles, got {list(f.shape)}")
        self.vertices, self.faces = v, f
        self.tree = igl.AABB()
        self.tree.init(v, f)
        e1, e2 = v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]
        n = np.cross(e1, e2)
        self.face_normals = n / np.maximum(np.linalg.norm(n, axis=1), 1e-300)[:, None]
        # Edge pseudonormals: the sum of the two adjacent faces' normals, per face corner
        # edge (local edge k joins corners k and k+1).
        corner_edges = np.sort(np.stack([f, np.roll(f, -1, axis=1)], axis=-1), axis=-1)
        _, edge_id = np.unique(corner_edges.reshape(-1, 2), axis=0, return_inverse=True)
        edge_normal = np.zeros((edge_id.max() + 1, 3))
        np.add.at(edge_normal, edge_id, np.repeat(self.face_normals, 3, axis=0))
        self.edge_normals = edge_normal[edge_id].reshape(-1, 3, 3)  # [F, local edge, 3]
        # Vertex pseudonormals: face normals weighted by the face's angle at the vertex.
        vertex_normal = np.zeros_like(v)
        for k in range(3):
            a = v[np.roll(f, -k, axis=1)[:, 1]] - v[f[:, k]]
            b = v[np.roll(f, -k, axis=1)[:, 2]] - v[f[:, k]]
            angle = np.arctan2(np.linalg.norm(np.cross(a, b), axis=1), (a * b).sum(1))
            np.add.at(vertex_normal, f[:, k], angle[:, None] * self.face_normals)
        self.vertex_normals = vertex_normal

    def query(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Signed distance ``[N]`` (metres, positive outside), closest surface points
        ``[N, 3]`` and unit pseudonormals there ``[N, 3]`` of ``[N, 3]`` points."""
        p = np.ascontiguousarray(np.asarray(points, dtype=np.float64).reshape(-1, 3))
        if len(p) == 0:
            return np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3))
        sq, face, closest = self.tree.squared_distance(self.vertices, self.faces, p)
        face = np.asarray(face)
        closest = np.asarray(closest)
        tri = self.vertices[self.faces[face]]  # [N, 3 corners, 3]
        bary = _barycentric(closest, tri)
        small = bary < _ON_FEATURE
        normal = self.face_normals[face].copy()
        on_edge = small.sum(1) == 1
        if on_edge.any():
            # Zero weight at corner k: the edge joining the other two, local edge k + 1.
            local = (np.argmax(small[on_edge], axis=1) + 1) % 3
            normal[on_edge] = self.edge_normals[face[on_edge], local]
        on_vertex = small.sum(1) >= 2
        if on_vertex.any():
            corner = np.argmax(bary[on_vertex], axis=1)
            normal[on_vertex] = self.vertex_normals[self.faces[face[on_vertex], corner]]
        normal /= np.maximum(np.linalg.norm(normal, axis=1), 1e-300)[:, None]
        sign = np.where(((p - closest) * normal).sum(1) < 0.0, -1.0, 1.0)
        return sign * np.sqrt(np.maximum(np.asarray(sq), 0.0)), closest, normal


def _barycentric(x: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Barycentric coordinates ``[N, 3]`` of points ``[N, 3]`` in triangles ``[N, 3, 3]``."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, x - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    den = np.where(np.abs(den) > 0, den, 1.0)  # degenerate triangle: treat as a vertex
    w1 = (d11 * d20 - d01 * d21) / den
    w2 = (d00 * d21 - d01 * d20) / den
    return np.stack([1.0 - w1 - w2, w1, w2], axis=1)


class MeshSignedDistance(torch.autograd.Function):
    """``d [N] = sdf(q [N, 3])`` of a :class:`MeshDistance`, with ``dd/dq`` = unit
    direction from the closest point (see the module docstring). Values and gradient in
    ``q``'s dtype."""

    @staticmethod
    def forward(ctx, q: Tensor, mesh: MeshDistance) -> Tensor:  # noqa: ANN001
        pts = np.ascontiguousarray(q.detach().cpu().numpy(), dtype=np.float64)
        if len(pts) == 0:
            ctx.save_for_backward(torch.zeros_like(q))
            return q.new_zeros(0)
        d, closest, normals = mesh.query(pts)
        on = np.abs(d) < _ON_SURFACE
        safe = np.where(on, 1.0, d)[:, None]
        direction = np.where(on[:, None], normals, (pts - closest) / safe)
        ctx.save_for_backward(torch.as_tensor(direction, dtype=q.dtype, device=q.device))
        return torch.as_tensor(d, dtype=q.dtype, device=q.device)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: ANN001
        (direction,) = ctx.saved_tensors
        return grad[:, None] * direction, None


def mesh_signed_distance(
    points: Tensor, mesh: MeshDistance | tuple[np.ndarray, np.ndarray]
) -> Tensor:
    """Signed distance ``[...]`` (metres, positive outside) of ``[..., 3]`` points to a
    closed mesh (a :class:`MeshDistance`, or ``(vertices [V, 3], faces [F, 3])`` to build
    one), differentiable w.r.t. the points (:class:`MeshSignedDistance`)."""
    if not isinstance(points, Tensor) or points.shape[-1:] != (3,):
        raise HalohandInputError(
            f"points must be a [..., 3] tensor, got {list(getattr(points, 'shape', ()))}"
        )
    if not isinstance(mesh, MeshDistance):
        mesh = MeshDistance(*mesh)
    flat = points.reshape(-1, 3)
    return MeshSignedDistance.apply(flat, mesh).reshape(points.shape[:-1])


def _as_object(obj: GraspObject | trimesh.Trimesh | Any) -> GraspObject:
    if isinstance(obj, GraspObject):
        return obj
    if isinstance(obj, trimesh.Trimesh):
        # Kept in its own frame (no centring): the pose given to the field is the mesh's.
        return object_from_mesh(obj, units="m", center=False, orient="keep")
    raise HalohandInputError(
        f"an object field needs a GraspObject or a trimesh.Trimesh, got {type(obj).__name__}"
    )


class ObjectField:
    """The signed distance field of one rigid object, posed at query time.

    Args:
        obj: a registry :class:`~halohand.objects.registry.GraspObject` or a closed
            ``trimesh.Trimesh`` in metres (validated and repaired by
            :func:`~halohand.objects.registry.object_from_mesh`, kept in its frame).
        mode: ``"exact"`` (mesh distance) or ``"grid"`` (the object's cached
            ``sdf_grid(resolution, margin)``).
        resolution / margin: lattice points per axis and margin (metres) of the grid mode.

    Call it as ``field(points, rotation, translation)``: ``points [..., 3]`` world metres,
    ``rotation [3, 3]`` object -> world, ``translation [3]`` metres (both default to the
    identity pose; tensors with ``requires_grad`` get gradients). Returns ``[...]``
    signed distances in metres, positive outside, in the points' dtype.
    """

    def __init__(
        self,
        obj: GraspObject | trimesh.Trimesh,
        mode: str = "exact",
        *,
        resolution: int = 64,
        margin: float = 0.05,
    ) -> None:
        if mode not in ("exact", "grid"):
            raise HalohandInputError(f"mode must be 'exact' or 'grid', got {mode!r}")
        self.object = _as_object(obj)
        self.mode = mode
        self.resolution = int(resolution)
        self.margin = float(margin)
        self.distance = MeshDistance(self.object.vertices, self.object.faces)

    def local(self, points: Tensor) -> Tensor:
        """Signed distance ``[...]`` of ``[..., 3]`` points given in the object's frame."""
        if self.mode == "exact":
            return mesh_signed_distance(points, self.distance)
        grid = self.object.sdf_grid(self.resolution, self.margin)
        values = grid(points)  # float64, differentiable through grid_sample
        return values.to(points.dtype)

    def __call__(
        self,
        points: Tensor,
        rotation: Tensor | None = None,
        translation: Tensor | None = None,
    ) -> Tensor:
        if not isinstance(points, Tensor) or points.shape[-1:] != (3,):
            raise HalohandInputError(
                f"points must be a [..., 3] tensor, got {list(getattr(points, 'shape', ()))}"
            )
        q = points
        if translation is not None:
            t = torch.as_tensor(translation, dtype=points.dtype, device=points.device)
            if t.shape != (3,):
                raise HalohandInputError(f"translation must be [3], got {list(t.shape)}")
            q = q - t
        if rotation is not None:
            r = torch.as_tensor(rotation, dtype=points.dtype, device=points.device)
            if r.shape != (3, 3):
                raise HalohandInputError(f"rotation must be [3, 3], got {list(r.shape)}")
            q = q @ r  # row vectors: (R^T x^T)^T = x R
        return self.local(q)

    def posed(self, rotation: Tensor | None = None, translation: Tensor | None = None) -> Any:
        """This field at a fixed pose, as a one-argument field ``points -> distance`` (the
        form :mod:`halohand.interaction.compose` takes); gradients still reach the pose
        tensors."""
        return lambda points: self(points, rotation, translation)
