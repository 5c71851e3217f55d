"""Learned two-hand occupancy refinement (Im2Hands' refinement network, CPU scale).

HALO gives each hand of a pair its own occupancy, blind to the other hand. The refiner
looks at both hands' initial shapes at once, in the pair's posed space, and corrects both
occupancies at every query point (Im2Hands, CVPR 2023, Sec. 3.2; the decoder follows
AIR-Nets' query-anchor cross attention):

    initial surfaces (HALO meshes, vertices at the level)   [2, n_surface, 3]
      -> farthest points per hand                            [2, iso_points, 3]
      -> point encoder (MLP on position and side)            per-point features
      -> anchors: farthest points of those, each pooling its nearest iso points
      -> self-attention over both hands' anchors             [2 * anchors, width]
      -> context code of both hands (pooled per hand, MLP)   [width]
    query x, both hands' initial logits at x, its distances to all 42 joints
      -> cross attention to both hands' anchors (features + relative position, with a
         learned penalty on distance per head: local)
      -> residual logits [2] (right, left), added to HALO's logits

Everything the network sees is in the pair's frame (origin at the mean of the 42 joints,
axes from the right hand's palm, units of :data:`UNIT`), so its output does not depend on
where the pair is or how it is turned, as HALO's does not. The last layer starts at zero:
an untrained refiner returns HALO's occupancy exactly (:func:`refined_occupancy`).

Levels: HALO's mesh level is its calibrated ``iso_level`` (0.55 for the shipped model),
not 0.5. The refiner's logits are taken relative to it (:func:`level_logits`: 0 on HALO's
surface), so its training loss (BCE) and Eq. 9's "occupied" (> 0.5) mean "inside HALO's
mesh level", and the refined field is meshed at the same ``iso_level``.

The network is trained on the frozen shipped HALO by ``halohand train-pair-refiner``
(:mod:`halohand.training.pair_refiner`); :meth:`halohand.HALO.reconstruct_pair` uses it with
``refine_occupancy=True``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.weights_file import load_model_file, save_model, shipped_weights

__all__ = [
    "RESIDUAL_BOUND", "UNIT", "LearnedPair", "PairContext", "PairFieldRefinement",
    "PairOccupancyRefiner", "PairRefinerConfig", "farthest_points", "level_logits",
    "load_pair_refiner", "pair_frame", "pair_refiner_path", "penetration_loss",
    "refined_occupancy", "save_pair_refiner", "surface_points",
]  # fmt: skip

#: Length (metres) that the network's coordinates are divided by.
UNIT: Final = 0.1
#: Probabilities are clamped to ``[EPS, 1 - EPS]`` before taking logits (HALO's sparse
#: query returns exact zeros away from every part): logits within about +-9.2.
EPS: Final = 1e-4
#: Initial logits are divided by this before entering the network (sizes about 1).
LOGIT_SCALE: Final = 4.0
#: Bound on the residual logits (``|r| <= RESIDUAL_BOUND``). The shipped refiner never comes
#: near it (its largest residual on the lattices of eight sampled pairs is 1.07); what the
#: bound buys is a guarantee: where both hands' initial level logits exceed it in size, the
#: refinement cannot move a point across either mesh level, so meshing may skip it
#: (:meth:`LearnedPair.refine` with ``band``).
RESIDUAL_BOUND: Final = 2.0
_FORMAT: Final = "halohand.pair-refiner"
_WEIGHTS: Final = "pair_refiner.safetensors"


@dataclass(frozen=True)
class PairRefinerConfig:
    """Size of the refiner and its penetration weight.

    Attributes:
        iso_points: farthest points per hand taken from its initial surface (Im2Hands: 512).
        anchors: anchors per hand (farthest points of the iso points).
        neighbours: iso points pooled into each anchor.
        width: feature width.
        heads: attention heads.
        context_layers: self-attention layers over the anchors of both hands.
        surface_resolution: lattice of the initial HALO meshes whose vertices are the iso
            points (cells per axis).
        penetration_weight: weight of Eq. 9 against the occupancy loss in training (a sum
            over each pair's query points, 2,048 in the CPU recipe; Im2Hands uses 0.001).
    """

    iso_points: int = 512
    anchors: int = 64
    neighbours: int = 16
    width: int = 64
    heads: int = 4
    context_layers: int = 1
    surface_resolution: int = 64
    penetration_weight: float = 0.05

    def __post_init__(self) -> None:
        for name in ("iso_points", "anchors", "neighbours", "width", "heads"):
            if int(getattr(self, name)) < 1:
                raise HalohandInputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.anchors > self.iso_points:
            raise HalohandInputError(
                f"anchors ({self.anchors}) must not exceed iso_points ({self.iso_points})"
            )
        if self.width % self.heads:
            raise HalohandInputError(f"width ({self.width}) must be a multiple of heads")
        if self.surface_resolution < 8:
            raise HalohandInputError("surface_resolution must be >= 8")
        if not (self.penetration_weight >= 0 and math.isfinite(self.penetration_weight)):
            raise HalohandInputError("penetration_weight must be a finite number >= 0")


# --------------------------------------------------------------------------- geometry


def farthest_points(points: Tensor, m: int) -> Tensor:
    """Indices ``[..., m]`` of ``m`` farthest points of ``[..., n, 3]`` (batched over the
    leading axes), starting from the point farthest from the centroid: deterministic.

    A loop of ``m`` steps over numpy arrays of the coordinates, one axis each: per step a
    few microseconds, where torch spent ~200 on its per-operation overhead. Squared
    distances are summed x, y, z in that order in the points' dtype, as a tensor sum over
    three coordinates is, so the picks are the same."""
    n = points.shape[-2]
    if not 1 <= m <= n:
        raise HalohandInputError(f"cannot pick {m} farthest points of {n}")
    flat = points.detach().cpu().numpy().reshape(-1, n, 3)
    out = np.empty((flat.shape[0], m), dtype=np.int64)
    for i, cloud in enumerate(flat):
        x, y, z = (np.ascontiguousarray(cloud[:, j]) for j in range(3))
        c = cloud.mean(0)
        current = int((((x - c[0]) ** 2 + (y - c[1]) ** 2) + (z - c[2]) ** 2).argmax())
        nearest = np.full(n, np.inf, dtype=cloud.dtype)
        d = np.empty(n, dtype=cloud.dtype)
        for k in range(m):
            out[i, k] = current
            np.square(x - x[current], out=d)
            d += (y - y[current]) ** 2
            d += (z - z[current]) ** 2
            np.minimum(nearest, d, out=nearest)
            current = int(nearest.argmax())
    return torch.from_numpy(out.reshape(*points.shape[:-2], m)).to(points.device)


def surface_points(vertices: np.ndarray, n: int) -> np.ndarray:
    """``[n, 3]`` farthest points of an initial mesh's vertices (points on its level set);
    a mesh with fewer than ``n`` vertices repeats them (an empty one: error)."""
    v = np.asarray(vertices, dtype=np.float64)
    if len(v) == 0:
        raise HalohandInputError("a hand's initial surface is empty: nothing to refine")
    if len(v) < n:
        v = v[np.arange(n) % len(v)]
    idx = farthest_points(torch.from_numpy(v), n).numpy()
    return v[idx]


def pair_frame(keypoints: Tensor) -> tuple[Tensor, Tensor]:
    """The pair's frame: ``(R [..., 3, 3], origin [..., 3])`` of ``[..., 2, 21, 3]``
    keypoints (project order, right then left): origin the mean of the 42 joints, columns
    of ``R`` the right hand's finger direction (wrist -> middle MCP), its palm normal and
    their cross product. Local coordinates are ``(x - origin) @ R``."""
    right = keypoints[..., 0, :, :]
    forward = right[..., 9, :] - right[..., 0, :]
    normal = torch.linalg.cross(
        right[..., 5, :] - right[..., 0, :], right[..., 17, :] - right[..., 0, :]
    )
    f = nn.functional.normalize(forward, dim=-1)
    n = nn.functional.normalize(normal - (normal * f).sum(-1, keepdim=True) * f, dim=-1)
    r = torch.stack([f, n, torch.linalg.cross(f, n)], dim=-1)
    return r, keypoints.flatten(-3, -2).mean(-2)


def _local(points: Tensor, frame: tuple[Tensor, Tensor]) -> Tensor:
    """``[B, ..., 3]`` metres -> the pair frame of each batch item, in :data:`UNIT`."""
    r, origin = frame
    shape = points.shape
    flat = points.reshape(shape[0], -1, 3)
    return (((flat - origin[:, None]) @ r) / UNIT).reshape(shape)


# --------------------------------------------------------------------------- occupancy maths


def level_logits(prob: Tensor, level: float) -> Tensor:
    """Logits of clamped probabilities relative to the mesh level: 0 on the surface."""
    p = prob.clamp(EPS, 1.0 - EPS)
    return torch.log(p) - torch.log1p(-p) - math.log(level / (1.0 - level))


def refined_occupancy(prob: Tensor, residual: Tensor, level: float) -> Tensor:
    """Refined probabilities from initial ones and residual logits (same shape).

    ``prob + sigmoid(u + r) - sigmoid(u)`` with ``u`` HALO's clamped logit: equal to
    ``sigmoid(u + r)`` where the clamp does nothing, and to ``prob`` bit for bit where the
    residual is zero; clamped to [0, 1]. The level of ``u + r`` is the mesh level."""
    u = level_logits(prob, level) + math.log(level / (1.0 - level))
    return (prob + (torch.sigmoid(u + residual) - torch.sigmoid(u))).clamp(0.0, 1.0)


def penetration_loss(inside_right: Tensor, inside_left: Tensor) -> Tensor:
    """Im2Hands' Eq. 9: per pair, the sum over its query points of the product of the two
    hands' refined probabilities where both exceed 0.5; averaged over the pairs.

    Args:
        inside_right, inside_left: ``[B, N]`` probabilities relative to the mesh level
            (``sigmoid`` of level logits: above 0.5 means inside the mesh).
    """
    both = (inside_right > 0.5) & (inside_left > 0.5)
    return (inside_right * inside_left * both).sum(-1).mean()


# --------------------------------------------------------------------------- network


@dataclass
class PairContext:
    """What the decoder needs of one batch of pairs (from :meth:`PairOccupancyRefiner.context`).

    Attributes:
        frame: ``(R [B, 3, 3], origin [B, 3])`` of :func:`pair_frame`.
        joints: ``[B, 42, 3]`` both hands' joints in the pair frame (units of :data:`UNIT`).
        anchors: ``[B, 2 * anchors, 3]`` anchor positions (right hand's first), pair frame.
        keys / values: ``[B, 2 * anchors, width]`` the anchors' projected features, with
            their positions' share of the relative-position terms.
        code: ``[B, width]`` the context code of both hands.
    """

    frame: tuple[Tensor, Tensor]
    joints: Tensor
    anchors: Tensor
    keys: Tensor
    values: Tensor
    code: Tensor


def _mlp(*sizes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _gather(x: Tensor, idx: Tensor) -> Tensor:
    """``x [B, M, C]`` at ``idx [B, ..., K]`` -> ``[B, ..., K, C]``."""
    b = x.shape[0]
    flat = idx.reshape(b, -1)
    out = torch.gather(x, 1, flat[..., None].expand(-1, -1, x.shape[-1]))
    return out.reshape(*idx.shape, x.shape[-1])


class PairOccupancyRefiner(nn.Module):
    """The refinement network (module docstring). Coordinates in metres in and out of
    :meth:`context` / :meth:`residual`; everything inside is in the pair frame."""

    def __init__(self, config: PairRefinerConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or PairRefinerConfig()
        w = c.width
        self.point_encoder = _mlp(3 + 2, w, w)
        self.anchor_pool = _mlp(w + 3, w, w)
        layer = nn.TransformerEncoderLayer(
            w, c.heads, dim_feedforward=2 * w, dropout=0.0, batch_first=True, norm_first=True
        )
        self.anchor_context = nn.TransformerEncoder(
            layer, c.context_layers, enable_nested_tensor=False
        )
        self.context_code = _mlp(2 * w, w, w)
        self.key, self.value = nn.Linear(w, w), nn.Linear(w, w)
        # positions enter keys and values linearly: W (anchor - query)
        self.key_position = nn.Linear(3, w)
        self.value_position = nn.Linear(3, w, bias=False)
        #: per-head locality of the cross attention (softplus: a penalty >= 0 per UNIT^2)
        self.locality = nn.Parameter(torch.full((c.heads,), 2.0))
        # query: position, both initial logits, distances to the 42 joints
        self.query_encoder = _mlp(3 + 2 + 42, w, w)
        self.decoder = _mlp(3 * w, w, w, 2)
        last = self.decoder[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)  # untrained: HALO's occupancy, exactly
        nn.init.zeros_(last.bias)

    def context(self, iso_points: Tensor, keypoints: Tensor) -> PairContext:
        """Encode both hands' initial shapes.

        Args:
            iso_points: ``[B, 2, n, 3]`` metres, points on each hand's initial surface
                (right, left; :func:`surface_points`), ``n >= iso_points`` of the config
                (the first ``iso_points`` farthest of them are used).
            keypoints: ``[B, 2, 21, 3]`` metres, project order (right, left), same frame.
        """
        c = self.config
        if iso_points.ndim != 4 or iso_points.shape[1] != 2 or iso_points.shape[-1] != 3:
            raise HalohandInputError(
                f"iso_points must be [B, 2, n, 3], got {list(iso_points.shape)}"
            )
        if keypoints.shape[1:] != (2, 21, 3) or keypoints.shape[0] != iso_points.shape[0]:
            raise HalohandInputError(
                f"keypoints must be [B, 2, 21, 3] for {iso_points.shape[0]} pairs, got "
                f"{list(keypoints.shape)}"
            )
        if iso_points.shape[2] < c.iso_points:
            raise HalohandInputError(
                f"need >= {c.iso_points} iso points per hand, got {iso_points.shape[2]}"
            )
        dt = self.key.weight.dtype
        b = iso_points.shape[0]
        frame = pair_frame(keypoints.to(torch.float64))
        pts = _local(iso_points.to(torch.float64), frame).to(dt)  # [B, 2, n, 3]
        if pts.shape[2] > c.iso_points:
            pts = torch.gather(
                pts, 2, farthest_points(pts, c.iso_points)[..., None].expand(-1, -1, -1, 3)
            )
        side = torch.eye(2, dtype=dt, device=pts.device)[None, :, None].expand(
            b, 2, c.iso_points, 2
        )
        feat = self.point_encoder(torch.cat([pts, side], -1))  # [B, 2, n, w]
        hands = pts.reshape(b * 2, c.iso_points, 3)
        a_idx = farthest_points(hands, c.anchors)  # [2B, m]
        anchors = _gather(hands, a_idx)  # [2B, m, 3]
        k = min(c.neighbours, c.iso_points)
        near = torch.cdist(anchors, hands).topk(k, largest=False).indices  # [2B, m, k]
        grouped = _gather(feat.reshape(b * 2, c.iso_points, -1), near)  # [2B, m, k, w]
        offsets = _gather(hands, near) - anchors[:, :, None]
        anchor_feat = self.anchor_pool(torch.cat([grouped, offsets], -1)).amax(2)
        anchor_feat = self.anchor_context(anchor_feat.reshape(b, 2 * c.anchors, -1))
        per_hand = anchor_feat.reshape(b, 2, c.anchors, -1).amax(2)  # z_r, z_l
        code = self.context_code(per_hand.reshape(b, -1))
        joints = _local(keypoints.to(torch.float64), frame).reshape(b, 42, 3).to(dt)
        anchors = anchors.reshape(b, 2 * c.anchors, 3)
        return PairContext(
            frame, joints, anchors, self.key(anchor_feat) + self.key_position(anchors),
            self.value(anchor_feat) + self.value_position(anchors), code,
        )  # fmt: skip

    def residual(self, context: PairContext, points: Tensor, logits: Tensor) -> Tensor:
        """Residual logits ``[B, N, 2]`` (right, left; within +-:data:`RESIDUAL_BOUND`) at
        ``points [B, N, 3]`` (metres) with both hands' initial level logits ``[B, N, 2]``
        (:func:`level_logits`)."""
        c = self.config
        b, n = points.shape[:2]
        if points.shape != (b, n, 3) or logits.shape != (b, n, 2):
            raise HalohandInputError(
                f"points [B, N, 3] and logits [B, N, 2] expected, got {list(points.shape)} "
                f"and {list(logits.shape)}"
            )
        if b != context.code.shape[0]:
            raise HalohandInputError(f"{b} point sets for {context.code.shape[0]} pairs")
        dt = self.key.weight.dtype
        x = _local(points.to(torch.float64), context.frame).to(dt)
        # distances to the joints, not offsets: a linear layer on offsets J - x is one on
        # x plus a constant per pair, it would see nothing new
        rel = torch.cdist(x, context.joints)  # [B, N, 42]
        q = self.query_encoder(torch.cat([x, logits.to(dt) / LOGIT_SCALE, rel], -1))
        h, d = c.heads, c.width // c.heads
        m = context.anchors.shape[1]
        # Attention over every anchor of both hands, made local by a learned penalty
        # -r_h |x - a|^2 per head. Its |x|^2 part is the same for every anchor and cancels
        # in the softmax; the rest, 2 r_h x.a - r_h |a|^2, is a dot product of
        # [2 r_h x, r_h] with [a, -|a|^2], appended to the query and key. The fused
        # attention kernel never forms the [N, anchors] scores (4x faster on the CPU than
        # the explicit product and softmax); it wants values as wide as the keys, so they
        # are padded with zeros that are dropped again.
        reach = nn.functional.softplus(self.locality).to(dt)[None, :, None, None]  # [1, h, 1, 1]
        qh = q.reshape(b, n, h, d).transpose(1, 2) / math.sqrt(d)  # [B, h, N, d]
        qh = torch.cat([qh, 2.0 * reach * x[:, None], reach.expand(b, h, n, 1)], -1)
        kh = context.keys.reshape(b, m, h, d).transpose(1, 2)  # [B, h, M, d]
        a = context.anchors[:, None].expand(b, h, m, 3)
        kh = torch.cat([kh, a, -(a * a).sum(-1, keepdim=True)], -1)
        vh = nn.functional.pad(context.values.reshape(b, m, h, d).transpose(1, 2), (0, 4))
        attended = nn.functional.scaled_dot_product_attention(qh, kh, vh, scale=1.0)
        attended = attended[..., :d].transpose(1, 2).reshape(b, n, -1)
        # the value's relative position, linear in (anchor - x): its anchor part is in the
        # values already, the query's part is subtracted here
        attended = attended - self.value_position(x)
        # The decoder's first layer on [q, attended, code]: the code is one per pair, so
        # its share is a bias per pair (no [N, width] copy of it).
        first = self.decoder[0]
        assert isinstance(first, nn.Linear)
        w = c.width
        bias = nn.functional.linear(context.code, first.weight[:, 2 * w :], first.bias)  # [B, w]
        hidden = torch.cat([q, attended], -1) @ first.weight[:, : 2 * w].T + bias[:, None]
        return self.decoder[1:](hidden).clamp(-RESIDUAL_BOUND, RESIDUAL_BOUND)

    def forward(
        self, iso_points: Tensor, keypoints: Tensor, points: Tensor, prob: Tensor, level: float
    ) -> Tensor:
        """Refined level logits ``[B, N, 2]`` (0 on the mesh surface) from initial
        probabilities ``prob [B, N, 2]`` (the training path)."""
        logits = level_logits(prob, level)
        ctx = self.context(iso_points, keypoints)
        return logits + self.residual(ctx, points, logits)


# --------------------------------------------------------------------------- files


def save_pair_refiner(
    model: PairOccupancyRefiner, path: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> Path:
    """Write the weights, the config and ``extra`` (JSON) to a safetensors file atomically."""
    return save_model(path, model, _FORMAT, model.config, extra)


def pair_refiner_path() -> Path | None:
    """The shipped weights, or ``None`` when this build ships none."""
    return shipped_weights(_WEIGHTS)


def load_pair_refiner(path: str | os.PathLike[str] | None = None) -> PairOccupancyRefiner:
    """The shipped refiner, or one saved by :func:`save_pair_refiner` (eval mode).

    Raises:
        CorruptFileError: a missing, unreadable or foreign file (or no shipped weights).
    """
    if path is None:
        path = pair_refiner_path()
        if path is None:
            raise CorruptFileError(
                "no pair refiner weights shipped in this build; train one with "
                "`halohand train-pair-refiner` and pass its file"
            )
    return load_model_file(
        path, _FORMAT, "pair refiner", lambda cfg: PairOccupancyRefiner(PairRefinerConfig(**cfg))
    )


# --------------------------------------------------------------------------- inference


class PairFieldRefinement(Protocol):
    """What meshing a pair through a learned two-hand occupancy refinement needs of it
    (``HALO.meshes(..., learned=...)``): :class:`LearnedPair`, or any other refinement of
    both hands' fields at once with the same :meth:`LearnedPair.refine`.

    Attributes:
        level: the mesh level of the initial occupancy (HALO's ``iso_level``).
        residual_bound: the largest change the refinement makes to a level logit, or
            ``None`` when it has no bound (then every lattice point is refined).
    """

    level: float

    @property
    def residual_bound(self) -> float | None: ...

    def refine(
        self,
        points_m: Tensor,
        prob: Tensor,
        chunk: int = 65_536,
        *,
        band: tuple[int, ...] | None = None,
    ) -> Tensor: ...


@dataclass(eq=False)
class LearnedPair:
    """A refiner with the context of one pair (:func:`halohand.inference.two_hands.learned_pair`).

    Attributes:
        model: the refiner.
        context: its encoding of the pair's initial shapes (batch of one).
        level: the mesh level of the initial occupancy (HALO's ``iso_level``).
    """

    model: PairOccupancyRefiner
    context: PairContext
    level: float

    @property
    def residual_bound(self) -> float:
        return RESIDUAL_BOUND

    def refine(
        self,
        points_m: Tensor,
        prob: Tensor,
        chunk: int = 65_536,
        *,
        band: tuple[int, ...] | None = None,
    ) -> Tensor:
        """Refined ``[N, 2]`` probabilities (right, left) at ``[N, 3]`` points (metres,
        the pair's frame) from the initial ones ``[N, 2]``; differentiable in both when
        grad mode is on, in chunks of ``chunk`` points.

        With ``band`` (hand indices, 0 right, 1 left), only points where the initial level
        logit of one of those hands is within +-:data:`RESIDUAL_BOUND` are refined; the
        others keep their initial values. At those points every hand of ``band`` is on the
        refined field's side of its mesh level all the same (the residual cannot outweigh
        its logit), so a mesh of a ``band`` hand's band-refined field has the same inside
        and outside lattice points as one of its full field; only its vertices on edges
        that end at such a point are interpolated from the initial value there. Meshing
        uses it (40-60 % of the lattice points lie outside the band of both hands);
        :meth:`occupancy` queries do not."""
        dt = self.model.key.weight.dtype
        prob = prob.to(dt)
        if band is not None:
            u = level_logits(prob[:, list(band)], self.level)
            keep = (u.abs() <= RESIDUAL_BOUND).any(-1).nonzero()[:, 0]
            if len(keep) < len(prob):
                out = prob.clone()
                if len(keep):
                    out[keep] = self.refine(points_m[keep], prob[keep], chunk)
                return out
        parts = []
        for s in range(0, len(points_m), chunk):
            p = prob[s : s + chunk]
            logits = level_logits(p, self.level)
            r = self.model.residual(self.context, points_m[None, s : s + chunk], logits[None])[0]
            parts.append(refined_occupancy(p, r, self.level))
        return torch.cat(parts) if parts else prob
