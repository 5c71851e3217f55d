"""Two hands at once: a right and a left hand from one ``[2, 21, 3]`` / ``[42, 3]`` array.

```python
pair = model.reconstruct_pair(kp42)              # InterHand2.6M order, right 0-20, left 21-41
pair.right, pair.left                            # watertight trimesh.Trimesh each
occ = pair.occupancy(points)                     # [2, N] per-hand probabilities, differentiable
pair.scene().export("pair.glb")                  # one GLB, nodes hand_right and hand_left
```

Input layouts (:func:`pair_keypoints`): ``[42, 3]`` is InterHand2.6M's (right hand at joints
0-20, left at 21-41, each in InterHand order unless ``fmt`` names another 21-joint order);
``[2, J, 3]`` is (right, left), each in ``fmt`` (default ``openpose``; ``J`` = 25 / 26 for
``webxr`` / ``openxr``). Both hands share one frame and one unit.

Each hand is reconstructed on its own (the baseline of Im2Hands' initial per-hand stage).
With ``separate=True`` the two occupancy fields are made consistent with each other before
meshing (:func:`separate_occupancy`): each hand's occupancy loses the other hand's excess
over the mesh level ``l``, ``o' = o - max(0, o_other - l)``. Where only one hand claims a
point nothing changes; where both do, ``o' - l = o - o_other`` for one and the opposite for
the other, so exactly the surer hand keeps it and both surfaces lie on the same set
(``o = o_other``): they meet instead of passing through each other. The fields stay
continuous, so the two meshes approximate that one interface from both sides to within the
lattice's interpolation error. This is a rule, not a learned refinement: it removes the
overlap HALO's independent fields leave; a finger that the keypoints put through the other
hand is cut where the other hand is surer, not moved (moving it is ``refine``'s job). ``refine`` is
the hook for a two-hand stage that corrects the keypoints before meshing (e.g. against
interpenetration or keypoint noise): it receives and returns ``[2, 21, 3]`` metres in the
project's order (right, left), in the input frame.

With ``refine_occupancy`` the two occupancy fields go through the learned two-hand
refinement (Im2Hands' refinement network, :mod:`halohand.inference.pair_refiner`) before
meshing: both hands' initial HALO meshes at the refiner's ``surface_resolution`` give the
points it encodes, and every lattice point's two occupancies are corrected together
(:func:`learned_pair`). With ``separate`` too, the refined fields are separated.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import trimesh
from torch import Tensor

from halohand.core.errors import HalohandInputError
from halohand.core.units import UNIT_SCALE
from halohand.inference.image_occupancy import (
    ImageOccupancy,
    image_pair,
    load_image_occupancy,
)
from halohand.inference.pair_refiner import (
    LearnedPair,
    PairFieldRefinement,
    PairOccupancyRefiner,
    load_pair_refiner,
    surface_points,
)
from halohand.skeleton import BONES
from halohand.skeleton.orders import num_joints, split_interhand, to_openpose
from halohand.skeleton.validation import check_format, resolve_units

#: The sides of a pair, in the order of every ``[2, ...]`` axis.
PAIR_SIDES = ("right", "left")

#: A two-hand keypoint refinement: ``[2, 21, 3]`` metres (right, left) -> the same.
PairRefiner = Callable[[np.ndarray], np.ndarray]


def separate_occupancy(own: Any, other: Any, level: float) -> Any:
    """One hand's occupancy with the other hand's claim removed (module docstring).

    Args:
        own, other: occupancy probabilities at the same points, ``[...]`` (numpy arrays or
            torch tensors, same shape).
        level: the mesh level (probability).

    Returns:
        ``own - max(0, other - level)``: unchanged where the other hand is outside, above
        the level only where ``own`` is above it and above ``other``. Differentiable (torch)
        in both inputs.
    """
    if isinstance(own, Tensor):
        return own - torch.clamp(other - level, min=0.0)
    return (own - np.maximum(other - level, 0.0)).astype(own.dtype, copy=False)


def pair_layout(shape: tuple[int, ...], fmt: str | None = None) -> str | None:
    """``"interhand42"`` for ``[42, 3]``, ``"stacked"`` for ``[2, J, 3]`` (``J`` of ``fmt``,
    default 21), or ``None`` when ``shape`` is neither."""
    j = num_joints(check_format(fmt)) if fmt is not None else 21
    if tuple(shape) == (42, 3):
        return "interhand42"
    if tuple(shape) == (2, j, 3):
        return "stacked"
    return None


def pair_keypoints(keypoints: Any, fmt: str | None = None) -> tuple[Any, str]:
    """Two hands as ``[2, 21, 3]`` (right, left) in the project's order, input units.

    Args:
        keypoints: ``[42, 3]`` (InterHand2.6M layout) or ``[2, J, 3]``; numpy, lists or a
            torch tensor (kept a tensor, so gradients flow through the reordering).
        fmt: joint order of each hand; default ``interhand`` for ``[42, 3]`` and
            ``openpose`` for ``[2, J, 3]``.

    Returns:
        the ``[2, 21, 3]`` keypoints (float64 numpy, or the tensor's dtype) and the format
        they were read in.
    """
    if not isinstance(keypoints, Tensor):
        try:
            keypoints = np.asarray(keypoints, dtype=np.float64)
        except (TypeError, ValueError):
            raise HalohandInputError("two-hand keypoints must be a numeric array") from None
    shape = tuple(keypoints.shape)
    layout = pair_layout(shape, fmt)
    if layout is None:
        j = num_joints(check_format(fmt)) if fmt is not None else 21
        raise HalohandInputError(
            f"two-hand keypoints must have shape [42, 3] (InterHand2.6M: right 0-20, left "
            f"21-41) or [2, {j}, 3] (right, left), got {list(shape)}"
        )
    finite = (
        bool(keypoints.isfinite().all()) if isinstance(keypoints, Tensor)
        else bool(np.isfinite(keypoints).all())
    )  # fmt: skip
    if not finite:
        raise HalohandInputError("two-hand keypoints contain NaN or inf")
    if layout == "interhand42":
        use = check_format(fmt or "interhand")
        if num_joints(use) != 21:
            raise HalohandInputError(f"[42, 3] holds two 21-joint hands; {use} has more joints")
        if use == "interhand":
            right, left = split_interhand(keypoints)
        else:
            right, left = to_openpose(keypoints[:21], use), to_openpose(keypoints[21:], use)
        stacked = (
            torch.stack([right, left]) if isinstance(keypoints, Tensor)
            else np.stack([right, left])
        )  # fmt: skip
        return stacked, use
    use = check_format(fmt or "openpose")
    return to_openpose(keypoints, use), use


@dataclass(eq=False)
class TwoHandReconstruction:
    """A reconstructed pair (from :meth:`halohand.HALO.reconstruct_pair`).

    Attributes:
        right / left: watertight meshes in the input's frame and units (metadata ``side``).
        keypoints: ``[2, 21, 3]`` float64 (right, left), project order, input frame and
            units: the keypoints the meshes were made from (after ``refine``, if any).
        units: the input's unit (resolved).
        model: the :class:`~halohand.HALO` that made them (queried by :meth:`occupancy`).
        separated: whether the meshes (and :meth:`occupancy`) have the overlap removed
            (:func:`separate_occupancy`).
        learned: the learned refinement the meshes (and :meth:`occupancy`) went through,
            or ``None``.
    """

    right: trimesh.Trimesh
    left: trimesh.Trimesh
    keypoints: np.ndarray
    units: str
    model: Any = field(repr=False)
    separated: bool = False
    learned: PairFieldRefinement | None = field(default=None, repr=False)

    @property
    def meshes(self) -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
        return (self.right, self.left)

    def occupancy(self, points: Any, *, grad: bool | None = None) -> Tensor:
        """``[2, N]`` occupancy of each hand (right, left) at ``[N, 3]`` points in the input's
        frame and units; differentiable with respect to ``points`` (a tensor with
        ``requires_grad``), as :meth:`halohand.HALO.occupancy`; refined and separated like
        the meshes (:attr:`learned`, :attr:`separated`)."""
        occ = self.model.occupancy(
            points, self.keypoints, side=list(PAIR_SIDES), units=self.units, grad=grad
        )
        if self.learned is not None:
            pts = points if isinstance(points, Tensor) else torch.as_tensor(points)
            pts_m = pts.to(occ.device, torch.float64) * UNIT_SCALE[self.units]
            with torch.set_grad_enabled(bool(grad) or occ.requires_grad):
                occ = self.learned.refine(pts_m, occ.T).T
        if not self.separated:
            return occ
        level = float(self.model.iso_level)
        return torch.stack(
            [separate_occupancy(occ[0], occ[1], level), separate_occupancy(occ[1], occ[0], level)]
        )

    def scene(self, skeleton: bool = True) -> trimesh.Scene:
        """Both hands as one ``trimesh.Scene`` (input frame and units): nodes
        ``hand_right`` and ``hand_left`` and, with ``skeleton``, ``skeleton_<side>`` bones."""
        out = trimesh.Scene()
        for side, mesh, kp in zip(PAIR_SIDES, self.meshes, self.keypoints, strict=True):
            out.add_geometry(mesh, node_name=f"hand_{side}", geom_name=f"hand_{side}")
            if skeleton:
                bones = trimesh.load_path(np.asarray(kp)[BONES])
                out.add_geometry(bones, node_name=f"skeleton_{side}", geom_name=f"skeleton_{side}")
        return out


#: What ``refine_occupancy`` may be (:func:`pair_refinement`).
OccupancyRefinement = bool | str | PairOccupancyRefiner | ImageOccupancy

#: The learned two-hand refinements shipped, by name (``refine_occupancy=NAME``).
REFINEMENTS = ("residual", "attention")


def reconstruct_pair(
    model: Any,
    keypoints: Any,
    units: str = "auto",
    fmt: str | None = None,
    resolution: int = 256,
    *,
    colors: bool = True,
    refine: PairRefiner | None = None,
    separate: bool = False,
    convention: str = "auto",
    refine_occupancy: OccupancyRefinement = False,
    touching: str = "merge",
) -> TwoHandReconstruction:
    """Mesh a right and a left hand (see :meth:`halohand.HALO.reconstruct_pair`)."""
    choice = check_refinement(refine_occupancy)
    kp, _ = pair_keypoints(keypoints, fmt)
    if isinstance(kp, Tensor):
        kp = kp.detach().cpu().numpy().astype(np.float64)
    unit = resolve_units(units, kp)
    scale = UNIT_SCALE[unit]
    if refine is not None:
        refined = np.asarray(refine(kp * scale), dtype=np.float64)
        if refined.shape != (2, 21, 3) or not np.isfinite(refined).all():
            raise HalohandInputError(
                f"the pair refiner must return finite [2, 21, 3] keypoints, got "
                f"{list(refined.shape)}"
            )
        kp = refined / scale
    prepared = model.prepare(kp, list(PAIR_SIDES), unit, convention=convention)
    learned = pair_refinement(model, prepared, choice)
    right, left = model.meshes(
        prepared,
        resolution,
        colors=colors,
        separate=separate,
        learned=learned,
        touching=touching,
    )
    return TwoHandReconstruction(right, left, prepared.keypoints, unit, model, separate, learned)


def check_refinement(
    refine_occupancy: OccupancyRefinement,
) -> PairOccupancyRefiner | ImageOccupancy | None:
    """The network that ``refine_occupancy`` names (loaded when it names a shipped one), or
    ``None`` for ``False``: ``True`` or ``"residual"`` is the shipped keypoint residual
    (:func:`~halohand.inference.image_occupancy.load_image_occupancy`), ``"attention"``
    the shipped attention refiner (:func:`~halohand.inference.pair_refiner.load_pair_refiner`);
    a network is taken as it is (an image-conditioned one needs
    :func:`reconstruct_pair_image`)."""
    if refine_occupancy is False:
        return None
    if refine_occupancy is True or refine_occupancy == "residual":
        return load_image_occupancy()
    if refine_occupancy == "attention":
        return load_pair_refiner()
    if isinstance(refine_occupancy, PairOccupancyRefiner):
        return refine_occupancy
    if isinstance(refine_occupancy, ImageOccupancy):
        if refine_occupancy.config.image:
            raise HalohandInputError(
                "this refinement reads a view of the pair: use reconstruct_pair_image"
            )
        return refine_occupancy
    raise HalohandInputError(
        f"refine_occupancy must be True, False, one of {', '.join(REFINEMENTS)}, a "
        f"PairOccupancyRefiner or an ImageOccupancy, got {refine_occupancy!r}"
    )


def pair_refinement(
    model: Any, prepared: Any, network: PairOccupancyRefiner | ImageOccupancy | None
) -> PairFieldRefinement | None:
    """A prepared pair's (right, left) learned refinement by ``network``
    (:func:`check_refinement`), ready to mesh and query, or ``None``."""
    if network is None:
        return None
    if isinstance(network, PairOccupancyRefiner):
        return learned_pair(model, prepared, network)
    kp_m = prepared.keypoints * prepared.scale
    return image_pair(network, kp_m, None, None, None, None, float(model.iso_level))


def learned_pair(model: Any, prepared: Any, refiner: PairOccupancyRefiner) -> LearnedPair:
    """The refiner's context of a prepared pair (right, left): both hands' initial HALO
    meshes at ``surface_resolution``, their vertices (points on the level set) thinned to
    ``iso_points`` farthest points per hand, encoded with the keypoints (metres)."""
    iso = initial_surface(model, prepared, refiner.config.surface_resolution,
                          refiner.config.iso_points)  # fmt: skip
    dev = next(refiner.parameters()).device
    kp_m = torch.as_tensor(prepared.keypoints * prepared.scale, device=dev)
    with torch.no_grad():
        context = refiner.context(torch.as_tensor(iso, device=dev)[None], kp_m[None])
    return LearnedPair(refiner, context, float(model.iso_level))


def pair_occupancy(
    model: Any,
    points: Any,
    keypoints: Any,
    units: str = "auto",
    fmt: str | None = None,
    *,
    grad: bool | None = None,
) -> Tensor:
    """``[2, N]`` per-hand occupancy of a pair at shared ``[N, 3]`` points (see
    :meth:`halohand.HALO.pair_occupancy`)."""
    kp, _ = pair_keypoints(keypoints, fmt)
    return model.occupancy(points, kp, side=list(PAIR_SIDES), units=units, grad=grad)


def initial_surface(model: Any, prepared: Any, resolution: int, n: int) -> np.ndarray:
    """``[2, n, 3]`` metres: farthest points of the vertices of both prepared hands'
    HALO meshes at ``resolution`` (points on the mesh level; the refiner's input)."""
    if len(prepared) != 2:
        raise HalohandInputError(f"the learned refinement needs two hands, got {len(prepared)}")
    meshes = model.meshes(prepared, resolution, colors=False)
    return np.stack([surface_points(np.asarray(m.vertices) * prepared.scale, n) for m in meshes])


def reconstruct_pair_image(
    halo: Any,
    keypoints: Any,
    image: Any,
    intrinsics: Any,
    rotation: Any,
    translation: Any,
    model: ImageOccupancy | str | os.PathLike[str],
    units: str = "auto",
    fmt: str | None = None,
    resolution: int = 256,
    *,
    colors: bool = True,
    convention: str = "auto",
) -> TwoHandReconstruction:
    """Mesh a pair of hands from its keypoints and one photo of it.

    Args:
        halo: the :class:`~halohand.HALO` giving the initial occupancy.
        keypoints: ``[2, J, 3]`` / ``[42, 3]`` as :meth:`halohand.HALO.reconstruct_pair`.
        image: ``[H, W, 3]`` sRGB (uint8, or floats in 0..1).
        intrinsics: ``[3, 3]`` pixels of ``image``.
        rotation, translation: ``[3, 3]``, ``[3]`` metres: keypoints' frame -> camera
            (``x`` right, ``y`` down, ``z`` ahead); the keypoints' frame in metres even when
            the keypoints are in another unit.
        model: an :class:`ImageOccupancy` or the path of its weights.
        units, fmt, resolution, colors, convention: as :meth:`halohand.HALO.reconstruct_pair`.

    Returns:
        The two meshes; their ``occupancy`` is the image-conditioned one.
    """
    net = model if isinstance(model, ImageOccupancy) else load_image_occupancy(model)
    kp, _ = pair_keypoints(keypoints, fmt)
    if isinstance(kp, Tensor):
        kp = kp.detach().cpu().numpy().astype(np.float64)
    unit = resolve_units(units, kp)
    prepared = halo.prepare(kp, list(PAIR_SIDES), unit, convention=convention)
    kp_m = prepared.keypoints * prepared.scale
    level = float(halo.iso_level)
    learned = image_pair(net, kp_m, image, intrinsics, rotation, translation, level)
    # ImagePair is meshed and queried as a LearnedPair is (its refine method)
    right, left = halo.meshes(prepared, resolution, colors=colors, learned=learned)
    return TwoHandReconstruction(right, left, prepared.keypoints, unit, halo, False, learned)
