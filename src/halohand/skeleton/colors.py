"""Colours of the 16 HALO parts, shared by meshes, exports and figures."""

from __future__ import annotations

import numpy as np

#: 16 distinct part colours (HALO part order: palm, index1-3, middle1-3, pinky1-3, ring1-3,
#: thumb1-3), shades of one hue per finger.
PART_COLORS = np.array(
    [
        [0.80, 0.80, 0.80],
        [0.95, 0.55, 0.50], [0.85, 0.35, 0.30], [0.65, 0.20, 0.18],
        [0.55, 0.80, 0.50], [0.35, 0.65, 0.30], [0.20, 0.45, 0.18],
        [0.55, 0.65, 0.95], [0.35, 0.45, 0.85], [0.20, 0.28, 0.65],
        [0.95, 0.85, 0.45], [0.85, 0.70, 0.25], [0.65, 0.50, 0.12],
        [0.85, 0.55, 0.90], [0.70, 0.35, 0.78], [0.50, 0.20, 0.58],
    ]
)  # fmt: skip


#: ``[16, 4]`` RGBA uint8 of :data:`PART_COLORS`, rounded once: a mesh's colours are one
#: gather from it instead of a ``[V, 4]`` float64 array rounded per mesh.
_PART_RGBA = np.round(np.c_[PART_COLORS, np.ones(len(PART_COLORS))] * 255).astype(np.uint8)


def part_vertex_colors(part_labels: np.ndarray) -> np.ndarray:
    """``[V]`` part indices (HALO order) -> ``[V, 4]`` RGBA uint8 from :data:`PART_COLORS`."""
    labels = np.asarray(part_labels, dtype=np.int64)
    return _PART_RGBA[labels] if len(labels) else np.zeros((0, 4), dtype=np.uint8)
