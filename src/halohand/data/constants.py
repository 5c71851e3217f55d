"""The one place that fixes units, scales and sizes of the occupancy data.

Units: everything the data engine stores is in **metres**, in the hand frame of
:class:`halohand.handmodel.PosedHand` (wrist keypoint at the origin, no random global
rotation). HALO's network works in "normalized units" (metres / 0.4); that scaling belongs to
the model (``NETWORK_SCALE_M`` is recorded here only so the two can be compared), never to the
data. The original's constants (spec ``halo-model-training-eval.md`` section 5) convert as:

* uniform box: cube of side 1.1 normalized units -> half-side 0.55 * 0.4 = **0.22 m**;
* near-surface noise: sigma 0.01 normalized units -> 0.01 * 0.4 = **0.004 m** (4 mm).

Storage: query points and the evaluation point cloud are stored as ``int16`` multiples of
``COORD_QUANTUM_M`` = 10 micrometres (range +-0.327 m). That is as small as float16 (2 bytes per
coordinate) but uniform: float16 of metre coordinates has a 0.12 mm step between 0.125 and
0.25 m, where the fingertips are. Occupancy labels are computed on the *quantized* coordinates,
so they are exact for the points as stored.
"""

from __future__ import annotations

from typing import Final

from halohand.core.units import HALO_UNIT_M

#: Format tag and version written into every shard and the manifest.
FORMAT_NAME: Final = "halohand-occupancy-data"
FORMAT_VERSION: Final = 1

#: Dataset splits, in generation order, with the id used to derive per-hand seeds.
SPLITS: Final[tuple[str, ...]] = ("train", "val", "test")
SPLIT_IDS: Final[dict[str, int]] = {"train": 0, "val": 1, "test": 2}

#: HALO's network scale (metres per normalized unit); applied in the model, not here.
NETWORK_SCALE_M: Final = HALO_UNIT_M

#: Half-side of the axis-aligned cube (centred on the wrist) that uniform points fill.
BOX_HALF_SIDE_M: Final = 0.22
#: Standard deviation of the Gaussian offset of near-surface query points.
NEAR_SURFACE_SIGMA_M: Final = 0.004

#: Points per hand: uniform in the box, and surface samples plus Gaussian noise.
NUM_UNIFORM_POINTS: Final = 100_000
NUM_NEAR_POINTS: Final = 100_000
#: Area-uniform surface samples with part labels (skinning loss).
NUM_LABELLED_SURFACE: Final = 6_000
#: Area-uniform surface samples with face normals (Chamfer and normal consistency).
NUM_POINTCLOUD: Final = 100_000

#: Step of the int16 coordinate storage (10 micrometres; int16 covers +-0.32767 m).
COORD_QUANTUM_M: Final = 1e-5
COORD_LIMIT_M: Final = 32767 * COORD_QUANTUM_M

#: Inside test: generalized winding number threshold (1 inside, 0 outside a closed mesh).
WINDING_THRESHOLD: Final = 0.5

#: Per-item subsampling of the training reader (spec section 2), drawn with replacement.
QUERY_SUBSAMPLE: Final = 2048
SURFACE_SUBSAMPLE: Final = 2000

#: Interactions of the ``pairs`` kind (:mod:`halohand.data.pairs`), in the order of the
#: ids stored in pair shards.
PAIR_INTERACTIONS: Final[tuple[str, ...]] = (
    "palm_to_palm",
    "interlaced",
    "clasped",
    "hold_finger",
    "hold_wrist",
    "fingertip_palm",
    "crossed",
    "near",
)

#: Default hands per shard file (about 2.5 MB per hand).
DEFAULT_HANDS_PER_SHARD: Final = 16


def constants_dict() -> dict[str, float | int]:
    """The constants that shape the stored data, recorded in each shard and the manifest."""
    return {
        "box_half_side_m": BOX_HALF_SIDE_M,
        "near_surface_sigma_m": NEAR_SURFACE_SIGMA_M,
        "num_uniform_points": NUM_UNIFORM_POINTS,
        "num_near_points": NUM_NEAR_POINTS,
        "num_labelled_surface": NUM_LABELLED_SURFACE,
        "num_pointcloud": NUM_POINTCLOUD,
        "coord_quantum_m": COORD_QUANTUM_M,
        "winding_threshold": WINDING_THRESHOLD,
    }
