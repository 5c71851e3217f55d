"""Meshing: occupancy -> watertight triangle mesh, and inside/outside tests for meshes."""

from halohand.meshing.extract import (
    ExtractionStats,
    evaluate_grid,
    extract_mesh,
    mesh_from_grid,
)
from halohand.meshing.inside import contains, winding_number

__all__ = [
    "ExtractionStats", "contains", "evaluate_grid", "extract_mesh", "mesh_from_grid",
    "winding_number",
]  # fmt: skip
