"""Where the reference data beside the repository lives (``../shared/reference``: used side by
side in studies, never shipped; a study skips what is absent)."""

from __future__ import annotations

from pathlib import Path

ORIGINAL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "halo-original"
#: The 85 real HO3D-derived keypoint frames, ``[85, 21, 3]`` metres, the project's order.
REAL_FRAMES = ORIGINAL_DIR / "real_poses_openpose_m.npy"
#: The original HALO checkpoint (read by ``halohand.inference.original``).
ORIGINAL_CHECKPOINT = ORIGINAL_DIR / "halo_base_yt3d.pt"
