"""Shard files: a deterministic, memory-mappable ``.npz`` of K hands.

A shard is an ordinary uncompressed NumPy ``.npz`` (``np.load`` reads it), written so that
the same arrays always give the same bytes:

* zip entries carry a fixed timestamp (1980-01-01) and fixed attributes (``np.savez`` stamps
  the current time);
* entries are stored, not deflated, and each array's data starts on a 64-byte boundary (the
  local header is padded with an ``extra`` field, as Android's zipalign does), so the reader
  memory-maps every array instead of reading the whole file;
* the file is written to a temporary name in the same folder, flushed, fsynced and renamed
  with ``os.replace``: a shard either exists complete or not at all.

Per-hand arrays are stacked along a leading axis of length K. Meshes differ in size between
sources, so they are stored ragged: concatenated vertices/faces plus ``[K + 1]`` offsets.
The JSON ``meta`` entry (a 0-d unicode array) names the format, version, split, shard number,
seed, source and the data constants; the reader checks it against the schema below.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from halohand.core.atomic import write_text_atomic as _write_text
from halohand.core.errors import CorruptFileError
from halohand.data import constants as C

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ALIGN = 64
_PAD_HEADER_ID = 0xD935  # the id zipalign uses for its padding field
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # 30 bytes


def hand_schema(consts: Mapping[str, Any]) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Per-hand arrays: name -> (dtype, shape of one hand). Leading axis K in the file.

    Coordinates marked int16 are multiples of ``coord_quantum_m`` metres; ``occ_*`` are
    ``np.packbits`` (big bit order) of the boolean occupancies.
    """
    nu, nn = int(consts["num_uniform_points"]), int(consts["num_near_points"])
    ns, npc = int(consts["num_labelled_surface"]), int(consts["num_pointcloud"])
    return {
        "points_uniform": (np.dtype(np.int16), (nu, 3)),
        "occ_uniform": (np.dtype(np.uint8), ((nu + 7) // 8,)),
        "points_near": (np.dtype(np.int16), (nn, 3)),
        "occ_near": (np.dtype(np.uint8), ((nn + 7) // 8,)),
        "surface_points": (np.dtype(np.float32), (ns, 3)),
        "surface_labels": (np.dtype(np.uint8), (ns,)),
        "pointcloud": (np.dtype(np.int16), (npc, 3)),
        "pointcloud_normals": (np.dtype(np.float16), (npc, 3)),
        "keypoints": (np.dtype(np.float64), (21, 3)),
        "part_transforms": (np.dtype(np.float64), (16, 4, 4)),
        "bone_lengths": (np.dtype(np.float64), (16,)),
        "rest_keypoints": (np.dtype(np.float64), (21, 3)),
        "side": (np.dtype(np.uint8), ()),
        "hand_index": (np.dtype(np.int64), ()),
    }


def pair_schema(consts: Mapping[str, Any]) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Per-pair arrays of the ``pairs`` kind (:mod:`halohand.data.pairs`): shared query points
    and one occupancy per hand on them (axis 0 of ``occ_*``: 0 right, 1 left).

    ``points_uniform``: uniform in the box about the pair's centre; ``points_near``: half
    near each hand's surface (right first). Hands are stacked right, left.
    """
    nu, nn = int(consts["num_uniform_points"]), int(consts["num_near_points"])
    return {
        "points_uniform": (np.dtype(np.int16), (nu, 3)),
        "occ_uniform": (np.dtype(np.uint8), (2, (nu + 7) // 8)),
        "points_near": (np.dtype(np.int16), (nn, 3)),
        "occ_near": (np.dtype(np.uint8), (2, (nn + 7) // 8)),
        "keypoints": (np.dtype(np.float64), (2, 21, 3)),
        "part_transforms": (np.dtype(np.float64), (2, 16, 4, 4)),
        "bone_lengths": (np.dtype(np.float64), (2, 16)),
        "rest_keypoints": (np.dtype(np.float64), (2, 21, 3)),
        "interaction": (np.dtype(np.uint8), ()),
        "penetration": (np.dtype(np.float64), (4,)),
        "gap_m": (np.dtype(np.float64), ()),
        "hand_index": (np.dtype(np.int64), ()),
    }


#: Dataset kinds: ``hands`` (one hand per item, the default) and ``pairs`` (two hands).
KINDS = ("hands", "pairs")


def kind_of(meta: Mapping[str, Any]) -> str:
    """The dataset kind a shard's (or manifest's) metadata names (``hands`` when absent)."""
    return str(meta.get("kind", "hands"))


def schema_for(meta: Mapping[str, Any]) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """The per-item schema of a shard from its metadata (kind and constants)."""
    kind = kind_of(meta)
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}")
    return (pair_schema if kind == "pairs" else hand_schema)(meta["constants"])


def meshes_per_item(meta: Mapping[str, Any]) -> int:
    """Ragged meshes per item: 1 for hands, 2 (right, left) for pairs."""
    return 2 if kind_of(meta) == "pairs" else 1


#: Ragged per-shard arrays: name -> (dtype, trailing shape), with their offsets arrays.
RAGGED: dict[str, tuple[np.dtype, tuple[int, ...], str]] = {
    "mesh_vertices": (np.dtype(np.float64), (3,), "mesh_vertex_offsets"),
    "mesh_faces": (np.dtype(np.int32), (3,), "mesh_face_offsets"),
}

SIDES = ("right", "left")


def _aligned_entry(zf: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    """A ZipInfo whose data will start on an ``_ALIGN`` boundary of the file."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    assert zf.fp is not None
    start = zf.fp.tell() + _LOCAL_HEADER.size + len(name.encode())
    pad = (-(start + 4)) % _ALIGN  # the extra field itself takes 4 bytes of header
    info.extra = struct.pack("<HH", _PAD_HEADER_ID, pad) + b"\0" * pad
    return info


def write_npz_deterministic(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed, 64-byte-aligned ``.npz`` at ``path``, atomically.

    Identical arrays (same names, order, dtypes, values) give identical bytes.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as fh:
            with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for key, value in arrays.items():
                    arr = np.asarray(value)
                    info = _aligned_entry(zf, f"{key}.npy")
                    big = arr.nbytes > (1 << 31) - (1 << 20)
                    with zf.open(info, "w", force_zip64=big) as out:
                        np.lib.format.write_array(out, arr, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a small text file atomically (temp file in the same folder + ``os.replace``)."""
    path = Path(path)
    _write_text(path, text)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every filesystem allows opening a directory.
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def shard_arrays(hands: list[dict[str, np.ndarray]], meta: Mapping[str, Any]) -> dict[str, Any]:
    """Stack per-hand arrays (from :func:`halohand.data.engine.sample_hand`) into shard order."""
    schema = schema_for(meta)
    out: dict[str, Any] = {"meta": np.array(json.dumps(dict(meta), sort_keys=True))}
    for key, (dtype, _) in schema.items():
        out[key] = np.stack([h[key] for h in hands]).astype(dtype, copy=False)
    for key, (dtype, _, offsets_key) in RAGGED.items():
        # a pair holds a list of its two meshes (right, left); a hand holds one
        parts = [p for h in hands for p in (h[key] if isinstance(h[key], list) else [h[key]])]
        out[key] = np.concatenate(parts).astype(dtype, copy=False)
        out[offsets_key] = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(
            np.int64
        )
    return out


@dataclass
class Shard:
    """An opened shard: validated metadata and memory-mapped arrays (read-only).

    ``arrays`` maps every name of :func:`hand_schema` and :data:`RAGGED` (plus the offsets) to
    an ``np.memmap``; nothing is read until it is indexed.
    """

    path: Path
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def num_hands(self) -> int:
        return int(self.meta["num_hands"])

    def mesh(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground-truth mesh ``k``: ``([V, 3] float64 metres, [F, 3] int64)``; hand ``k``,
        or for pairs hand ``k % 2`` (0 right, 1 left) of pair ``k // 2``."""
        vo, fo = self.arrays["mesh_vertex_offsets"], self.arrays["mesh_face_offsets"]
        v = np.array(self.arrays["mesh_vertices"][vo[k] : vo[k + 1]])
        f = np.array(self.arrays["mesh_faces"][fo[k] : fo[k + 1]], dtype=np.int64)
        return v, f

    def pair(self, k: int) -> dict[str, Any]:
        """Everything about pair ``k`` of a ``pairs`` shard, decoded: shared points as
        float32 metres, ``occ_*`` ``[2, N]`` bool (right, left), the interaction's name,
        ``penetration`` (max depth, mean depth, penetrating vertices, min distance; metres)
        and both GT meshes (``meshes``: [(V, F) right, (V, F) left])."""
        if kind_of(self.meta) != "pairs":
            raise CorruptFileError(f"{self.path}: holds single hands, not pairs")
        if not 0 <= k < self.num_hands:
            raise IndexError(f"pair {k} out of range for {self.path} ({self.num_hands} pairs)")
        q = np.float32(self.meta["constants"]["coord_quantum_m"])
        a = self.arrays
        nu, nn = a["points_uniform"].shape[1], a["points_near"].shape[1]
        return {
            "points_uniform": a["points_uniform"][k].astype(np.float32) * q,
            "occ_uniform": np.unpackbits(a["occ_uniform"][k], axis=-1)[:, :nu].astype(bool),
            "points_near": a["points_near"][k].astype(np.float32) * q,
            "occ_near": np.unpackbits(a["occ_near"][k], axis=-1)[:, :nn].astype(bool),
            "keypoints": np.array(a["keypoints"][k]),
            "part_transforms": np.array(a["part_transforms"][k]),
            "bone_lengths": np.array(a["bone_lengths"][k]),
            "rest_keypoints": np.array(a["rest_keypoints"][k]),
            "interaction": C.PAIR_INTERACTIONS[int(a["interaction"][k])],
            "penetration": np.array(a["penetration"][k]),
            "gap_m": float(a["gap_m"][k]),
            "hand_index": int(a["hand_index"][k]),
            "meshes": [self.mesh(2 * k), self.mesh(2 * k + 1)],
        }

    def hand(self, k: int) -> dict[str, Any]:
        """Everything about hand ``k``, decoded: coordinates as float32 metres, occupancies
        as bool, labels as int64, ``side`` as ``"right"``/``"left"``, plus the GT mesh."""
        if kind_of(self.meta) != "hands":
            raise CorruptFileError(f"{self.path}: holds hand pairs; read them with pair(k)")
        if not 0 <= k < self.num_hands:
            raise IndexError(f"hand {k} out of range for {self.path} ({self.num_hands} hands)")
        q = np.float32(self.meta["constants"]["coord_quantum_m"])
        a = self.arrays
        nu = a["points_uniform"].shape[1]
        nn = a["points_near"].shape[1]
        v, f = self.mesh(k)
        return {
            "points_uniform": a["points_uniform"][k].astype(np.float32) * q,
            "occ_uniform": np.unpackbits(a["occ_uniform"][k])[:nu].astype(bool),
            "points_near": a["points_near"][k].astype(np.float32) * q,
            "occ_near": np.unpackbits(a["occ_near"][k])[:nn].astype(bool),
            "surface_points": np.array(a["surface_points"][k]),
            "surface_labels": a["surface_labels"][k].astype(np.int64),
            "pointcloud": a["pointcloud"][k].astype(np.float32) * q,
            "pointcloud_normals": a["pointcloud_normals"][k].astype(np.float32),
            "keypoints": np.array(a["keypoints"][k]),
            "part_transforms": np.array(a["part_transforms"][k]),
            "bone_lengths": np.array(a["bone_lengths"][k]),
            "rest_keypoints": np.array(a["rest_keypoints"][k]),
            "side": SIDES[int(a["side"][k])],
            "hand_index": int(a["hand_index"][k]),
            "mesh_vertices": v,
            "mesh_faces": f,
        }


def _bad(path: Path, why: str) -> CorruptFileError:
    return CorruptFileError(f"{path}: not a valid halohand data shard ({why})")


def _entry_array(path: Path, fh: Any, info: zipfile.ZipInfo) -> tuple[np.dtype, tuple, int]:
    """Locate the ``.npy`` inside a stored zip entry: (dtype, shape, data offset in file)."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise _bad(path, f"entry {info.filename} is compressed")
    fh.seek(info.header_offset)
    raw = fh.read(_LOCAL_HEADER.size)
    if len(raw) != _LOCAL_HEADER.size:
        raise _bad(path, "truncated")
    fields = _LOCAL_HEADER.unpack(raw)
    if fields[0] != b"PK\x03\x04":
        raise _bad(path, f"bad local header for {info.filename}")
    start = info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10]
    fh.seek(start)
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    except ValueError as exc:
        raise _bad(path, f"entry {info.filename}: {exc}") from None
    if fortran or dtype.hasobject:
        raise _bad(path, f"entry {info.filename} has an unsupported layout")
    offset = fh.tell()
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset - start + nbytes != info.file_size:
        raise _bad(path, f"entry {info.filename} has the wrong size")
    return dtype, tuple(shape), offset


def open_shard(path: str | os.PathLike[str], verify: bool = False) -> Shard:
    """Open and validate a shard: keys, dtypes, shapes, offsets and metadata.

    Args:
        path: the ``.npz`` shard.
        verify: also read every byte and check the zip CRCs (detects bit rot; slower).

    Raises:
        CorruptFileError: naming the file, for a missing, truncated, corrupt or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(f"{path}: data shard not found")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _bad(path, f"unreadable zip: {exc}") from None
    with zf:
        try:
            names = {i.filename: i for i in zf.infolist()}
            if "meta.npy" not in names:
                raise _bad(path, "no meta entry; foreign file?")
            with zf.open("meta.npy") as fh:
                meta_arr = np.lib.format.read_array(fh, allow_pickle=False)
            meta = json.loads(str(meta_arr[()]))
            if verify:
                broken = zf.testzip()
                if broken is not None:
                    raise _bad(path, f"CRC mismatch in entry {broken}")
        except CorruptFileError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            raise _bad(path, f"{type(exc).__name__}: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != C.FORMAT_NAME:
            raise _bad(path, "meta does not name the halohand format; foreign file?")
        if meta.get("version") != C.FORMAT_VERSION:
            raise _bad(path, f"format version {meta.get('version')}, expected {C.FORMAT_VERSION}")
        try:
            k = int(meta["num_hands"])
            schema = schema_for(meta)
            n_meshes = k * meshes_per_item(meta)
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(path, f"incomplete meta: {exc}") from None
        expected: dict[str, tuple[np.dtype, tuple[int, ...] | None]] = {
            key: (dt, (k, *shape)) for key, (dt, shape) in schema.items()
        }
        for key, (dt, _, offsets_key) in RAGGED.items():
            expected[key] = (dt, None)
            expected[offsets_key] = (np.dtype(np.int64), (n_meshes + 1,))
        arrays: dict[str, np.ndarray] = {}
        with open(path, "rb") as fh:
            for key, (dt, shape) in expected.items():
                info = names.get(f"{key}.npy")
                if info is None:
                    raise _bad(path, f"missing array {key!r}")
                got_dt, got_shape, offset = _entry_array(path, fh, info)
                if got_dt != dt:
                    raise _bad(path, f"array {key!r} has dtype {got_dt}, expected {dt}")
                if shape is not None and got_shape != shape:
                    raise _bad(path, f"array {key!r} has shape {got_shape}, expected {shape}")
                if shape is None and (len(got_shape) != 2 or got_shape[1] != 3):
                    raise _bad(path, f"array {key!r} has shape {got_shape}, expected [n, 3]")
                if int(np.prod(got_shape)) == 0:
                    arrays[key] = np.zeros(got_shape, dtype=dt)
                else:
                    arrays[key] = np.memmap(
                        path, dtype=dt, mode="r", offset=offset, shape=got_shape
                    )
    for key, (_, _, offsets_key) in RAGGED.items():
        offs = np.asarray(arrays[offsets_key])
        if offs[0] != 0 or offs[-1] != len(arrays[key]) or np.any(np.diff(offs) < 0):
            raise _bad(path, f"offsets {offsets_key!r} do not match {key!r}")
    return Shard(path=path, meta=meta, arrays=arrays)
