"""Inference: the one chunked occupancy query, hierarchical mesh extraction and the
:class:`~halohand.inference.halo.HALO` model users call (keypoints -> occupancy / meshes)."""

from halohand.inference.extract import (
    ExtractionStats,
    LatticeGrid,
    evaluate_grid,
    extract_mesh,
    lattice_grid,
    mesh_from_grid,
)

__all__ = [
    "ExtractionStats", "LatticeGrid", "evaluate_grid", "extract_mesh", "lattice_grid",
    "mesh_from_grid",
]  # fmt: skip
