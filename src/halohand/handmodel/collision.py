"""Inscribed-sphere proxies of the template, for fast self-collision checks of a pose.

Each sphere is rigidly attached to one WebXR joint and lies inside the rest mesh, so two
overlapping spheres of different bones mean the posed mesh interpenetrates there (the
converse does not hold: the proxies do not cover the skin folds at a flexed joint, which the
joint limits keep in check). Sphere pairs that already overlap in the rest pose (same bone,
neighbouring bones, the webs between fingers) are never tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.spatial import cKDTree

from halohand.handmodel.template import JOINT_PART, HandTemplate, load_template

#: Spacing of the candidate grid inside the rest mesh (metres).
_GRID_STEP = 0.003
#: Spheres thinner than this are not worth testing (metres).
_MIN_RADIUS = 0.0035
#: Radii are shrunk by this much so a sphere stays inside the (piecewise-flat) surface.
_RADIUS_MARGIN = 0.0005
#: A candidate whose centre lies within this fraction of a kept sphere's radius is covered.
_COVER = 1.0


@dataclass(frozen=True)
class SphereProxy:
    """Spheres attached to joints, in the joints' template-local frames.

    Attributes:
        joint: ``[S]`` WebXR joint each sphere follows.
        local_centers: ``[S, 3]`` centres in the joint's template frame (metres).
        radii: ``[S]`` radii in the template (metres).
        pairs: ``[P, 2]`` sphere pairs to test (disjoint in the rest pose).
    """

    joint: np.ndarray
    local_centers: np.ndarray
    radii: np.ndarray
    pairs: np.ndarray

    def centers(self, skin_transforms: np.ndarray) -> np.ndarray:
        """``[S, 3]`` sphere centres under per-joint vertex maps ``[25, 4, 4]`` (joint local
        template coordinates -> posed model coordinates)."""
        t = skin_transforms[self.joint]
        return np.einsum("sab,sb->sa", t[:, :3, :3], self.local_centers) + t[:, :3, 3]

    def penetration(self, centers: np.ndarray, radii: np.ndarray) -> float:
        """Deepest overlap (metres, <= 0 when no tested pair overlaps) of spheres ``[S, 3]``
        with radii ``[S]``."""
        a, b = self.pairs[:, 0], self.pairs[:, 1]
        dist = np.linalg.norm(centers[a] - centers[b], axis=1)
        return float(np.max(radii[a] + radii[b] - dist))


def build_sphere_proxy(template: HandTemplate) -> SphereProxy:
    """Place inscribed spheres on a grid inside the rest mesh and keep a covering subset.

    Candidates are grid points inside the mesh; each gets the radius of the largest sphere
    around it that stays inside (distance to the surface) and the joint of its nearest
    vertex's dominant skin weight. Greedy selection by radius keeps a sphere when its centre
    is not inside a kept (larger) sphere of the same joint.
    """
    import igl

    v, f = template.vertices, template.faces
    lo, hi = v.min(0), v.max(0)
    axes = [np.arange(lo[k] + _GRID_STEP / 2, hi[k], _GRID_STEP) for k in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    inside = igl.fast_winding_number(v, f, grid) > 0.5
    pts = grid[inside]
    dist = np.abs(igl.signed_distance(pts, v, f)[0])
    keep = dist > _MIN_RADIUS + _RADIUS_MARGIN
    pts, dist = pts[keep], dist[keep] - _RADIUS_MARGIN
    nearest = cKDTree(v).query(pts)[1]
    joint = template.joint_weights[nearest].argmax(1)

    order = np.lexsort((np.arange(len(pts)), -dist))
    chosen: list[int] = []
    kept: dict[int, list[int]] = {}
    for i in order:
        same = kept.setdefault(int(joint[i]), [])
        if same and np.any(np.linalg.norm(pts[same] - pts[i], axis=1) < _COVER * dist[same]):
            continue
        same.append(int(i))
        chosen.append(int(i))
    idx = np.array(chosen)
    centers, radii, joints = pts[idx], dist[idx], joint[idx]
    inv = np.linalg.inv(template.rest_frames[joints])
    local = np.einsum("sab,sb->sa", inv[:, :3, :3], centers) + inv[:, :3, 3]

    a, b = np.triu_indices(len(idx), k=1)
    gap = np.linalg.norm(centers[a] - centers[b], axis=1) - radii[a] - radii[b]
    ja, jb = joints[a], joints[b]
    parents = template.parents
    palm = JOINT_PART == 0
    # Bones hanging off the palm (thumb metacarpal, proximal phalanges) fold into the skin
    # around their base joint by design; only bones two or more joints apart can collide.
    root_bone = np.zeros_like(palm)
    root_bone[1:] = palm[parents[1:]]
    adjacent = (
        (ja == jb)
        | (parents[ja] == jb)
        | (parents[jb] == ja)
        | (palm[ja] & palm[jb])
        | (palm[ja] & root_bone[jb])
        | (palm[jb] & root_bone[ja])
    )
    # A small clearance in the rest pose keeps pairs across the finger webs out of the test.
    test = ~adjacent & (gap > 0.001)
    return SphereProxy(
        joint=joints.astype(np.int64),
        local_centers=local,
        radii=radii,
        pairs=np.stack([a[test], b[test]], axis=1),
    )


@lru_cache(maxsize=1)
def load_sphere_proxy() -> SphereProxy:
    """Sphere proxy of the shipped template (built once per process, ~0.2 s)."""
    return build_sphere_proxy(load_template())
