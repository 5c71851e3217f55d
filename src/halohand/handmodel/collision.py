"""Inscribed-sphere proxies of the template, for fast self-collision checks of a pose.

Each sphere is rigidly attached to one WebXR joint and lies inside the rest mesh, so two
overlapping spheres of different bones mean the posed mesh interpenetrates there. The
converse does not hold: spheres only sit where the skin moves with one part (at least 75 %
of the skin weight around them), so the blended skin at the knuckles and the skin folds of a
flexed joint are not covered; the joint limits keep those small. Sphere pairs of the same
or neighbouring bones, and pairs closer than 1 mm in the rest pose (the webs between
fingers), are never tested.

:func:`self_intersection_volume` is the exact (sampled) measure used to report and tune
the prior: the volume the posed surface covers twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.spatial import cKDTree

from halohand.handmodel.template import JOINT_PART, PART_JOINT, HandTemplate, load_template

#: Spacing of the candidate grid inside the rest mesh (metres).
_GRID_STEP = 0.003
#: Spheres thinner than this are not worth testing (metres).
_MIN_RADIUS = 0.0025
#: Radii are shrunk by this much so a sphere stays inside the (piecewise-flat) surface.
_RADIUS_MARGIN = 0.0005
#: A candidate whose centre lies within this fraction of a kept sphere's radius is covered
#: (finger bones; the palm uses 1).
_COVER = 0.6
#: Palm spheres reaching less than this beyond a kept palm sphere are redundant (metres).
_PALM_SLACK = 0.003
#: Sphere pairs closer than this in the rest pose (across the finger webs) are not tested.
_REST_CLEARANCE = 0.001
#: Vertices within radius + this distance decide which part a sphere follows (metres).
_REACH = 0.002
#: Least share of those vertices' skin weight the sphere's part must hold.
_PURITY = 0.75


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
        with radii ``[S]``.

        Bones whose bounding spheres stay apart are skipped before the sphere pairs are
        tested, which leaves a few hundred of the tens of thousands of pairs to check.
        """
        bone_center = np.zeros((25, 3))
        np.add.at(bone_center, self.joint, centers)
        bone_center /= np.maximum(np.bincount(self.joint, minlength=25), 1)[:, None]
        reach = np.zeros(25)
        np.maximum.at(
            reach, self.joint, np.linalg.norm(centers - bone_center[self.joint], axis=1) + radii
        )
        ga, gb = self.group_joints[:, 0], self.group_joints[:, 1]
        gap = np.linalg.norm(bone_center[ga] - bone_center[gb], axis=1) - reach[ga] - reach[gb]
        close = np.flatnonzero(gap < 0.0)
        if len(close) == 0:
            return float(np.max(gap))
        # Pairs are stored grouped by bone pair: gather the index ranges of the close groups.
        start, count = self.group_start[close], self.group_count[close]
        offsets = np.repeat(start - np.cumsum(count) + count, count) + np.arange(count.sum())
        a, b = self.pairs[offsets, 0], self.pairs[offsets, 1]
        dist = np.linalg.norm(centers[a] - centers[b], axis=1)
        return float(np.max(radii[a] + radii[b] - dist))

    @property
    def group_joints(self) -> np.ndarray:
        """``[G, 2]`` the distinct (joint, joint) bone pairs among the tested pairs."""
        return self._groups()[0]

    @property
    def group_start(self) -> np.ndarray:
        """``[G]`` first row of each bone pair's sphere pairs in :attr:`pairs`."""
        return self._groups()[1]

    @property
    def group_count(self) -> np.ndarray:
        """``[G]`` number of sphere pairs of each bone pair."""
        return self._groups()[2]

    def _groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cached = self.__dict__.get("_group_cache")
        if cached is None:
            ja, jb = self.joint[self.pairs[:, 0]], self.joint[self.pairs[:, 1]]
            key = np.minimum(ja, jb) * 25 + np.maximum(ja, jb)
            if np.any(np.diff(key) < 0):
                raise ValueError("sphere pairs must be sorted by bone pair")
            uniq, start, count = np.unique(key, return_index=True, return_counts=True)
            cached = (np.stack([uniq // 25, uniq % 25], axis=1), start, count)
            object.__setattr__(self, "_group_cache", cached)
        return cached


def build_sphere_proxy(template: HandTemplate) -> SphereProxy:
    """Place inscribed spheres on a grid inside the rest mesh and keep a covering subset.

    Candidates are grid points inside the mesh; each gets the radius of the largest sphere
    around it that stays inside (distance to the surface) and the part that dominates the
    skin weights of the vertices around it (the sphere follows that part's joint). Greedy
    selection by decreasing radius keeps a finger sphere when its centre is not within
    0.6 radii of a kept sphere of the same bone, and a palm sphere when it reaches out of
    the kept palm spheres by more than 3 mm.

    Returns:
        The proxy, with the tested pairs sorted by bone pair.
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
    # Attach a sphere to a part only where the skin around it moves with that part: the
    # part weights of the vertices within reach must be at least _PURITY one part (the palm
    # counts as one, it is rigid). Spheres in blended regions (knuckles, webs) are dropped.
    tree = cKDTree(v)
    near = tree.query_ball_point(pts, dist + _REACH)
    part = np.empty(len(pts), dtype=np.int64)
    purity = np.empty(len(pts))
    for i, nb in enumerate(near):
        if len(nb) < 3:  # the surface nearby is one big triangle: use its closest vertices
            nb = tree.query(pts[i], k=3)[1]
        w = template.part_weights[nb].sum(0)
        part[i] = int(w.argmax())
        purity[i] = w[part[i]] / w.sum()
    keep = purity >= _PURITY
    pts, dist, joint = pts[keep], dist[keep], PART_JOINT[part[keep]]

    order = np.lexsort((np.arange(len(pts)), -dist))
    chosen: list[int] = []
    kept: dict[int, list[int]] = {}
    for i in order:
        same = kept.setdefault(int(joint[i]), [])
        if same:
            d = np.linalg.norm(pts[same] - pts[i], axis=1)
            if joint[i] == 0:
                # Palm: fingertips land on its surface, so keep every sphere that reaches
                # more than _PALM_SLACK beyond the kept ones (the big inner spheres alone
                # leave the palmar skin uncovered between them).
                covered = np.any(d + dist[i] <= dist[same] + _PALM_SLACK)
            else:
                covered = np.any(d < _COVER * dist[same])
            if covered:
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
    test = ~adjacent & (gap > _REST_CLEARANCE)
    a, b = a[test], b[test]
    key = np.minimum(joints[a], joints[b]) * 25 + np.maximum(joints[a], joints[b])
    order = np.argsort(key, kind="stable")
    return SphereProxy(
        joint=joints.astype(np.int64),
        local_centers=local,
        radii=radii,
        pairs=np.stack([a[order], b[order]], axis=1),
    )


@lru_cache(maxsize=1)
def load_sphere_proxy() -> SphereProxy:
    """Sphere proxy of the shipped template (built once per process, ~0.2 s)."""
    return build_sphere_proxy(load_template())


def self_intersection_volume(
    vertices: np.ndarray,
    faces: np.ndarray,
    num_points: int = 200_000,
    rng: np.random.Generator | None = None,
) -> float:
    """Volume (m^3) of the space the closed mesh covers twice or more.

    A self-intersecting closed surface has generalized winding number ~2 where it folds over
    itself; the volume with winding number > 1.5 is estimated from ``num_points`` uniform
    samples in the bounding box (libigl's fast winding number). Deterministic for ``rng``
    (default: seed 0).
    """
    import igl

    rng = np.random.default_rng(0) if rng is None else rng
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    lo, hi = v.min(0), v.max(0)
    pts = lo + (hi - lo) * rng.random((num_points, 3))
    wn = igl.fast_winding_number(v, f, pts)
    return float(np.count_nonzero(wn > 1.5) / num_points * np.prod(hi - lo))
