"""Compatibility with the original HALO release (korrawe/halo, ``halo_base_yt3d``).

The original checkpoint is *not* shipped (no license); these functions load it when a user
has it, map its 16 separate per-part layers onto the batched layout of
:class:`halohand.fields.OccupancyNetwork`, and run the original inference convention, which
the compatibility test checks against reference outputs of the original code.

Original inference convention (keypoints and query points in metres, same frame):

1. global normalization ``G`` of the keypoints (wrist to origin, fixed palm orientation);
2. query points ``p = (G x) / 0.4`` (HALO units);
3. part matrices in HALO units ``S^-1 M_k S`` with ``S = diag(.4, .4, .4, 1)``;
4. pose code = those matrices applied to the origin; bone lengths in metres.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from halohand.canonical import canonical_frames, canonicalize
from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.rotations import swing
from halohand.core.unpickle import restricted_loads
from halohand.fields.conditioning import HALO_UNIT_M, HandConditioning
from halohand.fields.occupancy import OccupancyConfig, OccupancyNetwork
from halohand.inference.query import occupancy_from_keypoints
from halohand.skeleton import PARENTS, PART_BONES

_ORIGINAL_PREFIX = "decoder."


# --------------------------------------------------------------------------------------------
# Restricted reading of the original checkpoint
# --------------------------------------------------------------------------------------------


def _numpy_scalar(dtype: Any, data: bytes | None = None) -> Any:
    # Rebuilds a numpy scalar from (dtype, raw bytes); only plain numeric dtypes are accepted
    # so no object-dtype payload can smuggle in a pickled object.
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc":
        raise pickle.UnpicklingError(f"refusing numpy scalar of dtype {dtype!r}")
    if not isinstance(data, bytes | bytearray) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("malformed numpy scalar")
    return np.frombuffer(data, dtype=dtype)[0]


def _numpy_dtype(spec: str, align: bool = False, copy: bool = False) -> np.dtype:
    dt = np.dtype(spec)
    if dt.kind not in "biufc":
        raise pickle.UnpicklingError(f"refusing numpy dtype {spec!r}")
    return dt


class _Storage:
    """A checkpoint storage record: raw bytes and their element type."""

    def __init__(self, untyped: torch.UntypedStorage, dtype: torch.dtype) -> None:
        self.untyped = untyped
        self.dtype = dtype


def _rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, *_: Any) -> Tensor:
    # Same meaning as torch._utils._rebuild_tensor_v2 (a strided view of a storage);
    # requires_grad, hooks and metadata from the pickle are ignored on purpose.
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("tensor without a storage record")
    t = torch.empty(0, dtype=storage.dtype)
    t.set_(storage.untyped, int(offset), tuple(int(v) for v in size), tuple(int(v) for v in stride))
    return t


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "BoolStorage": torch.bool,
    "ByteStorage": torch.uint8,
}


class _StorageType:
    """Placeholder standing for ``torch.<X>Storage`` in persistent ids."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


#: The globals a torch zip checkpoint of HALO names, and the safe stand-ins they resolve to.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
    # numpy scalars pickle their raw bytes as latin-1 text through codecs.encode.
    ("_codecs", "encode"): lambda text, enc="latin1": text.encode(enc),
}


class _ZipStorages:
    """Resolves the checkpoint's persistent ids: tensor storages read from the zip records
    on demand (once each)."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str) -> None:
        self._archive = archive
        self._prefix = prefix
        self._storages: dict[str, _Storage] = {}

    def __call__(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("unexpected storage type")
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}data/{key}")
            buf = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
            self._storages[key] = _Storage(buf.untyped_storage(), storage_type.dtype)
        return self._storages[key]


def read_original_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an original HALO ``model_best.pt`` without executing arbitrary pickle code.

    Returns:
        the checkpoint dict (``model`` state dict, ``it``, ``epoch_it``, ``loss_val_best``,
        ``optimizer`` state).

    Raises:
        CorruptFileError: unreadable, not a torch zip checkpoint, or containing objects
            other than tensors / numbers / containers.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pkl) != 1:
                raise CorruptFileError(f"{path}: not a PyTorch zip checkpoint (no data.pkl)")
            prefix = pkl[0][: -len("data.pkl")]
            data = archive.read(pkl[0])
            obj = restricted_loads(
                data, _ALLOWED, path=path, what="HALO checkpoint",
                persistent_load=_ZipStorages(archive, prefix),
            )  # fmt: skip
    except CorruptFileError:
        raise
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, KeyError,
            ValueError, TypeError, RuntimeError, AttributeError, IndexError) as exc:  # fmt: skip
        raise CorruptFileError(f"{path}: cannot read HALO checkpoint ({exc})") from exc
    if not isinstance(obj, dict):
        raise CorruptFileError(f"{path}: checkpoint is a {type(obj).__name__}, not a dict")
    return obj


def convert_original_state_dict(
    state: dict[str, Tensor], config: OccupancyConfig | None = None
) -> dict[str, Tensor]:
    """Map the original per-part parameter names onto the batched layout.

    Original names (``PiecewiseDeformableDecoder``): ``decoder.lin{k}_{j}.{weight,bias}``
    (part k, layer j, weight ``[out, in]``), ``decoder.global_proj{k}.*`` and
    ``decoder.bone_encoder.linear{1,2}.*``. Batched weights are ``[K, in, out]``.
    """
    cfg = config or OccupancyConfig()
    k_parts = cfg.num_parts
    n_layers = len(cfg.hidden) + 1
    s = {
        (key[len(_ORIGINAL_PREFIX) :] if key.startswith(_ORIGINAL_PREFIX) else key): v
        for key, v in state.items()
    }
    out: dict[str, Tensor] = {}
    used: set[str] = set()

    def take(name: str) -> Tensor:
        if name not in s:
            raise KeyError(name)
        used.add(name)
        return s[name].detach().to(torch.float32)

    for j in range(n_layers):
        out[f"mlp.layers.{j}.weight"] = torch.stack(
            [take(f"lin{k}_{j}.weight").T for k in range(k_parts)]
        ).contiguous()
        out[f"mlp.layers.{j}.bias"] = torch.stack(
            [take(f"lin{k}_{j}.bias") for k in range(k_parts)]
        )
    if cfg.use_pose_code and cfg.pose_projection_size > 0:
        out["pose_projection.weight"] = torch.stack(
            [take(f"global_proj{k}.weight").T for k in range(k_parts)]
        ).contiguous()
        out["pose_projection.bias"] = torch.stack(
            [take(f"global_proj{k}.bias") for k in range(k_parts)]
        )
    if cfg.use_bone_length and cfg.bone_latent_size > 0:
        for ours, theirs in (("0", "linear1"), ("2", "linear2")):
            out[f"bone_encoder.{ours}.weight"] = take(f"bone_encoder.{theirs}.weight")
            out[f"bone_encoder.{ours}.bias"] = take(f"bone_encoder.{theirs}.bias")
    leftover = set(s) - used
    if leftover:
        raise KeyError(f"unexpected parameters {sorted(leftover)[:5]}")
    return out


def load_original_checkpoint(path: str | os.PathLike[str]) -> OccupancyNetwork:
    """Load the released HALO base checkpoint into an :class:`OccupancyNetwork` (eval mode).

    Raises:
        CorruptFileError: the file is unreadable or is not a HALO base checkpoint.
    """
    ckpt = read_original_checkpoint(path)
    state = ckpt.get("model")
    if not isinstance(state, dict):
        raise CorruptFileError(f"{path}: no 'model' state dict in checkpoint")
    model = OccupancyNetwork(OccupancyConfig(variant="halo_original"))
    try:
        converted = convert_original_state_dict(state)
        model.load_state_dict(converted, strict=True)
    except (KeyError, RuntimeError) as exc:
        raise CorruptFileError(f"{path}: not a HALO base (piece_deform) checkpoint: {exc}") from exc
    return model.eval()


# --------------------------------------------------------------------------------------------
# Original inference convention
# --------------------------------------------------------------------------------------------

# Public bone index (child joint - 1) of each finger's root bone, thumb..pinky.
_ROOT_BONES = (0, 4, 8, 12, 16)
_ACOS_CLIP = 1.0 - 1e-6


def _reference_angles(local: Tensor) -> tuple[Tensor, Tensor]:
    # The original converter's flexion/abduction: clipped arccos with +-1e-6 sign offsets
    # (canonicalization spec 6.2/6.4). Its floor of ~1.414e-3 rad on straight bones is what
    # separates it from the clean atan2 angles of halohand.canonical.
    lx, ly, lz = local.unbind(-1)
    n = torch.hypot(lx, lz).clamp_min(1e-9)
    lz0 = torch.where(lz.abs() < 1e-6, torch.zeros_like(lz), lz)
    theta = torch.arccos((lz0 / n).clamp(-_ACOS_CLIP, _ACOS_CLIP))
    theta = torch.where(lx + 1e-6 < 0, -theta, theta)
    phi = torch.arccos(((lx * lx + lz * lz) / n).clamp(-_ACOS_CLIP, _ACOS_CLIP))
    phi = torch.where(ly + 1e-6 > 0, -phi, phi)
    return theta, phi


def reference_part_matrices(canon: Any) -> Tensor:
    """Part matrices as the *original* converter computes them (acos-clip quirk).

    Re-measures the finger angles of a :class:`halohand.canonical.Canonicalization` with
    the original clipped-``arccos`` formulas and rebuilds the 16 part matrices; palm
    normalization, frames and everything else are taken from the layer. Only for parity
    with the released checkpoint's reference outputs: near-straight bones differ from the
    clean layer by up to 1.4e-3 rad, which moves a few probabilities by up to ~1e-2.

    Returns:
        ``[B, 16, 4, 4]`` HALO units (``S^-1 M S``).
    """

    p = canon.normalized_keypoints  # [B, 21, 3] HALO frame, metres
    dtype = p.dtype
    parents = torch.as_tensor(PARENTS[1:])
    vec = p[:, 1:] - p[:, parents]  # [B, 20, 3], bone j = child joint j + 1
    length = torch.linalg.vector_norm(vec, dim=-1)
    d = vec / length.clamp_min(1e-12).unsqueeze(-1)
    f1 = canonical_frames(dtype=dtype, device=p.device)
    rots = canon.bone_transforms[..., :3, :3].clone()  # root bones keep N_f
    for f, root in enumerate(_ROOT_BONES):
        palm = canon.bone_transforms[:, root, :3, :3]  # N_f
        chain = torch.eye(3, dtype=dtype, device=p.device).expand_as(palm)
        for level in (1, 2, 3):
            b = root + level
            e = (palm @ d[:, b, :, None])[..., 0]
            local = ((chain.transpose(-1, -2) @ f1[f]) @ e[..., None])[..., 0]
            theta, phi = _reference_angles(local)
            chain = chain @ swing(theta, phi)
            rots[:, b] = f1[f].T @ chain.transpose(-1, -2) @ f1[f] @ palm
    step = length.unsqueeze(-1) * (rots @ d.unsqueeze(-1))[..., 0]
    joints = [torch.zeros_like(p[:, 0])]
    for j in range(1, 21):
        joints.append(joints[int(PARENTS[j])] + step[:, j - 1])
    c = torch.stack(joints, 1)
    m = torch.zeros(p.shape[0], 20, 4, 4, dtype=dtype, device=p.device)
    m[..., :3, :3] = rots
    m[..., :3, 3] = c[:, parents] - (rots @ p[:, parents].unsqueeze(-1))[..., 0]
    m[..., 3, 3] = 1.0
    eye = torch.eye(4, dtype=dtype, device=p.device).expand(p.shape[0], 1, 4, 4)
    parts = torch.cat([eye, m[:, torch.as_tensor(PART_BONES[1:, 1] - 1)]], 1)
    parts = parts.clone()
    parts[..., :3, 3] = parts[..., :3, 3] / HALO_UNIT_M
    return parts


def original_conditioning(keypoints_m: Tensor, *, reference_angles: bool = True) -> Any:
    """Network conditioning of right hands in the original convention.

    Args:
        keypoints_m: ``[B, 21, 3]`` metres, the project's (OpenPose) order, right hands.
        reference_angles: reproduce the original converter's clipped-arccos angles
            (:func:`reference_part_matrices`); ``False`` uses the clean layer as is.

    Returns:
        a :class:`halohand.fields.conditioning.HandConditioning`.
    """

    if keypoints_m.ndim != 3 or keypoints_m.shape[1:] != (21, 3):
        raise HalohandInputError(f"keypoints must be [B, 21, 3], got {list(keypoints_m.shape)}")
    kp = keypoints_m.to(torch.float64)
    canon = canonicalize(kp, side="right")
    parts = reference_part_matrices(canon) if reference_angles else canon.part_transforms_halo_units
    return HandConditioning(
        global_transform=canon.global_transform,
        part_matrices=parts,
        bone_lengths=canon.part_bone_lengths,
        keypoints=kp,
    )


@torch.no_grad()
def original_occupancy(
    model: OccupancyNetwork,
    keypoints_m: Tensor,
    points_m: Tensor,
    *,
    reference_angles: bool = True,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Occupancy of query points of right hands, original HALO inference convention.

    Args:
        model: e.g. :func:`load_original_checkpoint`'s result.
        keypoints_m: ``[B, 21, 3]`` or ``[21, 3]`` metres, the project's order.
        points_m: ``[B, N, 3]`` or ``[N, 3]`` metres, same frame as the keypoints.
        reference_angles: see :func:`original_conditioning`.
        chunk_size: points per forward call (see ``occupancy_from_keypoints``).

    Returns:
        ``occupancy [B, N]`` probabilities and ``part_probs [B, N, 16]`` (HALO part order),
        without the batch dimension if the inputs had none.
    """

    single = keypoints_m.ndim == 2
    if single:
        keypoints_m, points_m = keypoints_m[None], points_m[None]
    hands = original_conditioning(keypoints_m, reference_angles=reference_angles)
    occ, parts = occupancy_from_keypoints(
        model, hands, points_m, chunk_size=chunk_size, return_parts=True
    )
    return (occ[0], parts[0]) if single else (occ, parts)
