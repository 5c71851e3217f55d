"""Grasp metrics of HALO-VAE's evaluation (``docs/grasp.md``; spec: ecosystem notes, section 4).

- :func:`intersection_volume`: volume inside both the hand and the object, counted on a
  1 mm voxel grid over the intersection of their bounding boxes, in cm^3.
- :func:`min_signed_distance` / :func:`contact_ratio`: the "inter dist" (smallest signed
  distance of the hand vertices to the object; negative = penetrating) and the fraction of
  grasps whose hand touches or enters the object (min signed distance < 0).
- :func:`diversity` / :func:`kmeans_diversity`: k-means (k = 20) on the canonicalized
  keypoints (cm, 63-D): entropy of the cluster histogram (natural log, at most ln 20 = 3.0)
  and the mean distance to the assigned centre ("cluster size", cm).

All lengths in are metres; the hand mesh must be closed (the embedded template is, sealed at
the wrist).
"""

from __future__ import annotations

import warnings

import numpy as np

from halohand.canonical import canonicalize
from halohand.core.errors import HalohandInputError

__all__ = [
    "contact_ratio", "diversity", "intersection_volume", "kmeans_diversity",
    "min_signed_distance",
]  # fmt: skip

#: Voxel size of the intersection volume (metres), as in HALO's evaluation.
VOXEL = 0.001


def _signed_distance(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``[N]`` signed distance (metres, negative inside) to a closed mesh (libigl)."""
    import igl

    q = np.ascontiguousarray(np.asarray(points, dtype=np.float64).reshape(-1, 3))
    if len(q) == 0:
        return np.zeros(0)
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    # Pseudonormal sign: exact for a closed, consistently wound mesh and ~10x faster than
    # the winding number on these sizes.
    return np.asarray(
        igl.signed_distance(q, v, f, sign_type=igl.SIGNED_DISTANCE_TYPE_PSEUDONORMAL)[0]
    )


#: Voxels per block edge of the coarse pass of :func:`_inside_mask`.
_BLOCK = 4


def _inside_mask(
    vertices: np.ndarray,
    faces: np.ndarray,
    axes: list[np.ndarray],
    voxel: float,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean ``[nx, ny, nz]``: voxel centres (the product of ``axes``) inside the mesh.

    Exact, but coarse to fine: the signed distance is 1-Lipschitz, so a block of
    ``_BLOCK^3`` voxels whose centre is farther from the surface than the block's
    half-diagonal is wholly inside or wholly outside; only blocks near the surface get
    per-voxel queries (a few percent of the voxels of a hand-sized box). ``candidates``
    (same shape) restricts the answer to those voxels, and blocks without one are skipped.
    """
    n = np.array([len(a) for a in axes])
    nb = -(-n // _BLOCK)
    # Pad every axis to whole blocks with more centres at the same spacing.
    padded = [a[0] + voxel * np.arange(m * _BLOCK) for a, m in zip(axes, nb, strict=True)]
    valid = np.zeros(nb * _BLOCK, dtype=bool)
    valid[: n[0], : n[1], : n[2]] = True if candidates is None else candidates

    def blocks(x: np.ndarray) -> np.ndarray:  # [X, Y, Z] -> [nbx, nby, nbz, B^3]
        x = x.reshape(nb[0], _BLOCK, nb[1], _BLOCK, nb[2], _BLOCK).transpose(0, 2, 4, 1, 3, 5)
        return x.reshape(*nb, -1)

    valid_b = blocks(valid)
    todo = np.argwhere(valid_b.any(-1))  # [K, 3] block indices
    inside_b = np.zeros_like(valid_b)
    if len(todo):
        centres = np.stack(
            [padded[k].reshape(-1, _BLOCK).mean(1)[todo[:, k]] for k in range(3)], axis=1
        )
        d = _signed_distance(vertices, faces, centres)
        reach = 0.5 * (_BLOCK - 1) * voxel * np.sqrt(3.0)
        full = todo[d < -reach]
        inside_b[full[:, 0], full[:, 1], full[:, 2]] = True
        edge = todo[np.abs(d) <= reach]
        if len(edge):
            # Fine centres of the boundary blocks, in the blocks' flattened voxel order.
            ramp = np.arange(_BLOCK)
            offs = np.stack(np.meshgrid(ramp, ramp, ramp, indexing="ij"), axis=-1)
            offs = offs.reshape(-1, 3)
            idx = edge[:, None, :] * _BLOCK + offs[None]  # [E, B^3, 3]
            pts = np.stack([padded[k][idx[..., k]] for k in range(3)], axis=-1)
            fine = _signed_distance(vertices, faces, pts.reshape(-1, 3)) < 0.0
            inside_b[edge[:, 0], edge[:, 1], edge[:, 2]] = fine.reshape(len(edge), -1)
    inside_b &= valid_b
    out = inside_b.reshape(*nb, _BLOCK, _BLOCK, _BLOCK).transpose(0, 3, 1, 4, 2, 5)
    return out.reshape(nb * _BLOCK)[: n[0], : n[1], : n[2]]


def intersection_volume(
    hand_vertices: np.ndarray,
    hand_faces: np.ndarray,
    object_vertices: np.ndarray,
    object_faces: np.ndarray,
    voxel: float = VOXEL,
) -> float:
    """Volume (cm^3) inside both closed meshes, on a ``voxel``-metre grid.

    Voxel centres fill the intersection of the two bounding boxes from its lower corner; a
    voxel counts when its centre is inside both meshes (libigl signed distance). The hand is
    only queried where the object is inside, and both queries go coarse to fine
    (:func:`_inside_mask`), which makes a grasp take ~0.1 s instead of seconds.

    Args:
        hand_vertices / object_vertices: ``[V, 3]`` metres.
        hand_faces / object_faces: ``[F, 3]`` outward-wound triangles.
        voxel: grid step in metres (HALO: 1 mm).

    Returns:
        ``count * voxel^3`` in cm^3 (0 when the boxes do not overlap or a mesh is empty).
    """
    if not voxel > 0:
        raise HalohandInputError(f"voxel must be positive, got {voxel}")
    hv = np.asarray(hand_vertices, dtype=np.float64).reshape(-1, 3)
    ov = np.asarray(object_vertices, dtype=np.float64).reshape(-1, 3)
    if len(hv) == 0 or len(ov) == 0:  # HALO can predict no surface for a far-off skeleton
        return 0.0
    lo = np.maximum(hv.min(0), ov.min(0))
    hi = np.minimum(hv.max(0), ov.max(0))
    if np.any(hi <= lo):
        return 0.0
    n = np.floor((hi - lo) / voxel).astype(int) + 1
    axes = [lo[k] + voxel * (np.arange(n[k]) + 0.5) for k in range(3)]
    axes = [a[a < hi[k]] for k, a in enumerate(axes)]
    if any(len(a) == 0 for a in axes):
        return 0.0
    in_obj = _inside_mask(ov, object_faces, axes, voxel)
    in_both = _inside_mask(hv, hand_faces, axes, voxel, candidates=in_obj)
    count = int(in_both.sum())
    return count * voxel**3 * 1e6


def min_signed_distance(
    hand_vertices: np.ndarray, object_vertices: np.ndarray, object_faces: np.ndarray
) -> float:
    """Smallest signed distance (metres) of the hand vertices ``[V, 3]`` to the object;
    negative when some vertex is inside (its magnitude is then the penetration depth);
    ``inf`` for an empty hand mesh (no contact)."""
    if len(np.asarray(hand_vertices).reshape(-1, 3)) == 0:
        return float("inf")
    return float(_signed_distance(object_vertices, object_faces, hand_vertices).min())


def contact_ratio(min_distances: np.ndarray) -> float:
    """Fraction of grasps whose :func:`min_signed_distance` is < 0 (HALO's definition)."""
    d = np.asarray(min_distances, dtype=np.float64).reshape(-1)
    if len(d) == 0:
        raise HalohandInputError("contact_ratio needs at least one grasp")
    return float((d < 0.0).mean())


def kmeans_diversity(features: np.ndarray, k: int = 20, seed: int = 0) -> tuple[float, float]:
    """Entropy (nats) of the k-means cluster histogram and mean distance to the assigned
    centre, for ``[N, D]`` features (scipy's ``kmeans2``, k-means++ initialisation).

    Raises:
        HalohandInputError: fewer than ``k`` samples or non-finite features.
    """
    from scipy.cluster.vq import kmeans2
    from scipy.stats import entropy

    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < k:
        raise HalohandInputError(f"diversity needs [N >= {k}, D] features, got {list(x.shape)}")
    if not np.all(np.isfinite(x)):
        raise HalohandInputError("diversity features contain NaN or inf")
    with warnings.catch_warnings():
        # kmeans2 warns when a cluster empties; the histogram simply has a zero there.
        warnings.simplefilter("ignore")
        centres, labels = kmeans2(x, k, minit="++", seed=np.random.default_rng(seed))
    counts = np.bincount(labels, minlength=k)
    size = np.linalg.norm(x - centres[labels], axis=1).mean()
    return float(entropy(counts)), float(size)


def diversity(
    keypoints: np.ndarray, sides: str | list[str] = "right", k: int = 20, seed: int = 0
) -> tuple[float, float]:
    """HALO's grasp diversity of ``[N, 21, 3]`` keypoints (metres, project order).

    The keypoints are canonicalized (global rotation, translation and the left mirror
    removed: :attr:`~halohand.canonical.Canonicalization.normalized_keypoints`), converted
    to cm and flattened to 63-D, then clustered by :func:`kmeans_diversity`.

    Returns:
        ``(entropy, cluster_size_cm)``.
    """
    import torch

    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (21, 3):
        raise HalohandInputError(f"keypoints must be [N, 21, 3], got {list(kp.shape)}")
    if isinstance(sides, str):
        left = torch.full((len(kp),), sides == "left")
    else:
        if len(sides) != len(kp):
            raise HalohandInputError(f"got {len(sides)} sides for {len(kp)} hands")
        left = torch.tensor([s == "left" for s in sides])
    canon = canonicalize(torch.tensor(kp), left).normalized_keypoints.numpy()
    return kmeans_diversity(canon.reshape(len(kp), -1) * 100.0, k=k, seed=seed)
