"""Rigid objects: the procedural and vendored registry, mesh loading and validation,
inside/outside tests and signed distance (exact and gridded)."""

from halohand.objects.inside import contains, winding_number
from halohand.objects.registry import GraspObject, load_object, object_from_mesh

__all__ = ["GraspObject", "contains", "load_object", "object_from_mesh", "winding_number"]
