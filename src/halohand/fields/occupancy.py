"""HALO's occupancy network: 16 part MLPs on canonicalized points, max over parts.

Inputs per hand (HALO convention, see docs/model.md):

* query points in each part's canonical frame, ``[B, N, K, 3]``, in *HALO units*
  (metres / 0.4), i.e. ``x_k = B~_k . p`` with ``p`` the query point in the globally
  normalized hand frame (HALO units) and ``B~_k`` the part matrix in HALO units;
* the pose code ``theta``: each part matrix applied to the origin (its translation column),
  ``[B, K, 3]`` (= 48 values for K = 16), HALO units;
* per-part bone lengths ``[B, K]`` in **metres** (not rescaled, as in the original).

Per part k the MLP sees ``[x_k (3), l_k (1), E(l) (16), P_k(theta) (8)]`` (28 values) where
``E`` is one bone-length encoder shared by all parts and ``P_k`` a per-part linear
projection of the pose code. Each part outputs a logit; ``sigmoid`` then max over parts.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from halohand.core.errors import HalohandInputError
from halohand.core.units import HALO_UNIT_M
from halohand.fields.encoding import encode_points, encoding_size
from halohand.fields.grids import (
    GRID_FRAMES,
    GRID_INTERPOLATIONS,
    GridMaps,
    PartGrids,
    bend,
    grid_maps,
)
from halohand.fields.parts import PartLinear, PartMLP, Residual

TransformSource = Literal["keypoints", "mano"]

#: Rows per packed block in part-skipping mode (see ``OccupancyNetwork._masked_logits``).
SKIP_BLOCK = 128
#: Rows of one part that :meth:`OccupancyNetwork.folded_logits` runs through its layers at
#: once (1,200-2,400 rows of 64 activations ran fastest through the chain on one core).
FOLDED_ROWS = 2048
SurfaceSampling = Literal["original", "resampled"]


@dataclass(frozen=True)
class OccupancyConfig:
    """Architecture (and, for bookkeeping, the data pipeline) of an occupancy network.

    Attributes:
        variant: free-form name; the presets in ``VARIANTS`` use the paper's baselines.
        num_parts: number of parts K (16 for HALO / MANO).
        hidden: widths of the hidden layers of each part MLP (original: 4 x 64).
        negative_slope: LeakyReLU slope (0.1 in HALO; 0 gives ReLU).
        residual: where hidden-layer skips are added, ``"before"`` the activation (HALO),
            ``"after"`` it (NASA's rigid decoder) or ``"none"``.
        use_pose_code: feed the pose code (part matrices applied to the origin).
        pose_projection_size: per-part projection size of the pose code; 0 feeds the raw
            ``3K`` values to every part.
        use_bone_length: feed the part's own bone length (metres).
        bone_latent_size: output size of the shared bone-length encoder (0 disables it;
            only used with ``use_bone_length``).
        bone_hidden_size: hidden width of that encoder (40 in HALO).
        smooth_max: blend part probabilities with ``softmax(T q)`` instead of a hard max.
        smooth_max_temperature: T.
        transforms: which transforms the network is trained/evaluated with: ``"keypoints"``
            (the canonicalization layer) or ``"mano"`` (ground-truth MANO transforms).
            Not read by the network; the data and inference code dispatch on it.
        surface_sampling: training near-surface points from the ``"original"`` MANO mesh
            samples or ``"resampled"`` ones. Data-side metadata, like ``transforms``.
        part_radii_m: support radius of each part in metres (``K`` values) or empty. When
            set, part k exists only within ``part_radii_m[k]`` of its skeleton segments
            (:func:`~halohand.fields.skipping.skip_mask`) in training *and* inference;
            elsewhere its probability is 0. This trains only the (point, part) pairs that
            can matter (about 1/5 of them on the default data: ~4x faster steps on CPU)
            and rules out far-away floaters. Empty: every part everywhere (the original).
        iso_level: probability level of the surface that meshes are extracted at (0.5
            unless set from validation data by ``halohand calibrate``). Not read by the
            network; ``HALO`` and ``halohand evaluate`` use it.
        point_scale: factor on the canonical query points before the part MLPs (1, the
            original). Points near a part are ~0.05 HALO units from its origin, so their
            first-layer weights must grow large to resolve sub-millimetre detail, and Adam
            moves a weight by about the learning rate per step; a factor ``s`` is the same
            function with those weights divided by ``s``, i.e. an ``s``-times larger
            effective learning rate for them alone.
        point_frequencies: frequencies (cycles per HALO unit) of Fourier features of the
            canonical query points (:func:`~halohand.fields.encoding.encode_points`),
            ``6 F`` more inputs per part MLP after the point's 3 coordinates; empty (the
            original): none. Computed from the unscaled points (``point_scale`` does not
            move them).
        point_bone_scale: also give each part MLP its points divided by the part's bone
            length (3 more inputs, after the coordinates): coordinates in bone lengths, so
            that hands of other sizes meet the same inputs. For one hand this is linear in
            the point, so the folded inference path absorbs it into the first layer at no
            cost.
        keypoint_conventions: the fingertip placements the network was trained on:
            ``("rig",)`` (tip joints inside the fingers, the original) or ``("rig",
            "mano")`` (also tips on the skin, as MANO-based datasets and MediaPipe place
            them; :mod:`halohand.handmodel.skin_tips`). Not read by the network; training
            draws its keypoints by it, and ``HALO`` moves a skin-tip hand's tips onto the
            rig's joints (:func:`~halohand.skeleton.conventions.to_rig`) only for a
            network that was not trained on them.
        skin_tip_fingers: the fingers (0 thumb ... 4 little) whose skin tips ``HALO``
            moves onto the rig's tip joints for such a network. ``(1, 2, 3, 4)`` (the
            default, :data:`~halohand.skeleton.conventions.MOVED_TIPS`) leaves the thumb's
            as given, which suits networks whose thumb end is made by its middle part;
            a network whose parts follow their bones reads all five by the same rule
            (``docs/RESULTS.md``, "Grid coordinates that follow the skeleton"). Not read
            by the network.
        grid_resolution: cells per axis of a learned feature grid over each part's
            canonical box (:class:`~halohand.fields.grids.PartGrids`), read by trilinear
            interpolation; ``grid_channels`` more inputs per part MLP after the Fourier
            features. 0 (the original): no grids.
        grid_channels: features per grid vertex.
        grid_bounds: ``6 K`` values, each part's box in its canonical frame, in palm
            lengths (the canonical point divided by the hand's wrist-to-middle-knuckle
            length): lower x, y, z then upper x, y, z, part by part. Required with grids
            (from the training data: ``benchmarks/studies/part_grid_bounds.py``).
        grid_value_scale: the grid features are this times the stored table: a larger
            effective learning rate for the grids alone (see ``PartGrids``).
        grid_frame: the coordinates the grids read (:func:`~halohand.fields.grids.grid_maps`):
            ``"palm"`` (canonical points in palm lengths), ``"bone"`` (each finger part in
            its bone's frame, along the bone in its own length) or ``"finger"`` (each
            finger part in its finger's frame, the finger's joints at 0, 1, 2, 3 along it);
            the last two need the canonical skeleton, which the keypoint pipeline provides.
            ``grid_bounds`` are in these coordinates.
        grid_interpolation: how points read their cell's vertices: ``"trilinear"`` (the
            original grids) or ``"smoothstep"`` (eased fractions, a feature field with a
            continuous gradient: :func:`~halohand.fields.grids.smoothstep_cells`).
        knuckle_spread: also give each part MLP the hand's standardized knuckle spread
            (:func:`~halohand.fields.knuckles.knuckle_spread`, one context input after the
            pose code): the palm width that the canonical skeleton drops and that the
            hand's girth follows. False (the original): not read.
    """

    variant: str = "halo"
    num_parts: int = 16
    hidden: tuple[int, ...] = (64, 64, 64, 64)
    negative_slope: float = 0.1
    residual: Residual = "before"
    use_pose_code: bool = True
    pose_projection_size: int = 8
    use_bone_length: bool = True
    bone_latent_size: int = 16
    bone_hidden_size: int = 40
    smooth_max: bool = False
    smooth_max_temperature: float = 5.0
    transforms: TransformSource = "keypoints"
    surface_sampling: SurfaceSampling = "resampled"
    part_radii_m: tuple[float, ...] = ()
    iso_level: float = 0.5
    point_scale: float = 1.0
    point_frequencies: tuple[float, ...] = ()
    point_bone_scale: bool = False
    keypoint_conventions: tuple[str, ...] = ("rig",)
    skin_tip_fingers: tuple[int, ...] = (1, 2, 3, 4)
    grid_resolution: int = 0
    grid_channels: int = 8
    grid_bounds: tuple[float, ...] = ()
    grid_value_scale: float = 10.0
    grid_frame: str = "palm"
    grid_interpolation: str = "trilinear"
    knuckle_spread: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(
            self, "point_frequencies", tuple(float(f) for f in self.point_frequencies)
        )
        if any(not (f > 0 and math.isfinite(f)) for f in self.point_frequencies):
            raise ValueError(f"point_frequencies must be > 0, got {self.point_frequencies}")
        object.__setattr__(self, "part_radii_m", tuple(float(r) for r in self.part_radii_m))
        if self.part_radii_m and (
            len(self.part_radii_m) != self.num_parts or not min(self.part_radii_m) > 0
        ):
            raise ValueError(f"part_radii_m must be empty or {self.num_parts} positive radii")
        if not 0.0 < self.iso_level < 1.0:
            raise ValueError(f"iso_level must be in (0, 1), got {self.iso_level}")
        if not self.point_scale > 0:
            raise ValueError(f"point_scale must be > 0, got {self.point_scale}")
        if self.num_parts < 1 or not self.hidden or min(self.hidden) < 1:
            raise ValueError("num_parts and every hidden width must be >= 1")
        if self.pose_projection_size < 0 or self.bone_latent_size < 0:
            raise ValueError("projection / latent sizes must be >= 0")
        if self.residual not in ("before", "after", "none"):
            raise ValueError(f"unknown residual placement {self.residual!r}")
        if self.transforms not in ("keypoints", "mano"):
            raise ValueError(f"unknown transforms {self.transforms!r}")
        if self.surface_sampling not in ("original", "resampled"):
            raise ValueError(f"unknown surface_sampling {self.surface_sampling!r}")
        object.__setattr__(self, "keypoint_conventions", tuple(self.keypoint_conventions))
        fingers = tuple(int(f) for f in self.skin_tip_fingers)
        object.__setattr__(self, "skin_tip_fingers", fingers)
        if not fingers or len(set(fingers)) != len(fingers) or not set(fingers) <= set(range(5)):
            raise ValueError(
                f"skin_tip_fingers must be distinct fingers 0 (thumb) to 4, got {list(fingers)}"
            )
        object.__setattr__(self, "grid_bounds", tuple(float(v) for v in self.grid_bounds))
        if self.grid_resolution < 0 or self.grid_channels < 1:
            raise ValueError("grid_resolution must be >= 0 and grid_channels >= 1")
        if self.grid_resolution:
            bounds = self.grid_bounds
            if len(bounds) != 6 * self.num_parts or any(
                not (bounds[6 * k + 3 + d] > bounds[6 * k + d])
                for k in range(self.num_parts)
                for d in range(3)
            ):
                raise ValueError(
                    f"grid_bounds must hold {6 * self.num_parts} values, each part's lower "
                    "corner then a larger upper corner"
                )
            if not (self.grid_value_scale > 0 and math.isfinite(self.grid_value_scale)):
                raise ValueError(f"grid_value_scale must be > 0, got {self.grid_value_scale}")
        if self.grid_interpolation not in GRID_INTERPOLATIONS:
            raise ValueError(
                f"grid_interpolation must be one of {GRID_INTERPOLATIONS}, "
                f"got {self.grid_interpolation!r}"
            )
        if self.grid_frame not in GRID_FRAMES:
            raise ValueError(f"grid_frame must be one of {GRID_FRAMES}, got {self.grid_frame!r}")
        if self.grid_frame != "palm" and self.transforms != "keypoints":
            raise ValueError(
                f"{self.grid_frame}-frame grids need transforms = 'keypoints' (the canonical "
                "skeleton)"
            )
        if self.keypoint_conventions not in (("rig",), ("rig", "mano")):
            raise ValueError(
                f"keypoint_conventions must be ['rig'] or ['rig', 'mano'], got "
                f"{list(self.keypoint_conventions)}"
            )

    @property
    def pose_features(self) -> int:
        """Pose-code values each part MLP receives."""
        if not self.use_pose_code:
            return 0
        return self.pose_projection_size or 3 * self.num_parts

    @property
    def bone_features(self) -> int:
        """Bone-length values each part MLP receives (local length + shared code)."""
        return 1 + self.bone_latent_size if self.use_bone_length else 0

    @property
    def point_features(self) -> int:
        """Per-point input columns of each part MLP: 3 coordinates, 3 in bone lengths
        (``point_bone_scale``), ``6 F`` Fourier features, ``grid_channels`` grid features
        (the first columns; the hand's context follows them)."""
        return self.grid_start + (self.grid_channels if self.grid_resolution else 0)

    @property
    def grid_start(self) -> int:
        """First input column of the grid features (after the Fourier features)."""
        return self.encoding_start + encoding_size(self.point_frequencies)

    @property
    def encoding_start(self) -> int:
        """First input column of the Fourier features."""
        return 6 if self.point_bone_scale else 3

    @property
    def in_features(self) -> int:
        """Input width of each part MLP (28 for HALO)."""
        return self.point_features + self.context_features

    @property
    def context_features(self) -> int:
        """Per-hand input columns of each part MLP, after the point's: bone length and
        code, pose code, knuckle spread."""
        return self.bone_features + self.pose_features + int(self.knuckle_spread)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["part_radii_m"] = list(self.part_radii_m)
        d["point_frequencies"] = list(self.point_frequencies)
        d["keypoint_conventions"] = list(self.keypoint_conventions)
        d["skin_tip_fingers"] = list(self.skin_tip_fingers)
        d["grid_bounds"] = list(self.grid_bounds)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OccupancyConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


#: The paper's ablation (HALO Table 1), cumulative from top to bottom. All use the same
#: class; they differ in which inputs the part MLPs see and in the data pipeline.
VARIANTS: dict[str, OccupancyConfig] = {
    "nasa": OccupancyConfig(
        variant="nasa", use_bone_length=False, bone_latent_size=0,
        transforms="mano", surface_sampling="original",
    ),
    "nasa_resampled": OccupancyConfig(
        variant="nasa_resampled", use_bone_length=False, bone_latent_size=0,
        transforms="mano", surface_sampling="resampled",
    ),
    "nasa_bone_length": OccupancyConfig(
        variant="nasa_bone_length", use_bone_length=True, bone_latent_size=0,
        transforms="mano", surface_sampling="resampled",
    ),
    "halo_gt": OccupancyConfig(variant="halo_gt", transforms="mano"),
    "halo": OccupancyConfig(variant="halo"),
}  # fmt: skip


def variant_config(name: str, **overrides: Any) -> OccupancyConfig:
    """Preset config of a paper variant (``VARIANTS``), optionally with fields replaced."""
    try:
        base = VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}") from None
    return dataclasses.replace(base, **overrides)


@dataclass(frozen=True)
class FoldedPart:
    """One part's layers after the first, for the folded inference path
    (:meth:`OccupancyNetwork.folded_layers`).

    Attributes:
        hidden: ``(bias [H], weight [H, H], add_after)`` per hidden layer (an "after"
            residual adds the layer's input to its activation).
        last_bias: ``[1]``; last_weight: ``[H, 1]``.
        encoding_weight: ``[6F, H]`` the first layer's weights of the points' Fourier
            features, or ``None`` without them.
        grid_weight: ``[C, H]`` the first layer's weights of the grid features, or
            ``None`` without grids.
    """

    hidden: tuple[tuple[Tensor, Tensor, bool], ...]
    last_bias: Tensor
    last_weight: Tensor
    encoding_weight: Tensor | None = None
    grid_weight: Tensor | None = None


class OccupancyNetwork(nn.Module):
    """HALO / NASA occupancy network with all part MLPs batched (see module docstring).

    Default config = the released HALO base model: 238,024 parameters.
    """

    def __init__(self, config: OccupancyConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or OccupancyConfig()
        k = cfg.num_parts
        self.bone_encoder: nn.Sequential | None = None
        if cfg.use_bone_length and cfg.bone_latent_size > 0:
            self.bone_encoder = nn.Sequential(
                nn.Linear(k, cfg.bone_hidden_size),
                nn.ReLU(),
                nn.Linear(cfg.bone_hidden_size, cfg.bone_latent_size),
            )
        self.pose_projection: PartLinear | None = None
        if cfg.use_pose_code and cfg.pose_projection_size > 0:
            self.pose_projection = PartLinear(k, 3 * k, cfg.pose_projection_size)
        self.mlp = PartMLP(
            k, cfg.in_features, cfg.hidden, 1, negative_slope=cfg.negative_slope,
            residual=cfg.residual,
        )  # fmt: skip
        self.grids: PartGrids | None = None
        if cfg.grid_resolution:
            bounds = torch.tensor(cfg.grid_bounds).view(k, 2, 3)
            self.grids = PartGrids(
                bounds, cfg.grid_resolution, cfg.grid_channels, cfg.grid_value_scale,
                interpolation=cfg.grid_interpolation,
            )  # fmt: skip

    @property
    def num_parts(self) -> int:
        return self.config.num_parts

    @property
    def reads_canonical_skeleton(self) -> bool:
        """Whether the network needs ``canonical_keypoints`` (bone- and finger-frame grids)."""
        return self.grids is not None and self.config.grid_frame != "palm"

    @property
    def reads_knuckle_spread(self) -> bool:
        """Whether the network needs the hands' ``knuckle_spread`` (config field)."""
        return self.config.knuckle_spread

    def hand_context(
        self,
        pose_code: Tensor | None,
        bone_lengths: Tensor | None,
        knuckle_spread: Tensor | None = None,
    ) -> Tensor:
        """Per-hand, per-part inputs that do not depend on the query point.

        Args:
            pose_code: ``[B, K, 3]`` or ``[B, 3K]`` (HALO units); ignored if unused.
            bone_lengths: ``[B, K]`` metres; ignored if unused.
            knuckle_spread: ``[B]`` (:func:`~halohand.fields.knuckles.knuckle_spread`);
                ignored unless the config's ``knuckle_spread``.

        Returns:
            ``[K, B, C]`` with C = ``context_features``: ``[l_k, E(l), P_k(theta), s]``
            per part.
        """
        cfg = self.config
        k = cfg.num_parts
        dtype = self.mlp.layers[0].weight.dtype
        parts: list[Tensor] = []
        batch: int | None = None
        if cfg.use_bone_length:
            if bone_lengths is None:
                raise HalohandInputError(f"variant {cfg.variant!r} needs bone_lengths [B, {k}]")
            lengths = bone_lengths.to(dtype)
            if lengths.ndim != 2 or lengths.shape[1] != k:
                raise HalohandInputError(
                    f"bone_lengths must be [B, {k}], got {list(bone_lengths.shape)}"
                )
            batch = lengths.shape[0]
            parts.append(lengths.T.unsqueeze(-1))  # [K, B, 1]
            if self.bone_encoder is not None:
                code = self.bone_encoder(lengths)  # [B, latent]
                parts.append(code.unsqueeze(0).expand(k, -1, -1))
        if cfg.use_pose_code:
            if pose_code is None:
                raise HalohandInputError(f"variant {cfg.variant!r} needs a pose code [B, {k}, 3]")
            theta = pose_code.to(dtype)
            if theta.ndim == 3:
                theta = theta.reshape(theta.shape[0], -1)
            if theta.ndim != 2 or theta.shape[1] != 3 * k:
                raise HalohandInputError(
                    f"pose_code must be [B, {k}, 3] or [B, {3 * k}], got {list(pose_code.shape)}"
                )
            if batch is not None and theta.shape[0] != batch:
                raise HalohandInputError("pose_code and bone_lengths batch sizes differ")
            batch = theta.shape[0]
            theta_k = theta.unsqueeze(0).expand(k, -1, -1)  # [K, B, 3K]
            parts.append(theta_k if self.pose_projection is None else self.pose_projection(theta_k))
        if cfg.knuckle_spread:
            if knuckle_spread is None or knuckle_spread.ndim != 1:
                raise HalohandInputError(
                    "this network reads the hands' knuckle spread [B] "
                    "(halohand.fields.knuckles.knuckle_spread of the keypoints)"
                )
            if batch is not None and knuckle_spread.shape[0] != batch:
                raise HalohandInputError("knuckle_spread and the other inputs' batch sizes differ")
            spread = knuckle_spread.to(dtype=dtype, device=self.mlp.layers[0].weight.device)
            parts.append(spread[None, :, None].expand(k, -1, -1))
        if not parts:
            return torch.empty(k, 0, 0, dtype=dtype)
        return torch.cat(parts, dim=-1)

    def part_logits(
        self,
        points: Tensor,
        pose_code: Tensor | None = None,
        bone_lengths: Tensor | None = None,
        part_mask: Tensor | None = None,
        canonical_keypoints: Tensor | None = None,
        knuckle_spread: Tensor | None = None,
    ) -> Tensor:
        """Per-part logits.

        Args:
            points: ``[B, N, K, 3]`` query points in each part's canonical frame (HALO units).
            pose_code: ``[B, K, 3]`` or ``[B, 3K]`` (HALO units).
            bone_lengths: ``[B, K]`` metres.
            part_mask: optional boolean ``[B, N, K]``; ``False`` pairs are not evaluated
                and get logit ``-inf`` (probability 0). See ``halohand.fields.skipping``.
            canonical_keypoints: ``[B, 21, 3]`` the canonical skeleton (metres); read by
                bone- and finger-frame grids only (``grid_frame``).
            knuckle_spread: ``[B]``, read with the config's ``knuckle_spread`` only
                (:meth:`hand_context`).

        Returns:
            ``[B, N, K]`` logits.
        """
        k = self.num_parts
        if points.ndim != 4 or points.shape[2:] != (k, 3):
            raise HalohandInputError(f"points must be [B, N, {k}, 3], got {list(points.shape)}")
        b, n = points.shape[:2]
        dtype = self.mlp.layers[0].weight.dtype
        ctx = self.hand_context(pose_code, bone_lengths, knuckle_spread)  # [K, B, C]
        if ctx.shape[-1] > 0 and ctx.shape[1] != b:
            raise HalohandInputError(f"{b} point sets but {ctx.shape[1]} hands of conditioning")
        x = points.to(dtype).permute(2, 0, 1, 3).reshape(k, b * n, 3)  # part-major rows
        inv = self.inverse_lengths(bone_lengths)
        if inv is not None:  # [B, K] -> [K, B * N, 1], each hand's value on its rows
            inv = inv.T[:, :, None].expand(k, b, n).reshape(k, b * n, 1)
        grid_points = None
        maps = self.grid_maps(bone_lengths, canonical_keypoints)
        if maps is not None:  # each row in its grid's coordinates, [K, B * N, 3]
            grid_points = maps.apply(points.to(dtype)).permute(2, 0, 1, 3).reshape(k, b * n, 3)
        if part_mask is None:
            x = self.point_inputs(x, inv, torch.arange(k, device=x.device)[:, None], grid_points)
            if ctx.shape[-1] == 0:
                out = self.mlp(x)
            else:
                out = self.mlp(x, ctx, group_size=n)
            return out.view(k, b, n).permute(1, 2, 0)
        return self._masked_logits(x, ctx, part_mask, b, n, inv, grid_points)

    def point_inputs(
        self,
        canon: Tensor,
        inverse_length: Tensor | None = None,
        part: Tensor | int | None = None,
        grid_points: Tensor | None = None,
    ) -> Tensor:
        """``[..., 3]`` canonical points (HALO units) -> ``[..., point_features]``: the
        points times ``point_scale``, the points in bone lengths (``point_bone_scale``;
        ``inverse_length [..., 1]`` is 1 / the row's part's bone length in HALO units),
        their Fourier features (if configured), then their part's grid features
        (``grid_resolution``; ``part`` is the rows' part, ``[...]`` int64 broadcastable to
        the rows, or one part for all; ``grid_points [..., 3]`` are the rows in their
        grid's coordinates, :meth:`grid_maps`)."""
        cfg = self.config
        x = canon * cfg.point_scale if cfg.point_scale != 1.0 else canon
        columns = [x]
        if cfg.point_bone_scale:
            if inverse_length is None:
                raise ValueError("point_bone_scale needs the rows' inverse bone lengths")
            columns.append(canon * inverse_length)
        if cfg.point_frequencies:
            columns.append(encode_points(canon, cfg.point_frequencies))
        if self.grids is not None:
            if part is None or grid_points is None:
                raise ValueError("a network with grids needs the rows' parts and grid points")
            columns.append(self.grids(grid_points, part))
        return columns[0] if len(columns) == 1 else torch.cat(columns, dim=-1)

    def inverse_lengths(
        self, bone_lengths: Tensor | None, dtype: torch.dtype | None = None
    ) -> Tensor | None:
        """``[B, K]`` metres -> ``[B, K]`` 1 / length in HALO units, in ``dtype`` (default:
        the network's; ``None`` unless ``point_bone_scale``)."""
        if not self.config.point_bone_scale:
            return None
        if bone_lengths is None:
            raise HalohandInputError("point_bone_scale needs bone_lengths")
        dtype = self.mlp.layers[0].weight.dtype if dtype is None else dtype
        return HALO_UNIT_M / bone_lengths.to(dtype)

    def grid_maps(
        self,
        bone_lengths: Tensor | None,
        canonical_keypoints: Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> GridMaps | None:
        """``[B, K]`` metres (and ``[B, 21, 3]`` metres for bone- and finger-frame grids) ->
        the :class:`~halohand.fields.grids.GridMaps` of this network's ``grid_frame`` in
        ``dtype`` (default: the network's); ``None`` without grids."""
        if self.grids is None:
            return None
        if bone_lengths is None:
            raise HalohandInputError("a network with grids needs bone_lengths")
        dtype = self.mlp.layers[0].weight.dtype if dtype is None else dtype
        return grid_maps(bone_lengths.to(dtype), self.config.grid_frame, canonical_keypoints)

    def _masked_logits(
        self,
        x: Tensor,
        ctx: Tensor,
        mask: Tensor,
        b: int,
        n: int,
        inv: Tensor | None = None,
        grid_points: Tensor | None = None,
    ) -> Tensor:
        # Only active (point, part) pairs are evaluated, still as one batched op per layer:
        # each part's active rows are packed into blocks of SKIP_BLOCK rows, every block
        # carries its part index, and the layers gather that part's weights per block. Cost
        # is proportional to the number of active pairs (plus < 1 block of padding per part),
        # not to the busiest part.
        k = self.num_parts
        if mask.shape != (b, n, k):
            raise HalohandInputError(f"part_mask must be [{b}, {n}, {k}], got {list(mask.shape)}")
        m = b * n
        active = mask.permute(2, 0, 1).reshape(k, m)
        logits = x.new_full((k, m), float("-inf"))
        part, row = active.nonzero(as_tuple=True)  # sorted by part, then row
        if part.numel() == 0:
            return logits.view(k, b, n).permute(1, 2, 0)
        t = SKIP_BLOCK
        counts = torch.bincount(part, minlength=k)
        blocks = torch.div(counts + t - 1, t, rounding_mode="floor")
        first_pair = torch.cumsum(counts, 0) - counts
        first_block = torch.cumsum(blocks, 0) - blocks
        pos = torch.arange(part.numel(), device=x.device) - first_pair[part]
        slot = (first_block[part] + torch.div(pos, t, rounding_mode="floor")) * t + pos % t
        n_blocks = int(blocks.sum())
        block_part = torch.repeat_interleave(torch.arange(k, device=x.device), blocks)
        # the point inputs of the active pairs only (padding rows are dropped below)
        xs = x.new_zeros(n_blocks * t, 3).index_copy(0, slot, x[part, row])

        def packed(per_row: Tensor | None) -> Tensor | None:
            """``[K, M, D]`` row values -> the active pairs' ``[blocks, SKIP_BLOCK, D]``."""
            if per_row is None:
                return None
            d = per_row.shape[-1]
            out = x.new_zeros(n_blocks * t, d).index_copy(0, slot, per_row[part, row])
            return out.view(n_blocks, t, d)

        xs = self.point_inputs(
            xs.view(n_blocks, t, 3), packed(inv), block_part[:, None], packed(grid_points)
        )
        if ctx.shape[-1] == 0:
            out = self.mlp(xs, part_index=block_part)
        else:
            hand = torch.div(row, n, rounding_mode="floor")
            cs = ctx.new_zeros(n_blocks * t, ctx.shape[-1]).index_copy(0, slot, ctx[part, hand])
            out = self.mlp(xs, cs.view(n_blocks, t, -1), group_size=1, part_index=block_part)
        logits = logits.index_put((part, row), out.reshape(-1)[slot])
        return logits.view(k, b, n).permute(1, 2, 0)

    def combine(self, part_probs: Tensor) -> Tensor:
        """``[..., K]`` part probabilities -> ``[...]`` occupancy probability."""
        if self.config.smooth_max:
            w = torch.softmax(self.config.smooth_max_temperature * part_probs, dim=-1)
            return (w * part_probs).sum(-1)
        return part_probs.max(dim=-1).values

    def forward(
        self,
        points: Tensor,
        pose_code: Tensor | None = None,
        bone_lengths: Tensor | None = None,
        *,
        return_parts: bool = False,
        part_mask: Tensor | None = None,
        canonical_keypoints: Tensor | None = None,
        knuckle_spread: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Occupancy probability of canonicalized query points.

        Args:
            points: ``[B, N, K, 3]`` points in each part's canonical frame (HALO units).
            pose_code: ``[B, K, 3]`` or ``[B, 3K]``, part matrices applied to the origin.
            bone_lengths: ``[B, K]`` per-part bone lengths in metres.
            return_parts: also return the per-part probabilities.
            part_mask: optional ``[B, N, K]`` bool, pairs to evaluate (others count as 0).
            canonical_keypoints: ``[B, 21, 3]`` metres, for bone- and finger-frame grids (as
                :meth:`part_logits`).
            knuckle_spread: ``[B]``, for networks that read it (as :meth:`part_logits`).

        Returns:
            ``occ [B, N]`` in [0, 1], and ``part_probs [B, N, K]`` if ``return_parts``.
        """
        logits = self.part_logits(
            points, pose_code, bone_lengths, part_mask, canonical_keypoints, knuckle_spread
        )
        probs = torch.sigmoid(logits)
        occ = self.combine(probs)
        return (occ, probs) if return_parts else occ

    def query(
        self,
        points: Tensor,
        part_matrices: Tensor,
        bone_lengths: Tensor | None = None,
        *,
        return_parts: bool = False,
        part_mask: Tensor | None = None,
        canonical_keypoints: Tensor | None = None,
        knuckle_spread: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Occupancy from points and part matrices (both HALO units).

        Args:
            points: ``[B, N, 3]`` in the network's input frame (globally normalized hand
                frame, HALO units for the keypoint pipeline).
            part_matrices: ``[B, K, 4, 4]`` maps from that frame to each part's canonical
                frame.
            bone_lengths: ``[B, K]`` metres.
            canonical_keypoints: ``[B, 21, 3]`` metres, for bone- and finger-frame grids.
            knuckle_spread: ``[B]``, for networks that read it (:meth:`hand_context`).

        Returns:
            as ``forward``.
        """
        inputs = (points, part_matrices, bone_lengths, canonical_keypoints, knuckle_spread)
        if part_mask is not None and self._can_fold(*inputs):
            occ, probs = self._folded_query(*inputs, mask=part_mask)
            return (occ, probs) if return_parts else occ
        canon, pose_code = part_inputs(points, part_matrices)
        return self.forward(
            canon, pose_code, bone_lengths, return_parts=return_parts, part_mask=part_mask,
            canonical_keypoints=canonical_keypoints, knuckle_spread=knuckle_spread,
        )  # fmt: skip

    def _can_fold(self, *inputs: Tensor | None) -> bool:
        # The folded path writes into preallocated outputs (no autograd) and runs one small
        # GEMM per part and layer, which suits a CPU; it serves inference with the hard max.
        if self.config.smooth_max:
            return False
        weight = self.mlp.layers[0].weight
        if weight.device.type != "cpu" or weight.dtype != torch.float32:
            return False
        if not torch.is_grad_enabled():
            return True
        tensors = [t for t in inputs if t is not None] + list(self.parameters())
        return not any(t.requires_grad for t in tensors)

    def _folded_query(
        self,
        points: Tensor,
        part_matrices: Tensor,
        bone_lengths: Tensor | None,
        canonical_keypoints: Tensor | None,
        knuckle_spread: Tensor | None,
        mask: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Inference on the active (point, part) pairs with the part transforms folded in
        (:meth:`folded_weights`, :meth:`folded_logits`): query points are never transformed
        16 times, and the context is not multiplied per row.

        Returns ``occupancy [B, N]`` and ``part_probs [B, N, K]`` (0 where not active).
        """
        k = self.num_parts
        if points.ndim != 3 or points.shape[-1] != 3:
            raise HalohandInputError(f"points must be [B, N, 3], got {list(points.shape)}")
        if part_matrices.ndim != 4 or part_matrices.shape[1:] != (k, 4, 4):
            raise HalohandInputError(
                f"part_matrices must be [B, {k}, 4, 4], got {list(part_matrices.shape)}"
            )
        b, n = points.shape[:2]
        if part_matrices.shape[0] != b:
            raise HalohandInputError("points and part_matrices batch sizes differ")
        if mask.shape != (b, n, k):
            raise HalohandInputError(f"part_mask must be [{b}, {n}, {k}], got {list(mask.shape)}")
        dtype = self.mlp.layers[0].weight.dtype
        w_hand, const = self.folded_weights(
            part_matrices, bone_lengths, knuckle_spread=knuckle_spread
        )
        frames = self.folded_frames(
            part_matrices, bone_lengths=bone_lengths, canonical_keypoints=canonical_keypoints
        )
        m = b * n
        part, row = mask.permute(2, 0, 1).reshape(k, m).nonzero(as_tuple=True)
        logits = points.new_full((k, m), float("-inf"), dtype=dtype)
        if part.numel():
            group = part * b + torch.div(row, n, rounding_mode="floor")  # sorted
            counts = torch.bincount(group, minlength=k * b)
            pts = points.reshape(m, 3).to(dtype).index_select(0, row)
            logits.index_put_(
                (part, row), self.folded_logits(pts, counts, w_hand, const, frames=frames)
            )
        probs = torch.sigmoid(logits).view(k, b, n).permute(1, 2, 0)
        # sigmoid is monotonic: the max of the probabilities is the sigmoid of the max logit
        occ = torch.sigmoid(logits.amax(0)).view(b, n)
        return occ, probs

    def folded_weights(
        self,
        part_matrices: Tensor,
        bone_lengths: Tensor | None,
        points_frame: Tensor | None = None,
        knuckle_spread: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """First layer of every hand and part with the part transform folded in.

        The first layer sees ``x_k = R_k p + t_k``, so ``x_k W = p (R_k^T W) + t_k W``:
        per hand and part, the rotation goes into a 3 x H weight and the translation, the
        bias and the hand's context (bone lengths, pose code) into one H-vector.

        Args:
            part_matrices: ``[B, K, 4, 4]`` (HALO units).
            bone_lengths: ``[B, K]`` metres.
            points_frame: optional ``[B, 4, 4]`` affine map ``p = A q + b`` from the
                caller's points ``q`` to the network's input frame, folded in as well
                (composed in the part matrices' dtype, float64 for the keypoint
                pipeline): :meth:`folded_logits` then takes ``q`` directly, e.g. lattice
                points in metres about a hand's centre, which float32 holds finely
                wherever the hand is.
            knuckle_spread: ``[B]``, for networks that read it (:meth:`hand_context`).

        Returns:
            ``w_hand [K, B, 3, H]`` and ``const [K, B, H]`` in the network's dtype, for
            :meth:`folded_logits`.
        """
        k = self.num_parts
        if part_matrices.ndim != 4 or part_matrices.shape[1:] != (k, 4, 4):
            raise HalohandInputError(
                f"part_matrices must be [B, {k}, 4, 4], got {list(part_matrices.shape)}"
            )
        b = part_matrices.shape[0]
        first = self.mlp.layers[0]
        dtype = first.weight.dtype
        # the pose code is t_k, the part matrices' own translations
        ctx = self.hand_context(part_matrices[..., :3, 3], bone_lengths, knuckle_spread)
        if ctx.shape[-1] > 0 and ctx.shape[1] != b:
            raise HalohandInputError(f"{b} point sets but {ctx.shape[1]} hands of conditioning")
        rot, trans = _points_to_parts(part_matrices, points_frame)
        # each hand's point weight (point scale and bone-length columns folded in)
        w_x = first_layer_point_weights(self, bone_lengths, b, rot.dtype)  # [K, B, 3, H]
        w_hand = torch.einsum("bkji,kbjh->kbih", rot, w_x).to(dtype)  # [K, B, 3, H] R^T W
        const = torch.einsum("bkj,kbjh->kbh", trans, w_x).to(dtype) + first.bias[:, None]
        if ctx.shape[-1] > 0:
            width = self.config.point_features
            const = const + torch.bmm(ctx, first.weight[:, width:])  # [K, B, H]
        return w_hand, const

    def folded_frames(
        self,
        part_matrices: Tensor,
        points_frame: Tensor | None = None,
        bone_lengths: Tensor | None = None,
        canonical_keypoints: Tensor | None = None,
    ) -> tuple[Tensor, ...] | None:
        """The affine maps from the caller's points to the phases of the Fourier features
        and to the canonical points the grids read, for the folded path
        (:meth:`folded_logits`); ``None`` without ``point_frequencies`` and grids.

        The features of :func:`~halohand.fields.encoding.encode_points` at a part's
        canonical point ``x_k = R q + t`` are ``sin(q A + c)`` with ``A[:, (f, d)] = 2 pi f
        R[d]`` and ``c = 2 pi f t_d``, then the same plus pi / 2 for the cosines: one
        matrix product and one sine per row, composed in the part matrices' dtype (float64
        for the keypoint pipeline), the offsets reduced modulo 2 pi before rounding.

        Args:
            part_matrices, points_frame, bone_lengths: as :meth:`folded_weights` (bone
                lengths are read with grids only).
            canonical_keypoints: ``[B, 21, 3]`` metres, for bone- and finger-frame grids.

        Returns:
            ``weight [K, B, 3, 6F + G]`` and ``offset [K, B, 6F + G]`` in the network's
            dtype, ``G = 3`` with grids (the point's cells in its part's grid: the
            canonical point in the grid's coordinates, ``L (R q + t) + o`` with
            :meth:`grid_maps`, through :meth:`~halohand.fields.grids.PartGrids.cell_maps`),
            else 0; for finger-frame grids also the bend of the along-finger cell axis,
            ``knots [K, B, 2]`` (in cells) and ``slopes [K, B, 2]``
            (:func:`~halohand.fields.grids.bend`).
        """
        frequencies = self.config.point_frequencies
        if not frequencies and self.grids is None:
            return None
        rot, trans = _points_to_parts(part_matrices, points_frame)  # [B, K, 3, 3], [B, K, 3]
        weights, offsets = [], []
        if frequencies:
            omega = 2.0 * math.pi * torch.tensor(frequencies, dtype=rot.dtype, device=rot.device)
            # column (f, d), frequency-major as in encode_points: omega_f R[d, :], omega_f t_d
            weight = omega[:, None, None] * rot.unsqueeze(-3)  # [B, K, F, 3 (d), 3 (q)]
            weight = weight.flatten(-3, -2).transpose(-1, -2)  # [B, K, 3 (q), 3F]
            offset = (omega[:, None] * trans.unsqueeze(-2)).flatten(-2)  # [B, K, 3F]
            weights += [weight, weight]
            offset = torch.cat([offset, offset + 0.5 * math.pi], dim=-1)
            offsets.append(torch.remainder(offset, 2.0 * math.pi))
        maps = self.grid_maps(bone_lengths, canonical_keypoints, rot.dtype)
        bends: tuple[Tensor, ...] = ()
        if maps is not None and self.grids is not None:
            scale, shift = (m.to(rot.dtype) for m in self.grids.cell_maps())  # [K, 3]
            to_cells = scale[..., None] * (maps.linear @ rot)  # [B, K, 3 (cell axes), 3 (q)]
            weights.append(to_cells.transpose(-1, -2))  # [B, K, 3 (q), 3 (cell axes)]
            grid_trans = torch.einsum("bkij,bkj->bki", maps.linear, trans) + maps.offset
            offsets.append(grid_trans * scale + shift)
            if maps.knots is not None and maps.slopes is not None:
                # z' = z + sum s relu(z - knot) in grid units is the same in cells, the
                # knots moved by the (positive) cell scale and shift of the z axis
                knots = maps.knots * scale[:, 2:] + shift[:, 2:]
                bends = (knots, maps.slopes)
        weight = torch.cat(weights, dim=-1)
        offset = torch.cat(offsets, dim=-1)
        dtype = self.mlp.layers[0].weight.dtype
        return (
            weight.permute(1, 0, 2, 3).to(dtype).contiguous(),
            offset.permute(1, 0, 2).to(dtype).contiguous(),
            *(t.transpose(0, 1).to(dtype).contiguous() for t in bends),
        )

    def folded_layers(self) -> list[FoldedPart]:
        """Every part's layers after the first, as plain tensors for :meth:`folded_logits`.

        Made once per query object (e.g. a lattice query per hand) rather than per call:
        indexing the parameters and folding the "before" residual into the weight
        (``y + h = h (W + I) + b``) cost ~0.1 ms per part and call otherwise. A snapshot:
        weights changed afterwards are not seen.
        """
        layers = self.mlp.layers
        residual = self.mlp.residual
        last = layers[-1]
        width = self.config.point_features
        start = self.config.encoding_start
        grid_start = self.config.grid_start
        out = []
        with torch.no_grad():
            for k in range(self.num_parts):
                hidden = []
                for layer in layers[1:-1]:
                    same = layer.in_features == layer.out_features
                    weight = layer.weight[k].detach()
                    if residual == "before" and same:
                        # y + h = h W + b + h = h (W + I) + b: the skip rides in the GEMM
                        # instead of a separate pass over the activations.
                        weight = weight + torch.eye(weight.shape[-1], dtype=weight.dtype)
                    hidden.append(
                        (layer.bias[k].detach(), weight.contiguous(), residual == "after" and same)
                    )
                encoding = grid = None
                if grid_start > start:
                    encoding = layers[0].weight[k, start:grid_start].detach().contiguous()
                if width > grid_start and self.grids is not None:
                    # the features' value scale rides in the weights
                    grid = layers[0].weight[k, grid_start:width].detach() * self.grids.value_scale
                out.append(
                    FoldedPart(
                        tuple(hidden), last.bias[k].detach(), last.weight[k].detach(),
                        encoding, grid,
                    )
                )  # fmt: skip
        return out

    def folded_logits(
        self,
        points: Tensor,
        counts: Tensor,
        w_hand: Tensor,
        const: Tensor,
        layers: Sequence[FoldedPart] | None = None,
        frames: tuple[Tensor, ...] | None = None,
    ) -> Tensor:
        """Logits of (point, part) pairs sorted by part, then hand (no autograd).

        Each part's rows run through the whole MLP before the next part's, in blocks of at
        most :data:`FOLDED_ROWS` (one ``addmm`` per layer, bias included, then the
        activation in place): the activations of a block stay in cache between layers,
        which measured ~1.3x faster than running every part through one layer at a time.
        With grids, every row's features are read in one lookup before the parts run
        (:func:`~halohand.fields.grids.trilinear_gathered`, the inference lookup) and enter
        the first layer's GEMM beside the point, ``[p | g] [W_p; W_g]``.

        Args:
            points: ``[P, 3]`` the pairs' points (network input frame, network dtype).
            counts: ``[K * B]`` rows of each (part, hand) group, in order ``part * B + hand``.
            w_hand, const: from :meth:`folded_weights` (``B`` hands).
            layers: :meth:`folded_layers` of this network, if the caller keeps them.
            frames: :meth:`folded_frames` (same hands and points frame as ``w_hand``);
                required with ``point_frequencies`` or grids.

        Returns:
            ``[P]`` logits.
        """
        k, b = const.shape[:2]
        if layers is None:
            layers = self.folded_layers()
        frequencies = self.config.point_frequencies
        if (frequencies or self.grids is not None) and frames is None:
            raise ValueError("a network with point features needs frames (folded_frames)")
        sines = encoding_size(frequencies)
        width = const.shape[-1]
        slope = self.mlp.negative_slope
        out = points.new_empty(points.shape[0], 1)
        ends = torch.cumsum(counts, 0).tolist()
        starts = [0, *ends[:-1]]
        grid_features = None
        if self.grids is not None and frames is not None and len(points):
            # Every row's grid features in one lookup (per part and block, the ~20 small
            # operations of an interpolation cost more than the interpolation itself).
            cells = points.new_empty(points.shape[0], 3)
            for g in range(k * b):
                if ends[g] > starts[g]:
                    kk, hb = divmod(g, b)
                    torch.addmm(
                        frames[1][kk, hb, sines:], points[starts[g] : ends[g]],
                        frames[0][kk, hb, :, sines:], out=cells[starts[g] : ends[g]],
                    )  # fmt: skip
            if len(frames) > 2:  # finger-frame grids: bend the along-finger cell axis
                knots, slopes = (
                    t.reshape(k * b, -1).repeat_interleave(counts, 0) for t in frames[2:]
                )
                cells = bend(cells, knots, slopes)
            part_of_row = torch.repeat_interleave(torch.arange(k), counts.view(k, b).sum(1))
            grids = self.grids
            grid_features = grids.lookup(cells, part_of_row, grids.table.dtype, inference=True)
        # With grids, the first layer reads [point | grid features] in one GEMM per block
        # (w_first [K, B, 3 + C, H]) rather than a second GEMM over the features.
        inputs, w_first = points, w_hand
        if grid_features is not None and layers[0].grid_weight is not None:
            inputs = torch.cat((points, grid_features.to(points.dtype)), dim=1)
            w_grid = torch.stack([part.grid_weight for part in layers])  # [K, C, H]
            w_grid = w_grid[:, None].expand(k, b, *w_grid.shape[1:])
            w_first = torch.cat((w_hand, w_grid.to(w_hand.dtype)), dim=2)
        for kk in range(k):
            part = layers[kk]
            c0, end = starts[kk * b], ends[kk * b + b - 1]
            while c0 < end:
                # At most FOLDED_ROWS rows at a time: a part's activations stay in cache
                # through its layers (a palm of 8,000 rows ran at ~60 % of the GEMM rate
                # of 2,048-row blocks). Rows are independent: same values in any blocks.
                c1 = min(c0 + FOLDED_ROWS, end)
                if b == 1:
                    h = torch.addmm(const[kk, 0], inputs[c0:c1], w_first[kk, 0])
                else:
                    h = points.new_empty(c1 - c0, width)
                    for hb in range(b):
                        g = kk * b + hb
                        r0, r1 = max(starts[g], c0), min(ends[g], c1)
                        if r1 > r0:
                            torch.addmm(
                                const[kk, hb], inputs[r0:r1], w_first[kk, hb],
                                out=h[r0 - c0 : r1 - c0],
                            )  # fmt: skip
                if part.encoding_weight is not None and frames is not None:
                    for hb in range(b):
                        g = kk * b + hb
                        r0, r1 = max(starts[g], c0), min(ends[g], c1)
                        if r1 > r0:
                            phases = torch.addmm(
                                frames[1][kk, hb, :sines], points[r0:r1],
                                frames[0][kk, hb, :, :sines],
                            )  # fmt: skip
                            h[r0 - c0 : r1 - c0].addmm_(phases.sin_(), part.encoding_weight)
                h = F.leaky_relu_(h, slope)
                for bias, weight, add_after in part.hidden:
                    y = F.leaky_relu_(torch.addmm(bias, h, weight), slope)
                    h = y.add_(h) if add_after else y
                torch.addmm(part.last_bias, h, part.last_weight, out=out[c0:c1])
                c0 = c1
        return out[:, 0]


def _points_to_parts(part_matrices: Tensor, points_frame: Tensor | None) -> tuple[Tensor, Tensor]:
    """``rotation [B, K, 3, 3]`` and ``translation [B, K, 3]`` of the map from the
    caller's points ``q`` to each part's canonical frame, in the part matrices' dtype:
    ``R_k (A q + b) + t_k = (R_k A) q + (R_k b + t_k)`` with ``points_frame = [A | b]``."""
    rot = part_matrices[..., :3, :3]
    trans = part_matrices[..., :3, 3]
    if points_frame is None:
        return rot, trans
    b = part_matrices.shape[0]
    if points_frame.shape != (b, 4, 4):
        raise HalohandInputError(
            f"points_frame must be [{b}, 4, 4], got {list(points_frame.shape)}"
        )
    frame = points_frame.to(rot.dtype)
    trans = torch.einsum("bkij,bj->bki", rot, frame[:, :3, 3]) + trans
    rot = torch.einsum("bkij,bjl->bkil", rot, frame[:, :3, :3])
    return rot, trans


def part_chain_logits(
    net: OccupancyNetwork,
    canon: Tensor,
    first_const: Tensor,
    weights: Sequence[tuple[Tensor, Tensor]],
    point_weight: Tensor | None = None,
    grid_features: Tensor | None = None,
) -> Tensor:
    """Logits of one part's MLP at ``[P, 3]`` canonical points, differentiable.

    The same operations as :meth:`PartMLP.forward` with a per-hand context
    (:meth:`OccupancyNetwork.part_logits`), on one part's rows only: no rows of other parts
    and no padding, so autograd records ~10 small matrix products per part and call.

    Args:
        net: the network (its configuration: point scale, slope, residuals).
        canon: ``[P, 3]`` the points in the part's canonical frame (HALO units, any float
            dtype: cast to the network's, then scaled by ``point_scale`` and given their
            Fourier features, as :meth:`~OccupancyNetwork.part_logits` does).
        first_const: ``[H]`` or ``[P, H]`` the first layer's bias plus its context term
            (``b_k + ctx_k W_k[c:]``, ``c`` the point columns; see
            :func:`first_layer_constants`).
        weights: the part's ``(weight [in, out], bias [out])`` of every layer of
            ``net.mlp`` (e.g. ``layer.weight[k], layer.bias[k]``; the first layer's bias is
            not read, it is in ``first_const``).
        point_weight: ``[3, H]`` the first layer's weight of the canonical point for this
            part and hand (:func:`first_layer_point_weights`: the point scale and the
            bone-length columns folded in), used instead of ``weights[0][0][:3]``; needed
            with ``point_bone_scale`` and with grids.
        grid_features: ``[P, C]`` the part's grid features at the points
            (:class:`~halohand.fields.grids.PartGrids` at their grid coordinates,
            ``value_scale`` included); required with grids.

    Returns:
        ``[P]`` logits in the network's dtype.
    """
    slope = net.mlp.negative_slope
    residual = net.mlp.residual
    w0 = weights[0][0]
    cfg = net.config
    if net.grids is not None and (grid_features is None or point_weight is None):
        raise ValueError("a network with grids needs the points' grid features and point_weight")
    if point_weight is None:
        x = net.point_inputs(canon.to(w0.dtype))
        h = torch.matmul(x, w0[: x.shape[-1]])
    else:
        x = canon.to(w0.dtype)
        h = torch.matmul(x, point_weight)
        if cfg.point_frequencies:
            features = encode_points(x, cfg.point_frequencies)
            h = h + torch.matmul(features, w0[cfg.encoding_start : cfg.grid_start])
        if grid_features is not None:
            w_grid = w0[cfg.grid_start : cfg.point_features]
            h = h + torch.matmul(grid_features.to(w0.dtype), w_grid)
    h = F.leaky_relu_(h.add_(first_const), slope)
    for w, b in weights[1:-1]:
        same = w.shape[0] == w.shape[1]
        if residual == "before" and same:
            h = F.leaky_relu_(torch.addmm(h + b, h, w), slope)
        elif residual == "after" and same:
            h = F.leaky_relu_(torch.addmm(b, h, w), slope) + h
        else:
            h = F.leaky_relu_(torch.addmm(b, h, w), slope)
    w, b = weights[-1]
    return torch.addmm(b, h, w)[:, 0]


def first_layer_constants(
    net: OccupancyNetwork,
    part_matrices: Tensor,
    bone_lengths: Tensor | None,
    knuckle_spread: Tensor | None = None,
) -> Tensor:
    """``[K, B, H]`` first-layer bias plus context term of every part and hand
    (differentiable): what :meth:`PartMLP.forward` adds to ``x_k W_k[:3]``.

    Args:
        net: the network.
        part_matrices: ``[B, K, 4, 4]`` (HALO units); their translations are the pose code.
        bone_lengths: ``[B, K]`` metres.
        knuckle_spread: ``[B]``, for networks that read it.
    """
    first = net.mlp.layers[0]
    ctx = net.hand_context(part_matrices[..., :3, 3], bone_lengths, knuckle_spread)
    b = part_matrices.shape[0]
    if ctx.shape[-1] == 0:
        return first.bias[:, None].expand(-1, b, -1)
    return torch.baddbmm(first.bias.unsqueeze(1), ctx, first.weight[:, net.config.point_features :])


def first_layer_point_weights(
    net: OccupancyNetwork,
    bone_lengths: Tensor | None,
    batch: int,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """``[K, B, 3, H]`` the first layer's weight of the canonical point per part and hand
    (differentiable): ``s W_k[:3]`` with ``s = point_scale``, plus ``W_k[3:6] / l_bk`` with
    ``point_bone_scale`` (``l`` in HALO units), for :func:`part_chain_logits` and the
    folded first layer (:meth:`OccupancyNetwork.folded_weights`, composed in ``dtype``).

    Args:
        net: the network.
        bone_lengths: ``[B, K]`` metres.
        batch: ``B``.
        dtype: of the result (default: the network's).
    """
    w = net.mlp.layers[0].weight  # [K, in, H]
    if dtype is not None:
        w = w.to(dtype)
    w_x = w[:, :3] * net.config.point_scale
    inv = net.inverse_lengths(bone_lengths, w.dtype)  # [B, K]
    if inv is None:
        return w_x[:, None].expand(-1, batch, -1, -1)
    return w_x[:, None] + w[:, None, 3:6] * inv.T[..., None, None]


#: Short alias used in the paper's naming.
HALONet = OccupancyNetwork


def part_inputs(points: Tensor, part_matrices: Tensor) -> tuple[Tensor, Tensor]:
    """Apply the part matrices to query points and read off the pose code.

    Args:
        points: ``[B, N, 3]``.
        part_matrices: ``[B, K, 4, 4]`` (last row ``[0, 0, 0, 1]``).

    Returns:
        ``canonical [B, N, K, 3]`` (``R_k p + t_k``) and ``pose_code [B, K, 3]`` (``t_k``).
    """
    if points.ndim != 3 or points.shape[-1] != 3:
        raise HalohandInputError(f"points must be [B, N, 3], got {list(points.shape)}")
    if part_matrices.ndim != 4 or part_matrices.shape[-2:] != (4, 4):
        raise HalohandInputError(
            f"part_matrices must be [B, K, 4, 4], got {list(part_matrices.shape)}"
        )
    if part_matrices.shape[0] != points.shape[0]:
        raise HalohandInputError("points and part_matrices batch sizes differ")
    points = points.to(part_matrices.dtype)
    rot = part_matrices[..., :3, :3]
    trans = part_matrices[..., :3, 3]
    canon = torch.einsum("bkij,bnj->bnki", rot, points) + trans.unsqueeze(1)
    return canon, trans


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
