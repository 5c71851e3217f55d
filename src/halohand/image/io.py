"""Photos in: decoded with Pillow to ``[H, W, 3]`` uint8 RGB, upright, within size limits.

A photo is refused by its header's pixel count before any pixel is decoded (a small file
can declare 20000x20000 pixels); grayscale, palette, CMYK, 16-bit and alpha images are
converted to RGB (alpha composited over black, as the detector sees a transparent
background); EXIF orientation is applied so that the pixels are the way a viewer shows
them. Every refusal is a :class:`~halohand.core.errors.HalohandInputError` naming the file.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from halohand.core.errors import HalohandInputError

#: Largest photo accepted, in pixels (50 MP: a phone's full-resolution photo fits; decoding
#: it takes ~150 MB as RGB).
MAX_PIXELS = 50_000_000
#: Smallest side accepted: below this there is no hand to find.
MIN_SIDE = 16

#: EXIF tags: the Exif sub-IFD and, in it, the focal length in 35 mm film equivalent (mm).
_EXIF_IFD = 0x8769
_FOCAL_35MM = 0xA405
#: Diagonal of 35 mm film (36 x 24 mm), for the equivalent focal length.
FILM_DIAGONAL_MM = float(np.hypot(36.0, 24.0))


@dataclass(frozen=True, eq=False)
class Photo:
    """A decoded photo.

    Attributes:
        rgb: ``[H, W, 3]`` uint8, upright (EXIF orientation applied).
        name: where it came from (a path, or ``"<array>"``).
        focal_35mm: the EXIF 35 mm-equivalent focal length (mm), or ``None``.
    """

    rgb: np.ndarray
    name: str = "<array>"
    focal_35mm: float | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])

    def focal_px(self) -> float | None:
        """The EXIF focal length in pixels of this (upright) image, or ``None``: the 35 mm
        equivalent scales the film diagonal to the image diagonal."""
        if self.focal_35mm is None:
            return None
        w, h = self.size
        return float(self.focal_35mm * np.hypot(w, h) / FILM_DIAGONAL_MM)


def _check_size(width: int, height: int, name: str) -> None:
    if width * height > MAX_PIXELS:
        raise HalohandInputError(
            f"{name}: {width}x{height} pixels is too large (at most {MAX_PIXELS:,} pixels); "
            "scale the photo down"
        )
    if min(width, height) < MIN_SIDE:
        raise HalohandInputError(
            f"{name}: {width}x{height} pixels is too small (at least {MIN_SIDE} per side)"
        )


def _focal_35mm(img: Image.Image) -> float | None:
    try:
        value = img.getexif().get_ifd(_EXIF_IFD).get(_FOCAL_35MM)
        focal = float(value) if value is not None else None
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        return None
    return focal if focal is not None and 1.0 <= focal <= 2000.0 else None


def to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow image mode as ``[H, W, 3]`` uint8 RGB (16-bit scaled to 8, alpha over
    black)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "F":
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
        top = 1.0 if arr.max() <= 1.0 else 255.0
        gray = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return np.asarray(Image.alpha_composite(black, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def _open(path: Path) -> Photo:
    name = str(path)
    if not path.exists():
        raise HalohandInputError(f"{name}: no such file")
    if path.is_dir():
        raise HalohandInputError(f"{name}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise HalohandInputError(f"{name}: empty file, not an image")
    with warnings.catch_warnings():
        # Pillow warns (and errors above twice its limit) on huge headers; the pixel count
        # is checked here first, with a clearer message.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as img:
                _check_size(img.width, img.height, name)
                focal = _focal_35mm(img)
                img.load()
                upright = ImageOps.exif_transpose(img)
                rgb = to_rgb(upright)
        except HalohandInputError:
            raise
        except UnidentifiedImageError:
            raise HalohandInputError(f"{name}: not an image Pillow can read") from None
        except Image.DecompressionBombError:  # a header far beyond the limit: Pillow's own
            raise HalohandInputError(
                f"{name}: too large (at most {MAX_PIXELS:,} pixels); scale the photo down"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
            raise HalohandInputError(f"{name}: broken or truncated image ({reason})") from None
    return Photo(np.ascontiguousarray(rgb), name, focal)


def load_photo(image: Any, name: str | None = None) -> Photo:
    """A photo from a path, a ``PIL.Image``, a :class:`Photo` or an array.

    Args:
        image: a path (str or ``os.PathLike``); a ``PIL.Image.Image``; an ``[H, W, 3]`` or
            ``[H, W, 4]`` uint8 RGB(A) array or an ``[H, W]`` uint8 grayscale array.
        name: what error messages call it (default: the path, or ``"<array>"``).

    Raises:
        HalohandInputError: a missing, empty, truncated, non-image, too large or too small
            file or array, with the file's name.
    """
    if isinstance(image, Photo):
        return image
    if isinstance(image, str | os.PathLike):
        return _open(Path(image))
    label = name or "<array>"
    if isinstance(image, Image.Image):
        _check_size(image.width, image.height, label)
        return Photo(np.ascontiguousarray(to_rgb(ImageOps.exif_transpose(image))), label)
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise HalohandInputError(
            f"{label}: expected an image path or an [H, W, 3] uint8 RGB array, "
            f"got {arr.dtype} {list(arr.shape)}"
        )
    _check_size(arr.shape[1], arr.shape[0], label)
    return Photo(to_rgb(Image.fromarray(arr)), label)
