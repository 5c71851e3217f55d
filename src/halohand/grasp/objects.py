"""Procedural hand-scale objects for grasp synthesis, with a fixed train/test registry.

Every object is a closed, consistently wound triangle mesh in metres, centred at the origin
(the centre of its bounding box), long axis along +z. Shapes and their random proportions
(uniform in the ranges of :data:`KIND_RANGES`, drawn from a seed) are chosen to be graspable
by one adult hand: a grasp aperture of 3-9 cm, lengths up to 18 cm.

- ``box``, ``cylinder``, ``sphere``, ``capsule``, ``torus``: trimesh primitives;
- ``bottle``: a revolved profile (body, rounded shoulder, neck);
- ``mug``: a cylindrical body with a ring handle. The union has no boolean engine to rely on
  (manifold3d is not a dependency), so it is the zero level set of the analytic signed
  distance ``min(body, handle)`` extracted by marching cubes on a 2 mm grid, which is
  watertight by construction.

The registry (:func:`object_ids`, :func:`load_object`) holds :data:`PER_KIND` objects of
each kind, named ``<kind>_<i>``, generated from :data:`REGISTRY_SEED`; the six objects of
:data:`TEST_OBJECTS` are held out for evaluation.

Queries: :meth:`GraspObject.surface_points` (area-uniform samples with normals),
:meth:`GraspObject.signed_distance` (exact, negative inside), :meth:`GraspObject.contains`,
and :meth:`GraspObject.sdf_grid`, a sampled signed distance that torch can differentiate
through (see :class:`SDFGrid`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

import numpy as np
import torch
import trimesh

from halohand.errors import HalohandInputError

__all__ = [
    "KINDS", "PER_KIND", "REGISTRY_SEED", "TEST_OBJECTS", "GraspObject", "SDFGrid",
    "load_object", "make_object", "object_ids", "parse_object_list",
]  # fmt: skip

KINDS: Final[tuple[str, ...]] = ("box", "cylinder", "sphere", "capsule", "bottle", "mug", "torus")
#: Objects per kind in the registry.
PER_KIND: Final = 5
#: Seed of the registry; changing it changes every registered object.
REGISTRY_SEED: Final = 20240611
#: Held-out objects (one instance each of six kinds; all spheres are training objects).
TEST_OBJECTS: Final[tuple[str, ...]] = (
    "box_4", "cylinder_4", "capsule_4", "bottle_4", "mug_4", "torus_4",
)  # fmt: skip

#: Parameter ranges (metres) per kind: name -> (low, high), drawn uniformly.
KIND_RANGES: Final[dict[str, dict[str, tuple[float, float]]]] = {
    "box": {"x": (0.03, 0.07), "y": (0.035, 0.09), "z": (0.05, 0.15)},
    "cylinder": {"radius": (0.02, 0.04), "height": (0.06, 0.17)},
    "sphere": {"radius": (0.025, 0.05)},
    "capsule": {"radius": (0.015, 0.03), "length": (0.04, 0.12)},
    "bottle": {
        "radius": (0.025, 0.04), "body": (0.07, 0.13), "shoulder": (0.015, 0.035),
        "neck_radius": (0.009, 0.015), "neck": (0.02, 0.04),
    },
    "mug": {
        "radius": (0.03, 0.042), "height": (0.07, 0.11), "handle_radius": (0.018, 0.026),
        "handle_thickness": (0.005, 0.008),
    },
    "torus": {"major": (0.03, 0.05), "minor": (0.008, 0.016)},
}  # fmt: skip

_MC_STEP = 0.002  # marching-cubes grid step of the mug (metres)


@dataclass(frozen=True)
class SDFGrid:
    """Signed distance sampled on a regular grid, trilinearly interpolated in torch.

    Differentiable with respect to the query points (``grid_sample``), for the optimiser;
    exact values come from :meth:`GraspObject.signed_distance`. Outside the grid the value
    at the clamped point plus the distance to the grid box is returned (an upper bound of
    the true distance, and its gradient still points back to the object).

    Attributes:
        values: ``[1, 1, Z, Y, X]`` float64 signed distances (metres, negative inside).
        lo / hi: ``[3]`` float64 corners of the grid box (metres).
    """

    values: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """Signed distance ``[...]`` (metres) at ``[..., 3]`` points (metres)."""
        shape = points.shape[:-1]
        p = points.reshape(-1, 3).to(self.values.dtype)
        clamped = torch.minimum(torch.maximum(p, self.lo), self.hi)
        outside = torch.linalg.vector_norm(p - clamped, dim=-1)
        g = 2.0 * (clamped - self.lo) / (self.hi - self.lo) - 1.0  # x, y, z in [-1, 1]
        d = torch.nn.functional.grid_sample(
            self.values, g.reshape(1, 1, 1, -1, 3), mode="bilinear", align_corners=True
        ).reshape(-1)
        return (d + outside).reshape(shape)

    def normals(self, points: torch.Tensor, h: float = 1e-3) -> torch.Tensor:
        """Unit outward normals ``[..., 3]`` from central differences with step ``h`` m."""
        eye = torch.eye(3, dtype=self.values.dtype, device=points.device) * h
        p = points.to(self.values.dtype)[..., None, :]
        grad = self(p + eye) - self(p - eye)  # [..., 3]
        return grad / torch.linalg.vector_norm(grad, dim=-1, keepdim=True).clamp_min(1e-12)


@dataclass(frozen=True, eq=False)
class GraspObject:
    """One object: a watertight mesh in metres, centred at the origin.

    Attributes:
        object_id: registry name (``box_0``) or ``<kind>_seed<seed>`` for ad-hoc objects.
        kind: one of :data:`KINDS`.
        params: the drawn proportions (metres) of :data:`KIND_RANGES`.
        mesh: the ``trimesh.Trimesh`` (outward faces, ``is_watertight``).
        split: ``"train"``, ``"test"`` or ``"adhoc"``.
    """

    object_id: str
    kind: str
    params: dict[str, float]
    mesh: trimesh.Trimesh
    split: str = "adhoc"
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def vertices(self) -> np.ndarray:
        """``[V, 3]`` float64 metres."""
        return np.asarray(self.mesh.vertices, dtype=np.float64)

    @property
    def faces(self) -> np.ndarray:
        """``[F, 3]`` int64."""
        return np.asarray(self.mesh.faces, dtype=np.int64)

    def surface_points(self, n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Area-uniform surface samples: points ``[n, 3]`` (metres) and unit normals."""
        rng = np.random.default_rng(seed)
        tri = self.mesh.triangles
        area = self.mesh.area_faces
        face = rng.choice(len(tri), size=n, p=area / area.sum())
        u, v = rng.random(n), rng.random(n)
        flip = u + v > 1.0  # fold the unit square onto the triangle
        u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
        t = tri[face]
        pts = t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])
        return pts, np.asarray(self.mesh.face_normals[face], dtype=np.float64)

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """Exact signed distance ``[N]`` (metres, negative inside) of ``[N, 3]`` points.

        libigl's AABB distance with the pseudonormal sign (exact for a watertight,
        consistently wound mesh, and much faster than the winding-number sign).
        """
        import igl

        q = np.ascontiguousarray(np.asarray(points, dtype=np.float64).reshape(-1, 3))
        if len(q) == 0:
            return np.zeros(0)
        d = igl.signed_distance(
            q, self.vertices, self.faces, sign_type=igl.SIGNED_DISTANCE_TYPE_PSEUDONORMAL
        )[0]
        return np.asarray(d, dtype=np.float64)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean ``[N]``: points strictly inside the object."""
        return self.signed_distance(points) < 0.0

    def sdf_grid(self, resolution: int = 64, margin: float = 0.05) -> SDFGrid:
        """The :class:`SDFGrid` on ``resolution^3`` points over the bounding box grown by
        ``margin`` metres (cached per object; ~1 s to build)."""
        key = ("sdf", resolution, margin)
        if key not in self._cache:
            lo = self.mesh.bounds[0] - margin
            hi = self.mesh.bounds[1] + margin
            axes = [np.linspace(lo[k], hi[k], resolution) for k in range(3)]
            # "ij" indexing gives [X, Y, Z]; grid_sample wants [Z, Y, X] (x fastest).
            grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
            d = self.signed_distance(grid).reshape((resolution,) * 3).transpose(2, 1, 0)
            self._cache[key] = SDFGrid(
                torch.tensor(np.ascontiguousarray(d), dtype=torch.float64)[None, None],
                torch.tensor(lo, dtype=torch.float64),
                torch.tensor(hi, dtype=torch.float64),
            )
        return self._cache[key]


# -- shapes ---------------------------------------------------------------------------------


def _draw(kind: str, rng: np.random.Generator) -> dict[str, float]:
    return {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in KIND_RANGES[kind].items()}


def _bottle(p: dict[str, float]) -> trimesh.Trimesh:
    r, rn, body, sh = p["radius"], p["neck_radius"], p["body"], p["shoulder"]
    # Profile (radius, height) from the bottom centre to the cap centre; a quarter-cosine
    # shoulder keeps the surface smooth where the hand wraps it.
    s = np.linspace(0.0, 1.0, 9)[1:-1]
    shoulder = np.stack([rn + (r - rn) * np.cos(0.5 * np.pi * s), body + sh * s], axis=1)
    top = body + sh + p["neck"]
    prof = np.vstack(
        [[0.0, 0.0], [r * 0.92, 0.0], [r, 0.004], [r, body], shoulder, [rn, body + sh],
         [rn, top], [0.0, top]]
    )  # fmt: skip
    return trimesh.creation.revolve(prof, sections=48)


def _mug_sdf(q: np.ndarray, p: dict[str, float]) -> np.ndarray:
    """Analytic signed distance of body union handle at ``[N, 3]`` points (mug base at 0)."""
    r, h, a, b = p["radius"], p["height"], p["handle_radius"], p["handle_thickness"]
    # Capped cylinder: radial and axial distances combined as for a 2D box.
    dr = np.hypot(q[:, 0], q[:, 1]) - r
    dz = np.abs(q[:, 2] - 0.5 * h) - 0.5 * h
    out = np.hypot(np.maximum(dr, 0.0), np.maximum(dz, 0.0))
    body = out + np.minimum(np.maximum(dr, dz), 0.0)
    # Ring handle in the xz-plane, centre 0.35 a inside the body wall so it merges.
    cx = r + 0.65 * a
    ring = np.hypot(np.hypot(q[:, 0] - cx, q[:, 2] - 0.5 * h) - a, q[:, 1]) - b
    return np.minimum(body, ring)


def _mug(p: dict[str, float]) -> trimesh.Trimesh:
    from skimage.measure import marching_cubes

    r, h, a, b = p["radius"], p["height"], p["handle_radius"], p["handle_thickness"]
    pad = 3 * _MC_STEP
    lo = np.array([-r, -r, 0.0]) - pad
    hi = np.array([r + 1.65 * a + b, r, h]) + pad
    axes = [np.arange(lo[k], hi[k] + _MC_STEP, _MC_STEP) for k in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    vol = _mug_sdf(grid.reshape(-1, 3), p).reshape(grid.shape[:3])
    verts, faces, _, _ = marching_cubes(vol, 0.0, spacing=(_MC_STEP,) * 3)
    mesh = trimesh.Trimesh(verts + lo, faces, process=True)
    # Grid values that are exactly zero give zero-area triangles that break the edge
    # pairing; dropping them and re-welding closes the surface.
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.merge_vertices()
    if mesh.volume < 0:  # marching cubes winds toward increasing values (outside)
        mesh.invert()
    return mesh


def _build(kind: str, p: dict[str, float]) -> trimesh.Trimesh:
    if kind == "box":
        return trimesh.creation.box(extents=(p["x"], p["y"], p["z"]))
    if kind == "cylinder":
        return trimesh.creation.cylinder(radius=p["radius"], height=p["height"], sections=48)
    if kind == "sphere":
        return trimesh.creation.icosphere(subdivisions=3, radius=p["radius"])
    if kind == "capsule":
        return trimesh.creation.capsule(height=p["length"], radius=p["radius"], count=[32, 32])
    if kind == "bottle":
        return _bottle(p)
    if kind == "mug":
        return _mug(p)
    return trimesh.creation.torus(p["major"], p["minor"], major_sections=48, minor_sections=20)


def make_object(
    kind: str, seed: int, object_id: str | None = None, split: str = "adhoc"
) -> GraspObject:
    """Generate one object of ``kind`` with proportions drawn from ``seed``.

    Raises:
        HalohandInputError: unknown kind, or (a bug) a mesh that is not watertight.
    """
    if kind not in KINDS:
        raise HalohandInputError(f"unknown object kind {kind!r}; expected one of {KINDS}")
    params = _draw(kind, np.random.default_rng(seed))
    mesh = _build(kind, params)
    mesh.apply_translation(-mesh.bounds.mean(0))
    oid = object_id or f"{kind}_seed{seed}"
    if not mesh.is_watertight or mesh.volume <= 0:
        raise HalohandInputError(f"object {oid}: generated mesh is not a closed solid")
    return GraspObject(oid, kind, params, mesh, split)


def _registry_seed(kind: str, index: int) -> int:
    # A stable per-object seed (Python's hash() of a str is salted per process).
    digest = hashlib.sha256(f"{REGISTRY_SEED}:{kind}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def object_ids(split: str = "all") -> list[str]:
    """Registry names for ``split`` (``"all"``, ``"train"``, ``"test"``), kind-major."""
    if split not in ("all", "train", "test"):
        raise HalohandInputError(f"unknown split {split!r}; use all, train or test")
    ids = [f"{k}_{i}" for k in KINDS for i in range(PER_KIND)]
    if split == "all":
        return ids
    return [o for o in ids if (o in TEST_OBJECTS) == (split == "test")]


@lru_cache(maxsize=64)
def load_object(object_id: str) -> GraspObject:
    """The registry object ``object_id`` (``<kind>_<i>``); cached per process."""
    kind, _, idx = object_id.rpartition("_")
    if kind not in KINDS or not idx.isdigit() or not 0 <= int(idx) < PER_KIND:
        raise HalohandInputError(
            f"unknown object {object_id!r}; expected <kind>_<0..{PER_KIND - 1}> with kind in "
            f"{', '.join(KINDS)}"
        )
    split = "test" if object_id in TEST_OBJECTS else "train"
    return make_object(kind, _registry_seed(kind, int(idx)), object_id, split)


def parse_object_list(spec: str) -> list[str]:
    """Object ids from a CLI spec: ``train``, ``test``, ``all`` or comma-separated ids."""
    spec = spec.strip()
    if spec in ("all", "train", "test"):
        return object_ids(spec)
    ids = [s.strip() for s in spec.split(",") if s.strip()]
    if not ids:
        raise HalohandInputError("no objects given; use train, test, all or a list of ids")
    for oid in ids:
        load_object(oid)  # validates the name
    return ids
