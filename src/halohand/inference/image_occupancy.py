"""Image-conditioned initial occupancy of a pair ("HALO + image", Im2Hands Sec. 3.1).

Im2Hands' initial per-hand occupancy is HALO's, optionally with the query points attending
to image features. This is its CPU-scale form with pixel-aligned features (as PIFu): a
small convolutional encoder, trained from scratch on the rendered pairs
(``halohand data pair-images``), turns one view of the pair into feature maps at strides
2, 4 and 8; each query point is projected with the view's camera into them and the
features there are read (bilinear, ``grid_sample``). Per hand and query point:

    pixel-aligned features (3 scales)            [C]      (image branch only)
    the point's depth minus the hand's depth     [1]      (its joints' mean; image branch)
    this hand's and the other hand's HALO level logits (/ LOGIT_SCALE)  [2]
    distances to this hand's 21 joints (units of UNIT)                  [21]
    side (one-hot: right, left)                                          [2]
      -> MLP -> residual logit, added to HALO's level logit of that hand

With ``image=False`` the same network has no image branch: keypoints and HALO's logits
only (the A/B's other arm). The last layer starts at zero: an untrained model returns
HALO's occupancy bit for bit (:func:`~halohand.inference.pair_refiner.refined_occupancy`).

Why the image can help: HALO sees keypoints only, and the pair data's hands differ in
per-part thickness that keypoints do not determine; the silhouette and shading of a view
do show it (for the parts the camera sees).

Camera convention (the renderer's, :mod:`halohand.apps.pair_images`): ``rotation [3, 3]``
and ``translation [3]`` (metres) map the keypoints' frame to the camera's (``x`` right,
``y`` down, ``z`` ahead), ``intrinsics [3, 3]`` in pixels with pixel ``(i, j)`` covering
``[j, j + 1) x [i, i + 1)``: its centre is at ``(j + 0.5, i + 0.5)``
(:func:`project`). Images of another size than the model's are resized to it and the
intrinsics scaled with them.

Trained by ``halohand train-image-occupancy`` (:mod:`halohand.training.image_occupancy`);
used through :func:`reconstruct_pair_image`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch import Tensor, nn

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.weights_file import load_model_file, save_model, shipped_weights
from halohand.inference.pair_refiner import (
    LOGIT_SCALE,
    UNIT,
    level_logits,
    refined_occupancy,
)

__all__ = [
    "ImageOccupancy", "ImageOccupancyConfig", "ImagePair", "image_pair", "load_image_occupancy",
    "pair_residual_path", "prepare_image", "project", "save_image_occupancy",
]  # fmt: skip

_FORMAT: Final = "halohand.image-occupancy"
#: The shipped keypoint-only model (``image=False``): the default learned two-hand
#: refinement of :meth:`halohand.HALO.reconstruct_pair` (``refine_occupancy=True``).
_WEIGHTS: Final = "pair_residual.safetensors"
#: Mean and spread that sRGB values in 0..1 are normalised with before the encoder.
_PIXEL_MEAN: Final = 0.5
_PIXEL_STD: Final = 0.25


@dataclass(frozen=True)
class ImageOccupancyConfig:
    """Size of the network.

    Attributes:
        image: with the image branch (``False``: keypoints and HALO's logits only).
        image_size: side (pixels) the view is resized to before the encoder.
        channels: channels of the encoder's three stages (strides 2, 4, 8).
        width: width of the per-point MLP.
        layers: hidden layers of the per-point MLP.
    """

    image: bool = True
    image_size: int = 128
    channels: tuple[int, int, int] = (16, 32, 64)
    width: int = 64
    layers: int = 3

    def __post_init__(self) -> None:
        if not 16 <= int(self.image_size) <= 1024:
            raise HalohandInputError(f"image_size must be 16-1024, got {self.image_size}")
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise HalohandInputError(f"channels must be three numbers >= 1, got {self.channels}")
        if self.width < 1 or self.layers < 1:
            raise HalohandInputError("width and layers must be >= 1")


# --------------------------------------------------------------------------- camera


def project(points: Tensor, intrinsics: Tensor, rotation: Tensor, translation: Tensor) -> Tensor:
    """Pixel coordinates and depth ``[B, N, 3]`` (``u``, ``v`` in pixels, pixel ``(i, j)``'s
    centre at ``(j + 0.5, i + 0.5)``; ``z`` metres) of ``[B, N, 3]`` points (metres, the
    keypoints' frame) seen by ``B`` cameras (``[B, 3, 3]`` each and ``translation [B, 3]``)."""
    cam = points.to(rotation.dtype) @ rotation.transpose(-1, -2) + translation[:, None]
    z = cam[..., 2:]
    # points at or behind the camera get a far-away pixel (their features are zeros)
    safe = torch.where(z > 1e-6, z, torch.full_like(z, 1e-6))
    focal, centre = intrinsics[:, :2, :2].transpose(-1, -2), intrinsics[:, None, :2, 2]
    uv = (cam[..., :2] / safe) @ focal + centre
    uv = torch.where(z > 1e-6, uv, torch.full_like(uv, -1e6))
    return torch.cat([uv, z], -1)


def prepare_image(image: Any, intrinsics: Any, size: int) -> tuple[Tensor, Tensor]:
    """``(pixels [3, size, size] float32 normalised, intrinsics [3, 3] float64 of them)`` of
    an ``[H, W, 3]`` sRGB image (uint8, or floats in 0..1) and its ``[3, 3]`` intrinsics."""
    img = torch.as_tensor(np.asarray(image))
    if img.ndim != 3 or img.shape[-1] != 3 or min(img.shape[:2]) < 1:
        raise HalohandInputError(f"image must be [H, W, 3], got {list(img.shape)}")
    k = torch.as_tensor(np.asarray(intrinsics, dtype=np.float64))
    if k.shape != (3, 3) or not torch.isfinite(k).all():
        raise HalohandInputError(f"intrinsics must be a finite [3, 3], got {list(k.shape)}")
    x = img.float() / 255.0 if img.dtype == torch.uint8 else img.float()
    h, w = x.shape[:2]
    x = x.permute(2, 0, 1)[None]
    if (h, w) != (size, size):
        x = nn.functional.interpolate(x, (size, size), mode="bilinear", antialias=True)
        k = torch.diag(torch.tensor([size / w, size / h, 1.0], dtype=torch.float64)) @ k
    return ((x[0] - _PIXEL_MEAN) / _PIXEL_STD).contiguous(), k


# --------------------------------------------------------------------------- network


class _Stage(nn.Module):
    """A stride-2 convolution and a residual 3x3 convolution, ReLUs after each."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.conv = nn.Conv2d(cout, cout, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.down(x))
        return torch.relu(x + self.conv(x))


class ImageOccupancy(nn.Module):
    """The network (module docstring). ``encode`` maps views to feature maps once per pair;
    ``residual`` maps query points to both hands' residual logits."""

    def __init__(self, config: ImageOccupancyConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or ImageOccupancyConfig()
        if c.image:
            c0, c1, c2 = c.channels
            self.stages = nn.ModuleList([_Stage(3, c0), _Stage(c0, c1), _Stage(c1, c2)])
            #: auxiliary segmentation head (background, right, left) on the first stage:
            #: trains the encoder to find each hand (used by training only)
            self.segment = nn.Conv2d(c0, 3, 1)
        features = (sum(c.channels) + 1 if c.image else 0) + 2 + 21 + 2
        sizes = [features] + [c.width] * c.layers
        mlp: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            mlp += [nn.Linear(a, b), nn.ReLU()]
        self.head = nn.Sequential(*mlp)
        self.out = nn.Linear(c.width, 1)
        nn.init.zeros_(self.out.weight)  # untrained: HALO's occupancy, exactly
        nn.init.zeros_(self.out.bias)

    def encode(self, pixels: Tensor) -> list[Tensor]:
        """Feature maps (strides 2, 4, 8) of ``[B, 3, S, S]`` normalised views
        (:func:`prepare_image`); empty without the image branch."""
        if not self.config.image:
            return []
        if pixels.ndim != 4 or pixels.shape[1] != 3:
            raise HalohandInputError(f"pixels must be [B, 3, S, S], got {list(pixels.shape)}")
        maps, x = [], pixels
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps

    def residual(
        self,
        maps: list[Tensor],
        points: Tensor,
        logits: Tensor,
        keypoints: Tensor,
        camera: tuple[Tensor, Tensor, Tensor] | None,
    ) -> Tensor:
        """Residual logits ``[B, N, 2]`` (right, left; unbounded: the trained keypoint-only
        model's reach +-34 far from the hands, where they agree with HALO's sign, and up
        to 8 near its surface).

        Args:
            maps: :meth:`encode` of the ``B`` views (``[]`` without the image branch).
            points: ``[B, N, 3]`` metres, the keypoints' frame.
            logits: ``[B, N, 2]`` both hands' HALO level logits there (:func:`level_logits`).
            keypoints: ``[B, 2, 21, 3]`` metres (right, left).
            camera: ``(intrinsics [B, 3, 3] of the encoded size, rotation [B, 3, 3],
                translation [B, 3])``; ignored without the image branch.
        """
        b, n = points.shape[:2]
        if points.shape != (b, n, 3) or logits.shape != (b, n, 2):
            raise HalohandInputError(
                f"points [B, N, 3] and logits [B, N, 2] expected, got {list(points.shape)} "
                f"and {list(logits.shape)}"
            )
        if keypoints.shape != (b, 2, 21, 3):
            raise HalohandInputError(
                f"keypoints must be [{b}, 2, 21, 3], got {list(keypoints.shape)}"
            )
        dt = self.out.weight.dtype
        pts, kp = points.to(torch.float64), keypoints.to(torch.float64)
        shared: list[Tensor] = []
        depth_rel: list[Tensor] = []
        if self.config.image:
            if camera is None or len(maps) != 3:
                raise HalohandInputError("the image branch needs the view's maps and camera")
            k, r, t = (x.to(torch.float64) for x in camera)
            uvz = project(pts, k, r, t)
            size = float(self.config.image_size)
            grid = (2.0 * uvz[..., :2] / size - 1.0).to(dt)[:, :, None]  # [B, N, 1, 2]
            for m in maps:
                f = nn.functional.grid_sample(m, grid, align_corners=False, padding_mode="zeros")
                shared.append(f[..., 0].transpose(1, 2))  # [B, N, C]
            hand_depth = project(kp.reshape(b, 42, 3), k, r, t)[..., 2].reshape(b, 2, 21).mean(-1)
            depth_rel = [((uvz[..., 2] - hand_depth[:, h, None]) / UNIT).to(dt)[..., None]
                         for h in range(2)]  # fmt: skip
        out = []
        scaled = logits.to(dt) / LOGIT_SCALE
        for h in range(2):
            dist = (torch.cdist(pts, kp[:, h]) / UNIT).to(dt)  # [B, N, 21]
            side = torch.zeros(b, n, 2, dtype=dt, device=points.device)
            side[..., h] = 1.0
            own = [*shared, depth_rel[h]] if self.config.image else []
            logit_pair = [scaled[..., h : h + 1], scaled[..., 1 - h : 2 - h]]
            x = torch.cat([*own, *logit_pair, dist, side], -1)
            out.append(self.out(self.head(x))[..., 0])
        return torch.stack(out, -1)

    def forward(
        self,
        pixels: Tensor | None,
        camera: tuple[Tensor, Tensor, Tensor] | None,
        keypoints: Tensor,
        points: Tensor,
        prob: Tensor,
        level: float,
    ) -> Tensor:
        """Refined level logits ``[B, N, 2]`` (0 on the mesh surface) from HALO's
        probabilities ``prob [B, N, 2]`` (the training path)."""
        logits = level_logits(prob, level)
        maps = self.encode(pixels) if self.config.image and pixels is not None else []
        return logits + self.residual(maps, points, logits, keypoints, camera)


# --------------------------------------------------------------------------- files


def save_image_occupancy(
    model: ImageOccupancy, path: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> Path:
    """Write the weights, the config and ``extra`` (JSON) to a safetensors file atomically."""
    return save_model(path, model, _FORMAT, model.config, extra)


def pair_residual_path() -> Path | None:
    """The shipped keypoint-only model, or ``None`` when this build ships none."""
    return shipped_weights(_WEIGHTS)


def load_image_occupancy(path: str | os.PathLike[str] | None = None) -> ImageOccupancy:
    """A model saved by :func:`save_image_occupancy` (eval mode); without ``path``, the
    shipped keypoint-only model (:func:`pair_residual_path`).

    Raises:
        CorruptFileError: a missing, unreadable or foreign file (or no shipped weights).
    """
    if path is None:
        path = pair_residual_path()
        if path is None:
            raise CorruptFileError(
                "no keypoint residual weights shipped in this build; train one with "
                "`halohand train-image-occupancy --no-image` and pass its file"
            )

    def build(cfg: dict[str, Any]) -> ImageOccupancy:
        return ImageOccupancy(ImageOccupancyConfig(**{**cfg, "channels": tuple(cfg["channels"])}))

    return load_model_file(path, _FORMAT, "image occupancy", build)


# --------------------------------------------------------------------------- inference


@dataclass(eq=False)
class ImagePair:
    """A model with one pair's view encoded (:func:`image_pair`); meshed through
    ``HALO.meshes(..., learned=...)`` as the learned pair refinement is.

    Attributes:
        model: the network.
        maps: its feature maps of the view (batch of one; ``[]`` without the image branch).
        camera: ``(intrinsics, rotation, translation)`` ``[1, ...]`` float64 (metres), or
            ``None`` for a model without the image branch.
        keypoints: ``[1, 2, 21, 3]`` metres (right, left).
        level: the mesh level of the initial occupancy (HALO's ``iso_level``).
    """

    model: ImageOccupancy
    maps: list[Tensor]
    camera: tuple[Tensor, Tensor, Tensor] | None
    keypoints: Tensor
    level: float

    @property
    def residual_bound(self) -> None:
        """None: the residual has no bound, so meshing refines every lattice point."""
        return None

    def refine(
        self,
        points_m: Tensor,
        prob: Tensor,
        chunk: int = 65_536,
        *,
        band: tuple[int, ...] | None = None,
    ) -> Tensor:
        """Refined ``[N, 2]`` probabilities (right, left) at ``[N, 3]`` points (metres, the
        keypoints' frame) from HALO's ``[N, 2]``; differentiable when grad mode is on. Every
        point is refined: the residual has no bound (:attr:`residual_bound`), so no band of
        points is safe to skip and ``band`` is ignored."""
        dt = self.model.out.weight.dtype
        prob = prob.to(dt)
        parts = []
        for s in range(0, len(points_m), chunk):
            p = prob[s : s + chunk]
            logits = level_logits(p, self.level)
            r = self.model.residual(
                self.maps, points_m[None, s : s + chunk], logits[None], self.keypoints,
                self.camera,
            )[0]  # fmt: skip
            parts.append(refined_occupancy(p, r, self.level))
        return torch.cat(parts) if parts else prob


def _camera(rotation: Any, translation: Any) -> tuple[Tensor, Tensor]:
    r = torch.as_tensor(np.asarray(rotation, dtype=np.float64))
    t = torch.as_tensor(np.asarray(translation, dtype=np.float64))
    finite = bool(torch.isfinite(r).all() and torch.isfinite(t).all())
    if r.shape != (3, 3) or t.shape != (3,) or not finite:
        raise HalohandInputError(
            f"rotation must be a finite [3, 3] and translation a finite [3], got "
            f"{list(r.shape)} and {list(t.shape)}"
        )
    if abs(float(torch.linalg.det(r)) - 1.0) > 1e-3:
        raise HalohandInputError("rotation must be a rotation matrix (det 1)")
    return r, t


def image_pair(
    model: ImageOccupancy,
    keypoints_m: Any,
    image: Any,
    intrinsics: Any,
    rotation: Any,
    translation: Any,
    level: float,
) -> ImagePair:
    """Encode one view of a pair: ``keypoints_m [2, 21, 3]`` metres (right, left, project
    order), an ``[H, W, 3]`` sRGB image, its ``[3, 3]`` intrinsics (pixels) and the camera
    ``rotation [3, 3]`` / ``translation [3]`` (metres) from the keypoints' frame. A model
    without the image branch needs no view: ``image`` and the camera may be ``None``."""
    kp = torch.as_tensor(np.asarray(keypoints_m, dtype=np.float64))
    if kp.shape != (2, 21, 3):
        raise HalohandInputError(f"keypoints must be [2, 21, 3], got {list(kp.shape)}")
    dev = model.out.weight.device
    if not model.config.image and image is None:
        return ImagePair(model, [], None, kp[None].to(dev), float(level))
    if image is None:
        raise HalohandInputError("this model reads a view of the pair: give its image")
    r, t = _camera(rotation, translation)
    maps: list[Tensor] = []
    pixels, k = prepare_image(image, intrinsics, model.config.image_size)
    if model.config.image:
        with torch.no_grad():
            maps = model.encode(pixels[None].to(dev))
    cam = (k[None].to(dev), r[None].to(dev), t[None].to(dev))
    return ImagePair(model, maps, cam, kp[None].to(dev), float(level))
