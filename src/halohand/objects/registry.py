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

:data:`WIDE_KINDS` add the shapes the kinds above lack, all for training (split ``"wide"``;
``"train_wide"`` is ``"train"`` plus them), none of them held out: objects larger than the
hand's grip (``plate``, ``ball``, ``book``), thin (``plate``, ``book``), hollow with a thin
wall and a handle (``cup``) and curved (``banana``). ``cup`` and ``banana`` are analytic
signed distances through marching cubes as the mug is (``cup`` on a 1.25 mm grid, so its
3-6 mm wall is two or more cells thick).

The registry (:func:`object_ids`, :func:`load_object`) holds :data:`PER_KIND` objects of
each kind, named ``<kind>_<i>``, generated from :data:`REGISTRY_SEED`; the six objects of
:data:`TEST_OBJECTS` are held out for evaluation. Split ``"val"`` (:data:`VAL_OBJECTS`, one
more instance ``<kind>_5`` of each kind, outside ``"all"``) is for choosing settings without
touching the test objects. Next to them, split ``"real"``:
household meshes (:data:`REAL_OBJECTS`, ``real_<name>``) vendored from robosuite 1.5.2
(MIT; ``data/real_objects/NOTICE``), a check set of object meshes not in the training data.
:func:`object_from_mesh` turns any closed mesh file into a :class:`GraspObject`.

Queries: :meth:`GraspObject.surface_points` (area-uniform samples with normals),
:meth:`GraspObject.signed_distance` (exact, negative inside), :meth:`GraspObject.contains`,
and :meth:`GraspObject.sdf_grid`, a sampled signed distance that torch can differentiate
through (see :class:`SDFGrid`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np
import torch
import trimesh

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.quiet import quiet_mesh_reader
from halohand.core.units import UNIT_SCALE, check_unit, units_fitting
from halohand.objects.enclosed import enclosed_mask, filled_signed_distance
from halohand.objects.orient import check_orient, principal_rotation

__all__ = [
    "KINDS", "PER_KIND", "REAL_DIR", "REAL_OBJECTS", "REGISTRY_SEED", "SPLITS", "TEST_OBJECTS",
    "VAL_OBJECTS", "WIDE_KINDS",
    "GraspObject", "SDFGrid", "load_object", "load_objects", "make_object", "object_from_mesh",
    "object_from_spec", "object_ids", "parse_object_list",
]  # fmt: skip

KINDS: Final[tuple[str, ...]] = ("box", "cylinder", "sphere", "capsule", "bottle", "mug", "torus")
#: Kinds of split ``"wide"``: larger than the grip, thin, hollow, curved; training only.
WIDE_KINDS: Final[tuple[str, ...]] = ("plate", "ball", "book", "cup", "banana")
#: Objects per kind in the registry.
PER_KIND: Final = 5
#: Seed of the registry; changing it changes every registered object.
REGISTRY_SEED: Final = 20240611
#: Held-out objects (one instance each of six kinds; all spheres are training objects).
TEST_OBJECTS: Final[tuple[str, ...]] = (
    "box_4", "cylinder_4", "capsule_4", "bottle_4", "mug_4", "torus_4",
)  # fmt: skip
#: Validation objects: index ``PER_KIND`` of each kind, in neither training nor test.
VAL_OBJECTS: Final[tuple[str, ...]] = tuple(f"{k}_{PER_KIND}" for k in KINDS)

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
    # split "wide"
    "plate": {"radius": (0.06, 0.11), "thickness": (0.006, 0.015)},
    "ball": {"radius": (0.055, 0.08)},
    "book": {"x": (0.10, 0.16), "y": (0.14, 0.22), "z": (0.015, 0.035)},
    "cup": {
        "radius": (0.03, 0.045), "height": (0.07, 0.12), "wall": (0.003, 0.006),
        "bottom": (0.004, 0.008), "handle_radius": (0.018, 0.026),
        "handle_thickness": (0.005, 0.008),
    },
    "banana": {"bend_radius": (0.09, 0.16), "half_angle_deg": (25.0, 45.0),
               "radius": (0.015, 0.022)},
}  # fmt: skip

_MC_STEP = 0.002  # marching-cubes grid step of the mug and the banana (metres)
_THIN_MC_STEP = 0.00125  # of the cup, whose wall is 3-6 mm

#: Splits of :func:`object_ids`. ``"all"`` is the procedural registry (train + test); the
#: validation objects are only in ``"val"``, the real meshes only in ``"real"``.
SPLITS: Final[tuple[str, ...]] = ("all", "train", "test", "val", "real", "wide", "train_wide")

REAL_DIR: Final = Path(__file__).resolve().parent / "data" / "real_objects"
#: Household meshes from robosuite 1.5.2 (``robosuite/models/assets/objects/meshes/<file>``):
#: id -> (file in :data:`REAL_DIR`, the ``scale`` of the ``<mesh>`` element of the object's
#: robosuite XML). Loaded by :func:`load_object`: scaled, repaired where needed (see
#: ``GraspObject.repairs``), long axis turned to +z, centred.
REAL_OBJECTS: Final[dict[str, tuple[str, tuple[float, float, float]]]] = {
    "real_bottle": ("bottle.stl", (1.0, 1.0, 1.0)),
    "real_bread": ("bread.stl", (0.8, 0.8, 0.8)),
    "real_can": ("can.stl", (1.0, 1.0, 1.0)),
    "real_cereal": ("cereal.stl", (1.0, 1.0, 1.0)),
    "real_lemon": ("lemon.stl", (1.5, 1.0, 1.0)),
    "real_milk": ("milk.stl", (0.9, 0.9, 0.9)),
}

#: ``units="auto"``: bounding-box diagonals (metres) a file's unit may give: 0.02-0.6 file
#: units read as m, 2-60 as cm, 20-600 as mm. A diagonal of 20-60 file units fits both cm
#: and mm (a 2 cm cube in mm has 34.6: a 35 cm object or a 3.5 cm one); auto does not
#: guess there and asks for the units.
AUTO_DIAGONAL_RANGE_M: Final[tuple[float, float]] = (0.02, 0.6)
_DIAGONAL_LIMITS = (0.01, 1.0)  # metres; outside: not a hand-held object (wrong units?)


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
    """One object: a watertight mesh in metres, centred at the origin (unless loaded by
    :func:`object_from_mesh` with ``center=False``).

    Attributes:
        object_id: registry name (``box_0``, ``real_can``), ``<kind>_seed<seed>`` for ad-hoc
            procedural objects, the file stem for :func:`object_from_mesh`.
        kind: one of :data:`KINDS` or :data:`WIDE_KINDS`, or ``"mesh"`` for an object loaded
            from a mesh file.
        params: the drawn proportions (metres) of :data:`KIND_RANGES` (empty for meshes).
        mesh: the ``trimesh.Trimesh`` (outward faces, ``is_watertight``).
        split: ``"train"``, ``"test"``, ``"real"`` or ``"adhoc"``.
        offset_m: ``[3]`` metres, with ``rotation`` the map back to the input file: a point
            ``p`` of this object is ``(rotation.T @ p + offset_m) / unit_scale`` in the
            input file's frame and units (:meth:`to_file_frame`; zeros for registry
            objects, procedural or real: their frame is the registry's).
        unit_scale: metres per input unit (1 for metres, 0.001 for millimetres).
        rotation: ``[3, 3]`` proper rotation from the file's axes to the object's (identity
            unless :func:`object_from_mesh` turned it, ``orient="principal"``).
        orient: ``"principal"`` (turned to its principal frame, ``objects.orient``) or
            ``"keep"`` (the file's axes; registry objects).
        source: the mesh file it was loaded from (empty for procedural objects).
        repairs: what was done to close a loaded mesh (empty: watertight as loaded).
    """

    object_id: str
    kind: str
    params: dict[str, float]
    mesh: trimesh.Trimesh
    split: str = "adhoc"
    offset_m: np.ndarray = field(default_factory=lambda: np.zeros(3))
    unit_scale: float = 1.0
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    orient: str = "keep"
    source: str = ""
    repairs: tuple[str, ...] = ()
    _cache: dict = field(default_factory=dict, repr=False)

    def to_file_frame(self, points: np.ndarray) -> np.ndarray:
        """``[..., 3]`` points (metres, this object's frame) in the input file's frame and
        units: ``(rotation.T @ p + offset_m) / unit_scale``."""
        p = np.asarray(points, dtype=np.float64)
        return (p @ self.rotation + self.offset_m) / self.unit_scale

    def from_file_frame(self, points: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_file_frame`: file-frame points (file units) -> ``[..., 3]``
        metres in this object's frame."""
        p = np.asarray(points, dtype=np.float64) * self.unit_scale
        return (p - self.offset_m) @ self.rotation.T

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

    def interior_points(self, n: int, seed: int = 0) -> np.ndarray:
        """``[n, 3]`` points uniform inside the object (metres, its frame): rejection
        sampling of its bounding box, deterministic for ``seed``.

        Raises:
            HalohandInputError: too thin to find ``n`` points in 200 rounds.
        """
        rng = np.random.default_rng(seed)
        lo, hi = self.mesh.bounds
        found: list[np.ndarray] = []
        have = 0
        for _ in range(200):
            cand = rng.uniform(lo, hi, size=(max(4 * n, 1024), 3))
            inside = cand[self.contains(cand)]
            found.append(inside)
            have += len(inside)
            if have >= n:
                break
        pts = np.concatenate(found)[:n]
        if len(pts) < n:
            raise HalohandInputError("object too thin to sample interior points")
        return pts

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

    def sdf_grid(
        self, resolution: int = 64, margin: float = 0.05, fill_enclosed: bool = False
    ) -> SDFGrid:
        """The :class:`SDFGrid` on ``resolution^3`` points over the bounding box grown by
        ``margin`` metres (cached per object; ~1 s to build).

        ``fill_enclosed``: the signed distance of the object with the space it encloses
        filled (a cup's inside; :mod:`halohand.objects.enclosed`), built from the plain
        grid; for an object that encloses nothing, the plain grid itself (~1 s more for a
        cup).
        """
        key = ("sdf", resolution, margin, fill_enclosed)
        if key not in self._cache:
            if fill_enclosed:
                self._cache[key] = self._filled(self.sdf_grid(resolution, margin))
            else:
                lo = self.mesh.bounds[0] - margin
                hi = self.mesh.bounds[1] + margin
                d = self.signed_distance(_grid_points(lo, hi, resolution))
                self._cache[key] = _sdf_grid(d.reshape((resolution,) * 3), lo, hi)
        return self._cache[key]

    def _filled(self, plain: SDFGrid) -> SDFGrid:
        """``plain`` with the enclosed space filled; ``plain`` itself if nothing is enclosed
        (so a caller holding both evaluates one grid)."""
        import igl

        lo, hi = plain.lo.numpy(), plain.hi.numpy()
        resolution = plain.values.shape[-1]
        d = plain.values[0, 0].numpy().transpose(2, 1, 0)  # [X, Y, Z]
        hull = self.mesh.convex_hull
        in_hull = igl.signed_distance(
            _grid_points(lo, hi, resolution), np.asarray(hull.vertices, dtype=np.float64),
            np.asarray(hull.faces, dtype=np.int64),
            sign_type=igl.SIGNED_DISTANCE_TYPE_PSEUDONORMAL,
        )[0].reshape(d.shape) < 0  # fmt: skip
        spacing = tuple((hi - lo) / (resolution - 1))
        enclosed = enclosed_mask(d < 0, in_hull, spacing)
        if not enclosed.any():
            return plain
        return _sdf_grid(filled_signed_distance(d, enclosed, spacing), lo, hi)


def _sdf_grid(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> SDFGrid:
    """:class:`SDFGrid` of ``[X, Y, Z]`` signed distances on the grid over ``[lo, hi]``."""
    # grid_sample reads [Z, Y, X] (x fastest).
    return SDFGrid(
        torch.tensor(np.ascontiguousarray(values.transpose(2, 1, 0)), dtype=torch.float64)[
            None, None
        ],
        torch.tensor(lo, dtype=torch.float64),
        torch.tensor(hi, dtype=torch.float64),
    )


def _grid_points(lo: np.ndarray, hi: np.ndarray, resolution: int) -> np.ndarray:
    """``[resolution^3, 3]`` points of the regular grid over ``[lo, hi]``, x slowest."""
    axes = [np.linspace(lo[k], hi[k], resolution) for k in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


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


def _sdf_solid(
    sdf: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray, step: float
) -> trimesh.Trimesh:
    """The solid where ``sdf`` (``[N, 3]`` points -> ``[N]``, negative inside) is below 0,
    by marching cubes on a ``step`` grid from ``lo`` to (at least) ``hi``: closed and
    outward when the solid lies a few cells inside the box."""
    from skimage.measure import marching_cubes

    axes = [np.arange(lo[k], hi[k] + step, step) for k in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    vol = sdf(grid.reshape(-1, 3)).reshape(grid.shape[:3])
    verts, faces, _, _ = marching_cubes(vol, 0.0, spacing=(step,) * 3)
    mesh = trimesh.Trimesh(verts + lo, faces, process=True)
    # Grid values that are exactly zero give zero-area triangles that break the edge
    # pairing; dropping them and re-welding closes the surface.
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.merge_vertices()
    if mesh.volume < 0:  # marching cubes winds toward increasing values (outside)
        mesh.invert()
    return mesh


def _handled(
    p: dict[str, float], sdf: Callable[[np.ndarray, dict[str, float]], np.ndarray], step: float
) -> trimesh.Trimesh:
    """A mug or cup (body about z from 0, ring handle on +x) from its signed distance, on a
    ``step`` grid over its box plus three cells."""
    r, h, a, b = p["radius"], p["height"], p["handle_radius"], p["handle_thickness"]
    pad = 3 * step
    lo = np.array([-r, -r, 0.0]) - pad
    hi = np.array([r + 1.65 * a + b, r, h]) + pad
    return _sdf_solid(lambda q: sdf(q, p), lo, hi, step)


def _capped_cylinder_sdf(q: np.ndarray, r: float, z0: float, z1: float) -> np.ndarray:
    """Exact signed distance to the cylinder of radius ``r`` about z from ``z0`` to ``z1``."""
    dr = np.hypot(q[:, 0], q[:, 1]) - r
    dz = np.maximum(z0 - q[:, 2], q[:, 2] - z1)
    return np.hypot(np.maximum(dr, 0.0), np.maximum(dz, 0.0)) + np.minimum(np.maximum(dr, dz), 0.0)


def _cup_sdf(q: np.ndarray, p: dict[str, float]) -> np.ndarray:
    """Signed distance (exact up to the unions) of a hollow cup open at the top, with a
    ring handle in the xz-plane on +x that stays out of the cavity (cup base at 0)."""
    r, h, w = p["radius"], p["height"], p["wall"]
    outer = _capped_cylinder_sdf(q, r, 0.0, h)
    cavity = _capped_cylinder_sdf(q, r - w, p["bottom"], h + 1.0)
    cup = np.maximum(outer, -cavity)
    a, b = p["handle_radius"], p["handle_thickness"]
    cx = r + 0.65 * a
    ring = np.hypot(np.hypot(q[:, 0] - cx, q[:, 2] - 0.5 * h) - a, q[:, 1]) - b
    ring = np.maximum(ring, (r - 0.5 * w) - np.hypot(q[:, 0], q[:, 1]))
    return np.minimum(cup, ring)


def _banana_sdf(q: np.ndarray, p: dict[str, float]) -> np.ndarray:
    """Exact signed distance of a tube of ``radius`` about an arc of ``bend_radius`` in the
    xz-plane, centred on the z axis below the origin, spanning +-``half_angle_deg``."""
    big, half = p["bend_radius"], np.radians(p["half_angle_deg"])
    c = q + [0.0, 0.0, big]
    ang = np.clip(np.arctan2(c[:, 0], c[:, 2]), -half, half)
    nearest = np.stack([big * np.sin(ang), np.zeros_like(ang), big * np.cos(ang)], 1)
    return np.linalg.norm(c - nearest, axis=1) - p["radius"]


def _banana(p: dict[str, float]) -> trimesh.Trimesh:
    big, half, r = p["bend_radius"], np.radians(p["half_angle_deg"]), p["radius"]
    pad = r + 3 * _MC_STEP
    lo = np.array([-big * np.sin(half), 0.0, big * np.cos(half) - big]) - pad
    hi = np.array([big * np.sin(half), 0.0, 0.0]) + pad
    return _sdf_solid(lambda q: _banana_sdf(q, p), lo, hi, _MC_STEP)


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
        return _handled(p, _mug_sdf, _MC_STEP)
    if kind == "plate":
        return trimesh.creation.cylinder(radius=p["radius"], height=p["thickness"], sections=96)
    if kind == "ball":
        return trimesh.creation.icosphere(subdivisions=4, radius=p["radius"])
    if kind == "book":
        return trimesh.creation.box(extents=(p["x"], p["y"], p["z"]))
    if kind == "cup":
        return _handled(p, _cup_sdf, _THIN_MC_STEP)
    if kind == "banana":
        return _banana(p)
    return trimesh.creation.torus(p["major"], p["minor"], major_sections=48, minor_sections=20)


def make_object(
    kind: str, seed: int, object_id: str | None = None, split: str = "adhoc"
) -> GraspObject:
    """Generate one object of ``kind`` with proportions drawn from ``seed``.

    Raises:
        HalohandInputError: unknown kind, or (a bug) a mesh that is not watertight.
    """
    if kind not in KINDS + WIDE_KINDS:
        raise HalohandInputError(
            f"unknown object kind {kind!r}; expected one of {KINDS + WIDE_KINDS}"
        )
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
    """Registry names for ``split`` (one of :data:`SPLITS`), kind-major.

    ``"all"`` is the procedural registry (``"train"`` + ``"test"``); ``"val"`` the validation
    objects of :data:`VAL_OBJECTS` and ``"real"`` the vendored household meshes of
    :data:`REAL_OBJECTS`, which ``"all"`` does not contain. ``"wide"`` has
    :data:`PER_KIND` training objects of each of :data:`WIDE_KINDS` (``plate_0`` ...), and
    ``"train_wide"`` is ``"train"`` followed by ``"wide"``.
    """
    if split not in SPLITS:
        raise HalohandInputError(f"unknown split {split!r}; use {', '.join(SPLITS)}")
    if split == "real":
        return list(REAL_OBJECTS)
    if split == "val":
        return list(VAL_OBJECTS)
    wide = [f"{k}_{i}" for k in WIDE_KINDS for i in range(PER_KIND)]
    if split == "wide":
        return wide
    if split == "train_wide":
        return object_ids("train") + wide
    ids = [f"{k}_{i}" for k in KINDS for i in range(PER_KIND)]
    if split == "all":
        return ids
    return [o for o in ids if (o in TEST_OBJECTS) == (split == "test")]


@lru_cache(maxsize=64)
def load_object(object_id: str) -> GraspObject:
    """The registry object ``object_id`` (``<kind>_<i>`` or ``real_<name>``); cached per
    process."""
    if object_id in REAL_OBJECTS:
        return _load_real(object_id)
    kind, _, idx = object_id.rpartition("_")
    # wide kinds have no validation instance: indices 0 .. PER_KIND - 1, all training
    top = PER_KIND - 1 if kind in WIDE_KINDS else PER_KIND
    if kind not in KINDS + WIDE_KINDS or not idx.isdigit() or not 0 <= int(idx) <= top:
        raise HalohandInputError(
            f"unknown object {object_id!r}; expected <kind>_<0..{PER_KIND}> with kind in "
            f"{', '.join(KINDS)}, <kind>_<0..{PER_KIND - 1}> with kind in "
            f"{', '.join(WIDE_KINDS)}, or one of {', '.join(REAL_OBJECTS)}"
        )
    split = "val" if int(idx) == PER_KIND else "test" if object_id in TEST_OBJECTS else "train"
    return make_object(kind, _registry_seed(kind, int(idx)), object_id, split)


def _spec_names(spec: str) -> list[str]:
    """The names of a CLI spec: a split's ids, or the comma-separated entries."""
    spec = spec.strip()
    if spec in SPLITS:
        return object_ids(spec)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise HalohandInputError(
            "no objects given; use train, test, val, all, real, wide, train_wide or a list of ids"
        )
    return names


def parse_object_list(spec: str) -> list[str]:
    """Object ids from a CLI spec: a split of :data:`SPLITS` or comma-separated ids."""
    ids = _spec_names(spec)
    for oid in ids:
        load_object(oid)  # validates the name
    return ids


def object_from_spec(
    spec: str | Path | trimesh.Trimesh | trimesh.Scene,
    units: str = "auto",
    center: bool = True,
    orient: str = "principal",
) -> GraspObject:
    """A registry id (``mug_4``: no suffix and no such file; always in the registry's
    frame), else a mesh file or trimesh (:func:`object_from_mesh` with ``units``, ``center``
    and ``orient``)."""
    check_orient(orient)
    if isinstance(spec, str) and Path(spec).suffix == "" and not Path(spec).exists():
        return load_object(spec)
    return object_from_mesh(spec, units=units, center=center, orient=orient)


def load_objects(spec: str, units: str = "auto", orient: str = "principal") -> list[GraspObject]:
    """The objects of a CLI spec: a split name, or comma-separated registry ids and mesh
    files (:func:`object_from_spec`; ``orient`` applies to the mesh files)."""
    return [object_from_spec(name, units, orient=orient) for name in _spec_names(spec)]


# -- objects from mesh files ----------------------------------------------------------------


def object_from_mesh(
    mesh: str | Path | trimesh.Trimesh | trimesh.Scene,
    units: str = "auto",
    center: bool = True,
    object_id: str | None = None,
    orient: str = "principal",
) -> GraspObject:
    """A :class:`GraspObject` (kind ``"mesh"``, split ``"adhoc"``) from a mesh file or a trimesh.

    The mesh must be one closed volume. Identical vertices are merged; a mesh that is not
    watertight then gets a repair, step by step until it is: vertices closer than 1e-6 of the
    bounding-box diagonal welded, duplicate faces and flat patches (zero-volume parts glued
    inside, such as a disc between two shells) removed, small holes filled. The winding is
    made consistent and outward. What was done is in ``repairs``.

    Args:
        mesh: a file trimesh reads (obj, ply, stl, glb, off, ...) or a ``Trimesh``/``Scene``
            (copied, never modified).
        units: ``"m"``, ``"cm"``, ``"mm"`` or ``"auto"``: from the bounding-box diagonal in
            file units, metres if 0.02-0.6, centimetres if 2-60, millimetres if 20-600; a
            diagonal of 20-60 file units fits cm and mm both, and is refused as ambiguous
            (pass the units).
        center: move the bounding-box centre to the origin. The offset is kept:
            ``offset_m`` (metres) and ``unit_scale`` (metres per input unit) map a point
            ``p`` of the object back to the input frame as ``(p + offset_m) / unit_scale``.
        object_id: name of the object (default: the file stem, or ``"mesh"``).
        orient: ``"principal"`` (default) turns the mesh into its principal frame
            (:func:`~halohand.objects.orient.principal_rotation`: largest spread along +z,
            bulk toward -z, as the registry's objects stand, on which the grasp model was
            trained), then centres it; ``"keep"`` keeps the file's axes. ``rotation`` holds
            the turn; :meth:`GraspObject.to_file_frame` maps points back to the file.

    Raises:
        HalohandInputError: missing or empty file, no triangles, non-finite coordinates,
            unknown ``orient``, unknown or ambiguous units (``auto``), a size no units make
            hand-held (1 cm - 1 m diagonal), not a closed surface after repair, several
            separate parts, zero volume.
        CorruptFileError: a file trimesh cannot read (or of a format it does not know).
    """
    check_orient(orient)
    raw, label, source = _read_mesh(mesh)
    oid = object_id or (Path(source).stem if source else "mesh")
    return _mesh_object(raw, label, units, center, oid, "adhoc", source, orient)


def _read_mesh(
    mesh: str | Path | trimesh.Trimesh | trimesh.Scene,
) -> tuple[trimesh.Trimesh, str, str]:
    """An unprocessed copy of the input as one Trimesh, a label for messages, the file path."""
    if isinstance(mesh, trimesh.Trimesh):
        copy = trimesh.Trimesh(mesh.vertices.copy(), mesh.faces.copy(), process=False)
        return copy, "the mesh", ""
    if isinstance(mesh, trimesh.Scene):
        geoms = [g for g in mesh.dump() if isinstance(g, trimesh.Trimesh)]
        out = trimesh.util.concatenate(geoms) if geoms else trimesh.Trimesh()
        return out, "the mesh", ""
    path = Path(mesh)
    if path.is_dir():
        raise HalohandInputError(f"{path} is a folder, not a mesh file")
    if not path.is_file():
        raise HalohandInputError(f"no such mesh file: {path}")
    name = path.name.lower()
    if not any(name.endswith(f".{kind}") for kind in trimesh.available_formats()):
        raise CorruptFileError(
            f"mesh file {path}: unknown mesh format {path.suffix or '(no suffix)'!r}; use "
            f"obj, ply, stl, glb or off"
        )
    if path.stat().st_size == 0:
        raise HalohandInputError(f"mesh file {path} is empty")
    try:
        with quiet_mesh_reader():
            loaded = trimesh.load(str(path), force="mesh", process=False)
    except Exception as exc:  # any reader failure: an unreadable or unsupported file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CorruptFileError(f"cannot read mesh file {path}: {first}") from None
    if not isinstance(loaded, trimesh.Trimesh):
        raise HalohandInputError(f"mesh file {path} holds no triangles (a point cloud?)")
    return loaded, f"mesh file {path}", str(path)


def _mesh_object(
    raw: trimesh.Trimesh,
    label: str,
    units: str,
    center: bool,
    object_id: str,
    split: str,
    source: str,
    orient: str = "keep",
) -> GraspObject:
    v = np.asarray(raw.vertices, dtype=np.float64)
    f = np.asarray(raw.faces, dtype=np.int64)
    if len(f) == 0 or len(v) == 0:
        raise HalohandInputError(f"{label} is empty (no triangles)")
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
        # a vertex line cut short can leave a reader with [V, 1] "vertices"
        raise HalohandInputError(
            f"{label} is malformed: vertices {list(v.shape)}, faces {list(f.shape)} (expected "
            "[V, 3] and [F, 3]); a line may be cut short"
        )
    if not np.isfinite(v).all():
        raise HalohandInputError(f"{label} has non-finite vertex coordinates")
    if f.min() < 0 or f.max() >= len(v):
        raise HalohandInputError(f"{label} has faces that index missing vertices")
    with np.errstate(over="ignore", invalid="ignore"):  # near the float limit: inf, refused
        diagonal = float(np.linalg.norm(np.ptp(v[np.unique(f)], axis=0)))
    scale = _unit_scale(label, diagonal, units)
    # trimesh's mass properties divide by the volume: a flat closed surface warns (then fails)
    with np.errstate(divide="ignore", invalid="ignore"):
        mesh, repairs = _close(trimesh.Trimesh(v * scale, f, process=True))
        if not mesh.is_watertight:
            raise HalohandInputError(
                f"{label} is not a closed surface even after repair ({_open_summary(mesh)}); "
                "close it in a mesh editor and retry"
            )
        if mesh.body_count != 1:
            raise HalohandInputError(
                f"{label} has {mesh.body_count} separate parts; a grasp object is one closed part"
            )
        if not mesh.volume > 0:
            raise HalohandInputError(f"{label} encloses no volume")
        rot = principal_rotation(mesh) if orient == "principal" else np.eye(3)
    if orient == "principal":
        # About the file's origin; the centring below then works in the turned frame.
        mesh.apply_transform(np.block([[rot, np.zeros((3, 1))], [np.zeros((1, 3)), 1.0]]))
    centre = mesh.bounds.mean(0) if center else np.zeros(3)
    mesh.apply_translation(-centre)
    offset = centre @ rot  # the centre in the file's axes (metres): p_file = R^T p + offset
    return GraspObject(
        object_id, "mesh", {}, mesh, split, offset_m=np.asarray(offset, dtype=np.float64),
        unit_scale=scale, rotation=rot, orient=orient, source=source, repairs=tuple(repairs),
    )  # fmt: skip


def _unit_scale(label: str, diagonal: float, units: str) -> float:
    """Metres per file unit for ``units`` (``auto``: from the bounding-box ``diagonal``)."""
    if units == "auto":
        fits = units_fitting(diagonal, AUTO_DIAGONAL_RANGE_M)
        if not fits:
            raise HalohandInputError(
                f"cannot tell the units of {label} from its size (bounding-box diagonal "
                f"{diagonal:.3g} file units; auto reads 0.02-0.6 as m, 2-60 as cm, 20-600 as "
                "mm): give the units (m, cm or mm)"
            )
        if len(fits) > 1:
            # Both readings are hand-held sizes; a wrong guess makes hands 10x off.
            sizes = " or ".join(f"{diagonal * UNIT_SCALE[u] * 100:.3g} cm" for u in fits)
            raise HalohandInputError(
                f"the units of {label} are ambiguous: its bounding-box diagonal of "
                f"{diagonal:.3g} file units reads as {' or '.join(fits)} ({sizes} across); "
                f"give the units (--units {' / --units '.join(fits)}, or units=)"
            )
        units = fits[0]
    scale = UNIT_SCALE[check_unit(units, allow_auto=False)]
    lo, hi = _DIAGONAL_LIMITS
    if not lo <= diagonal * scale <= hi:
        raise HalohandInputError(
            f"{label} read in {units} is {diagonal * scale:.3g} m across (bounding-box "
            f"diagonal); a hand-held object is {lo * 100:.0f} cm - {hi:.0f} m: check the units"
        )
    return scale


def _edge_use(mesh: trimesh.Trimesh) -> np.ndarray:
    """How many faces use each distinct edge."""
    return np.unique(mesh.edges_sorted, axis=0, return_counts=True)[1]


def _open_summary(mesh: trimesh.Trimesh) -> str:
    use = _edge_use(mesh)
    return f"{int((use == 1).sum())} open edges, {int((use > 2).sum())} edges of 3+ faces"


def _weld(mesh: trimesh.Trimesh, eps: float) -> trimesh.Trimesh:
    """Merge vertices closer than ``eps`` (chains merge together); drop collapsed faces."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    v = np.asarray(mesh.vertices)
    pairs = cKDTree(v).query_pairs(eps, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(v),) * 2)
    _, label = connected_components(graph, directed=False)
    _, first, inverse = np.unique(label, return_index=True, return_inverse=True)
    faces = inverse[np.asarray(mesh.faces)]
    keep = (faces != np.roll(faces, 1, axis=1)).all(axis=1)  # no repeated corner
    return trimesh.Trimesh(v[first], faces[keep], process=False)


def _is_flat(part: trimesh.Trimesh) -> bool:
    v = np.asarray(part.vertices)
    s = np.linalg.svd(v - v.mean(0), compute_uv=False)
    return len(v) < 4 or bool(s[-1] <= 1e-6 * s[0])


def _close(mesh: trimesh.Trimesh) -> tuple[trimesh.Trimesh, list[str]]:
    """Try to make ``mesh`` (identical vertices merged) watertight and outward-wound; the
    steps applied, as text. Each step runs only while the mesh is still open."""
    repairs: list[str] = []
    diag = float(np.linalg.norm(mesh.extents))
    if not mesh.is_watertight:
        n = len(mesh.vertices)
        mesh = _weld(mesh, 1e-6 * diag)
        if len(mesh.vertices) < n:
            repairs.append(f"welded {n - len(mesh.vertices)} vertices closer than 1e-6 x size")
    if not mesh.is_watertight:
        keep = mesh.unique_faces()
        if not keep.all():
            mesh.update_faces(keep)
            repairs.append(f"removed {int((~keep).sum())} duplicate faces")
    if not mesh.is_watertight:
        parts = mesh.split(only_watertight=False)
        flat = [p for p in parts if _is_flat(p)]
        if flat and len(flat) < len(parts):
            mesh = trimesh.util.concatenate([p for p in parts if not _is_flat(p)])
            mesh.merge_vertices()
            n = sum(len(p.faces) for p in flat)
            repairs.append(f"removed {n} faces of {len(flat)} flat internal patch(es)")
    if not mesh.is_watertight:
        n = len(mesh.faces)
        trimesh.repair.fill_holes(mesh)
        if len(mesh.faces) > n:
            repairs.append(f"filled holes with {len(mesh.faces) - n} faces")
    mesh.remove_unreferenced_vertices()
    if not mesh.is_winding_consistent:
        trimesh.repair.fix_winding(mesh)
        repairs.append("made the winding consistent")
    if mesh.is_watertight and mesh.volume < 0:
        mesh.invert()
        repairs.append("turned the faces outward")
    return mesh, repairs


def _long_axis_to_z(mesh: trimesh.Trimesh) -> None:
    """Rotate ``mesh`` in place by 90 degrees so that its longest box side is along +z (no
    change when z is already longest, ties included)."""
    ext = mesh.extents
    k = int(np.argmax(ext))
    if k == 2 or ext[k] <= ext[2] * (1.0 + 1e-6):
        return
    # x -> z: -90 degrees about y; y -> z: +90 degrees about x (proper rotations).
    axis, angle = ([0.0, 1.0, 0.0], -0.5 * np.pi) if k == 0 else ([1.0, 0.0, 0.0], 0.5 * np.pi)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(angle, axis))


def _load_real(object_id: str) -> GraspObject:
    file, scale = REAL_OBJECTS[object_id]
    path = REAL_DIR / file
    raw, _, _ = _read_mesh(path)
    raw.apply_transform(np.diag([*scale, 1.0]))  # the robosuite XML's mesh scale
    _long_axis_to_z(raw)
    obj = _mesh_object(raw, f"object {object_id}", "m", True, object_id, "real", str(path))
    # Registry objects live in the registry frame: no mapping back to the file.
    return replace(obj, offset_m=np.zeros(3), _cache={})
