"""Keypoint files for ``halohand reconstruct`` / ``halohand occupancy`` and :class:`~halohand.HALO`.

Accepted files (one hand or a sequence of hands, ``J`` = the format's joint count: 21, or
25 for ``webxr`` and 26 for ``openxr``):

* ``.npy``: a ``[J, 3]`` or ``[N, J, 3]`` numeric array (no pickles);
* ``.json``: a nested list of that shape, a list of ``{"x", "y", "z"}`` objects (one hand),
  or an object with a ``"keypoints"`` list. Such an object may also carry ``"side"``
  (``right``/``left``), ``"units"`` (``m``/``cm``/``mm``) and ``"order"`` or ``"format"`` (a
  keypoint format), as the demo's ``*_keypoints.json`` files do; they are used when the
  caller does not say otherwise;
* ``.txt`` (also ``.csv``): ``J`` rows of 3 numbers for one hand, or ``N * J`` rows for a
  sequence (whitespace or commas; ``#`` starts a comment).

Every failure raises :class:`~halohand.core.errors.HalohandInputError` (or its subclass
:class:`~halohand.core.errors.CorruptFileError` for unreadable files) with a one-line message
that names the file and says how to fix it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.units import UNIT_SCALE
from halohand.skeleton.orders import num_joints
from halohand.skeleton.validation import check_format, check_keypoints

#: File suffixes :func:`load_keypoints` reads.
SUFFIXES = (".npy", ".json", ".txt", ".csv")
SIDES = ("right", "left")
UNITS = tuple(UNIT_SCALE)


@dataclass(frozen=True)
class KeypointFile:
    """Keypoints read from a file.

    Attributes:
        path: the file.
        keypoints: ``[N, J, 3]`` float64, in the file's joint order and units (a single
            hand has ``N = 1``).
        is_sequence: the file held ``[N, J, 3]`` (outputs are numbered) rather than ``[J, 3]``.
        fmt: the keypoint format the array is in (the caller's, the file's, or openpose).
        side / units: metadata found in a JSON object, else ``None``.
    """

    path: Path
    keypoints: np.ndarray
    is_sequence: bool
    fmt: str = "openpose"
    side: str | None = None
    units: str | None = None

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])


def _read_npy(path: Path) -> Any:
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic.startswith(b"PK"):
        raise CorruptFileError(f"{path}: is a .npz archive; save one array with numpy.save")
    if magic != b"\x93NUMPY":
        raise CorruptFileError(f"{path}: not a .npy file (no NumPy header); save with numpy.save")
    try:
        return np.load(path, allow_pickle=False)
    except MemoryError:  # a header announcing a huge array
        raise CorruptFileError(f"{path}: corrupt .npy header (array larger than memory)") from None
    except ValueError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else "unreadable"
        if "pickle" in msg.lower():
            raise CorruptFileError(f"{path}: holds pickled objects; save a numeric array") from None
        raise CorruptFileError(f"{path}: not a valid .npy file or truncated ({msg})") from None
    except (EOFError, OSError) as exc:
        raise CorruptFileError(f"{path}: truncated or unreadable .npy file ({exc})") from None
    except Exception as exc:  # a garbled header: numpy's parser raises what it meets
        raise CorruptFileError(
            f"{path}: corrupt .npy header ({type(exc).__name__}); save with numpy.save"
        ) from None


def _read_json(path: Path) -> tuple[Any, dict[str, Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))  # a BOM (Windows) is fine
    except UnicodeDecodeError:
        raise CorruptFileError(f"{path}: not a UTF-8 JSON file") from None
    except RecursionError:
        raise CorruptFileError(f"{path}: JSON nested too deeply to be keypoints") from None
    except json.JSONDecodeError as exc:
        raise CorruptFileError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})"
        ) from None
    meta: dict[str, Any] = {}
    if isinstance(doc, dict):
        if "keypoints" not in doc:
            raise HalohandInputError(
                f'{path}: JSON object has no "keypoints" key; store the [21, 3] list '
                f'under "keypoints" or as the top-level list'
            )
        meta = {k: doc[k] for k in ("side", "units", "order", "format") if k in doc}
        doc = doc["keypoints"]
    if isinstance(doc, list) and doc and all(isinstance(d, dict) for d in doc):
        try:  # MediaPipe-style landmarks
            doc = [[d["x"], d["y"], d["z"]] for d in doc]
        except KeyError:
            raise HalohandInputError(
                f'{path}: keypoint objects need "x", "y" and "z" fields'
            ) from None
    return doc, meta


def _read_txt(path: Path, j: int) -> Any:
    rows: list[list[float]] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CorruptFileError(f"{path}: not a text file") from None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        parts = line.split()
        try:
            values = [float(v) for v in parts]
        except ValueError:
            shown = raw.split("#", 1)[0].strip()[:40]
            raise HalohandInputError(
                f"{path}: line {lineno} is not numbers ({shown!r}); write 3 numbers per row"
            ) from None
        if len(values) != 3:
            raise HalohandInputError(
                f"{path}: line {lineno} has {len(values)} values; write one keypoint "
                f"(x y z) per row"
            )
        rows.append(values)
    if not rows:
        raise HalohandInputError(f"{path}: holds no keypoints")
    if len(rows) % j:
        raise HalohandInputError(
            f"{path}: {len(rows)} rows is not a multiple of {j} keypoints per hand; the file "
            f"looks truncated"
        )
    arr = np.asarray(rows, dtype=np.float64)
    return arr if len(rows) == j else arr.reshape(-1, j, 3)


def _check_input_path(path: Path) -> None:
    """The path names something (a name the system refuses, e.g. too long, is said so)."""
    try:
        path.stat()
    except FileNotFoundError:
        raise HalohandInputError(f"{path}: no such file") from None
    except OSError as exc:
        raise CorruptFileError(f"{path}: cannot read ({exc.strerror})") from None


def load_keypoints(path: str | os.PathLike[str], fmt: str | None = None) -> KeypointFile:
    """Read and validate a keypoint file (see the module docstring).

    Args:
        path: ``.npy``, ``.json``, ``.txt`` or ``.csv`` file.
        fmt: keypoint format; ``None`` uses the file's ``"order"``/``"format"`` (JSON) or
            ``openpose``.

    Returns:
        a :class:`KeypointFile`; its keypoints are finite with the format's joint count.
    """
    path = Path(path)
    _check_input_path(path)
    if path.is_dir():
        raise HalohandInputError(f"{path}: is a folder; pass keypoint files")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise HalohandInputError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; use .npy, .json or .txt"
        )
    try:
        if path.stat().st_size == 0:
            raise HalohandInputError(f"{path}: empty file; it should hold a [21, 3] array")
    except OSError as exc:
        raise CorruptFileError(f"{path}: cannot read ({exc.strerror})") from None
    meta: dict[str, Any] = {}
    file_fmt = None
    try:
        if suffix == ".npy":
            data: Any = _read_npy(path)
        elif suffix == ".json":
            data, meta = _read_json(path)
            file_fmt = meta.get("format", meta.get("order"))
        else:
            data = None
    except OSError as exc:
        raise CorruptFileError(f"{path}: cannot read ({exc.strerror})") from None
    use_fmt = check_format(fmt if fmt is not None else (file_fmt or "openpose"))
    if suffix in (".txt", ".csv"):
        try:
            data = _read_txt(path, num_joints(use_fmt))
        except OSError as exc:
            raise CorruptFileError(f"{path}: cannot read ({exc.strerror})") from None
    arr, seq = check_keypoints(data, use_fmt, name=str(path))
    side = meta.get("side")
    if side is not None and side not in SIDES:
        raise HalohandInputError(f'{path}: "side" must be "right" or "left", got {side!r}')
    units = meta.get("units")
    if units is not None and units not in UNITS:
        raise HalohandInputError(f'{path}: "units" must be m, cm or mm, got {units!r}')
    return KeypointFile(path, arr, seq, use_fmt, side, units)


def output_names(kf: KeypointFile) -> list[str]:
    """Output stems for a keypoint file: ``r00`` for one hand, ``seq_0000``... for sequences."""
    stem = kf.path.stem
    if not kf.is_sequence:
        return [stem]
    width = max(4, len(str(len(kf) - 1)))
    return [f"{stem}_{i:0{width}d}" for i in range(len(kf))]


def load_points(path: str | os.PathLike[str]) -> np.ndarray:
    """Query points from a ``.npy`` file: ``[N, 3]`` or ``[B, N, 3]``, finite (float64)."""
    path = Path(path)
    _check_input_path(path)
    if path.suffix.lower() != ".npy" or path.is_dir():
        raise HalohandInputError(f"{path}: query points must be a .npy file of shape [N, 3]")
    if path.stat().st_size == 0:
        raise HalohandInputError(f"{path}: empty file")
    arr = _read_npy(path)
    if arr.dtype.kind not in "iuf":  # not bool, complex, text, dates or time spans
        raise HalohandInputError(f"{path}: points must be real numbers, got {arr.dtype}")
    if arr.ndim not in (2, 3) or arr.shape[-1] != 3:
        raise HalohandInputError(
            f"{path}: points must have shape [N, 3] or [B, N, 3], got {list(arr.shape)}"
        )
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise HalohandInputError(f"{path}: points contain NaN or inf")
    return arr


# --------------------------------------------------------------------------- two hands


@dataclass(frozen=True)
class PairFile:
    """Two-hand keypoints read from a file (see :func:`load_pair_file`).

    Attributes:
        path: the file.
        keypoints: ``[N, 2, 21, 3]`` float64 (right, left), project order, the file's frame
            and units.
        complete: ``[N, 2]`` bool: the hand is there with every joint valid (InterHand
            annotations name absent hands and invalid joints; arrays hold both hands).
        names: ``N`` output stems (``r00``; ``seq_0000``...; ``ann_c<capture>_f<frame>``).
        units: ``mm`` for InterHand annotations, the JSON object's ``units``, else ``None``.
        layout: ``interhand-json``, ``interhand42`` or ``stacked`` (how it was detected).
    """

    path: Path
    keypoints: np.ndarray
    complete: np.ndarray
    names: list[str]
    units: str | None
    layout: str

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])


def _pair_stems(path: Path, n: int, sequence: bool) -> list[str]:
    if not sequence:
        return [path.stem]
    width = max(4, len(str(n - 1)))
    return [f"{path.stem}_{i:0{width}d}" for i in range(n)]


def load_pair_file(
    path: str | os.PathLike[str], fmt: str | None = None, pair: bool = False
) -> PairFile | None:
    """Read ``path`` as two hands when it holds them, else return ``None`` (one hand or a
    sequence of single hands: :func:`load_keypoints`).

    Detected without being told: an InterHand2.6M joint annotation (``.json``: one record
    with ``world_coord``, or a ``*_joint_3d.json`` file; millimetres, world frame), and any
    ``[42, 3]`` / ``[N, 42, 3]`` array (``.npy``, ``.json``: InterHand layout, right hand at
    0-20 and left at 21-41, InterHand order unless ``fmt`` names another 21-joint order).
    With ``pair=True`` (``--pair``) also ``[2, J, 3]`` / ``[N, 2, J, 3]`` (right, left; in
    ``fmt``, default openpose) and ``.txt`` files of ``2 J`` rows per pair; these shapes
    otherwise mean a sequence of single hands, as they always have.
    """
    from halohand.data.interhand import is_joint_file, iter_frames
    from halohand.inference.two_hands import pair_keypoints

    path = Path(path)
    _check_input_path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES or path.is_dir() or path.stat().st_size == 0:
        if pair:  # the single-hand reader words the error
            load_keypoints(path, fmt)
        return None
    use_fmt = check_format(fmt) if fmt is not None else None
    j = num_joints(use_fmt or "openpose")
    units: str | None = None
    try:
        if suffix == ".npy":
            data: Any = _read_npy(path)
        elif suffix == ".json":
            try:
                doc = json.loads(path.read_text(encoding="utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                if pair:  # the single-hand reader words the error
                    load_keypoints(path, fmt)
                return None
            if is_joint_file(doc):
                frames = list(iter_frames(doc, where=str(path)))
                kp = np.stack([f.keypoints for f in frames]) / UNIT_SCALE["mm"]
                complete = np.stack([f.complete for f in frames])
                single = isinstance(doc, dict) and "world_coord" in doc
                names = (
                    [path.stem]
                    if single
                    else [f"{path.stem}_c{f.capture}_f{f.frame}" for f in frames]
                )
                return PairFile(path, kp, complete, names, "mm", "interhand-json")
            if isinstance(doc, dict):
                units = doc.get("units") if doc.get("units") in UNITS else None
                data = doc.get("keypoints")
            else:
                data = doc
        else:
            data = _read_txt(path, 2 * j) if pair else None
    except OSError as exc:
        raise CorruptFileError(f"{path}: cannot read ({exc.strerror})") from None
    if data is None:
        return None
    if isinstance(data, np.ndarray) and data.dtype.kind not in "iuf":
        return None  # complex, bool, text, records: the single-hand reader words the error
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    if arr.ndim in (2, 3) and arr.shape[-2:] == (42, 3) and j == 21:
        layout, per = "interhand42", arr.reshape(-1, 42, 3)
    elif pair and arr.ndim in (3, 4) and arr.shape[-3:] == (2, j, 3):
        layout, per = "stacked", arr.reshape(-1, 2, j, 3)
    elif pair and suffix in (".txt", ".csv") and arr.shape[-2:] == (2 * j, 3):
        layout, per = "stacked", arr.reshape(-1, 2, j, 3)
    elif pair:
        raise HalohandInputError(
            f"{path}: --pair needs [2, {j}, 3] or [N, 2, {j}, 3] (right, left) or [42, 3] "
            f"keypoints, got {list(arr.shape)}"
        )
    else:
        return None
    sequence = arr.ndim == (3 if layout == "interhand42" else 4) or (
        suffix in (".txt", ".csv") and len(per) > 1
    )
    try:
        kp = np.stack([np.asarray(pair_keypoints(p, use_fmt)[0]) for p in per])
    except HalohandInputError as exc:
        raise HalohandInputError(f"{path}: {exc}") from None
    complete = np.ones(kp.shape[:2], dtype=bool)
    return PairFile(path, kp, complete, _pair_stems(path, len(kp), sequence), units, layout)
