"""A synthetic "capsule hand" source for tests and benchmarks of the data engine.

Not a hand model: an ellipsoid palm plus 15 capsules (three per finger), each a separate
closed surface, never touching one another. The union is therefore watertight, consistently
oriented and free of self-intersections, so every inside test must agree on it exactly (up
to points within floating-point distance of the surface). It samples identities (scale and
bone lengths) and poses (flexion per joint) from the generator it is given and fills every
field of :class:`~halohand.handmodel.PosedHand` consistently: keypoints in the project's
order, posed->canonical part transforms, one-hot skin weights, part labels.

Selected with ``make_source("toy")``, on the command line with ``halohand data generate --source
toy``.
"""

from __future__ import annotations

import numpy as np
import trimesh

from halohand.core.rotations import rodrigues
from halohand.handmodel.hand import PosedHand
from halohand.skeleton import NUM_PARTS, PART_BONES

# Per finger (thumb, index, middle, ring, pinky): the 4 keypoint indices of its chain in the
# project's order, the 3 part ids of its bones (HALO order) and base geometry (metres).
_CHAINS = (
    ((1, 2, 3, 4), (13, 14, 15)),
    ((5, 6, 7, 8), (1, 2, 3)),
    ((9, 10, 11, 12), (4, 5, 6)),
    ((13, 14, 15, 16), (10, 11, 12)),
    ((17, 18, 19, 20), (7, 8, 9)),
)
_BASE = np.array(
    [[0.045, 0.012, 0.0], [0.027, 0.095, 0.0], [0.009, 0.097, 0.0], [-0.009, 0.095, 0.0],
     [-0.027, 0.090, 0.0]]
)  # fmt: skip
_DIRS = np.array([[0.7, 0.7, -0.15], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0]], dtype=float)
_LENGTHS = np.array([0.040, 0.030, 0.024])  # per-segment base lengths
_FINGER_SCALE = np.array([1.0, 0.95, 1.0, 0.95, 0.82])
_RADIUS = 0.0065
_GAP = 0.0005
_PALM_CENTRE = np.array([0.0, 0.045, 0.0])
_PALM_AXES = np.array([0.042, 0.042, 0.013])


def _segment(a: np.ndarray, b: np.ndarray, radius: float) -> trimesh.Trimesh:
    """A capsule between a and b, shortened by radius + gap at both ends."""
    d = b - a
    length = float(np.linalg.norm(d))
    height = length - 2 * (radius + _GAP)
    capsule = trimesh.creation.capsule(height=height, radius=radius, count=[10, 10])
    transform = np.eye(4)
    transform[:3, :3] = trimesh.geometry.align_vectors([0, 0, 1], d / length)[:3, :3]
    transform[:3, 3] = (a + b) / 2
    return capsule.apply_transform(transform)


class ToyHandSource:
    """Synthetic watertight capsule hands (see the module docstring)."""

    name = "toy"

    def sample(self, rng: np.random.Generator, side: str = "right") -> PosedHand:
        """Draw one identity (scale, bone lengths) and one pose (flexion) as a PosedHand."""
        if side not in ("right", "left"):
            raise ValueError(f"side must be 'right' or 'left', got {side!r}")
        scale = rng.uniform(0.9, 1.1)
        lengths = _LENGTHS * _FINGER_SCALE[:, None] * scale * rng.uniform(0.95, 1.05, (5, 3))
        flex = rng.uniform(0.0, np.deg2rad(50.0), (5, 3))

        keypoints = np.zeros((21, 3))
        rest_kp = np.zeros((21, 3))
        transforms = np.tile(np.eye(4), (NUM_PARTS, 1, 1))
        posed_parts: list[tuple[int, trimesh.Trimesh]] = []
        rest_parts: list[tuple[int, trimesh.Trimesh]] = []

        palm = trimesh.creation.icosphere(subdivisions=3)
        palm.apply_scale(_PALM_AXES * scale)
        palm.apply_translation(_PALM_CENTRE * scale)
        posed_parts.append((0, palm))
        rest_parts.append((0, palm.copy()))

        for f, (joints, parts) in enumerate(_CHAINS):
            d0 = _DIRS[f] / np.linalg.norm(_DIRS[f])
            # Flexion bends toward the palm side (-z) about an axis normal to the bone.
            axis = np.cross(d0, [0.0, 0.0, -1.0]) if f == 0 else np.array([-1.0, 0.0, 0.0])
            axis = axis / np.linalg.norm(axis)
            start = _BASE[f] * scale
            rest_start = start.copy()
            keypoints[joints[0]] = rest_kp[joints[0]] = start
            rot = np.eye(3)
            for s in range(3):
                rot = rodrigues(axis, flex[f, s]) @ rot
                end = start + rot @ d0 * lengths[f, s]
                rest_end = rest_start + d0 * lengths[f, s]
                keypoints[joints[s + 1]], rest_kp[joints[s + 1]] = end, rest_end
                # posed -> canonical: undo the bone rotation about its posed start joint.
                t = np.eye(4)
                t[:3, :3] = rot.T
                t[:3, 3] = rest_start - rot.T @ start
                transforms[parts[s]] = t
                # The posed capsule is the rest capsule moved rigidly, so the two correspond
                # vertex for vertex (canonical_vertices).
                rest_mesh = _segment(rest_start, rest_end, _RADIUS)
                rest_parts.append((parts[s], rest_mesh))
                posed_parts.append((parts[s], rest_mesh.copy().apply_transform(np.linalg.inv(t))))
                start, rest_start = end, rest_end

        vertices, faces, labels, offset = [], [], [], 0
        for part, mesh in posed_parts:
            vertices.append(mesh.vertices)
            faces.append(mesh.faces + offset)
            labels.append(np.full(len(mesh.vertices), part))
            offset += len(mesh.vertices)
        v = np.concatenate(vertices)
        fc = np.concatenate(faces).astype(np.int64)
        lab = np.concatenate(labels).astype(np.int64)
        canonical = np.concatenate([m.vertices for _, m in rest_parts])
        if side == "left":
            mirror = np.diag([-1.0, 1.0, 1.0, 1.0])
            v, canonical, keypoints = v * [-1, 1, 1], canonical * [-1, 1, 1], keypoints * [-1, 1, 1]
            fc = fc[:, ::-1].copy()  # mirroring flips orientation; keep normals outward
            transforms = mirror @ transforms @ mirror
        bones = np.linalg.norm(keypoints[PART_BONES[:, 1]] - keypoints[PART_BONES[:, 0]], axis=-1)
        return PosedHand(
            vertices=np.ascontiguousarray(v),
            faces=fc,
            keypoints=keypoints,
            part_transforms=transforms,
            canonical_vertices=np.ascontiguousarray(canonical),
            bone_lengths=bones,
            skin_weights=np.eye(NUM_PARTS)[lab],
            part_labels=lab,
            side=side,
        )
