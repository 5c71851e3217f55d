"""The data engine: posed hands -> labelled point sets, written in deterministic shards.

Per hand (spec ``halo-model-training-eval.md`` section 5; units and sizes in
:mod:`halohand.data.constants`, all in metres in the hand frame, wrist at the origin):

* ``points_uniform``: 100k points uniform in the cube of half-side 0.22 m, and
  ``points_near``: 100k area-uniform surface points plus N(0, (4 mm)^2) noise per axis; both
  int16 multiples of 10 um, with exact inside/outside labels (``occ_*``, packed bits) for
  the stored coordinates. Training draws from both (50/50, as the original's mixed pool).
* ``surface_points`` / ``surface_labels``: 6,000 area-uniform surface samples with a part
  label each: the argmax of the skin weights interpolated barycentrically at the sample
  (ties to the lower part id). For a sample inside a face whose corners all share a
  label, that is the label; near part boundaries it follows the skinning field instead of the
  original's per-face majority vote, so boundaries are not stair-stepped along triangles.
* ``pointcloud`` / ``pointcloud_normals``: 100k area-uniform surface samples with unit face
  normals (float16), the ground truth of Chamfer and normal consistency.
* ``keypoints`` [21, 3], ``rest_keypoints`` [21, 3] (NaN if the source has none),
  ``part_transforms`` [16, 4, 4] (posed -> canonical, metres), ``bone_lengths`` [16],
  ``side`` (0 right, 1 left), ``hand_index``, and the ground-truth mesh (ragged
  ``mesh_vertices`` / ``mesh_faces``).

Inside test: the generalized winding number (libigl's fast winding number, the same
function evaluation uses: :func:`halohand.objects.inside.winding_number`) >= 0.5. Unlike ray
parity it stays correct where a posed hand self-intersects (a point covered twice has
winding number 2, still inside). Its agreement with embree ray parity is measured by the
tests and ``benchmarks/speed/bench_data.py``.

Determinism: hand ``i`` of split ``s`` draws everything from
``SeedSequence(seed, spawn_key=(split_id, i, stream))`` (stream 0: the hand source, stream 1:
point sampling), so the bytes of a shard depend on neither the number of workers nor the
order in which hands finish. Workers only compute; the main process writes each shard once
all its hands are in, atomically, and a rerun skips every shard that exists and validates.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from halohand.core.atomic import remove_temporaries
from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.data import constants as C
from halohand.data.dataset import read_manifest
from halohand.data.pairs import HandPair, PairSampler
from halohand.data.shards import (
    KINDS,
    SIDES,
    open_shard,
    shard_arrays,
    write_npz_deterministic,
    write_text_atomic,
)
from halohand.handmodel.hand import PosedHand
from halohand.handmodel.sources import HandSource
from halohand.objects.inside import winding_number

SourceLike = HandSource | Callable[[], HandSource]
SIDE_MODES = ("right", "left", "both")
MANIFEST = "manifest.json"
LOCK_FILE = ".halohand-data.lock"
#: Most hands per split (~1.6 TB of shards): larger counts are typos, refused up front.
MAX_HANDS_PER_SPLIT = 10_000_000


# --------------------------------------------------------------------------- per hand


def hand_seed(seed: int, split: str, index: int, stream: int) -> np.random.SeedSequence:
    """The seed sequence of one random stream of one hand (0: source, 1: sampling)."""
    return np.random.SeedSequence(seed, spawn_key=(C.SPLIT_IDS[split], index, stream))


def hand_side(side: str, index: int) -> str:
    """The side of hand ``index``: fixed, or alternating right/left for ``"both"``."""
    if side == "both":
        return "left" if index % 2 else "right"
    return side


def validate_hand(hand: PosedHand, where: str = "hand") -> None:
    """Check a source's hand before sampling it: shapes, finiteness, a closed outward mesh
    inside the uniform box. Raises :class:`HalohandInputError` naming ``where``."""
    v, f = np.asarray(hand.vertices), np.asarray(hand.faces)
    expect = {
        "vertices": (v, (None, 3)),
        "faces": (f, (None, 3)),
        "keypoints": (hand.keypoints, (21, 3)),
        "part_transforms": (hand.part_transforms, (16, 4, 4)),
        "bone_lengths": (hand.bone_lengths, (16,)),
        "skin_weights": (hand.skin_weights, (len(v), 16)),
    }
    for name, (arr, shape) in expect.items():
        arr = np.asarray(arr)
        if arr.ndim != len(shape) or any(
            s is not None and s != a for s, a in zip(shape, arr.shape, strict=False)
        ):
            raise HalohandInputError(f"{where}: {name} has shape {list(arr.shape)}")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise HalohandInputError(f"{where}: {name} has non-finite values")
    if hand.side not in SIDES:
        raise HalohandInputError(f"{where}: side {hand.side!r}")
    if len(f) == 0 or f.min() < 0 or f.max() >= len(v):
        raise HalohandInputError(f"{where}: face indices out of range")
    # Closed and consistently oriented: each directed edge exactly once, and its reverse too.
    a = f[:, [0, 1, 2]].reshape(-1).astype(np.int64)
    b = f[:, [1, 2, 0]].reshape(-1).astype(np.int64)
    n = np.int64(len(v))
    codes = a * n + b
    if len(np.unique(codes)) != len(codes) or not np.all(np.isin(b * n + a, codes)):
        raise HalohandInputError(f"{where}: mesh is not watertight and consistently oriented")
    tri = v[f]
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    if volume <= 0:
        raise HalohandInputError(f"{where}: mesh faces point inward (volume {volume:.3g} m^3)")
    # Beyond the uniform box is allowed (counted and reported: the box then misses a
    # fingertip), beyond the int16 storage range is not.
    if np.abs(v).max() > C.COORD_LIMIT_M - 6 * C.NEAR_SURFACE_SIGMA_M:
        raise HalohandInputError(
            f"{where}: hand reaches {np.abs(v).max():.3f} m from the wrist; the data format "
            f"stores coordinates up to +-{C.COORD_LIMIT_M:.3f} m"
        )


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-uniform surface samples.

    Returns:
        points ``[n, 3]`` float64, face ids ``[n]`` int64, barycentric weights ``[n, 3]``.
    """
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    cum = np.cumsum(area)
    face = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
    face = np.minimum(face, len(faces) - 1)
    uv = rng.random((n, 2))
    flip = uv.sum(1) > 1.0
    uv[flip] = 1.0 - uv[flip]
    bary = np.column_stack([1.0 - uv.sum(1), uv])
    points = np.einsum("nk,nkd->nd", bary, tri[face])
    return points, face, bary


def quantize(points: np.ndarray) -> np.ndarray:
    """Metres -> int16 multiples of ``COORD_QUANTUM_M`` (clipped to +-32767 steps)."""
    q = np.rint(np.asarray(points) / C.COORD_QUANTUM_M)
    return np.clip(q, -32767, 32767).astype(np.int16)


def dequantize(q: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """int16 steps -> metres."""
    return q.astype(dtype) * dtype(C.COORD_QUANTUM_M)


def inside(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The engine's inside test: winding number >= 0.5 (``[N]`` bool)."""
    return winding_number(vertices, faces, points) >= C.WINDING_THRESHOLD


def sample_hand(
    hand: PosedHand, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """All stored arrays of one hand (shapes: :func:`halohand.data.shards.hand_schema`).

    Returns the arrays and statistics: seconds spent sampling and in the inside test, and
    ``reach_m``, the largest |coordinate| of the mesh (beyond ``BOX_HALF_SIDE_M`` the
    uniform points do not cover the whole hand).
    """
    t0 = time.perf_counter()
    v = np.ascontiguousarray(hand.vertices, dtype=np.float64)
    f = np.ascontiguousarray(hand.faces, dtype=np.int64)
    b = C.BOX_HALF_SIDE_M
    uniform = quantize(rng.uniform(-b, b, (C.NUM_UNIFORM_POINTS, 3)))
    surf, _, _ = sample_surface(v, f, C.NUM_NEAR_POINTS, rng)
    near = quantize(surf + rng.normal(0.0, C.NEAR_SURFACE_SIGMA_M, surf.shape))
    lab_pts, lab_face, lab_bary = sample_surface(v, f, C.NUM_LABELLED_SURFACE, rng)
    weights = np.einsum("nk,nkj->nj", lab_bary, np.asarray(hand.skin_weights)[f[lab_face]])
    labels = np.argmax(weights, axis=1).astype(np.uint8)
    pc_pts, pc_face, _ = sample_surface(v, f, C.NUM_POINTCLOUD, rng)
    tri = v[f[pc_face]]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    t1 = time.perf_counter()
    # Labels are computed on the stored (quantized) coordinates, so they are exact for them.
    occ = inside(v, f, dequantize(np.concatenate([uniform, near])))
    t2 = time.perf_counter()
    arrays = {
        "points_uniform": uniform,
        "occ_uniform": np.packbits(occ[: C.NUM_UNIFORM_POINTS]),
        "points_near": near,
        "occ_near": np.packbits(occ[C.NUM_UNIFORM_POINTS :]),
        "surface_points": lab_pts.astype(np.float32),
        "surface_labels": labels,
        "pointcloud": quantize(pc_pts),
        "pointcloud_normals": normals.astype(np.float16),
        "keypoints": np.asarray(hand.keypoints, dtype=np.float64),
        "part_transforms": np.asarray(hand.part_transforms, dtype=np.float64),
        "bone_lengths": np.asarray(hand.bone_lengths, dtype=np.float64),
        "rest_keypoints": (
            np.full((21, 3), np.nan)
            if getattr(hand, "rest_keypoints", None) is None
            else np.asarray(hand.rest_keypoints, dtype=np.float64)
        ),
        "side": np.uint8(SIDES.index(hand.side)),
        "mesh_vertices": v,
        "mesh_faces": f.astype(np.int32),
    }
    return arrays, {"sampling_s": t1 - t0, "inside_s": t2 - t1, "reach_m": float(np.abs(v).max())}


def make_hand(
    source: HandSource, seed: int, split: str, index: int, side: str
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Pose and sample hand ``index`` of ``split``: deterministic in (seed, split, index)."""
    t0 = time.perf_counter()
    hand = source.sample(np.random.default_rng(hand_seed(seed, split, index, 0)), side=side)
    validate_hand(hand, where=f"{split} hand {index} from source {source.name!r}")
    t1 = time.perf_counter()
    arrays, timings = sample_hand(hand, np.random.default_rng(hand_seed(seed, split, index, 1)))
    arrays["hand_index"] = np.int64(index)
    timings["posing_s"] = t1 - t0
    return arrays, timings


# --------------------------------------------------------------------------- per pair


def sample_pair(
    pair: HandPair, rng: np.random.Generator
) -> tuple[dict[str, Any], dict[str, float]]:
    """All stored arrays of one pair (shapes: :func:`halohand.data.shards.pair_schema`).

    Query points are shared by the two hands: uniform in the cube of half-side
    ``BOX_HALF_SIDE_M`` about the pair's centre (its frame's origin), and near-surface points,
    half around each hand; each point has one label per hand, computed on the stored
    (quantized) coordinates with the same inside test as single hands.
    """
    t0 = time.perf_counter()
    hands = pair.hands
    mesh = [
        (np.ascontiguousarray(h.vertices, np.float64), np.ascontiguousarray(h.faces, np.int64))
        for h in hands
    ]
    b = C.BOX_HALF_SIDE_M
    uniform = quantize(rng.uniform(-b, b, (C.NUM_UNIFORM_POINTS, 3)))
    halves = (C.NUM_NEAR_POINTS // 2, C.NUM_NEAR_POINTS - C.NUM_NEAR_POINTS // 2)
    near_parts = []
    for (v, f), n in zip(mesh, halves, strict=True):
        surf, _, _ = sample_surface(v, f, n, rng)
        near_parts.append(surf + rng.normal(0.0, C.NEAR_SURFACE_SIGMA_M, surf.shape))
    near = quantize(np.concatenate(near_parts))
    t1 = time.perf_counter()
    pts = dequantize(np.concatenate([uniform, near]))
    occ = np.stack([inside(v, f, pts) for v, f in mesh])
    t2 = time.perf_counter()
    pen = pair.penetration
    arrays: dict[str, Any] = {
        "points_uniform": uniform,
        "occ_uniform": np.packbits(occ[:, : C.NUM_UNIFORM_POINTS], axis=-1),
        "points_near": near,
        "occ_near": np.packbits(occ[:, C.NUM_UNIFORM_POINTS :], axis=-1),
        "keypoints": np.stack([h.keypoints for h in hands]),
        "part_transforms": np.stack([h.part_transforms for h in hands]),
        "bone_lengths": np.stack([h.bone_lengths for h in hands]),
        "rest_keypoints": np.stack(
            [
                np.full((21, 3), np.nan) if h.rest_keypoints is None else h.rest_keypoints
                for h in hands
            ]
        ),
        "interaction": np.uint8(C.PAIR_INTERACTIONS.index(pair.interaction)),
        "penetration": np.array(
            [pen.max_depth, pen.mean_depth, pen.count, pen.min_distance], dtype=np.float64
        ),
        "gap_m": np.float64(pair.gap_m),
        "mesh_vertices": [v for v, _ in mesh],
        "mesh_faces": [f.astype(np.int32) for _, f in mesh],
    }
    reach = float(max(np.abs(v).max() for v, _ in mesh))
    return arrays, {"sampling_s": t1 - t0, "inside_s": t2 - t1, "reach_m": reach}


def make_pair(
    sampler: PairSampler, seed: int, split: str, index: int
) -> tuple[dict[str, Any], dict[str, float]]:
    """Place and sample pair ``index`` of ``split``: deterministic in (seed, split, index)."""
    t0 = time.perf_counter()
    pair = sampler.sample(np.random.default_rng(hand_seed(seed, split, index, 0)))
    for hand in pair.hands:
        validate_hand(hand, where=f"{split} pair {index} ({hand.side} hand)")
    t1 = time.perf_counter()
    arrays, timings = sample_pair(pair, np.random.default_rng(hand_seed(seed, split, index, 1)))
    arrays["hand_index"] = np.int64(index)
    timings["posing_s"] = t1 - t0
    return arrays, timings


def make_item(
    source: Any, seed: int, split: str, index: int, side: str
) -> tuple[dict[str, Any], dict[str, float]]:
    """One item of the dataset kind ``source`` samples: a pair from a :class:`PairSampler`,
    else a hand."""
    if isinstance(source, PairSampler):
        return make_pair(source, seed, split, index)
    return make_hand(source, seed, split, index, side)


# --------------------------------------------------------------------------- workers

_WORKER_SOURCE: HandSource | None = None


def _resolve(source: SourceLike) -> HandSource:
    # A class is a factory too (it has ``sample`` only as an unbound method).
    if isinstance(source, type) or not hasattr(source, "sample"):
        return source()  # type: ignore[operator,return-value]
    return source  # type: ignore[return-value]


def _exit_with(main_pid: int, period_s: float = 1.0) -> None:
    """Wait (in a daemon thread) until process ``main_pid`` is gone, then end this worker.

    A worker's parent is the forkserver, not the generating process, so a ``kill -9`` of
    the latter would otherwise leave workers running their queue to the end.
    """

    def watch() -> None:
        while True:
            time.sleep(period_s)
            try:
                os.kill(main_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # pragma: no cover - pid reused by another user's process
                os._exit(1)

    threading.Thread(target=watch, name="halohand-parent-watch", daemon=True).start()


def _init_worker(source: SourceLike, main_pid: int | None = None) -> None:
    global _WORKER_SOURCE
    if main_pid is not None:
        _exit_with(main_pid)
    _WORKER_SOURCE = _resolve(source)


def _worker_make_hand(
    seed: int, split: str, index: int, side: str
) -> tuple[str, int, dict[str, np.ndarray], dict[str, float]]:
    assert _WORKER_SOURCE is not None
    arrays, timings = make_item(_WORKER_SOURCE, seed, split, index, side)
    return split, index, arrays, timings


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class ShardPlan:
    """One shard to produce: ``DIR/<split>/shard_<number>.npz`` with hands [first, first+n)."""

    split: str
    number: int
    first: int
    count: int

    @property
    def relpath(self) -> str:
        return f"{self.split}/shard_{self.number:05d}.npz"


@dataclass
class GenerateReport:
    """What :func:`generate` did. Timings are sums over the hands generated in this run."""

    out: Path
    hands_generated: int = 0
    shards_written: int = 0
    shards_skipped: int = 0
    shards_regenerated: list[str] = field(default_factory=list)
    seconds: float = 0.0
    hands_outside_box: int = 0
    max_reach_m: float = 0.0
    timings: dict[str, float] = field(
        default_factory=lambda: {"posing_s": 0.0, "sampling_s": 0.0, "inside_s": 0.0}
    )

    @property
    def hands_per_second(self) -> float:
        return self.hands_generated / self.seconds if self.seconds > 0 else 0.0


def plan_shards(counts: dict[str, int], hands_per_shard: int) -> list[ShardPlan]:
    """Split each split's hands into consecutive shards of ``hands_per_shard`` (last smaller)."""
    plans = []
    for split in C.SPLITS:
        n = counts.get(split, 0)
        for number, first in enumerate(range(0, n, hands_per_shard)):
            plans.append(ShardPlan(split, number, first, min(hands_per_shard, n - first)))
    return plans


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    return {
        "halohand": v("halohand"),
        "numpy": np.__version__,
        "libigl": v("libigl"),
        "trimesh": v("trimesh"),
        "python": ".".join(map(str, sys.version_info[:3])),
    }


def _shard_meta(settings: dict[str, Any], plan: ShardPlan) -> dict[str, Any]:
    # single-hand shards keep the metadata they always had (no "kind"), so existing data
    # folders resume and verify unchanged
    kind = {"kind": settings["kind"]} if "kind" in settings else {}
    return kind | {
        "format": C.FORMAT_NAME,
        "version": C.FORMAT_VERSION,
        "split": plan.split,
        "shard": plan.number,
        "first_index": plan.first,
        "num_hands": plan.count,
        "seed": settings["seed"],
        "source": settings["source"],
        "side": settings["side"],
        "constants": C.constants_dict(),
    }


def _check_existing(path: Path, expected_meta: dict[str, Any]) -> bool:
    """True if ``path`` is a finished shard of this run; False if absent or corrupt (to be
    regenerated). Raises if it validates but belongs to another run."""
    if not path.exists():
        return False
    try:
        shard = open_shard(path, verify=True)
    except CorruptFileError as exc:
        print(f"warning: {exc}; regenerating it", file=sys.stderr)
        return False
    if shard.meta != expected_meta:
        diff = sorted(k for k in expected_meta if shard.meta.get(k) != expected_meta[k])
        raise CorruptFileError(
            f"{path}: shard belongs to a different run (differs in {', '.join(diff)}); "
            "remove it or use another --out"
        )
    return True


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest_text(settings: dict[str, Any], shards: list[dict[str, Any]] | None) -> str:
    doc = {
        "format": C.FORMAT_NAME,
        "version": C.FORMAT_VERSION,
        **({"kind": settings["kind"]} if "kind" in settings else {}),
        "settings": settings,
        "constants": C.constants_dict(),
        "units": "metres, hand frame with the wrist at the origin; int16 coordinates are "
        "multiples of constants.coord_quantum_m",
        "versions": _versions(),
        "complete": shards is not None,
        "shards": shards or [],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _check_manifest(out: Path, settings: dict[str, Any]) -> None:
    path = out / MANIFEST
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        old_settings = old["settings"]
        if old.get("format") != C.FORMAT_NAME:
            raise ValueError("not a halohand manifest")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptFileError(f"{path}: unreadable data manifest ({exc})") from None
    if old.get("version") != C.FORMAT_VERSION or old.get("constants") != C.constants_dict():
        raise HalohandInputError(
            f"{out} holds data of another format version or constants; use another --out"
        )
    if old_settings != settings:
        # "kind" is only recorded for pairs: a key on either side counts
        keys = set(settings) | set(old_settings)
        diff = sorted(k for k in keys if old_settings.get(k) != settings.get(k))
        was = ", ".join(f"{k}={old_settings.get(k)!r} (now {settings.get(k)!r})" for k in diff)
        raise HalohandInputError(
            f"{out} was generated with {was}; use the same settings to resume, or another --out"
        )


def _clean_temporaries(out: Path) -> None:
    # Leftovers of a killed run, in the folder and its splits' folders.
    for folder in [out, *(out / s for s in C.SPLITS)]:
        remove_temporaries(folder)


def _iter_tasks(plans: list[ShardPlan], side: str) -> Iterator[tuple[str, int, str]]:
    for plan in plans:
        for index in range(plan.first, plan.first + plan.count):
            yield plan.split, index, hand_side(side, index)


def generate(
    out: str | os.PathLike[str],
    counts: dict[str, int],
    seed: int,
    source: SourceLike,
    source_name: str | None = None,
    side: str = "right",
    hands_per_shard: int = C.DEFAULT_HANDS_PER_SHARD,
    workers: int | None = None,
    progress: bool = True,
    kind: str = "hands",
) -> GenerateReport:
    """Generate (or resume) a dataset in ``out``.

    Args:
        out: output folder; gets ``manifest.json`` and ``<split>/shard_NNNNN.npz``.
        counts: hands per split, e.g. ``{"train": 8, "val": 2, "test": 2}``.
        seed: master seed; hand i of split s depends on (seed, s, i) only.
        source: a :class:`HandSource`, or a zero-argument factory of one (called once per
            worker; use it for sources that are expensive or impossible to pickle).
        source_name: the name recorded in the data (default: the source's ``name``).
        side: ``"right"``, ``"left"`` or ``"both"`` (alternating by hand index).
        hands_per_shard: hands per shard file.
        workers: processes; ``None`` = number of CPU cores; 1 = in this process.
        progress: show a tqdm bar on stderr.
        kind: ``"hands"`` (one hand per item) or ``"pairs"`` (two interacting hands per
            item with per-hand labels on shared points; ``source`` is then a
            :class:`~halohand.data.pairs.PairSampler`, ``side`` is ignored and counts, shard
            sizes and ``hand_index`` count pairs).

    Raises:
        HalohandInputError: bad arguments, or ``out`` holds data made with other settings.
        CorruptFileError: a shard in ``out`` belongs to another run.
    """
    t_start = time.perf_counter()
    out = Path(out)
    for split, n in counts.items():
        if split not in C.SPLITS:
            raise HalohandInputError(f"unknown split {split!r}; expected {', '.join(C.SPLITS)}")
        if not isinstance(n, int) or n < 0:
            raise HalohandInputError(f"--n-{split} must be a non-negative integer, got {n!r}")
        if n > MAX_HANDS_PER_SPLIT:
            raise HalohandInputError(f"--n-{split} {n} is over the limit of {MAX_HANDS_PER_SPLIT}")
    if sum(counts.values()) == 0:
        raise HalohandInputError("nothing to generate: all of --n-train/--n-val/--n-test are 0")
    if side not in SIDE_MODES:
        raise HalohandInputError(f"--side must be one of {', '.join(SIDE_MODES)}, got {side!r}")
    if hands_per_shard < 1:
        raise HalohandInputError(f"--hands-per-shard must be >= 1, got {hands_per_shard}")
    if not 0 <= seed < 2**63:
        raise HalohandInputError(f"--seed must be in [0, 2^63), got {seed}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise HalohandInputError(f"--workers must be >= 1, got {workers}")
    if out.exists() and not out.is_dir():
        raise HalohandInputError(f"--out {out} exists and is not a folder")

    resolved: HandSource | None = None
    if source_name is None or kind == "pairs":
        resolved = _resolve(source)
        source_name = resolved.name if source_name is None else source_name
    if kind not in KINDS:
        raise HalohandInputError(f"unknown dataset kind {kind!r}; expected {', '.join(KINDS)}")
    if (kind == "pairs") != isinstance(resolved, PairSampler):
        raise HalohandInputError(
            "pairs are sampled by a halohand.data.pairs.PairSampler, hands by a hand source"
        )
    settings = {
        "seed": int(seed),
        "source": source_name,
        "side": side,
        "hands_per_shard": int(hands_per_shard),
        "counts": {s: int(counts.get(s, 0)) for s in C.SPLITS},
    }
    if kind == "pairs":
        settings["kind"] = "pairs"
    out.mkdir(parents=True, exist_ok=True)
    lock = open(out / LOCK_FILE, "a+")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HalohandInputError(f"another 'data generate' is writing to {out}") from None
        _check_manifest(out, settings)
        _clean_temporaries(out)
        for split in C.SPLITS:
            if settings["counts"][split]:
                (out / split).mkdir(exist_ok=True)
        write_text_atomic(out / MANIFEST, _manifest_text(settings, None))

        report = GenerateReport(out=out)
        plans = plan_shards(settings["counts"], hands_per_shard)
        todo = []
        for plan in plans:
            path = out / plan.relpath
            existed = path.exists()
            if _check_existing(path, _shard_meta(settings, plan)):
                report.shards_skipped += 1
            else:
                if existed:
                    report.shards_regenerated.append(plan.relpath)
                todo.append(plan)
        _run(out, todo, settings, source, resolved, workers, progress, report)

        entries = [
            {
                "file": plan.relpath,
                "hands": plan.count,
                "first_index": plan.first,
                "bytes": (out / plan.relpath).stat().st_size,
                "sha256": _sha256(out / plan.relpath),
            }
            for plan in plans
        ]
        write_text_atomic(out / MANIFEST, _manifest_text(settings, entries))
    finally:
        lock.close()
    report.seconds = time.perf_counter() - t_start
    return report


def _run(
    out: Path,
    todo: list[ShardPlan],
    settings: dict[str, Any],
    source: SourceLike,
    resolved: HandSource | None,
    workers: int,
    progress: bool,
    report: GenerateReport,
) -> None:
    """Generate the hands of ``todo`` and write each shard as soon as it is complete."""
    from tqdm import tqdm

    total = sum(p.count for p in todo)
    if total == 0:
        return
    by_hand = {(p.split, i): p for p in todo for i in range(p.first, p.first + p.count)}
    buffers: dict[ShardPlan, dict[int, dict[str, np.ndarray]]] = {p: {} for p in todo}
    seed = settings["seed"]
    bar = tqdm(
        total=total, unit="hand", desc="data generate", file=sys.stderr, disable=not progress
    )

    def accept(split: str, index: int, arrays: dict[str, np.ndarray], timings: dict) -> None:
        plan = by_hand[(split, index)]
        buffers[plan][index] = arrays
        reach = timings.pop("reach_m")
        report.max_reach_m = max(report.max_reach_m, reach)
        report.hands_outside_box += int(reach > C.BOX_HALF_SIDE_M)
        for key, value in timings.items():
            report.timings[key] = report.timings.get(key, 0.0) + value
        report.hands_generated += 1
        bar.update(1)
        if len(buffers[plan]) == plan.count:
            done = buffers.pop(plan)
            hands = [done[i] for i in range(plan.first, plan.first + plan.count)]
            meta = _shard_meta(settings, plan)
            write_npz_deterministic(out / plan.relpath, shard_arrays(hands, meta))
            report.shards_written += 1

    tasks = _iter_tasks(todo, settings["side"])
    try:
        if workers == 1:
            src = resolved if resolved is not None else _resolve(source)
            for split, index, side in tasks:
                arrays, timings = make_item(src, seed, split, index, side)
                accept(split, index, arrays, timings)
            return
        ctx = _mp_context()
        # A small window of hands in flight bounds memory (a finished hand is ~2.5 MB) while
        # keeping every worker busy; results are buffered per shard until it is complete.
        window = 2 * workers
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(source, os.getpid()),
        ) as pool:
            pending: set[Future] = set()
            try:
                for task in tasks:
                    pending.add(pool.submit(_worker_make_hand, seed, *task))
                    if len(pending) >= window:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            accept(*fut.result())
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        accept(*fut.result())
            except BaseException:
                for fut in pending:
                    fut.cancel()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        bar.close()


def _mp_context() -> mp.context.BaseContext:
    # forkserver: workers start from a clean process that has imported numpy/igl/trimesh
    # once (no torch, no inherited threads); spawn where forkserver does not exist.
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["halohand.data.engine"])
        return ctx
    return mp.get_context("spawn")


def verify(root: str | os.PathLike[str], splits: Sequence[str] | None = None) -> tuple[int, int]:
    """Check a finished data folder: every shard of the manifest (of ``splits`` only, when
    given) exists, has the recorded SHA-256, and validates (structure and CRCs). Returns
    (shards, hands).

    Raises:
        CorruptFileError: naming the first bad file.
        HalohandInputError: not a data folder, or generation did not finish.
    """

    root = Path(root)
    manifest = read_manifest(root)
    if not manifest.get("complete"):
        raise HalohandInputError(f"{root}: generation has not finished (manifest incomplete)")
    hands = 0
    entries = [e for e in manifest["shards"] if splits is None or e["file"].split("/")[0] in splits]
    for entry in entries:
        path = root / entry["file"]
        if not path.is_file():
            raise CorruptFileError(f"{path}: data shard listed in the manifest is missing")
        if _sha256(path) != entry["sha256"]:
            raise CorruptFileError(f"{path}: SHA-256 differs from the manifest (modified?)")
        shard = open_shard(path, verify=True)
        if shard.num_hands != entry["hands"]:
            raise CorruptFileError(
                f"{path}: {shard.num_hands} hands, manifest says {entry['hands']}"
            )
        hands += shard.num_hands
    return len(entries), hands
