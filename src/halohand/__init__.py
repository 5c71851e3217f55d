"""halohand: skeleton-driven neural hand models (HALO and the work around it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from halohand import _legacy

__version__ = "0.1.0"

_legacy.install()

__all__ = ["HALO", "__version__", "detect_units", "from_image"]

if TYPE_CHECKING:  # pragma: no cover
    from halohand.image import from_image
    from halohand.inference.halo import HALO, detect_units


def __getattr__(name: str) -> Any:
    """Lazy exports: ``import halohand`` stays light (no torch) until ``halohand.HALO``."""
    if name in ("HALO", "detect_units"):
        from halohand.inference import halo

        return getattr(halo, name)
    if name == "from_image":  # the photo path: TFLite runtime and Pillow, no torch
        from halohand.image import from_image

        return from_image
    raise AttributeError(f"module 'halohand' has no attribute {name!r}")
