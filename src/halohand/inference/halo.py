"""User-facing API: keypoints -> occupancy and watertight, part-coloured hand meshes.

```python
import halohand

model = halohand.HALO.pretrained()                     # or HALO.from_checkpoint("best.safetensors")
mesh = model.reconstruct(keypoints, side="right", units="auto")   # trimesh.Trimesh
occ = model.occupancy(points, keypoints)               # torch.Tensor, differentiable
```

Frames and units: keypoints may be in any frame and in metres, centimetres or millimetres
(``units="auto"`` reads the unit off the skeleton's size, :func:`detect_units`). Meshes come
back in the same frame and units; query points are taken in them too. Internally the
keypoints are converted to metres and the project's (OpenPose) joint order, and the
network is queried in the input frame (the canonicalization layer's ``G`` maps it to the
HALO frame; left hands are mirrored inside ``G``), so no output needs to be transformed
back except for the unit scale.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh
from torch import Tensor

from halohand.core.device import select_device
from halohand.core.errors import HalohandInputError
from halohand.core.units import HAND_LENGTH_RANGE_M, UNIT_SCALE
from halohand.fields.conditioning import HandConditioning, hand_conditioning
from halohand.fields.io import load_any_model
from halohand.fields.skipping import effective_radii
from halohand.inference.extract import lattice_grid
from halohand.inference.image_occupancy import ImageOccupancy
from halohand.inference.lattice_query import LatticeQuery
from halohand.inference.pair_refiner import (
    PairFieldRefinement,
    PairOccupancyRefiner,
    level_logits,
)
from halohand.inference.query import (
    can_query_sparse,
    can_query_sparse_grad,
    occupancy_from_keypoints,
    query_occupancy,
    sparse_occupancy,
    sparse_query,
)
from halohand.inference.threads import run_batches, worker_count
from halohand.inference.touching import HAND_CONTACTS, PartContacts
from halohand.inference.two_hands import (
    PairRefiner,
    TwoHandReconstruction,
    pair_occupancy,
    reconstruct_pair,
    separate_occupancy,
)
from halohand.scene import Scene
from halohand.skeleton import NUM_PARTS, to_openpose
from halohand.skeleton.colors import part_vertex_colors
from halohand.skeleton.conventions import MOVED_TIPS, resolve_convention, to_rig
from halohand.skeleton.sides import parse_side
from halohand.skeleton.validation import check_format, check_keypoints, detect_units, resolve_units

__all__ = [
    "HAND_LENGTH_RANGE_M", "HALO", "PreparedHands", "UNIT_SCALE", "detect_units", "keypoint_box",
    "prepare_hands", "pretrained_path", "resolve_device", "resolve_units", "touching_contacts",
]  # fmt: skip

#: Padding of the extraction box around the keypoints' bounding box (as in ``evaluate``).
DEFAULT_PADDING_M = 0.04

#: ``(tolerance, floor)`` of the parts evaluated on the finest extraction level (``HALO``).
DEFAULT_PART_CANDIDATES = (0.3, 0.01)

#: Where the shipped default weights live inside the package.
PRETRAINED_RESOURCE = "weights/halo_default.safetensors"

SideSpec = str | Sequence[str] | np.ndarray | Tensor


def resolve_device(name: str | torch.device) -> torch.device:
    """``cpu``, ``cuda[:N]`` or ``auto`` as a device; an unknown name is a clear error."""
    return select_device(name)


def _side_arg(side: SideSpec, n: int) -> str | Tensor:
    """``"right"``/``"left"`` or a ``[n]`` bool tensor (True = left) for ``hand_conditioning``."""
    arr = parse_side(side)
    if isinstance(arr, str):
        return arr
    if arr.dtype != bool or arr.shape not in ((n,), ()):
        raise HalohandInputError(
            f"side must be 'right', 'left', or one per hand ({n}): names or booleans (True = left)"
        )
    return torch.as_tensor(np.broadcast_to(arr, (n,)).copy())


def _real_tensor(x: Any, name: str) -> Tensor:
    """``x`` as a tensor of real numbers (ints, floats); anything else is a clear error."""
    if not isinstance(x, Tensor):
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError):
            arr = np.asarray(None)
        if arr.dtype.kind not in "iuf":
            raise HalohandInputError(f"{name} must be an array of real numbers, got {arr.dtype}")
        x = torch.as_tensor(arr)
    if x.is_complex() or x.dtype == torch.bool:
        raise HalohandInputError(f"{name} must be an array of real numbers, got {x.dtype}")
    return x


def _all_finite(x: Tensor, block: int = 1 << 18) -> bool:
    """No NaN or inf in ``[..., N, 3]`` ``x``, checked ``block`` points at a time
    (``torch.isfinite`` of the whole array held ~30 bytes per value: 300 MiB for 10 M
    points)."""
    return all(
        bool(torch.isfinite(x[..., s : s + block, :]).all())
        for s in range(0, max(x.shape[-2], 1), block)
    )


def coarse_resolution_for(resolution: int) -> int:
    """First-level lattice size for the hierarchical extraction: ``resolution / 2^k``, the
    largest such divisor that is at most 32 (or ``resolution`` itself when it is odd)."""
    r = int(resolution)
    while r > 32 and r % 2 == 0:
        r //= 2
    return r


def _check_resolution(resolution: int) -> int:
    try:
        r = int(resolution)
    except (TypeError, ValueError, OverflowError):
        r = None
    if r is None or isinstance(resolution, str) or r != resolution or not 8 <= r <= 1024:
        raise HalohandInputError(f"resolution must be an integer in 8..1024, got {resolution}")
    return r


def pretrained_path() -> Path | None:
    """Path of the shipped default weights, or ``None`` when this build ships none."""
    try:
        res = importlib.resources.files("halohand").joinpath(PRETRAINED_RESOURCE)
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - broken install
        return None
    if not res.is_file():
        return None
    return Path(str(res))


def prepare_hands(
    keypoints: Any,
    side: SideSpec = "right",
    units: str = "auto",
    fmt: str = "openpose",
    device: str | torch.device = "cpu",
    convention: str = "auto",
    native: tuple[str, ...] = ("rig",),
    moved_tips: tuple[int, ...] = MOVED_TIPS,
) -> PreparedHands:
    """Validate hands and compute their network inputs; see :meth:`HALO.prepare`.

    ``native``: the placements the network was trained on (its config's
    ``keypoint_conventions``); hands in another one have the tips of ``moved_tips`` (its
    config's ``skin_tip_fingers``) moved onto the rig's tip joints
    (:func:`~halohand.skeleton.conventions.to_rig`)."""
    fmt = check_format(fmt)
    arr, _ = check_keypoints(keypoints, fmt)
    kp = np.ascontiguousarray(to_openpose(arr, fmt))
    unit = resolve_units(units, kp)
    scale = UNIT_SCALE[unit]
    conventions = _conventions(convention, kp)
    kp = np.ascontiguousarray(to_rig(kp, _moved(conventions, native), scale, moved_tips))
    side_arg = _side_arg(side, len(kp))
    with torch.no_grad():
        hands = hand_conditioning(
            torch.as_tensor(kp * scale).to(device), side_arg, _spread_known(conventions)
        )
    if isinstance(side_arg, str):
        is_left = np.full(len(kp), side_arg == "left")
    else:
        is_left = side_arg.numpy()
    return PreparedHands(kp, unit, scale, hands, is_left, tuple(conventions))


def _spread_known(conventions: list[str]) -> Tensor:
    """``[B]`` bool: the hands whose knuckle spread the network reads from their keypoints,
    those in the rig's placement; the knuckles of MANO-based keypoints sit elsewhere, and
    their hands read as the typical hand (:attr:`HandConditioning.spread_known`)."""
    return torch.tensor([c == "rig" for c in conventions], dtype=torch.bool)


def _moved(conventions: list[str], native: tuple[str, ...]) -> list[str]:
    """``conventions`` with the placements a network reads as given turned into ``"rig"``
    (:func:`~halohand.skeleton.conventions.to_rig` leaves those hands as they are)."""
    return ["rig" if c in native else c for c in conventions]


def _conventions(convention: str, keypoints: Any) -> list[str]:
    """:func:`~halohand.skeleton.conventions.resolve_convention` with the project's error."""
    try:
        return resolve_convention(convention, keypoints)
    except ValueError as exc:
        raise HalohandInputError(str(exc)) from None


@dataclass(frozen=True)
class PreparedHands:
    """Validated hands ready for reconstruction (see :meth:`HALO.prepare`).

    Attributes:
        keypoints: ``[N, 21, 3]`` float64, project (OpenPose) order, input frame and units,
            as the network reads them (skin-tip hands have their tips moved onto the
            rig's tip joints, :func:`~halohand.skeleton.conventions.to_rig`, unless the
            network was trained on skin tips too: :attr:`HALO.native`).
        units: the input's unit (``m``/``cm``/``mm``; detected if ``auto`` was asked).
        scale: metres per input unit.
        conditioning: the network inputs of the ``N`` hands (metres), on the model's device.
        is_left: ``[N]`` bool.
        conventions: the joint placement each hand was read in (``"rig"`` / ``"mano"``).
    """

    keypoints: np.ndarray
    units: str
    scale: float
    conditioning: HandConditioning
    is_left: np.ndarray
    conventions: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])


class HALO:
    """A keypoint-driven neural hand model: occupancy and meshes from 21 keypoints.

    Args:
        network: an :class:`~halohand.fields.OccupancyNetwork` with ``transforms="keypoints"``,
            or any module with the same ``query(points, part_matrices, bone_lengths,
            return_parts=..., part_mask=...)`` interface.
        skip_radii: part skipping during mesh extraction and occupancy queries (``None``:
            evaluate every part; ``True``: :data:`~halohand.fields.DEFAULT_SKIP_RADII_M`,
            fitted to the released HALO model; or ``[16]`` radii in metres fitted to this
            network with :func:`~halohand.fields.fit_skip_radii`).
        chunk_size: query points per network call (default: 1024 dense / 4096 skipping on
            CPU, 131072 on CUDA). Occupancy queries without gradients on the CPU bound
            their network calls by (point, part) pairs instead
            (:func:`~halohand.inference.query.sparse_occupancy`).
        padding_m: margin of the extraction box around the keypoints' bounding box (metres).
        grid_workers: threads that evaluate batches of points at once during mesh
            extraction and occupancy queries without gradients (default:
            ``torch.get_num_threads()`` on CPU, 1 on CUDA).
        part_candidates: ``(tolerance, floor)``: every extraction level after the first
            evaluates at a point only the parts whose probability, somewhere on the
            previous level's lattice within one of its cells, was within ``tolerance`` of
            the max and >= ``floor``
            (see :func:`~halohand.inference.lattice_grid`); ``None`` evaluates every part.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        *,
        skip_radii: Sequence[float] | Tensor | bool | None = None,
        chunk_size: int | None = None,
        padding_m: float = DEFAULT_PADDING_M,
        grid_workers: int | None = None,
        part_candidates: tuple[float, float] | None = DEFAULT_PART_CANDIDATES,
    ) -> None:
        if not callable(getattr(network, "query", None)):
            raise HalohandInputError("network must provide query(points, part_matrices, ...)")
        config = getattr(network, "config", None)
        transforms = getattr(config, "transforms", "keypoints")
        if transforms != "keypoints":
            raise HalohandInputError(
                f"this model was trained on {transforms!r} transforms; reconstruction from "
                f"keypoints needs a keypoint-driven model (variant 'halo')"
            )
        if hasattr(network, "eval"):
            network.eval()
        self.network = network
        self.skip_radii = skip_radii
        self.padding_m = float(padding_m)
        if chunk_size is None and self.device.type == "cuda":
            chunk_size = 131_072
        self.chunk_size = chunk_size
        self.grid_workers = grid_workers
        self.part_candidates = None if part_candidates is None else (16, *part_candidates)
        #: Probability level of the mesh surface: the network's calibrated ``iso_level``.
        self.iso_level = float(getattr(config, "iso_level", 0.5))

    # ---- construction ----------------------------------------------------------------

    @classmethod
    def pretrained(
        cls, path: str | os.PathLike[str] | None = None, *, device: str = "cpu", **kwargs: Any
    ) -> HALO:
        """The shipped default model (or the model file at ``path``).

        Raises:
            FileNotFoundError: when this build ships no weights and no ``path`` is given.
        """
        if path is None:
            path = pretrained_path()
            if path is None:
                raise FileNotFoundError(
                    "no pretrained weights shipped in this build; train with `halohand train` "
                    "and pass --checkpoint (HALO.from_checkpoint(path) in Python)"
                )
        return cls.from_checkpoint(path, device=device, **kwargs)

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike[str], *, device: str = "cpu", **kwargs: Any
    ) -> HALO:
        """Load a model file: ``*.safetensors`` (``save_model``) or a training ``checkpoint.pt``.

        Args:
            path: the file.
            device: ``cpu``, ``cuda[:N]`` or ``auto`` (CUDA when available).
            **kwargs: passed to :class:`HALO` (``skip_radii``, ``chunk_size``, ``padding_m``).

        Raises:
            HalohandInputError / CorruptFileError: missing, corrupt or foreign file (naming it).
        """
        return cls(load_any_model(path, resolve_device(device)), **kwargs)

    @property
    def device(self) -> torch.device:
        """Device of the network's parameters (CPU for parameter-free networks)."""
        param = (
            next(iter(self.network.parameters()), None)
            if hasattr(self.network, "parameters")
            else None
        )
        return param.device if param is not None else torch.device("cpu")

    # ---- occupancy -------------------------------------------------------------------

    def occupancy(
        self,
        points: Any,
        keypoints: Any,
        side: SideSpec = "right",
        units: str = "auto",
        fmt: str = "openpose",
        *,
        return_parts: bool = False,
        grad: bool | None = None,
        convention: str = "rig",
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Occupancy probability of query points around one hand or a batch of hands.

        Differentiable with respect to both ``points`` and ``keypoints`` (and the network's
        parameters): pass tensors with ``requires_grad=True``.

        Without gradients on the CPU, a network with part supports is evaluated only on the
        (point, part) pairs inside the supports, in batches of at most 32,768 pairs, in
        ``grid_workers`` threads (:func:`~halohand.inference.query.sparse_occupancy`):
        points outside every support are 0 without a network call. The values are those of
        the differentiable query up to float32 rounding (<= 1.2e-7 measured on the shipped
        model; ``benchmarks/speed/bench_occupancy.py``).

        With gradients on the CPU (from 8192 points per hand), such a network is
        evaluated the same way on the active pairs only, forward and backward in the same
        worker threads (:func:`~halohand.inference.query.sparse_query`): the values and
        first derivatives of the chunked differentiable query, with memory bounded by
        :data:`~halohand.inference.query.GRAD_CHECKPOINT_PAIRS` pairs of autograd graph
        (~1 GiB; beyond, the graphs are rebuilt one network call at a time in the backward
        pass); second derivatives through it are not supported
        (``benchmarks/speed/bench_occupancy_grad.py``).

        Args:
            points: ``[N, 3]`` or ``[B, N, 3]`` query points, same frame and units as the
                keypoints (``[N, 3]`` with a batch of hands queries every hand there).
            keypoints: ``[21, 3]`` or ``[B, 21, 3]`` (``J`` joints for ``webxr``/``openxr``).
            side: ``"right"``, ``"left"``, or one per hand (names or booleans, True = left).
            units: ``auto``, ``m``, ``cm`` or ``mm`` (``auto`` reads the keypoints' size; in
                optimization loops pass the unit to keep it fixed).
            fmt: keypoint format (``halohand.skeleton.FORMATS``).
            return_parts: also return the per-part probabilities (HALO part order).
            grad: build the autograd graph; default: when ``points`` or ``keypoints`` is a
                tensor that requires grad.
            convention: the keypoints' joint placement (:mod:`halohand.skeleton.conventions`):
                ``"rig"`` (the default here: optimisation loops move rig-placed keypoints
                and must not switch reading mid-way), ``"mano"`` (fingertips on the skin,
                moved onto the rig's tip joints, differentiably) or ``"auto"``.

        Returns:
            ``occupancy [N]`` or ``[B, N]`` in [0, 1] (the network's dtype, on its device),
            and with ``return_parts`` also ``[N, 16]`` / ``[B, N, 16]``.
        """
        fmt = check_format(fmt)
        dev = self.device
        pts = _real_tensor(points, "points")
        kp = _real_tensor(keypoints, "keypoints")
        if grad is None:
            grad = bool(pts.requires_grad or kp.requires_grad)
        if not pts.is_floating_point():
            pts = pts.to(torch.float64)
        if not kp.is_floating_point():
            kp = kp.to(torch.float64)
        single_kp = kp.ndim == 2
        if pts.ndim not in (2, 3) or pts.shape[-1] != 3:
            raise HalohandInputError(f"points must be [N, 3] or [B, N, 3], got {list(pts.shape)}")
        if not _all_finite(pts.detach()):
            raise HalohandInputError("points contain NaN or inf")
        check_keypoints(kp.detach(), fmt)  # shape and finiteness, with a clear message
        kp_b = (kp[None] if single_kp else kp).to(dev)
        unit = resolve_units(units, kp_b.detach().cpu().numpy(), fmt)
        scale = UNIT_SCALE[unit]
        batch = kp_b.shape[0]
        pts_b = (pts[None] if pts.ndim == 2 else pts).to(dev)
        if pts_b.shape[0] != batch:
            if pts_b.shape[0] != 1:
                raise HalohandInputError(
                    f"points batch ({pts_b.shape[0]}) and keypoints batch ({batch}) differ"
                )
        squeeze = single_kp and pts.ndim == 2
        with torch.set_grad_enabled(grad):
            kp_m = to_openpose(kp_b, fmt) * scale
            conventions = _conventions(convention, kp_m.detach())
            kp_m = to_rig(kp_m, _moved(conventions, self.native), fingers=self.moved_tips)
            hands = hand_conditioning(kp_m, _side_arg(side, batch), _spread_known(conventions))
            occ, parts = self._query(hands, pts_b, scale, return_parts)
        if squeeze:
            occ = occ[0]
            parts = None if parts is None else parts[0]
        return (occ, parts) if return_parts else occ

    def _query(
        self, hands: HandConditioning, points: Tensor, scale: float, return_parts: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Occupancy ``[B, N]`` and part probabilities ``[B, N, 16]`` (or None) at ``[B, N,
        3]`` (or ``[1, N, 3]``) points in units of ``scale`` metres, grad mode as set.

        Without gradients on the CPU, :func:`~halohand.inference.query.sparse_occupancy`
        (the same values; points outside every part's support cost no network call, worker
        threads as in mesh extraction); with gradients and part supports,
        :func:`~halohand.inference.query.sparse_query` (the differentiable query on the
        active (point, part) pairs only, in the same worker threads); else the chunked
        query.
        """
        if can_query_sparse(self.network, hands, points, self.skip_radii):
            workers = self.grid_workers or worker_count()
            return sparse_occupancy(
                self.network, hands, points, scale=scale, skip_radii=self.skip_radii,
                return_parts=return_parts, workers=workers,
            )  # fmt: skip
        batch = hands.part_matrices.shape[0]
        if can_query_sparse_grad(self.network, hands, self.skip_radii, points.shape[1]):
            workers = self.grid_workers or worker_count()
            return sparse_query(
                self.network, hands, points, scale=scale, skip_radii=self.skip_radii,
                return_parts=return_parts, workers=workers,
            )  # fmt: skip
        points_m = points.expand(batch, -1, -1) * scale
        return query_occupancy(
            self.network, hands, points_m, chunk_size=self.chunk_size,
            skip_radii=self.skip_radii, return_parts=return_parts,
        )  # fmt: skip

    # ---- meshes ----------------------------------------------------------------------

    def prepare(
        self,
        keypoints: Any,
        side: SideSpec = "right",
        units: str = "auto",
        fmt: str = "openpose",
        convention: str = "auto",
    ) -> PreparedHands:
        """Validate hands and compute their network inputs (no network evaluation).

        Raises :class:`~halohand.core.errors.HalohandInputError` for a wrong shape, NaN, unknown
        format or units, a size that fits no unit, or a degenerate skeleton (zero-length
        bone, collinear palm...), so that callers can check every input before writing.

        Args:
            keypoints: ``[J, 3]`` or ``[N, J, 3]`` (input frame and units).
            side: ``"right"``, ``"left"`` or one per hand.
            units: ``auto``, ``m``, ``cm`` or ``mm``.
            fmt: keypoint format.
            convention: where the keypoints sit on the hand
                (:mod:`halohand.skeleton.conventions`): ``"auto"`` (told per hand from the
                tip bones' proportions), ``"rig"`` (joint centres, tips under the skin) or
                ``"mano"`` (MANO-based datasets, MediaPipe: fingertips on the skin; given
                as they are to a network trained on both placements, else moved back onto
                the rig's tip joints; :attr:`native`).
        """
        return prepare_hands(
            keypoints, side, units, fmt, self.device, convention, self.native, self.moved_tips
        )

    @property
    def native(self) -> tuple[str, ...]:
        """The keypoint placements the network was trained on (its config's
        ``keypoint_conventions``; the rig's alone for networks without one): hands in
        these are given to it as they are."""
        return tuple(getattr(getattr(self.network, "config", None), "keypoint_conventions",
                             ("rig",)))  # fmt: skip

    @property
    def moved_tips(self) -> tuple[int, ...]:
        """The fingers whose skin tips are moved onto the rig's tip joints for a network
        that does not read skin tips (its config's ``skin_tip_fingers``;
        :data:`~halohand.skeleton.conventions.MOVED_TIPS` for networks without one)."""
        config = getattr(self.network, "config", None)
        return tuple(getattr(config, "skin_tip_fingers", MOVED_TIPS))

    def meshes(
        self,
        prepared: PreparedHands,
        resolution: int = 256,
        *,
        colors: bool = True,
        coarse_resolution: int | None = None,
        separate: bool = False,
        learned: PairFieldRefinement | None = None,
        touching: str | PartContacts = "merge",
    ) -> Iterator[trimesh.Trimesh]:
        """Yield one watertight mesh per prepared hand, in the input's frame and units.

        Args:
            prepared: from :meth:`prepare`.
            resolution: cells per axis of the extraction lattice over the keypoint box
                (+ ``padding_m``); 256 gives ~1.1 mm voxels for an adult hand.
            colors: colour vertices by part: the part with the highest probability at the
                inside end of the lattice edge each vertex lies on (under one voxel away).
            coarse_resolution: cells per axis of the first extraction level (default
                :func:`coarse_resolution_for`); ``resolution / coarse_resolution`` must be a
                power of two.
            separate: for exactly two hands (a pair): mesh each hand's occupancy with the
                other's claim removed
                (:func:`~halohand.inference.two_hands.separate_occupancy`), so the two
                surfaces meet instead of passing through each other.
            learned: for a pair (right, left): mesh the two occupancies as corrected
                together by the learned refinement
                (:func:`~halohand.inference.two_hands.learned_pair`); before ``separate``.
            touching: where two parts that are not joined by tissue meet (a curled
                fingertip on the palm, fingers pressed together), ``"merge"`` their
                surfaces (the max over parts) or keep them ``"apart"`` by a layer of
                lattice points under a voxel thick, so the mesh stays one body of genus 0
                (:mod:`halohand.inference.touching`); or a
                :class:`~halohand.inference.touching.PartContacts` of its own (which parts
                join, which are adjacent) to keep apart.

        Each mesh carries ``metadata`` ``units`` / ``side`` and, with ``colors``,
        ``vertex_attributes["part"]`` (uint8 HALO part index). A model that predicts no
        surface in the box gives an empty mesh.

        On the CPU, one hand spreads its lattice batches over ``grid_workers`` threads
        (one torch thread each); several hands instead run side by side, one per thread,
        so that one hand's serial steps (level bookkeeping, marching cubes) overlap the
        others' network work. Meshes come out in order, at most
        ``HANDS_IN_FLIGHT_PER_WORKER x workers`` at a time in memory.
        """
        res = _check_resolution(resolution)
        coarse = coarse_resolution_for(res) if coarse_resolution is None else coarse_resolution
        dev = self.device
        # On CPU, batches of lattice points run in one thread per torch thread (see
        # halohand.inference.extract._evaluate); a GPU takes them one by one.
        workers = self.grid_workers or (worker_count() if dev.type == "cpu" else 1)
        n = len(prepared)
        contacts = touching_contacts(touching)
        if separate and n != 2:
            raise HalohandInputError(f"separate=True needs exactly two hands, got {n}")
        if learned is not None and n != 2:
            raise HalohandInputError(f"the learned refinement needs exactly two hands, got {n}")
        paired = separate or learned is not None

        def other(i: int) -> int | None:
            return 1 - i if paired else None

        if workers < 2 or n < 2:
            for i in range(n):
                yield self._mesh(
                    prepared,
                    i,
                    res,
                    coarse,
                    colors,
                    workers,
                    other(i),
                    separate,
                    learned,
                    contacts,
                )
            return
        group = HANDS_IN_FLIGHT_PER_WORKER * workers
        # Side by side in whole rounds of one hand per worker; the last < workers hands
        # each spread over every worker instead (a fifth hand left on one thread while the
        # other idled put 5 hands at 1.11x the one-at-a-time time per hand).
        side_by_side = n - n % workers
        for start in range(0, side_by_side, group):
            done: dict[int, trimesh.Trimesh] = {}

            def one(i: int, done: dict[int, trimesh.Trimesh] = done) -> None:
                done[i] = self._mesh(
                    prepared, i, res, coarse, colors, 1, other(i), separate, learned, contacts
                )

            run_batches(
                one, range(start, min(start + group, side_by_side)), workers, one_thread=True
            )
            for i in sorted(done):
                yield done.pop(i)
        for i in range(side_by_side, n):
            yield self._mesh(
                prepared, i, res, coarse, colors, workers, other(i), separate, learned, contacts
            )

    def _mesh(
        self,
        prepared: PreparedHands,
        i: int,
        res: int,
        coarse: int,
        colors: bool,
        workers: int,
        other: int | None = None,
        separate: bool = True,
        learned: PairFieldRefinement | None = None,
        contacts: PartContacts | None = None,
    ) -> trimesh.Trimesh:
        """Mesh of prepared hand ``i`` (see :meth:`meshes`), lattice batches in ``workers``
        threads; with ``other``, its occupancy refined with hand ``other``'s (``learned``)
        and/or with ``other``'s claim removed (``separate``); with ``contacts``, touching
        parts kept apart (:func:`~halohand.inference.extract.lattice_grid`)."""
        radii = self.skip_radii
        dev = self.device
        by_part = self.part_candidates is not None
        chunk = self.chunk_size or _GRID_BATCH
        hand = prepared.conditioning.select(i, dev)
        kp_m = prepared.keypoints[i] * prepared.scale
        bmin, bmax = keypoint_box(kp_m, self.padding_m)
        # The lattice is built (in float32) around the box centre, which is added back
        # in float64: hands far from the origin are meshed as precisely as near it.
        centre = 0.5 * (bmin + bmax)
        centre_t = torch.as_tensor(centre, dtype=torch.float64, device=dev)

        with torch.no_grad():  # the folded path serves inference only
            fast = by_part and can_query_sparse(self.network, hand, centre_t[None, None], radii)
        labelled = colors or contacts is not None
        fn: Callable[..., Any]
        if fast:
            # The network's own CPU path: candidate pairs only, labels and candidate
            # bits reduced from them (halohand.inference.lattice_query).
            tolerance, floor = self.part_candidates[1:]
            fn = LatticeQuery(
                self.network, hand, centre, effective_radii(self.network, radii),
                tolerance, floor,
            )  # fmt: skip
        else:
            # Any other network (GPU, original checkpoint, no supports): the chunked
            # query, returning dense part probabilities (or argmax labels) to the grid.
            def fn(
                points: np.ndarray, part_mask: np.ndarray | None = None
            ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
                p = torch.from_numpy(np.ascontiguousarray(points)).to(dev, torch.float64)
                mask = None if part_mask is None else torch.from_numpy(part_mask)[None].to(dev)
                res = occupancy_from_keypoints(
                    self.network, hand, (p + centre_t)[None], chunk_size=chunk,
                    skip_radii=radii, return_parts=labelled or by_part, part_mask=mask,
                )  # fmt: skip
                if not (labelled or by_part):
                    return res[0].float().cpu().numpy()
                occ, parts = res
                if by_part:
                    return occ[0].float().cpu().numpy(), parts[0].float().cpu().numpy()
                return occ[0].float().cpu().numpy(), parts[0].argmax(-1).cpu().numpy()

        if other is not None:
            fn = self._paired(fn, prepared, i, other, centre_t, separate, learned)
        # Part colours come with the grid: each vertex takes the part with the highest
        # probability at the inside end of its lattice edge (< 1 voxel away), so the
        # vertices need no second network pass. Each level after the first evaluates
        # only the parts that were near the max around each point one level before.
        grid = lattice_grid(
            fn, bmin - centre, bmax - centre, resolution=res, coarse_resolution=coarse,
            labels=colors, batch=_LATTICE_BATCH, workers=workers,
            part_candidates=self.part_candidates, crop=True, threshold=self.iso_level,
            candidate_bits=fast, contacts=contacts,
        )  # fmt: skip
        # The grid covers only the lattice around the surface (``crop``).
        mesh = grid.mesh(self.iso_level, labelled=colors)
        mesh.vertices = np.asarray(mesh.vertices) + centre
        if colors:
            labels = np.asarray(mesh.vertex_attributes.pop("label"), dtype=np.uint8)
            if len(labels):  # an empty mesh keeps trimesh's default visual
                mesh.visual.vertex_colors = part_vertex_colors(labels)
                mesh.vertex_attributes["part"] = labels
        if prepared.scale != 1.0:
            # divide (not multiply by 1 / scale): exact for the metre -> mm round trip
            mesh.vertices = np.asarray(mesh.vertices) / prepared.scale
        mesh.metadata["units"] = prepared.units
        mesh.metadata["side"] = "left" if prepared.is_left[i] else "right"
        return mesh

    def _paired(
        self,
        fn: Callable[..., Any],
        prepared: PreparedHands,
        own: int,
        other: int,
        centre: Tensor,
        separate: bool,
        learned: PairFieldRefinement | None,
    ) -> Callable[..., Any]:
        """``fn`` (hand ``own``'s lattice occupancy about ``centre``) made aware of prepared
        hand ``other``: both refined together by ``learned`` (pair order: hand 0 right,
        hand 1 left), then, with ``separate``, ``other``'s claim removed
        (:func:`~halohand.inference.two_hands.separate_occupancy`). The other hand is
        queried only at points inside its own keypoint box: outside it, its occupancy is
        below the level by construction of the box's padding (and taken as 0). A
        refinement with a bounded residual runs only on the band of points whose side it
        can change (:meth:`~halohand.inference.pair_refiner.LearnedPair.refine`)."""
        dev = self.device
        hand = prepared.conditioning.select(other, dev)
        kp_m = prepared.keypoints[other] * prepared.scale
        lo, hi = (torch.as_tensor(b, dtype=torch.float64, device=dev)
                  for b in keypoint_box(kp_m, self.padding_m))  # fmt: skip
        level = self.iso_level
        radii = self.skip_radii
        lattice: LatticeQuery | None = None
        if self.part_candidates is not None:
            with torch.no_grad():
                if can_query_sparse(self.network, hand, centre[None, None], radii):
                    # the network's own CPU path, on the lattice points as they come
                    # (float32 about this lattice's centre), every part in support
                    tolerance, floor = self.part_candidates[1:]
                    lattice = LatticeQuery(
                        self.network, hand, centre.cpu().numpy(),
                        effective_radii(self.network, radii), tolerance, floor,
                    )  # fmt: skip

        def other_at(points: np.ndarray, p: Tensor, rows: Tensor) -> Tensor:
            """The other hand's occupancy ``[len(rows)]`` at ``points[rows]`` (0 outside
            its box)."""
            occ = torch.zeros(len(rows), dtype=torch.float32, device=dev)
            near = ((p[rows] >= lo) & (p[rows] <= hi)).all(-1).nonzero()[:, 0]
            if len(near) and lattice is not None:
                at = np.asarray(points)[rows[near].cpu().numpy()]
                occ[near] = torch.from_numpy(lattice(at, None)[0]).to(dev)
            elif len(near):
                with torch.no_grad():
                    occ[near] = occupancy_from_keypoints(
                        self.network, hand, p[rows[near]][None],
                        chunk_size=self.chunk_size or _GRID_BATCH, skip_radii=radii,
                    )[0].float()  # fmt: skip
            return occ

        def paired(points: np.ndarray, *rest: Any) -> Any:
            out = fn(points, *rest)
            values = out[0] if isinstance(out, tuple) else out
            p = torch.from_numpy(np.ascontiguousarray(points)).to(dev, torch.float64) + centre
            # a copy: fn's own array is left as it was
            mine = torch.from_numpy(np.array(values, dtype=np.float32)).to(dev)
            bound = None if learned is None else learned.residual_bound
            if bound is not None and not separate:
                # Only this hand's band can change side (LearnedPair.refine): only there
                # does the refinement run, and only there is the other hand needed.
                rows = (level_logits(mine, level).abs() <= bound).nonzero()[:, 0]
            elif learned is not None:
                rows = torch.arange(len(p), device=dev)
            else:
                rows = ((p >= lo) & (p <= hi)).all(-1).nonzero()[:, 0]
            if len(rows) == 0:
                return out
            occ = other_at(points, p, rows)
            if learned is not None:
                both = torch.stack([mine[rows], occ] if own == 0 else [occ, mine[rows]], -1)
                with torch.no_grad():
                    # the lattice is in metres; with separate, the other hand's side
                    # matters too, so the band is both hands' (a bounded residual only)
                    band = (0, 1) if separate and bound is not None else None
                    both = learned.refine(p[rows], both, band=band)
                occ = both[:, other]
                mine[rows] = both[:, own]
            if separate:
                mine[rows] = separate_occupancy(mine[rows], occ, level)
            values = mine.cpu().numpy().astype(np.asarray(values).dtype)
            return (values, *out[1:]) if isinstance(out, tuple) else values

        return paired

    def reconstruct(
        self,
        keypoints: Any,
        side: SideSpec = "right",
        units: str = "auto",
        fmt: str = "openpose",
        resolution: int = 256,
        *,
        colors: bool = True,
        convention: str = "auto",
        touching: str | PartContacts = "merge",
    ) -> trimesh.Trimesh | list[trimesh.Trimesh]:
        """Watertight, part-coloured mesh of a hand, in the keypoints' frame and units.

        Args:
            keypoints: ``[21, 3]`` (``[J, 3]`` for ``webxr``/``openxr``) in any frame, in
                metres, centimetres or millimetres. ``[N, J, 3]`` gives a list of meshes
                (same as :meth:`reconstruct_batch`).
            side: ``"right"`` or ``"left"`` (or one per hand for a batch).
            units: ``auto`` (detected from the hand's size), ``m``, ``cm`` or ``mm``.
            fmt: keypoint format: ``openpose`` (= ``mediapipe``), ``mano``, ``biomech``,
                ``interhand``, ``webxr``, ``openxr``.
            resolution: extraction lattice cells per axis (see :meth:`meshes`).
            colors: colour vertices by part.
            convention: the keypoints' joint placement, ``"auto"``, ``"rig"`` or ``"mano"``
                (see :meth:`prepare`): a MANO-based dataset's fingertips are on the skin,
                so the surface ends there instead of ~2 cm beyond.
            touching: ``"merge"`` or ``"apart"``: whether parts that touch without being
                joined by tissue (a fist's fingertips on the palm) merge or stay apart
                (see :meth:`meshes`).

        Returns:
            a ``trimesh.Trimesh`` (RGBA vertex colours from ``halohand.apps.render.PART_COLORS``),
            or a list of them for ``[N, J, 3]`` input.
        """
        arr, seq = check_keypoints(keypoints, check_format(fmt))
        meshes = self.reconstruct_batch(
            arr, side, units, fmt, resolution, colors=colors, convention=convention,
            touching=touching,
        )  # fmt: skip
        return meshes if seq else meshes[0]

    def reconstruct_scene(
        self,
        scene: Scene,
        resolution: int = 256,
        *,
        colors: bool = True,
        touching: str | PartContacts = "merge",
    ) -> trimesh.Scene:
        """Mesh every hand of a :class:`~halohand.scene.Scene` and return the whole scene
        (hands and objects, metres, world frame) as one ``trimesh.Scene``.

        Each hand keeps its own side, joint order and unit; all hands are validated before
        any meshing; ``touching`` as :meth:`meshes`.
        """
        if not isinstance(scene, Scene):
            raise HalohandInputError(f"expected a halohand.scene.Scene, got {type(scene).__name__}")
        meshes: list[trimesh.Trimesh] = []
        if scene.hands:
            kp = scene.keypoints_m()
            sides = [h.side for h in scene.hands]
            prepared = self.prepare(kp, sides, "m")
            meshes = list(self.meshes(prepared, resolution, colors=colors, touching=touching))
        return scene.to_trimesh(meshes)

    def reconstruct_pair(
        self,
        keypoints: Any,
        units: str = "auto",
        fmt: str | None = None,
        resolution: int = 256,
        *,
        colors: bool = True,
        refine: PairRefiner | None = None,
        separate: bool = False,
        convention: str = "auto",
        refine_occupancy: bool | str | PairOccupancyRefiner | ImageOccupancy = False,
        touching: str | PartContacts = "merge",
    ) -> TwoHandReconstruction:
        """A right and a left hand from one array: two watertight meshes and their
        occupancy fields (:mod:`halohand.inference.two_hands`).

        Args:
            keypoints: ``[42, 3]`` (InterHand2.6M: right at 0-20, left at 21-41) or
                ``[2, J, 3]`` (right, left), one frame and unit for both hands.
            units: ``auto`` (detected from the hands' size), ``m``, ``cm`` or ``mm``.
            fmt: joint order of each hand (default ``interhand`` for ``[42, 3]``,
                ``openpose`` for ``[2, J, 3]``).
            resolution: extraction lattice cells per axis (see :meth:`meshes`).
            colors: colour vertices by part.
            refine: two-hand keypoint refinement applied before meshing: ``[2, 21, 3]``
                metres (project order, right then left) -> the same. ``None``: each hand
                is reconstructed independently from the given keypoints (the baseline).
            separate: remove the overlap of the two occupancy fields before meshing: each
                loses the other's excess over the mesh level, so where both hands claim a
                point the surer one keeps it
                (:func:`~halohand.inference.two_hands.separate_occupancy`); the meshes meet
                instead of passing through each other (after ``refine``, if any).
            convention: the keypoints' joint placement per hand (see :meth:`prepare`).
            refine_occupancy: a learned two-hand occupancy refinement; both hands' fields
                are corrected together before meshing (and before ``separate``). ``True``
                or ``"residual"``: the shipped keypoint residual (a per-point network on
                both hands' HALO logits and the distances to the hand's joints,
                :mod:`halohand.inference.image_occupancy` without its image branch; the
                better of the two on validation and held-out pairs). ``"attention"``: the
                shipped attention refiner (Im2Hands' refinement network,
                :mod:`halohand.inference.pair_refiner`). Or a network of either kind
                (:func:`~halohand.inference.two_hands.check_refinement`).
            touching: where parts that tissue does not join touch within a hand,
                ``"merge"`` or ``"apart"`` (see :meth:`meshes`).

        Returns:
            a :class:`~halohand.inference.two_hands.TwoHandReconstruction` (``right``,
            ``left``, ``keypoints``, ``occupancy(points)`` ``[2, N]``, ``scene()``).

        On the CPU the two hands are meshed side by side, one thread each (:meth:`meshes`).
        """
        return reconstruct_pair(
            self, keypoints, units, fmt, resolution, colors=colors, refine=refine,
            separate=separate, convention=convention, refine_occupancy=refine_occupancy,
            touching=touching,
        )  # fmt: skip

    def pair_occupancy(
        self,
        points: Any,
        keypoints: Any,
        units: str = "auto",
        fmt: str | None = None,
        *,
        grad: bool | None = None,
    ) -> Tensor:
        """``[2, N]`` occupancy of each hand of a pair (right, left) at shared points
        ``[N, 3]`` (keypoints as :meth:`reconstruct_pair`; same frame and units).
        Differentiable with respect to points and keypoints, as :meth:`occupancy`."""
        return pair_occupancy(self, points, keypoints, units, fmt, grad=grad)

    def reconstruct_batch(
        self,
        keypoints: Any,
        side: SideSpec = "right",
        units: str = "auto",
        fmt: str = "openpose",
        resolution: int = 256,
        *,
        colors: bool = True,
        progress: bool = False,
        convention: str = "auto",
        touching: str | PartContacts = "merge",
    ) -> list[trimesh.Trimesh]:
        """One mesh per hand of ``[N, J, 3]`` keypoints (all validated before any meshing;
        ``convention`` as :meth:`prepare`, ``touching`` as :meth:`meshes`)."""
        touching_contacts(touching)
        prepared = self.prepare(keypoints, side, units, fmt, convention)
        it = self.meshes(prepared, resolution, colors=colors, touching=touching)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, total=len(prepared), desc="reconstruct", unit="hand")
        return list(it)


#: Hands meshed at once per worker thread by :meth:`HALO.meshes` for several hands (more
#: keeps the threads busy across the hands' serial steps; each holds its mesh until
#: its turn to be yielded).
HANDS_IN_FLIGHT_PER_WORKER = 2

#: Query points per network chunk unless ``HALO(chunk_size=...)`` (8192 measured faster than
#: 4096 and 16384 on the 2-core CPU, when it also set the lattice batch below).
_GRID_BATCH = 8192

#: Lattice points per call of the occupancy function during mesh extraction: ~45k (point,
#: part) pairs near the surface, ~2,800 rows per part, so the folded network's per-part
#: Python dispatch is paid over more rows. The shipped model meshed in 0.89x the time of
#: 8192 on two threads, the MLP baseline in 1.02x (``bench_extraction.py
#: --baseline-rev``, ``docs/RESULTS.md``, "The extraction budget and the photos' misses").
_LATTICE_BATCH = 32_768


#: What :meth:`HALO.meshes` does where parts that are not joined touch.
TOUCHING = ("merge", "apart")


def touching_contacts(touching: str | PartContacts) -> PartContacts | None:
    """What ``touching`` (:meth:`HALO.meshes`) keeps apart (``None``: nothing, the parts
    merge); a bad value raises :class:`~halohand.core.errors.HalohandInputError`."""
    if isinstance(touching, PartContacts):
        for table in (touching.joined, touching.adjacent):
            if np.shape(table) != (NUM_PARTS, NUM_PARTS):
                raise HalohandInputError(
                    f"touching tables must be [{NUM_PARTS}, {NUM_PARTS}] bool (HALO's parts), "
                    f"got {np.shape(table)}"
                )
        return touching
    if touching not in TOUCHING:
        raise HalohandInputError(f"touching must be one of {', '.join(TOUCHING)}, got {touching!r}")
    return HAND_CONTACTS if touching == "apart" else None


def keypoint_box(
    keypoints_m: np.ndarray, padding_m: float = DEFAULT_PADDING_M
) -> tuple[np.ndarray, np.ndarray]:
    """Extraction cube ``(bmin [3], bmax [3])`` in metres: the keypoints' bounding box made
    cubic about its centre, plus ``padding_m`` on every side."""
    kp = np.asarray(keypoints_m, dtype=np.float64)
    lo, hi = kp.min(0), kp.max(0)
    centre = 0.5 * (lo + hi)
    half = 0.5 * float((hi - lo).max()) + padding_m
    return centre - half, centre + half
