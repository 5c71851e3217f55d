"""HOISDF (Qi et al., CVPR 2024) at this project's scale: hand and object signed distance
fields learned from one image guide the sampling and the features of the points that
regress the hand's joints and the object's pose.

The pipeline, per image (shapes for a batch ``B``; metres; every 3D point is relative to the
hand's root, the wrist, which the model is given with the camera intrinsics):

1. **Encoder-decoder** (a small U-Net): ``len(channels)`` stride-2 stages down, two up with
   skips; the two decoder levels are the pixel-aligned feature maps, the finer one also
   predicts a 3-class segmentation (background, hand, object: the paper's 2D loss).
2. **Pixel-aligned point features**: a point ``p`` (root-relative) is moved to the camera
   (``p + root``), projected with ``K`` and bilinearly sampled on both decoder levels;
   an MLP of the concatenation gives ``f_img``. ``p`` (scaled by the volume half-side)
   and its Fourier encoding ``f_pos`` join it: ``f_sdf = p + f_pos + f_img``.
3. **Two SDF decoders** (3-layer MLPs, ``tanh`` output times ``sdf_clamp``): ``d_h``, ``d_o``.
4. **Field-informed point sampling** (``sampling="field"``): candidate points (a
   ``grid^3`` lattice over the cube of half-side ``volume_half`` about the root; random
   points in it while training) projecting into the image are queried in both fields; the
   ``hand_points`` with the smallest ``|d_h|`` and the ``object_points`` with the smallest
   ``|d_o|`` are kept. ``"signed"``: smallest signed distance instead (Table 7's
   alternative); ``"uniform"``: random candidates. Training may instead pass points near the
   true surfaces (the paper's training shortcut).
5. **SDF feature augmentation** (``augment="density"``): ``sigma = sigmoid(-d / alpha) /
   alpha`` with a learnable ``alpha``, multiplied into ``f_img``: ``f = p + f_pos +
   f_img * sigma``. Alternatives (Table 8): ``"none"``, ``"density_concat"`` (``sigma``
   appended), ``"distance_concat"`` (``d`` appended).
6. **Cross-field interaction**: object points queried in the hand field give the
   cross-hand tokens ``f_oh`` (``f_img`` times ``sigma(d_h)`` at object points), hand points
   in the object field the cross-object tokens ``f_ho``.
7. **Point-wise attention**: hand tokens and cross-hand tokens go through
   ``attention_layers`` self-attention layers together (the paper's joint self/cross
   attention); only the hand tokens' outputs are kept. The object branch likewise.
8. **Point-wise regression**: each hand point votes an offset to each of the 21 joints
   with a confidence; a joint is the softmax(confidence)-weighted mean of its votes. Each
   object point votes the object centre (offset) and a rotation (6D), with one
   confidence; the weighted means give the pose (6D -> Gram-Schmidt).

``sdf=False`` is the ablation without the field (Table 5's question): no SDF decoders and
no SDF loss, points drawn uniformly in the volume, no augmentation and no cross-field
terms (the cross tokens are the other branch's plain point features); everything else the
same. The paper's MANO-parameter head is left out (this project's hands are keypoints):
the joints are the offset votes' result, which the paper reports as about as good
(its Table 10).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halohand.core.errors import HalohandInputError
from halohand.core.rotations import rotation_6d_to_matrix

__all__ = ["AUGMENTS", "HOISDF", "SAMPLINGS", "HOISDFConfig"]

SAMPLINGS = ("field", "signed", "uniform")
AUGMENTS = ("density", "none", "density_concat", "distance_concat")


@dataclass(frozen=True)
class HOISDFConfig:
    """Sizes and variant of a :class:`HOISDF` (defaults: the 2-core CPU scale)."""

    image_size: int = 96  #: input side, pixels
    channels: tuple[int, ...] = (32, 48, 64, 64)  #: encoder stages, each halves the size
    feature_dim: int = 64  #: f_img and token width
    fourier_freqs: int = 6  #: frequencies of the positional encoding per axis
    sdf_hidden: int = 64
    attention_layers: int = 2
    heads: int = 4
    hand_points: int = 128  #: K points kept near the hand
    object_points: int = 128
    grid: int = 20  #: N_v: test-time candidate lattice per axis
    train_candidates: int = 2048  #: random candidates per image when sampling in training
    volume_half: float = 0.2  #: metres, the cube about the root
    sdf_clamp: float = 0.05  #: metres, range of the SDF outputs and targets
    alpha_init: float = 0.01  #: metres, initial tightness of sigma
    sdf: bool = True
    sampling: str = "field"
    augment: str = "density"

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise HalohandInputError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.augment not in AUGMENTS:
            raise HalohandInputError(f"augment must be one of {AUGMENTS}, got {self.augment!r}")
        if len(self.channels) < 3:
            raise HalohandInputError("channels needs at least 3 encoder stages")
        if self.image_size % (2 ** len(self.channels)):
            raise HalohandInputError(
                f"image_size {self.image_size} must be divisible by 2^{len(self.channels)}"
            )
        if not self.sdf and (self.sampling != "uniform" or self.augment != "none"):
            # without a field there is nothing to sample by or augment with
            object.__setattr__(self, "sampling", "uniform")
            object.__setattr__(self, "augment", "none")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HOISDFConfig:
        d = dict(d)
        if "channels" in d:
            d["channels"] = tuple(d["channels"])
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise HalohandInputError(f"unknown HOISDF config keys: {sorted(unknown)}")
        return cls(**d)

    def with_(self, **kw: Any) -> HOISDFConfig:
        return replace(self, **kw)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Module:
    groups = math.gcd(8, cout)
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
        nn.GroupNorm(groups, cout),
        nn.ReLU(True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
        nn.GroupNorm(groups, cout),
        nn.ReLU(True),
    )


def _mlp(sizes: list[int], last_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_act:
            layers.append(nn.ReLU(True))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """Image ``[B, 3, S, S]`` -> two decoder maps (coarse ``S/2^(n-1)``, fine ``S/2^(n-2)``)
    and segmentation logits ``[B, 3, S/2^(n-2), ...]`` (n = encoder stages)."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        c = list(channels)
        self.down = nn.ModuleList(
            [_conv(3 if i == 0 else c[i - 1], c[i], stride=2) for i in range(len(c))]
        )
        self.up1 = _conv(c[-1] + c[-2], c[-2])
        self.up2 = _conv(c[-2] + c[-3], c[-3])
        self.seg = nn.Conv2d(c[-3], 3, 1)
        self.out_channels = (c[-2], c[-3])

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        skips = []
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        d1 = self.up1(torch.cat([x, skips[-2]], 1))
        x = F.interpolate(d1, scale_factor=2.0, mode="bilinear", align_corners=False)
        d2 = self.up2(torch.cat([x, skips[-3]], 1))
        return [d1, d2], self.seg(d2)


class HOISDF(nn.Module):
    """The model of :mod:`this module <halohand.handobject.model>`."""

    def __init__(self, config: HOISDFConfig | None = None) -> None:
        super().__init__()
        cfg = HOISDFConfig() if config is None else config
        self.config = cfg
        fd = cfg.feature_dim
        self.unet = UNet(cfg.channels)
        self.img_mlp = _mlp([sum(self.unet.out_channels), fd, fd], last_act=True)
        pos_dim = 3 + 6 * cfg.fourier_freqs
        self.register_buffer(
            "freqs", math.pi * 2.0 ** torch.arange(cfg.fourier_freqs, dtype=torch.float32)
        )
        if cfg.sdf:
            sdf_in = pos_dim + fd
            self.sdf_hand = _mlp([sdf_in, cfg.sdf_hidden, cfg.sdf_hidden, 1])
            self.sdf_object = _mlp([sdf_in, cfg.sdf_hidden, cfg.sdf_hidden, 1])
            # alpha > 0 through its log; sigma is scaled by alpha_init so that it starts <= 1
            self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.alpha_init)))
        extra = 1 if cfg.augment in ("density_concat", "distance_concat") else 0
        tok_in = pos_dim + fd + extra
        self.hand_proj = nn.Linear(tok_in, fd)
        self.object_proj = nn.Linear(tok_in, fd)
        self.kind = nn.Parameter(torch.zeros(4, fd))  # hand, cross-hand, object, cross-object

        def encoder() -> nn.TransformerEncoder:
            layer = nn.TransformerEncoderLayer(
                fd, cfg.heads, 2 * fd, dropout=0.0, batch_first=True, norm_first=True
            )
            return nn.TransformerEncoder(layer, cfg.attention_layers, enable_nested_tensor=False)

        self.hand_attn = encoder()
        self.object_attn = encoder()
        self.hand_head = _mlp([fd, fd, 21 * 4])  # 21 offsets (3) + 21 confidences
        self.object_head = _mlp([fd, fd, 6 + 3 + 1])  # rotation 6D, centre offset, confidence

    # -- features ---------------------------------------------------------------------------
    def encode(self, images: Tensor) -> tuple[list[Tensor], Tensor]:
        """``images [B, 3, S, S]`` in 0..1 -> decoder maps and segmentation logits."""
        s = self.config.image_size
        if images.shape[-2:] != (s, s):
            raise HalohandInputError(f"images must be {s}x{s}, got {list(images.shape[-2:])}")
        return self.unet((images - 0.5) / 0.25)

    def positional(self, points: Tensor) -> Tensor:
        """``[B, N, 3]`` root-relative metres -> ``p / half`` and its Fourier encoding."""
        p = points / self.config.volume_half
        ang = p[..., None] * self.freqs  # [B, N, 3, L]
        enc = torch.cat([ang.sin(), ang.cos()], -1).flatten(-2)
        return torch.cat([p, enc], -1)

    def image_features(
        self, maps: list[Tensor], points: Tensor, intrinsics: Tensor, root: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Pixel-aligned ``f_img [B, N, F]`` of root-relative ``points [B, N, 3]`` and whether
        each projects into the image ``[B, N]``."""
        cam = points + root[:, None]
        z = cam[..., 2:3].clamp_min(1e-3)
        uv = cam[..., :2] / z * intrinsics[:, None, [0, 1], [0, 1]] + intrinsics[:, None, :2, 2]
        grid = 2.0 * uv / self.config.image_size - 1.0  # pixel edges at -1 and 1
        inside = (grid.abs() <= 1.0).all(-1) & (cam[..., 2] > 1e-3)
        feats = [
            F.grid_sample(m, grid[:, :, None], mode="bilinear", align_corners=False)[..., 0]
            for m in maps
        ]
        return self.img_mlp(torch.cat(feats, 1).transpose(1, 2)), inside

    def fields(self, pos: Tensor, f_img: Tensor) -> tuple[Tensor, Tensor]:
        """Hand and object signed distances ``[B, N]`` (metres) from ``f_sdf``."""
        x = torch.cat([pos, f_img], -1)
        c = self.config.sdf_clamp
        return (
            c * torch.tanh(self.sdf_hand(x)[..., 0]),
            c * torch.tanh(self.sdf_object(x)[..., 0]),
        )

    def _sigma(self, d: Tensor) -> Tensor:
        alpha = self.log_alpha.exp()
        return torch.sigmoid(-d / alpha) * (self.config.alpha_init / alpha)

    def _tokens(self, pos: Tensor, f_img: Tensor, d: Tensor | None) -> Tensor:
        aug = self.config.augment
        if d is None or aug == "none":
            return torch.cat([pos, f_img], -1)
        if aug == "density":
            return torch.cat([pos, f_img * self._sigma(d)[..., None]], -1)
        extra = self._sigma(d) if aug == "density_concat" else d / self.config.sdf_clamp
        return torch.cat([pos, f_img, extra[..., None]], -1)

    # -- sampling ---------------------------------------------------------------------------
    def candidates(self, batch: int, generator: torch.Generator | None, device: Any) -> Tensor:
        """Candidate points ``[B, M, 3]``: the ``grid^3`` lattice (cell centres) without a
        generator, ``train_candidates`` uniform points with one."""
        cfg = self.config
        h = cfg.volume_half
        if generator is None:
            ax = (torch.arange(cfg.grid, device=device) + 0.5) / cfg.grid * 2 * h - h
            g = torch.stack(torch.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
            return g[None].expand(batch, -1, -1)
        u = torch.rand(batch, cfg.train_candidates, 3, generator=generator, device=device)
        return (2 * u - 1) * h

    def sample_points(
        self,
        maps: list[Tensor],
        intrinsics: Tensor,
        root: Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Hand and object points ``[B, K, 3]`` by the configured strategy (no gradients)."""
        cfg = self.config
        b = len(root)
        cand = self.candidates(b, generator, root.device)
        with torch.no_grad():
            f_img, inside = self.image_features(maps, cand, intrinsics, root)
            if cfg.sampling == "uniform" or not cfg.sdf:
                gen = generator
                if gen is None:  # a fixed draw at test time: results do not vary run to run
                    gen = torch.Generator(device=root.device).manual_seed(0)
                key_h = torch.rand(cand.shape[:2], generator=gen, device=root.device)
                key_o = torch.rand(cand.shape[:2], generator=gen, device=root.device)
            else:
                d_h, d_o = self.fields(self.positional(cand), f_img)
                if cfg.sampling == "field":
                    key_h, key_o = d_h.abs(), d_o.abs()
                else:
                    key_h, key_o = d_h, d_o
            # points that project outside the image have no image evidence: last choice
            key_h = key_h.masked_fill(~inside, float("inf"))
            key_o = key_o.masked_fill(~inside, float("inf"))
            ih = key_h.topk(cfg.hand_points, dim=1, largest=False).indices
            io = key_o.topk(cfg.object_points, dim=1, largest=False).indices
        pick = lambda i: torch.gather(cand, 1, i[..., None].expand(-1, -1, 3))  # noqa: E731
        return pick(ih), pick(io)

    # -- forward ----------------------------------------------------------------------------
    def forward(
        self,
        images: Tensor,
        intrinsics: Tensor,
        root: Tensor,
        hand_points: Tensor | None = None,
        object_points: Tensor | None = None,
        sdf_points: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Predict joints and the object pose.

        Args:
            images: ``[B, 3, S, S]`` sRGB in 0..1.
            intrinsics: ``[B, 3, 3]`` pixels of these images.
            root: ``[B, 3]`` metres, the wrist in the camera frame (given, as in
                root-relative protocols).
            hand_points, object_points: ``[B, K, 3]`` root-relative query points (training's
                points near the true surfaces); ``None``: sampled (:meth:`sample_points`).
            sdf_points: ``[B, N, 3]`` root-relative points whose field values to return.
            generator: random candidates for sampling (training); ``None``: the lattice.

        Returns:
            ``joints [B, 21, 3]`` (root-relative metres), ``object_rotation [B, 3, 3]``,
            ``object_translation [B, 3]`` (root-relative), ``votes [B, K, 21, 3]``,
            ``object_votes [B, K, 3]``, ``hand_points``, ``object_points``, ``segmentation
            [B, 3, s, s]`` logits, and with ``sdf_points`` and the field ``sdf_hand``,
            ``sdf_object [B, N]``.
        """
        maps, seg = self.encode(images)
        out: dict[str, Tensor] = {"segmentation": seg}
        if hand_points is None or object_points is None:
            hand_points, object_points = self.sample_points(maps, intrinsics, root, generator)
        nh = hand_points.shape[1]
        pts = torch.cat([hand_points, object_points], 1)
        f_img, _ = self.image_features(maps, pts, intrinsics, root)
        pos = self.positional(pts)
        cfg = self.config
        if cfg.sdf:
            d_h, d_o = self.fields(pos, f_img)
            # own field for own tokens, the other field for the cross tokens
            own = torch.cat([d_h[:, :nh], d_o[:, nh:]], 1)
            cross = torch.cat([d_o[:, :nh], d_h[:, nh:]], 1)
            tok_own, tok_cross = self._tokens(pos, f_img, own), self._tokens(pos, f_img, cross)
        else:
            tok_own = tok_cross = self._tokens(pos, f_img, None)
        h_tok = torch.cat(
            [
                self.hand_proj(tok_own[:, :nh]) + self.kind[0],
                self.hand_proj(tok_cross[:, nh:]) + self.kind[1],
            ],
            1,
        )
        o_tok = torch.cat(
            [
                self.object_proj(tok_own[:, nh:]) + self.kind[2],
                self.object_proj(tok_cross[:, :nh]) + self.kind[3],
            ],
            1,
        )
        eh = self.hand_attn(h_tok)[:, :nh]
        eo = self.object_attn(o_tok)[:, : pts.shape[1] - nh]
        b = len(images)
        hv = self.hand_head(eh).reshape(b, nh, 21, 4)
        votes = hand_points[:, :, None] + cfg.volume_half * hv[..., :3]
        w = torch.softmax(hv[..., 3], dim=1)  # over points, per joint
        out["joints"] = (w[..., None] * votes).sum(1)
        ov = self.object_head(eo)
        o_votes = object_points + cfg.volume_half * ov[..., 6:9]
        wo = torch.softmax(ov[..., 9], dim=1)
        out["object_translation"] = (wo[..., None] * o_votes).sum(1)
        out["object_rotation"] = rotation_6d_to_matrix((wo[..., None] * ov[..., :6]).sum(1))
        out.update(
            votes=votes, object_votes=o_votes, hand_points=hand_points, object_points=object_points
        )
        if sdf_points is not None and cfg.sdf:
            f_s, _ = self.image_features(maps, sdf_points, intrinsics, root)
            out["sdf_hand"], out["sdf_object"] = self.fields(self.positional(sdf_points), f_s)
        return out

    def field_values(
        self, images: Tensor, intrinsics: Tensor, root: Tensor, points: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Predicted hand and object signed distances ``[B, N]`` at root-relative points."""
        if not self.config.sdf:
            raise HalohandInputError("this HOISDF variant has no signed distance fields")
        maps, _ = self.encode(images)
        f_img, _ = self.image_features(maps, points, intrinsics, root)
        return self.fields(self.positional(points), f_img)
