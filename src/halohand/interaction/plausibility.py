"""Plausibility metrics of meshes: penetration, contact, self-intersection, surface errors.

One place for every output of the project (hands alone, hand and object, two hands), on
closed meshes in metres (numpy, libigl). :func:`plausibility_report` gathers them.

Definitions (the paper is ``accuracy-plausibility-hand-reconstruction``, Table 2; it
voxelizes each mesh's signed distance on a 32^3 grid and averages / maximises, over the
vertices of one mesh inside the other, their distance to the other's surface):

- **Penetration depth** (:func:`penetration_depth`): a ``32^3`` grid of cell centres over the
  intersection of the two meshes' bounding boxes; a point *penetrates* when it is inside
  both meshes (exact libigl signed distance < 0 to each, not a voxelized one); its depth is
  its distance to the surface of ``b``: how deep the material of ``a`` lies inside ``b`` at
  that point (the grid-point analogue of the paper's "vertex of ``a`` inside ``b``, distance
  to ``b``'s surface", which also counts the volume between vertices). **A-PD** is the mean
  and **M-PD** the max over the penetrating points (0 when none penetrates). For two
  spheres overlapping by ``delta`` (sum of radii minus centre distance), M-PD is ``delta``
  up to about one grid cell (the grid need not hold the deepest point).
  ``symmetric=True`` (two hands) averages the A-PD of both directions and takes the larger
  M-PD.
- **Penetration volume** (:func:`penetration_volume`): voxel centres of a 1 mm grid over
  the bounding-box intersection inside both meshes, counted coarse to fine (blocks of
  ``4^3`` voxels decided by one distance query when the block's centre is farther from the
  surface than its half-diagonal, the signed distance being 1-Lipschitz), in cm^3.
- **Contact** (:func:`contact`): hand vertices whose signed distance to the object is below a
  threshold (2 mm by default; penetrating vertices touch too); with per-vertex part labels
  (HALO meshes carry ``vertex_attributes["part"]``), the parts and fingers that touch.
- **Self-intersection** (:func:`self_intersection`): the volume a closed mesh covers twice
  (generalized winding number > 1.5, sampled;
  :func:`halohand.handmodel.collision.self_intersection_volume`), in cm^3. Meaningful for
  rigged meshes (the template, MANO); a HALO mesh is a level set and cannot cover space
  twice, so it is 0 there by construction.
- **Edge-length and normal errors** (:func:`edge_length_error`, :func:`normal_error`) of a
  mesh against a ground truth with the same faces: the mean absolute difference of the
  lengths of corresponding edges (metres), and the mean angle between corresponding face
  normals (degrees).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import trimesh

from halohand.core.errors import HalohandInputError
from halohand.handmodel.collision import self_intersection_volume
from halohand.inference.halo import HALO
from halohand.interaction.object_field import closest_points
from halohand.scene import Scene
from halohand.skeleton import FINGERS, PART_NAMES

__all__ = [
    "PD_RESOLUTION", "VOXEL", "contact", "edge_length_error", "inside_mask", "normal_error",
    "penetration_depth", "penetration_volume", "plausibility_report", "scene_report",
    "self_intersection",
]  # fmt: skip

#: Grid points per axis of the penetration depth (the paper's 32^3).
PD_RESOLUTION = 32
#: Voxel size of the penetration volume (metres), as in HALO's evaluation.
VOXEL = 0.001
#: Voxels per block edge of the coarse pass of :func:`inside_mask`.
_BLOCK = 4


def _mesh_arrays(mesh: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(mesh, trimesh.Trimesh):
        return np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64)
    if isinstance(mesh, tuple) and len(mesh) == 2:
        return np.asarray(mesh[0], np.float64), np.asarray(mesh[1], np.int64)
    raise HalohandInputError(f"{name} must be a trimesh.Trimesh or (vertices, faces)")


def _signed(v: np.ndarray, f: np.ndarray, points: np.ndarray) -> np.ndarray:
    return closest_points(points, v, f)[0]


def _overlap_box(va: np.ndarray, vb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    if len(va) == 0 or len(vb) == 0:  # HALO can predict no surface for a far-off skeleton
        return None
    lo = np.maximum(va.min(0), vb.min(0))
    hi = np.minimum(va.max(0), vb.max(0))
    return None if np.any(hi <= lo) else (lo, hi)


def penetration_depth(
    mesh_a: Any, mesh_b: Any, resolution: int = PD_RESOLUTION, *, symmetric: bool = False
) -> dict[str, float]:
    """A-PD and M-PD (metres) of ``mesh_a`` into ``mesh_b`` (module docstring).

    Args:
        mesh_a / mesh_b: closed ``trimesh.Trimesh`` or ``(vertices [V, 3], faces [F, 3])``,
            metres, same frame.
        resolution: grid points per axis over the bounding-box intersection.
        symmetric: also ``b`` into ``a``; A-PD averaged, M-PD the larger.

    Returns:
        ``{"mean": A-PD, "max": M-PD, "points": penetrating grid points}``.
    """
    va, fa = _mesh_arrays(mesh_a, "mesh_a")
    vb, fb = _mesh_arrays(mesh_b, "mesh_b")
    if int(resolution) < 2:
        raise HalohandInputError(f"resolution must be >= 2, got {resolution}")
    none = {"mean": 0.0, "max": 0.0, "points": 0}
    box = _overlap_box(va, vb)
    if box is None:
        return none
    lo, hi = box
    step = (hi - lo) / resolution
    axes = [lo[k] + step[k] * (np.arange(resolution) + 0.5) for k in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    da = _signed(va, fa, grid)
    inside_a = da < 0.0
    db = np.full(len(grid), np.inf)
    db[inside_a] = _signed(vb, fb, grid[inside_a])  # only where a is: half the queries
    both = inside_a & (db < 0.0)
    if not both.any():
        return none
    into_b = -db[both]
    if not symmetric:
        return {"mean": float(into_b.mean()), "max": float(into_b.max()), "points": int(both.sum())}
    into_a = -da[both]
    return {
        "mean": float(0.5 * (into_b.mean() + into_a.mean())),
        "max": float(max(into_b.max(), into_a.max())),
        "points": int(both.sum()),
    }


def inside_mask(
    vertices: np.ndarray,
    faces: np.ndarray,
    axes: Sequence[np.ndarray],
    voxel: float,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean ``[nx, ny, nz]``: which voxel centres (the product of ``axes``, evenly spaced
    by ``voxel``) are inside the closed mesh; only ``candidates`` (same shape) if given.

    Exact and coarse to fine: a block of ``4^3`` voxels whose centre is farther from the
    surface than the block's half-diagonal is wholly inside or outside (the signed distance
    is 1-Lipschitz), so only blocks near the surface are queried voxel by voxel."""
    n = np.array([len(a) for a in axes])
    nb = -(-n // _BLOCK)
    # Axes padded to whole blocks at the same spacing; the padding is never valid.
    padded = [a[0] + voxel * np.arange(m * _BLOCK) for a, m in zip(axes, nb, strict=True)]
    valid = np.zeros(nb * _BLOCK, dtype=bool)
    valid[: n[0], : n[1], : n[2]] = True if candidates is None else candidates

    def blocks(x: np.ndarray) -> np.ndarray:  # [X, Y, Z] -> [bx, by, bz, B^3]
        x = x.reshape(nb[0], _BLOCK, nb[1], _BLOCK, nb[2], _BLOCK).transpose(0, 2, 4, 1, 3, 5)
        return x.reshape(*nb, -1)

    valid_b = blocks(valid)
    todo = np.argwhere(valid_b.any(-1))
    inside_b = np.zeros_like(valid_b)
    if len(todo):
        centre = np.stack(
            [padded[k].reshape(-1, _BLOCK).mean(1)[todo[:, k]] for k in range(3)], axis=1
        )
        d = _signed(vertices, faces, centre)
        reach = 0.5 * (_BLOCK - 1) * voxel * np.sqrt(3.0)
        deep = todo[d < -reach]
        inside_b[deep[:, 0], deep[:, 1], deep[:, 2]] = True
        edge = todo[np.abs(d) <= reach]
        if len(edge):
            ramp = np.arange(_BLOCK)
            offsets = np.stack(np.meshgrid(ramp, ramp, ramp, indexing="ij"), -1).reshape(-1, 3)
            idx = edge[:, None, :] * _BLOCK + offsets[None]  # [E, B^3, 3] voxel indices
            pts = np.stack([padded[k][idx[..., k]] for k in range(3)], axis=-1)
            fine = _signed(vertices, faces, pts.reshape(-1, 3)) < 0.0
            inside_b[edge[:, 0], edge[:, 1], edge[:, 2]] = fine.reshape(len(edge), -1)
    inside_b &= valid_b
    out = inside_b.reshape(*nb, _BLOCK, _BLOCK, _BLOCK).transpose(0, 3, 1, 4, 2, 5)
    return out.reshape(nb * _BLOCK)[: n[0], : n[1], : n[2]]


def penetration_volume(mesh_a: Any, mesh_b: Any, voxel: float = VOXEL) -> float:
    """Volume (cm^3) inside both closed meshes, counted on a ``voxel``-metre grid whose
    centres fill the bounding-box intersection from its lower corner (0 without overlap or
    for an empty mesh). The same count as ``halohand.grasp.metrics.intersection_volume``."""
    if not voxel > 0:
        raise HalohandInputError(f"voxel must be positive, got {voxel}")
    va, fa = _mesh_arrays(mesh_a, "mesh_a")
    vb, fb = _mesh_arrays(mesh_b, "mesh_b")
    box = _overlap_box(va, vb)
    if box is None:
        return 0.0
    lo, hi = box
    n = np.floor((hi - lo) / voxel).astype(int) + 1
    axes = [lo[k] + voxel * (np.arange(n[k]) + 0.5) for k in range(3)]
    axes = [a[a < hi[k]] for k, a in enumerate(axes)]
    if any(len(a) == 0 for a in axes):
        return 0.0
    in_b = inside_mask(vb, fb, axes, voxel)
    in_both = inside_mask(va, fa, axes, voxel, candidates=in_b)
    return int(in_both.sum()) * voxel**3 * 1e6


def _finger(part: int) -> str:
    name = PART_NAMES[part]
    return "palm" if name == "palm" else name.rstrip("123")


def contact(
    hand: Any,
    obj: Any,
    threshold: float = 0.002,
    part_labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """Contact of a hand mesh with an object mesh (or another hand).

    Args:
        hand / obj: closed meshes (``trimesh.Trimesh`` or ``(vertices, faces)``), metres.
        threshold: a hand vertex touches when its signed distance to ``obj`` is below this
            (metres; penetrating vertices touch).
        part_labels: ``[V]`` HALO part index of each hand vertex (default: the mesh's
            ``vertex_attributes["part"]`` when it has one).

    Returns:
        ``vertex_fraction`` of hand vertices touching, ``min_distance`` (metres; negative:
        penetrating), and with labels ``parts`` (names of the parts touching) and
        ``finger_fraction`` (of the five fingers, those with a touching vertex).
    """
    if not threshold > 0:
        raise HalohandInputError(f"threshold must be positive, got {threshold}")
    hv, _ = _mesh_arrays(hand, "hand")
    ov, of = _mesh_arrays(obj, "obj")
    if part_labels is None and isinstance(hand, trimesh.Trimesh):
        part_labels = hand.vertex_attributes.get("part")
    if len(hv) == 0:
        out: dict[str, Any] = {"vertex_fraction": 0.0, "min_distance": float("inf")}
        if part_labels is not None:
            out.update(parts=[], finger_fraction=0.0)
        return out
    d = _signed(ov, of, hv)
    touching = d < threshold
    out = {"vertex_fraction": float(touching.mean()), "min_distance": float(d.min())}
    if part_labels is not None:
        labels = np.asarray(part_labels).reshape(-1)
        if labels.shape != (len(hv),):
            raise HalohandInputError(f"part_labels must be [{len(hv)}], got {list(labels.shape)}")
        parts = sorted({int(p) for p in labels[touching]})
        fingers = {_finger(p) for p in parts} - {"palm"}
        out["parts"] = [PART_NAMES[p] for p in parts]
        out["finger_fraction"] = len(fingers) / len(FINGERS)
    return out


def self_intersection(mesh: Any, num_points: int = 200_000, seed: int = 0) -> float:
    """Volume (cm^3) a closed mesh covers twice or more (sampled generalized winding number,
    ``num_points`` uniform samples in its bounding box, deterministic for ``seed``)."""
    v, f = _mesh_arrays(mesh, "mesh")
    if len(f) == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    return self_intersection_volume(v, f, num_points=num_points, rng=rng) * 1e6


def _same_topology(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pv, pf = _mesh_arrays(pred, "pred")
    gv, gf = _mesh_arrays(gt, "gt")
    if pv.shape != gv.shape or pf.shape != gf.shape or not np.array_equal(pf, gf):
        raise HalohandInputError(
            "edge and normal errors need meshes with the same topology (vertices and faces)"
        )
    return pv, gv, pf


def edge_length_error(pred: Any, gt: Any) -> float:
    """Mean absolute difference (metres) of the lengths of corresponding edges of two meshes
    with the same faces (each undirected edge once)."""
    pv, gv, f = _same_topology(pred, gt)
    edges = np.unique(np.sort(f[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1), axis=0)
    lp = np.linalg.norm(pv[edges[:, 0]] - pv[edges[:, 1]], axis=1)
    lg = np.linalg.norm(gv[edges[:, 0]] - gv[edges[:, 1]], axis=1)
    return float(np.abs(lp - lg).mean())


def normal_error(pred: Any, gt: Any) -> float:
    """Mean angle (degrees) between corresponding face normals of two meshes with the same
    faces (degenerate faces of either mesh are skipped)."""
    pv, gv, f = _same_topology(pred, gt)

    def normals(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        length = np.linalg.norm(n, axis=1)
        return n / np.maximum(length, 1e-30)[:, None], length > 1e-18

    np_, ok_p = normals(pv)
    ng, ok_g = normals(gv)
    ok = ok_p & ok_g
    if not ok.any():
        raise HalohandInputError("no face has a normal in both meshes")
    cos = np.clip((np_[ok] * ng[ok]).sum(1), -1.0, 1.0)
    sin = np.linalg.norm(np.cross(np_[ok], ng[ok]), axis=1)
    return float(np.degrees(np.arctan2(sin, cos)).mean())


def plausibility_report(
    hands: Sequence[Any],
    objects: Sequence[Any] = (),
    *,
    gt_hands: Sequence[Any] | None = None,
    contact_threshold: float = 0.002,
    resolution: int = PD_RESOLUTION,
    voxel: float = VOXEL,
    self_intersection_points: int = 200_000,
) -> dict[str, Any]:
    """Every plausibility metric of a scene's meshes (metres, one world frame).

    Args:
        hands: closed hand meshes (``trimesh.Trimesh``; part labels are read from
            ``vertex_attributes["part"]`` when present).
        objects: closed object meshes.
        gt_hands: ground-truth meshes, one per hand (``None`` entries skip one), for the
            edge-length and normal errors; only meshes sharing their hand's topology.
        contact_threshold / resolution / voxel / self_intersection_points: see
            :func:`contact`, :func:`penetration_depth`, :func:`penetration_volume`,
            :func:`self_intersection`.

    Returns:
        ``{"hands": [{"self_intersection_cm3", ["edge_error_mm", "normal_error_deg"]}],
        "hand_object": [{"hand", "object", "apd_mm", "mpd_mm", "volume_cm3",
        "contact_vertex_fraction", "min_distance_mm", ["contact_parts",
        "contact_finger_fraction"]}], "hand_hand": [{"hands", "apd_mm", "mpd_mm",
        "volume_cm3"}]}``; depths are of the hand into the object, and symmetric between
        two hands.
    """
    hands = list(hands)
    objects = list(objects)
    if gt_hands is not None and len(gt_hands) != len(hands):
        raise HalohandInputError(f"got {len(gt_hands)} ground-truth meshes for {len(hands)} hands")
    report: dict[str, Any] = {"hands": [], "hand_object": [], "hand_hand": []}
    for i, hand in enumerate(hands):
        entry: dict[str, Any] = {
            "self_intersection_cm3": self_intersection(hand, self_intersection_points)
        }
        gt = None if gt_hands is None else gt_hands[i]
        if gt is not None:
            entry["edge_error_mm"] = edge_length_error(hand, gt) * 1e3
            entry["normal_error_deg"] = normal_error(hand, gt)
        report["hands"].append(entry)
    for i, hand in enumerate(hands):
        for j, obj in enumerate(objects):
            pd = penetration_depth(hand, obj, resolution)
            c = contact(hand, obj, contact_threshold)
            entry = {
                "hand": i,
                "object": j,
                "apd_mm": pd["mean"] * 1e3,
                "mpd_mm": pd["max"] * 1e3,
                "volume_cm3": penetration_volume(hand, obj, voxel),
                "contact_vertex_fraction": c["vertex_fraction"],
                "min_distance_mm": c["min_distance"] * 1e3,
            }
            if "parts" in c:
                entry["contact_parts"] = c["parts"]
                entry["contact_finger_fraction"] = c["finger_fraction"]
            report["hand_object"].append(entry)
    for i in range(len(hands)):
        for j in range(i + 1, len(hands)):
            pd = penetration_depth(hands[i], hands[j], resolution, symmetric=True)
            report["hand_hand"].append(
                {
                    "hands": [i, j],
                    "apd_mm": pd["mean"] * 1e3,
                    "mpd_mm": pd["max"] * 1e3,
                    "volume_cm3": penetration_volume(hands[i], hands[j], voxel),
                }
            )
    return report


def scene_report(model: HALO, scene: Scene, resolution: int = 256, **kwargs: Any) -> dict[str, Any]:
    """:func:`plausibility_report` of a :class:`~halohand.scene.Scene`: its hands meshed by
    ``model`` (each with its side, metres, world frame, part labels), its objects placed by
    their poses; ``kwargs`` go to :func:`plausibility_report`. The meshes are returned too,
    under ``"meshes"`` (``{"hands": [...], "objects": [...]}``)."""
    if not isinstance(scene, Scene):
        raise HalohandInputError(f"expected a halohand.scene.Scene, got {type(scene).__name__}")
    hands: list[trimesh.Trimesh] = []
    if scene.hands:
        prepared = model.prepare(scene.keypoints_m(), [h.side for h in scene.hands], "m")
        hands = list(model.meshes(prepared, resolution))
    objects = [obj.world_mesh() for obj in scene.objects]
    report = plausibility_report(hands, objects, **kwargs)
    report["meshes"] = {"hands": hands, "objects": objects}
    return report
