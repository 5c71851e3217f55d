"""halohand: skeleton-driven neural hand models (HALO and the work around it)."""

__version__ = "0.1.0"
