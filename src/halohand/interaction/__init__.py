"""Fields of hands and objects, composed in a scene.

- :mod:`~halohand.interaction.primitives`: closed-form signed distances (sphere, box,
  capsule), the ground truth of the tests and usable as object fields;
- :mod:`~halohand.interaction.object_field`: a rigid object's signed distance, exact from
  its mesh or gridded, differentiable w.r.t. points and pose;
- :mod:`~halohand.interaction.hand_field`: a HALO hand's signed distance, differentiable
  w.r.t. its keypoints;
- :mod:`~halohand.interaction.compose`: union, intersection, penetration depth, volume and
  energy, contact, for any fields;
- :mod:`~halohand.interaction.plausibility`: plausibility metrics of meshes (penetration
  depth A-PD/M-PD and volume, contact, self-intersection, edge and normal errors) and
  :func:`plausibility_report` (of meshes) and :func:`scene_report` (of a ``Scene``).

All lengths are metres and signed distances are positive outside (``docs/interaction.md``).
"""

from halohand.interaction.compose import (
    contact,
    contact_energy,
    grid_points,
    intersection,
    penetration_depth,
    penetration_energy,
    penetration_volume,
    union,
)
from halohand.interaction.hand_field import HandField
from halohand.interaction.object_field import MeshDistance, ObjectField, mesh_signed_distance
from halohand.interaction.plausibility import plausibility_report, scene_report
from halohand.interaction.primitives import box_sdf, capsule_sdf, sphere_sdf

__all__ = [
    "HandField", "MeshDistance", "ObjectField", "box_sdf", "capsule_sdf", "contact",
    "contact_energy", "grid_points", "intersection", "mesh_signed_distance",
    "penetration_depth", "penetration_energy", "penetration_volume", "plausibility_report",
    "scene_report", "sphere_sdf", "union",
]  # fmt: skip
