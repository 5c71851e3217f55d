"""MANO as an optional hand source: loader (no chumpy), batched LBS, wrist sealing, sampler.

MANO (Romero et al., 2017) cannot be shipped with halohand (license). When a user supplies
``MANO_RIGHT.pkl`` (or ``MANO_LEFT.pkl``) from https://mano.is.tue.mpg.de, this module turns
it into the same :class:`~halohand.handmodel.hand.PosedHand` records the embedded WebXR hand
produces, so the data engine can generate MANO hands.

Loading
    The official pickles are Python 2 pickles in which some entries (``shapedirs``, and in
    some releases ``J`` or ``v_template``) are ``chumpy`` objects. :func:`load_mano` reads
    them with a *restricted* unpickler: ``chumpy.*`` classes become inert stand-ins that
    keep their pickled state, from which the array is recovered (``x`` for ``Ch``, plus
    ``Reshape`` / ``transpose`` / a lone ndarray in the state); scipy sparse matrices are
    rebuilt from their state; numpy arrays load normally. No other global is resolved
    (unknown classes become inert stand-ins too), so a pickle cannot run code. chumpy is
    never imported.

Posing (:func:`mano_forward`)
    smplx-style linear blend skinning, batched over leading dimensions, numpy or torch in,
    same type out (torch keeps gradients). ``pose`` is the *absolute* axis-angle pose of
    the 16 joints in MANO's kinematic order (global orientation first); :func:`mano_pose`
    builds it from PCA coefficients or a 45-d finger pose, adding ``hands_mean`` unless
    ``flat_hand_mean=True`` (smplx / manopth semantics).

Conventions
    * Metres, MANO's own frame. :func:`mano_posed_hand` translates so the wrist joint is
      at the origin and applies no global rotation (``pose[0] = 0`` in the sampler).
    * Part order = MANO's 16 joints = HALO's parts, so ``weights`` are the part skinning
      weights. Keypoints: 16 regressed joints + 5 fingertip vertices, reordered to the
      project's OpenPose order. Fingertip ids follow ``tips`` (default ``"smplx"`` =
      YouTube3D ``[744, 320, 443, 554, 671]``; ``"manopth"``, ``"freihand"`` or 5 ids).
    * The canonical hand is the zero pose (flat hand) of the same betas, without pose
      corrective offsets. ``part_transforms[i]`` is the inverse of part ``i``'s skinning
      transform, so it maps a posed vertex fully weighted to part ``i`` exactly onto its
      canonical position *plus* its pose-corrective offset (``posedirs``; a few mm on real
      MANO). Pass ``pose_correctives=False`` to drop the correctives: the map is then exact.
    * The wrist is sealed as HALO did: one vertex at the mean of the 16-vertex wrist ring,
      fan-triangulated (778 -> 779 vertices, 1538 -> 1554 faces); the seal vertex is
      skinned to the palm (part 0).
    * Left hands: the other side is produced by mirroring (x -> -x, faces flipped,
      ``part_transforms`` conjugated by the mirror). A left model file (``LEFT`` in its
      name, or ``side="left"``) gets the known shapedirs fix ``shapedirs[:, 0, :] *= -1``
      (smplx#48) so equal betas give mirror-equal shapes; it is then the native side.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
import torch

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.handmodel.hand import PosedHand
from halohand.skeleton import mirror, part_bone_lengths, to_openpose

__all__ = [
    "MANO_PARENTS",
    "NUM_MANO_VERTICES",
    "TIP_CONVENTIONS",
    "WRIST_RING",
    "ManoHandSource",
    "ManoModel",
    "ManoOutput",
    "load_mano",
    "mano_forward",
    "mano_keypoints",
    "mano_pose",
    "mano_posed_hand",
    "mirror_hand",
    "sample_mano_params",
    "seal_wrist",
    "tip_ids",
]

#: MANO's kinematic tree (16 joints, MANO order; -1 for the wrist).
MANO_PARENTS: Final = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])
NUM_MANO_JOINTS: Final = 16
NUM_MANO_VERTICES: Final = 778

#: The open wrist boundary of the MANO mesh, in loop order (HALO's ``seal()``).
WRIST_RING: Final = np.array(
    [108, 79, 78, 121, 214, 215, 279, 239, 234, 92, 38, 122, 118, 117, 119, 120]
)

#: Fingertip vertex ids (thumb, index, middle, ring, pinky) per convention.
TIP_CONVENTIONS: Final[dict[str, tuple[int, int, int, int, int]]] = {
    "smplx": (744, 320, 443, 554, 671),
    "youtube3d": (744, 320, 443, 554, 671),
    "manopth": (745, 317, 444, 556, 673),
    "freihand": (744, 320, 443, 555, 672),
}

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


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


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


class _ManoUnpickler(pickle.Unpickler):
    """Resolves only numpy array machinery and a few builtins; everything else is inert."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return getattr(__import__("builtins"), name)
        if module in ("copyreg", "copy_reg") and name == "_reconstructor":
            import copyreg

            return copyreg._reconstructor  # type: ignore[attr-defined]
        if module == "_codecs" and name == "encode":
            import codecs

            return codecs.encode
        if module == "collections" and name == "OrderedDict":
            from collections import OrderedDict

            return OrderedDict
        if module.split(".")[0] == "numpy" and name in _SAFE_NUMPY:
            if module.startswith("numpy.core"):  # Python 2 / numpy 1 pickles
                module = "numpy._core" + module[len("numpy.core") :]
            try:
                return super().find_class(module, name)
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
    try:
        return _ManoUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:  # any failure inside the unpickler means a damaged file
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorruptFileError(f"{path}: corrupt or not a pickle ({msg})") from None


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


# --------------------------------------------------------------------------------------
# Posing
# --------------------------------------------------------------------------------------


class ManoOutput(NamedTuple):
    """Result of :func:`mano_forward`; ``...`` are the broadcast batch dimensions.

    Attributes:
        vertices: ``[..., 778, 3]`` posed vertices.
        joints: ``[..., 16, 3]`` posed joints, MANO order (= ``transforms[..., :3, 3]``).
        transforms: ``[..., 16, 4, 4]`` world transforms of the joints (joint frames).
        skinning_transforms: ``[..., 16, 4, 4]`` rigid maps from the rest hand (plus pose
            correctives) to the posed hand, per joint; ``transforms`` with the rest joint
            subtracted (smplx's ``A``).
        rest_vertices: ``[..., 778, 3]`` zero-pose vertices of the same betas.
        rest_joints: ``[..., 16, 3]`` zero-pose joints.
        pose_offsets: ``[..., 778, 3]`` pose-corrective offsets added before skinning.
    """

    vertices: Any
    joints: Any
    transforms: Any
    skinning_transforms: Any
    rest_vertices: Any
    rest_joints: Any
    pose_offsets: Any


def _to_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x if x.is_floating_point() else x.double()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HalohandInputError(f"{name} must be a numeric array ({exc})") from None
    return torch.from_numpy(arr)


def _check_finite(t: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(t.detach()).all()):
        raise HalohandInputError(f"{name} has NaN or inf values")


def _rodrigues(rvec: torch.Tensor) -> torch.Tensor:
    """Axis-angle ``[..., 3]`` -> rotation matrices ``[..., 3, 3]`` (exact at zero)."""
    theta = torch.linalg.vector_norm(rvec, dim=-1)[..., None, None]
    x, y, z = rvec.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1)
    k = k.reshape(*rvec.shape[:-1], 3, 3)
    a = torch.sinc(theta / math.pi)  # sin(t) / t
    b = 0.5 * torch.sinc(theta / (2 * math.pi)) ** 2  # (1 - cos t) / t^2
    eye = torch.eye(3, dtype=rvec.dtype, device=rvec.device)
    return eye + a * k + b * (k @ k)


def _model_tensor(arr: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(np.asarray(arr), dtype=like.dtype, device=like.device)


def mano_pose(
    model: ManoModel,
    pca: Any = None,
    hand_pose: Any = None,
    global_orient: Any = None,
    flat_hand_mean: bool = False,
) -> Any:
    """Build the absolute axis-angle pose ``[..., 16, 3]`` that :func:`mano_forward` takes.

    Args:
        model: the MANO model.
        pca: ``[..., K']`` PCA coefficients (``K' <= K``; the first ``K'`` components).
        hand_pose: ``[..., 45]`` finger pose (axis-angle of joints 1..15); exclusive with pca.
        global_orient: ``[..., 3]`` wrist rotation; default zero.
        flat_hand_mean: False (default, smplx / manopth / HALO data): ``hands_mean`` is
            added to the finger pose, so zero coefficients give MANO's relaxed mean hand.
            True: zero coefficients give the flat hand.

    Returns:
        ``[..., 16, 3]``, torch if any input is a tensor, else numpy.
    """
    if (pca is None) == (hand_pose is None):
        raise HalohandInputError("mano_pose needs exactly one of pca or hand_pose")
    use_torch = any(isinstance(v, torch.Tensor) for v in (pca, hand_pose, global_orient))
    if pca is not None:
        c = _to_tensor(pca, "pca")
        k = model.hands_components.shape[0]
        if c.ndim < 1 or not 1 <= c.shape[-1] <= k:
            raise HalohandInputError(f"pca must have shape [..., K<={k}], got {list(c.shape)}")
        comps = _model_tensor(model.hands_components[: c.shape[-1]], c)
        hand = c @ comps
    else:
        hand = _to_tensor(hand_pose, "hand_pose")
        if hand.ndim < 1 or hand.shape[-1] != 45:
            raise HalohandInputError(f"hand_pose must have shape [..., 45], got {list(hand.shape)}")
    if not flat_hand_mean:
        hand = hand + _model_tensor(model.hands_mean, hand)
    if global_orient is None:
        glob = hand.new_zeros((*hand.shape[:-1], 3))
    else:
        glob = _to_tensor(global_orient, "global_orient").to(hand.dtype)
        if glob.ndim < 1 or glob.shape[-1] != 3:
            raise HalohandInputError(
                f"global_orient must have shape [..., 3], got {list(glob.shape)}"
            )
    batch = torch.broadcast_shapes(glob.shape[:-1], hand.shape[:-1])
    glob = glob.expand(*batch, 3)
    hand = hand.expand(*batch, 45)
    pose = torch.cat([glob, hand], dim=-1).reshape(*batch, 16, 3)
    return pose if use_torch else pose.numpy()


def mano_forward(
    model: ManoModel,
    pose: Any = None,
    betas: Any = None,
    *,
    pca: Any = None,
    flat_hand_mean: bool = False,
    pose_correctives: bool = True,
) -> ManoOutput:
    """Pose MANO by linear blend skinning (smplx's ``lbs``), batched.

    Args:
        model: the MANO model.
        pose: absolute axis-angle pose ``[..., 16, 3]`` (or ``[..., 48]``), MANO joint
            order, joint 0 = global orientation. Applied as given (no ``hands_mean``).
        betas: ``[..., S']`` shape coefficients (``S' <= S``, usually 10); default zero.
        pca: instead of ``pose``, PCA finger coefficients ``[..., K']`` decoded by
            :func:`mano_pose` (no global rotation; ``flat_hand_mean`` applies).
        flat_hand_mean: see :func:`mano_pose` (PCA input only).
        pose_correctives: add MANO's pose-corrective blend shapes (default, as MANO).

    Returns:
        :class:`ManoOutput`, in metres and MANO's frame; torch tensors if ``pose``/``pca``
        or ``betas`` is a tensor (differentiable), else float64 numpy arrays.
    """
    if (pose is None) == (pca is None):
        raise HalohandInputError("mano_forward needs exactly one of pose or pca")
    use_torch = any(isinstance(v, torch.Tensor) for v in (pose, pca, betas))
    if pca is not None:
        pose = mano_pose(model, pca=_to_tensor(pca, "pca"), flat_hand_mean=flat_hand_mean)
    p = _to_tensor(pose, "pose")
    if p.ndim >= 1 and p.shape[-1] == 48:
        p = p.reshape(*p.shape[:-1], 16, 3)
    if p.ndim < 2 or p.shape[-2:] != (16, 3):
        raise HalohandInputError(
            f"pose must have shape [..., 16, 3] or [..., 48], got {list(p.shape)}"
        )
    _check_finite(p, "pose")
    s_model = model.num_betas
    if betas is None:
        b = p.new_zeros((s_model,))
    else:
        b = _to_tensor(betas, "betas").to(p.dtype)
        if b.ndim < 1 or not 1 <= b.shape[-1] <= s_model:
            raise HalohandInputError(
                f"betas must have shape [..., S<={s_model}], got {list(b.shape)}"
            )
        _check_finite(b, "betas")
    batch = torch.broadcast_shapes(p.shape[:-2], b.shape[:-1])
    n = math.prod(batch)
    p = p.expand(*batch, 16, 3).reshape(n, 16, 3)
    b = b.expand(*batch, b.shape[-1]).reshape(n, -1)

    v_template = _model_tensor(model.v_template, p)
    shapedirs = _model_tensor(model.shapedirs[..., : b.shape[-1]], p)
    j_reg = _model_tensor(model.J_regressor, p)
    weights = _model_tensor(model.weights, p)

    v_shaped = v_template + torch.einsum("vcs,bs->bvc", shapedirs, b)
    joints = torch.einsum("jv,bvc->bjc", j_reg, v_shaped)
    rots = _rodrigues(p)  # [n, 16, 3, 3]
    if pose_correctives:
        eye = torch.eye(3, dtype=p.dtype, device=p.device)
        feat = (rots[:, 1:] - eye).reshape(n, 9 * 15)
        offsets = torch.einsum("vcp,bp->bvc", _model_tensor(model.posedirs, p), feat)
    else:
        offsets = torch.zeros_like(v_shaped)
    v_posed = v_shaped + offsets

    parents = [int(i) for i in model.parents]
    rel = joints.clone()
    rel[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    local = torch.zeros((n, 16, 4, 4), dtype=p.dtype, device=p.device)
    local[..., :3, :3] = rots
    local[..., :3, 3] = rel
    local[..., 3, 3] = 1.0
    chain = [local[:, 0]]
    for i in range(1, 16):
        chain.append(chain[parents[i]] @ local[:, i])
    world = torch.stack(chain, dim=1)
    skin = world.clone()
    skin[..., :3, 3] = world[..., :3, 3] - (world[..., :3, :3] @ joints[..., None])[..., 0]
    per_vertex = torch.einsum("vj,bjmn->bvmn", weights, skin)
    verts = (per_vertex[..., :3, :3] @ v_posed[..., None])[..., 0] + per_vertex[..., :3, 3]

    def out(t: torch.Tensor) -> Any:
        t = t.reshape(*batch, *t.shape[1:])
        return t if use_torch else t.detach().numpy()

    return ManoOutput(
        vertices=out(verts),
        joints=out(world[..., :3, 3]),
        transforms=out(world),
        skinning_transforms=out(skin),
        rest_vertices=out(v_shaped),
        rest_joints=out(joints),
        pose_offsets=out(offsets),
    )


def tip_ids(tips: str | Sequence[int] = "smplx") -> np.ndarray:
    """Fingertip vertex ids (thumb, index, middle, ring, pinky) for a convention name.

    Names: ``"smplx"`` / ``"youtube3d"`` (default, [744, 320, 443, 554, 671]),
    ``"manopth"`` ([745, 317, 444, 556, 673]; manopth's left model uses 445 for the middle
    finger), ``"freihand"``; or five explicit vertex ids.
    """
    if isinstance(tips, str):
        key = tips.lower()
        if key not in TIP_CONVENTIONS:
            raise HalohandInputError(
                f"unknown fingertip convention {tips!r}; expected one of "
                f"{', '.join(TIP_CONVENTIONS)} or 5 vertex ids"
            )
        return np.array(TIP_CONVENTIONS[key], dtype=np.int64)
    ids = np.asarray(tips, dtype=np.int64).reshape(-1)
    if ids.shape != (5,) or ids.min() < 0 or ids.max() >= NUM_MANO_VERTICES:
        raise HalohandInputError(f"tips must be 5 vertex ids in 0..{NUM_MANO_VERTICES - 1}")
    return ids


def mano_keypoints(vertices: Any, joints: Any, tips: str | Sequence[int] = "smplx") -> Any:
    """21 keypoints in the project's (OpenPose) order.

    ``vertices [..., 778, 3]`` and ``joints [..., 16, 3]`` -> ``[..., 21, 3]``: the 16
    regressed joints plus the 5 fingertip vertices of the ``tips`` convention.
    """
    ids = tip_ids(tips)
    if isinstance(vertices, torch.Tensor):
        tip = vertices[..., torch.as_tensor(ids, device=vertices.device), :]
        kp = torch.cat([joints, tip], dim=-2)
    else:
        kp = np.concatenate([np.asarray(joints), np.asarray(vertices)[..., ids, :]], axis=-2)
    return to_openpose(kp, "mano")


# --------------------------------------------------------------------------------------
# Sealing
# --------------------------------------------------------------------------------------


def _boundary_loop(faces: np.ndarray) -> np.ndarray:
    """The single boundary loop of a mesh, following its boundary edges."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edge_set = {(int(a), int(b)) for a, b in directed}
    nxt: dict[int, int] = {}
    for a, b in edge_set:
        if (b, a) not in edge_set:
            if b in nxt:
                raise HalohandInputError("mesh boundary is not a simple loop")
            nxt[b] = a  # walk against the faces' direction
    if not nxt:
        raise HalohandInputError("mesh has no open boundary to seal")
    start = min(nxt)
    loop = [start]
    while nxt[loop[-1]] != start:
        loop.append(nxt[loop[-1]])
        if len(loop) > len(nxt):
            raise HalohandInputError("mesh boundary is not a simple loop")
    if len(loop) != len(nxt):
        raise HalohandInputError(
            f"mesh has several boundary loops ({len(nxt)} boundary vertices); pass ring="
        )
    return np.array(loop, dtype=np.int64)


def seal_wrist(
    vertices: Any, faces: np.ndarray, ring: Sequence[int] | np.ndarray | None = WRIST_RING
) -> tuple[Any, np.ndarray]:
    """Close the wrist opening as HALO did: one vertex at the ring's mean, fan triangles.

    Args:
        vertices: ``[..., V, 3]`` (numpy or torch, batched).
        faces: ``[F, 3]`` triangles with the ring as an open boundary.
        ring: the boundary loop in order (default MANO's 16 wrist vertices); None finds the
            mesh's single boundary loop.

    Returns:
        ``([..., V + 1, 3], [F + len(ring), 3])``; the new vertex is last. Each fan triangle
        is oriented opposite to the existing face on its ring edge, so an outward-oriented
        open mesh becomes an outward-oriented closed one (MANO: 779 vertices, 1554 faces).

    Raises:
        HalohandInputError: a ring edge is not a boundary edge of the mesh.
    """
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise HalohandInputError(f"faces must have shape [F, 3], got {list(faces.shape)}")
    loop = _boundary_loop(faces) if ring is None else np.asarray(ring, dtype=np.int64)
    n_v = int(vertices.shape[-2])
    if loop.ndim != 1 or len(loop) < 3 or loop.min() < 0 or loop.max() >= n_v:
        raise HalohandInputError(f"wrist ring must be >= 3 vertex ids in 0..{n_v - 1}")
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    code = directed[:, 0] * n_v + directed[:, 1]
    a, b = loop, np.roll(loop, -1)
    fwd = np.isin(a * n_v + b, code)
    bwd = np.isin(b * n_v + a, code)
    if np.any(fwd == bwd):
        k = int(np.flatnonzero(fwd == bwd)[0])
        raise HalohandInputError(
            f"wrist ring edge ({a[k]}, {b[k]}) is not an open boundary edge of the mesh"
        )
    c = np.full_like(a, n_v)
    new_faces = np.where(fwd[:, None], np.stack([b, a, c], 1), np.stack([a, b, c], 1))
    if isinstance(vertices, torch.Tensor):
        center = vertices[..., torch.as_tensor(loop), :].mean(dim=-2, keepdim=True)
        sealed = torch.cat([vertices, center], dim=-2)
    else:
        v = np.asarray(vertices)
        sealed = np.concatenate([v, v[..., loop, :].mean(axis=-2, keepdims=True)], axis=-2)
    return sealed, np.concatenate([faces, new_faces])


# --------------------------------------------------------------------------------------
# Posed hands and the hand source
# --------------------------------------------------------------------------------------


def _translation(t: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = t
    return m


def _rigid_inverse(m: np.ndarray) -> np.ndarray:
    out = np.zeros_like(m)
    rt = np.swapaxes(m[..., :3, :3], -1, -2)
    out[..., :3, :3] = rt
    out[..., :3, 3] = -(rt @ m[..., :3, 3:4])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def _make_posed_hand(**values: Any) -> PosedHand:
    names = {f.name for f in fields(PosedHand)}
    return PosedHand(**{k: v for k, v in values.items() if k in names})


def mano_posed_hand(
    model: ManoModel,
    pose: Any,
    betas: Any = None,
    *,
    tips: str | Sequence[int] = "smplx",
    pose_correctives: bool = True,
    faces: np.ndarray | None = None,
    ring: Sequence[int] | np.ndarray | None = WRIST_RING,
) -> PosedHand:
    """One posed MANO hand as a sealed :class:`PosedHand` of the model's side.

    Args:
        model: the MANO model.
        pose: absolute axis-angle pose ``[16, 3]`` (see :func:`mano_forward`).
        betas: ``[S']`` shape coefficients; default zero.
        tips: fingertip convention (:func:`tip_ids`).
        pose_correctives: add the pose-corrective blend shapes (module docstring).
        faces: override the model's faces (e.g. orientation-fixed); default ``model.faces``.
        ring: the wrist loop to seal (:func:`seal_wrist`); default MANO's 16 vertices.

    Returns:
        A closed hand (779 vertices) in metres with the wrist joint at the origin.
    """
    p = np.asarray(pose, dtype=np.float64)
    if p.shape not in ((16, 3), (48,)):
        raise HalohandInputError(f"pose must have shape [16, 3], got {list(p.shape)}")
    b = None if betas is None else np.asarray(betas, dtype=np.float64)
    if b is not None and b.ndim != 1:
        raise HalohandInputError(f"betas must have shape [S], got {list(b.shape)}")
    out = mano_forward(model, p, b, pose_correctives=pose_correctives)
    root = out.joints[0].copy()
    verts = out.vertices - root
    rest = out.rest_vertices - root
    ids = tip_ids(tips)
    keypoints = mano_keypoints(out.vertices, out.joints, ids) - root
    rest_keypoints = mano_keypoints(out.rest_vertices, out.rest_joints, ids) - root
    to_root, from_root = _translation(-root), _translation(root)
    part_transforms = to_root @ _rigid_inverse(out.skinning_transforms) @ from_root

    tri = model.faces if faces is None else np.asarray(faces, dtype=np.int64)
    sealed_v, sealed_f = seal_wrist(verts, tri, ring)
    sealed_rest, _ = seal_wrist(rest, tri, ring)
    palm = np.zeros((1, NUM_MANO_JOINTS))
    palm[0, 0] = 1.0
    weights = np.concatenate([model.weights, palm])
    weights = weights / weights.sum(axis=1, keepdims=True)
    return _make_posed_hand(
        vertices=sealed_v,
        faces=sealed_f,
        keypoints=keypoints,
        part_transforms=part_transforms,
        canonical_vertices=sealed_rest,
        bone_lengths=part_bone_lengths(keypoints),
        skin_weights=weights,
        part_labels=np.argmax(weights, axis=1).astype(np.int64),
        side=model.side,
        rest_keypoints=rest_keypoints,
    )


def mirror_hand(hand: PosedHand) -> PosedHand:
    """The mirror image (x -> -x) of a hand, with flipped faces and the other side label."""
    s = np.diag([-1.0, 1.0, 1.0, 1.0])
    values = {f.name: getattr(hand, f.name) for f in fields(PosedHand)}
    for name in ("vertices", "keypoints", "canonical_vertices", "rest_keypoints"):
        if name in values and isinstance(values[name], np.ndarray):
            values[name] = mirror(values[name])
    values["faces"] = hand.faces[:, [0, 2, 1]]
    values["part_transforms"] = s @ hand.part_transforms @ s
    values["side"] = "left" if hand.side == "right" else "right"
    return PosedHand(**values)


def sample_mano_params(
    model: ManoModel,
    rng: np.random.Generator,
    *,
    ncomps: int | None = None,
    pose_scale: float = 1.0,
    clip: float = 2.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a natural MANO pose and shape.

    Finger pose: PCA coefficients ``z_k * pca_std_k * pose_scale`` with ``z ~ N(0, 1)``
    clipped to ``[-clip, clip]``, decoded with ``hands_mean`` added (``flat_hand_mean=False``,
    like HALO's manopth data). ``pca_std`` comes from the file's ``hands_coeffs`` (MANO's
    training poses). No global rotation. Betas ``~ N(0, 1)`` clipped to ``[-clip, clip]``.
    Draws betas first, then the pose; the same generator state gives the same result.

    Returns:
        ``(pose [16, 3], betas [S])`` float64.
    """
    k = model.hands_components.shape[0] if ncomps is None else int(ncomps)
    if not 1 <= k <= model.hands_components.shape[0]:
        raise HalohandInputError(f"ncomps must be in 1..{model.hands_components.shape[0]}")
    betas = np.clip(rng.standard_normal(model.num_betas), -clip, clip)
    z = np.clip(rng.standard_normal(k), -clip, clip)
    coeffs = z * model.pca_std[:k] * pose_scale
    pose = mano_pose(model, pca=coeffs, flat_hand_mean=False)
    return np.asarray(pose, dtype=np.float64), betas


class ManoHandSource:
    """Hand source backed by a user-supplied MANO model (``make_source("mano", path)``).

    Args:
        model_path: ``MANO_RIGHT.pkl`` or ``MANO_LEFT.pkl`` (or a folder holding them).
        tips: fingertip convention for the keypoints (:func:`tip_ids`).
        ncomps: PCA components used by the pose prior (default all 45).
        pose_scale: multiplies the natural pose spread.
        pose_correctives: add MANO's pose-corrective blend shapes (module docstring).
        side: the side the file models; default from its name.

    Checked once at construction: the wrist ring is MANO's 16 vertices if they form the
    mesh's open boundary, otherwise the mesh's single boundary loop (``wrist_ring``); if
    the sealed template has negative volume (inward faces), the faces are flipped so the
    output is outward-oriented.
    """

    name = "mano"

    def __init__(
        self,
        model_path: Path,
        *,
        tips: str | Sequence[int] = "smplx",
        ncomps: int | None = None,
        pose_scale: float = 1.0,
        pose_correctives: bool = True,
        side: str | None = None,
    ) -> None:
        self.model = load_mano(model_path, side=side)
        self.tips = tip_ids(tips)
        self.ncomps = ncomps
        self.pose_scale = float(pose_scale)
        self.pose_correctives = pose_correctives
        try:
            v, f = seal_wrist(self.model.v_template, self.model.faces)
            self.wrist_ring = WRIST_RING
        except HalohandInputError:
            try:
                self.wrist_ring = _boundary_loop(self.model.faces)
            except HalohandInputError as exc:
                raise HalohandInputError(
                    f"{self.model.path}: cannot seal the wrist: {exc}"
                ) from None
            v, f = seal_wrist(self.model.v_template, self.model.faces, self.wrist_ring)
        tri = v[f]
        volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
        self.faces = self.model.faces if volume >= 0 else self.model.faces[:, [0, 2, 1]]

    def sample(self, rng: np.random.Generator, side: str = "right") -> PosedHand:
        """Draw one identity and one natural pose; the other side is mirrored."""
        if side not in ("right", "left"):
            raise HalohandInputError(f"side must be 'right' or 'left', got {side!r}")
        pose, betas = sample_mano_params(
            self.model, rng, ncomps=self.ncomps, pose_scale=self.pose_scale
        )
        hand = mano_posed_hand(
            self.model, pose, betas, tips=self.tips,
            pose_correctives=self.pose_correctives, faces=self.faces, ring=self.wrist_ring,
        )  # fmt: skip
        return hand if side == self.model.side else mirror_hand(hand)
