"""halohand: skeleton-driven neural hand models (HALO and the work around it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["HALO", "__version__", "detect_units"]

if TYPE_CHECKING:  # pragma: no cover
    from halohand.api import HALO, detect_units


def __getattr__(name: str) -> Any:
    """Lazy exports: ``import halohand`` stays light (no torch) until ``halohand.HALO``."""
    if name in ("HALO", "detect_units"):
        from halohand import api

        return getattr(api, name)
    raise AttributeError(f"module 'halohand' has no attribute {name!r}")
