"""Reading a MANO model file without chumpy, and checking it.

The official pickles are Python 2 pickles in which some entries (``shapedirs``, and in some
releases ``J`` or ``v_template``) are ``chumpy`` objects. :func:`load_mano` reads them with
:func:`halohand.core.unpickle.restricted_loads` and the allow-list below: numpy's array
machinery and a few builtins resolve normally; ``chumpy.*`` classes become inert stand-ins
that keep their pickled state, from which the array is recovered (``x`` for ``Ch``, plus
``Reshape`` / ``transpose`` / a lone ndarray in the state); scipy sparse matrices are rebuilt
from their state. Any other global becomes an inert stand-in too, so a pickle cannot run
code, and chumpy is never imported.
"""

from __future__ import annotations

import builtins
import codecs
import copyreg
import importlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.unpickle import restricted_loads

#: MANO's kinematic tree (16 joints, MANO order; -1 for the wrist).
MANO_PARENTS: Final = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])
NUM_MANO_JOINTS: Final = 16
NUM_MANO_VERTICES: Final = 778

_REQUIRED_KEYS: Final = (
    "v_template",
    "f",
    "weights",
    "kintree_table",
    "J_regressor",
    "shapedirs",
    "posedirs",
    "hands_components",
    "hands_mean",
)

#: Per-component std of the PCA coefficients when the file has no ``hands_coeffs``:
#: ``FALLBACK_POSE_STD / sqrt(k + 1)`` radians along unit component k (an assumption).
FALLBACK_POSE_STD: Final = 0.5


class _Stub:
    """Inert stand-in for a pickled class we do not import (chumpy, unknown globals)."""

    _pickled_module = ""
    _pickled_name = ""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}  # noqa: RUF012 - never mutated
    state: Any = None

    def __new__(cls, *args: Any, **kwargs: Any) -> _Stub:
        obj = super().__new__(cls)
        obj.args = args
        obj.kwargs = kwargs
        obj.state = None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # arguments kept by __new__
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __call__(self, *args: Any, **kwargs: Any) -> _Stub:
        """Calling an inert object (e.g. a method looked up on one) gives another one."""
        return _Stub(*args, **kwargs)

    def state_dict(self) -> dict[str, Any]:
        """The pickled state as a dict (``(dict, slots)`` tuples are merged)."""
        state = self.state
        if isinstance(state, tuple) and len(state) == 2:
            merged: dict[str, Any] = {}
            for part in state:
                if isinstance(part, dict):
                    merged.update(part)
            return merged
        return dict(state) if isinstance(state, dict) else {}

    def __repr__(self) -> str:
        return f"<stand-in for {self._pickled_module}.{self._pickled_name}>"


class _SparseStub(_Stub):
    """Stand-in for a pickled scipy sparse matrix; rebuilt from its state by ``to_dense``."""

    def to_dense(self) -> np.ndarray:
        import scipy.sparse as sp

        st = {str(k).lstrip("_"): v for k, v in self.state_dict().items()}
        shape = tuple(int(s) for s in st["shape"])
        fmt = self._pickled_name[:3]
        if fmt in ("csc", "csr"):
            cls = sp.csc_matrix if fmt == "csc" else sp.csr_matrix
            mat = cls((np.asarray(st["data"]), np.asarray(st["indices"]),
                       np.asarray(st["indptr"])), shape=shape)  # fmt: skip
        elif fmt == "coo":
            if "coords" in st:
                row, col = (np.asarray(c) for c in st["coords"])
            else:
                row, col = np.asarray(st["row"]), np.asarray(st["col"])
            mat = sp.coo_matrix((np.asarray(st["data"]), (row, col)), shape=shape)
        else:
            raise KeyError(fmt)
        return np.asarray(mat.toarray(), dtype=np.float64)


_STUB_CLASSES: dict[tuple[str, str], type[_Stub]] = {}

_SAFE_BUILTINS: Final = frozenset(
    "object set frozenset slice complex bytearray list dict tuple int float str bytes bool".split()
)
_SAFE_NUMPY: Final = frozenset({"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"})


def _stub_class(module: str, name: str, base: type[_Stub]) -> type[_Stub]:
    key = (module, name)
    if key not in _STUB_CLASSES:
        _STUB_CLASSES[key] = type(name, (base,), {"_pickled_module": module, "_pickled_name": name})
    return _STUB_CLASSES[key]


#: Globals of MANO pickles that resolve to the real objects (Python 3 and 2 spellings).
_ALLOWED: Final[dict[tuple[str, str], Any]] = {
    **{
        (mod, n): getattr(builtins, n)
        for mod in ("builtins", "__builtin__")
        for n in _SAFE_BUILTINS
    },
    ("copyreg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
    ("_codecs", "encode"): codecs.encode,
    ("collections", "OrderedDict"): OrderedDict,
}


def _numpy_or_stand_in(module: str, name: str) -> Any:
    """Globals off the allow-list: numpy's array machinery under any of its module paths
    (``numpy.core`` of Python 2 / numpy 1 pickles is read as ``numpy._core``), stand-ins
    rebuilt from their state for scipy sparse matrices, inert stand-ins for the rest."""
    if module.split(".")[0] == "numpy" and name in _SAFE_NUMPY:
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core") :]
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            pass
    if module.startswith("scipy.sparse") and name.split("_")[0] in ("csc", "csr", "coo"):
        return _stub_class(module, name, _SparseStub)
    return _stub_class(module, name, _Stub)


def _resolve_array(value: Any, depth: int = 0) -> np.ndarray | None:
    """The array a loaded pickle value stands for (chumpy stand-ins included), or None."""
    if depth > 8:
        return None
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, _SparseStub):
        return value.to_dense()
    if isinstance(value, _Stub):
        st = value.state_dict()
        if "x" in st:
            x = _resolve_array(st["x"], depth + 1)
            if x is not None:
                return x
        name = value._pickled_name.lower()
        if "a" in st:
            a = _resolve_array(st["a"], depth + 1)
            if a is not None:
                if name == "reshape" and "newshape" in st:
                    return a.reshape(st["newshape"])
                if name == "transpose":
                    return a.transpose(st.get("axes"))
                if name == "ravel":
                    return a.ravel()
        arrays = [v for v in st.values() if isinstance(v, np.ndarray)]
        if len(arrays) == 1:
            return arrays[0]
        subs = [_resolve_array(v, depth + 1) for v in st.values() if isinstance(v, _Stub)]
        subs = [s for s in subs if s is not None]
        return subs[0] if len(subs) == 1 and not arrays else None
    if isinstance(value, (list, tuple, int, float)) and not isinstance(value, bool):
        try:
            arr = np.asarray(value)
        except ValueError:
            return None
        return arr if arr.dtype.kind in "iuf" else None
    return None


@dataclass(frozen=True, eq=False)
class ManoModel:
    """A MANO model as plain, read-only float64 / int64 numpy arrays (V = 778, S = betas).

    Attributes:
        v_template: ``[V, 3]`` mean template (metres, flat hand).
        faces: ``[F, 3]`` int64 triangles (1538 on real MANO; open at the wrist).
        weights: ``[V, 16]`` skinning weights, MANO joint order.
        parents: ``[16]`` kinematic parents (``MANO_PARENTS``).
        J_regressor: ``[16, V]`` dense joint regressor.
        shapedirs: ``[V, 3, S]`` shape blend shapes (S = 10 on real MANO).
        posedirs: ``[V, 3, 135]`` pose-corrective blend shapes (on ``R - I`` of joints 1..15).
        hands_components: ``[K, 45]`` PCA basis of the finger pose (rows).
        hands_mean: ``[45]`` mean finger pose (axis-angle).
        hands_coeffs: ``[N, K]`` PCA coefficients of MANO's training poses, or None.
        side: ``"right"`` or ``"left"``, the side the file models.
        path: the file it was loaded from.
    """

    v_template: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    J_regressor: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    hands_components: np.ndarray
    hands_mean: np.ndarray
    hands_coeffs: np.ndarray | None
    side: str
    path: Path

    @property
    def num_betas(self) -> int:
        """Number of shape coefficients (S)."""
        return int(self.shapedirs.shape[-1])

    @property
    def pca_std(self) -> np.ndarray:
        """``[K]`` std of each PCA pose coefficient of natural hands.

        From ``hands_coeffs`` (MANO's training poses) when the file has it, otherwise
        ``FALLBACK_POSE_STD / sqrt(k + 1)`` radians along each unit component.
        """
        k = self.hands_components.shape[0]
        c = self.hands_coeffs
        if c is not None and c.ndim == 2 and c.shape[1] == k and c.shape[0] > 1:
            std = c.std(axis=0)
            if np.all(np.isfinite(std)) and np.any(std > 0):
                return std
        norms = np.linalg.norm(self.hands_components, axis=1)
        norms = np.where(norms > 0, norms, 1.0)
        return FALLBACK_POSE_STD / np.sqrt(np.arange(1, k + 1)) / norms


def _bad(path: Path, what: str) -> HalohandInputError:
    return HalohandInputError(f"{path}: {what} (expected a MANO model pickle, MANO_RIGHT.pkl)")


def _read_pickle(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise HalohandInputError(
            f"{path}: MANO model file not found (download MANO_RIGHT.pkl from "
            "https://mano.is.tue.mpg.de; it cannot be shipped with halohand)"
        ) from None
    except OSError as exc:
        raise CorruptFileError(f"{path}: cannot read MANO model file ({exc})") from None
    return restricted_loads(
        data, _ALLOWED, path=path, what="MANO model file",
        fallback=_numpy_or_stand_in, encoding="latin1",
    )  # fmt: skip


def _infer_side(path: Path) -> str:
    return "left" if "left" in path.name.lower() else "right"


def load_mano(path: str | Path, side: str | None = None) -> ManoModel:
    """Load ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` without chumpy.

    Args:
        path: the model pickle, or a folder holding ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``.
        side: ``"right"`` or ``"left"``; default from the file name (``LEFT`` in it means
            left). A left model gets the shapedirs x-fix (module docstring).

    Raises:
        HalohandInputError: missing file, not a MANO pickle, missing keys, wrong shapes.
        CorruptFileError: the file is not a readable pickle.
    """
    path = Path(path)
    if side is not None and side not in ("right", "left"):
        raise HalohandInputError(f"side must be 'right' or 'left', got {side!r}")
    if path.is_dir():
        path = path / f"MANO_{(side or 'right').upper()}.pkl"
    raw = _read_pickle(path)
    if not isinstance(raw, dict):
        raise _bad(path, f"the pickle holds a {type(raw).__name__}, not a dict")
    missing = [k for k in _REQUIRED_KEYS if k not in raw]
    if missing:
        raise _bad(path, f"missing keys {missing}")

    arrays: dict[str, np.ndarray] = {}
    for key in (*_REQUIRED_KEYS, "hands_coeffs"):
        if key not in raw:
            continue
        try:
            arr = _resolve_array(raw[key])
        except Exception:  # a stand-in whose state does not rebuild (e.g. broken sparse)
            arr = None
        if arr is None or arr.dtype.kind not in "iuf":
            raise _bad(path, f"entry {key!r} holds no numeric array ({raw[key]!r:.60})")
        arrays[key] = arr

    def shape_error(key: str, expected: str) -> HalohandInputError:
        return _bad(path, f"{key!r} has shape {list(arrays[key].shape)}, expected {expected}")

    V, J = NUM_MANO_VERTICES, NUM_MANO_JOINTS
    if arrays["v_template"].shape != (V, 3):
        raise shape_error("v_template", f"[{V}, 3]")
    f = arrays["f"]
    if f.ndim != 2 or f.shape[1] != 3 or not np.all(np.mod(f, 1) == 0):
        raise shape_error("f", "[F, 3] integers")
    faces = f.astype(np.int64)
    if faces.size == 0 or faces.min() < 0 or faces.max() >= V:
        raise _bad(path, f"'f' indexes vertices outside 0..{V - 1}")
    if arrays["weights"].shape != (V, J):
        raise shape_error("weights", f"[{V}, {J}]")
    kt = arrays["kintree_table"]
    if kt.shape != (2, J):
        raise shape_error("kintree_table", f"[2, {J}]")
    parents = kt[0].astype(np.int64)
    parents[0] = -1  # stored as uint32 max
    order = kt[1].astype(np.int64)
    if not (np.array_equal(order, np.arange(J)) and np.array_equal(parents, MANO_PARENTS)):
        raise _bad(path, f"kintree_table is not MANO's tree {MANO_PARENTS.tolist()}")
    if arrays["J_regressor"].shape != (J, V):
        raise shape_error("J_regressor", f"[{J}, {V}]")
    sd = arrays["shapedirs"]
    if sd.ndim != 3 or sd.shape[:2] != (V, 3) or sd.shape[2] < 1:
        raise shape_error("shapedirs", f"[{V}, 3, S]")
    if arrays["posedirs"].shape != (V, 3, 9 * (J - 1)):
        raise shape_error("posedirs", f"[{V}, 3, {9 * (J - 1)}]")
    hc = arrays["hands_components"]
    if hc.ndim != 2 or hc.shape[1] != 45 or not 1 <= hc.shape[0] <= 45:
        raise shape_error("hands_components", "[K <= 45, 45]")
    if arrays["hands_mean"].reshape(-1).shape != (45,):
        raise shape_error("hands_mean", "[45]")
    coeffs = arrays.get("hands_coeffs")
    if coeffs is not None and (coeffs.ndim != 2 or coeffs.shape[1] != hc.shape[0]):
        coeffs = None  # only used for the pose prior; ignore an unexpected layout

    model_side = side or _infer_side(path)
    shapedirs = sd.astype(np.float64)
    if model_side == "left":
        shapedirs[:, 0, :] *= -1.0  # smplx#48: the left model's shapedirs are not mirrored
    for key, arr in arrays.items():
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise _bad(path, f"entry {key!r} has NaN or inf values")

    def ro(a: np.ndarray, dtype: type = np.float64) -> np.ndarray:
        out = np.array(a, dtype=dtype)
        out.setflags(write=False)
        return out

    return ManoModel(
        v_template=ro(arrays["v_template"]),
        faces=ro(faces, np.int64),
        weights=ro(arrays["weights"]),
        parents=ro(MANO_PARENTS, np.int64),
        J_regressor=ro(arrays["J_regressor"]),
        shapedirs=ro(shapedirs),
        posedirs=ro(arrays["posedirs"]),
        hands_components=ro(hc),
        hands_mean=ro(arrays["hands_mean"].reshape(45)),
        hands_coeffs=None if coeffs is None else ro(coeffs),
        side=model_side,
        path=path,
    )
