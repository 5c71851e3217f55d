"""Compatibility with the released HALO checkpoint (reference files are not shipped).

Skips cleanly when ``../shared/reference/halo-original`` is absent.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from functools import cache

import numpy as np
import pytest
import torch
from conftest import SHARED, requires_shared

from halohand.core.errors import CorruptFileError
from halohand.fields import count_parameters
from halohand.inference.original import (
    load_original_checkpoint,
    original_occupancy,
    read_original_checkpoint,
)
from halohand.inference.query import occupancy_from_keypoints

REF = SHARED / "reference" / "halo-original"
CKPT = REF / "halo_base_yt3d.pt"
OCC = REF / "halo_original_occupancy.json"
POSES = REF / "real_poses_openpose_m.npy"

needs_reference = requires_shared(CKPT, OCC)


@cache
def _model():
    return load_original_checkpoint(CKPT)


@cache
def _cases() -> tuple[torch.Tensor, ...]:
    cases = json.loads(OCC.read_text())["cases"]
    kp = torch.tensor([c["keypoints_openpose_m"] for c in cases], dtype=torch.float64)
    pts = torch.tensor([c["points_m"] for c in cases], dtype=torch.float64)
    occ = torch.tensor([c["occupancy"] for c in cases], dtype=torch.float64)
    arg = torch.tensor([c["argmax_part_halo_order"] for c in cases])
    return kp, pts, occ, arg


@needs_reference
def test_checkpoint_contents() -> None:
    ckpt = read_original_checkpoint(CKPT)
    assert ckpt["it"] == 1_029_000 and ckpt["epoch_it"] == 1398
    assert float(ckpt["loss_val_best"]) == pytest.approx(0.93579, abs=1e-5)
    assert len(ckpt["model"]) == 196
    assert sum(v.numel() for v in ckpt["model"].values()) == 238_024
    assert count_parameters(_model()) == 238_024


@needs_reference
def test_reproduces_original_occupancy() -> None:
    kp, pts, ref, arg = _cases()
    occ, parts = original_occupancy(_model(), kp, pts)
    err = (occ.double() - ref).abs()
    assert err.max().item() < 1e-3, f"max |p - p_ref| = {err.max().item():.2e}"
    decision = ((occ >= 0.5) == (ref >= 0.5)).double().mean().item()
    assert decision >= 0.995
    assert (parts.argmax(-1) == arg).double().mean().item() >= 0.99


@needs_reference
def test_clean_layer_is_close_to_original() -> None:
    # The clean atan2 layer differs from the original only through the acos clip on
    # near-straight bones (canonicalization spec 6.4): same decisions, a few points off by
    # up to ~1e-2 in probability.
    kp, pts, ref, _ = _cases()
    occ, _ = original_occupancy(_model(), kp, pts, reference_angles=False)
    err = (occ.double() - ref).abs()
    assert ((occ >= 0.5) == (ref >= 0.5)).double().mean().item() >= 0.995
    assert (err <= 1e-3).double().mean().item() >= 0.995
    assert err.max().item() < 0.05


@needs_reference
def test_part_skipping_keeps_original_results() -> None:
    kp, pts, ref, _ = _cases()
    model = _model()
    full = occupancy_from_keypoints(model, kp, pts)
    skipped = occupancy_from_keypoints(model, kp, pts, skip_radii=True)
    assert ((full >= 0.5) == (skipped >= 0.5)).all()
    near = full >= 0.05
    # Skipped-pair inference folds the part transforms into the first layer (another
    # float32 rounding order than transforming the points first): equal to ~1e-5.
    assert (full - skipped)[near].abs().max().item() < 1e-4


@needs_reference
@requires_shared(POSES)
def test_released_model_sanity_volume() -> None:
    # Appendix A-style check on one real frame: a single hand-sized blob (the spec reports
    # 291-321 cm^3 and one component on two frames of the same sequence), every part wins
    # somewhere inside. Part skipping makes a 3 mm grid around the hand cheap.
    from scipy import ndimage

    kp = torch.from_numpy(np.load(POSES)[0]).double()[None]
    lo, hi = kp[0].min(0).values - 0.03, kp[0].max(0).values + 0.03
    step = 0.003
    axes = [torch.arange(lo[i].item(), hi[i].item(), step, dtype=torch.float64) for i in range(3)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)
    occ, parts = occupancy_from_keypoints(
        _model(), kp, grid.reshape(1, -1, 3), skip_radii=True, return_parts=True
    )
    inside = (occ[0] >= 0.5).reshape(grid.shape[:3])
    volume_cm3 = inside.sum().item() * (step * 100) ** 3
    assert 250 < volume_cm3 < 360, volume_cm3
    assert ndimage.label(inside.numpy())[1] == 1
    winners = parts[0].argmax(-1)[occ[0] >= 0.5]
    assert set(winners.tolist()) == set(range(16))
    # The box padding really contains the whole hand.
    assert not inside[[0, -1]].any() and not inside[:, [0, -1]].any()


def test_restricted_unpickler_refuses_code(tmp_path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"model": Evil()}, protocol=2))
    with pytest.raises(CorruptFileError, match="evil.pt"):
        read_original_checkpoint(path)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CorruptFileError, match="junk.pt"):
        load_original_checkpoint(tmp_path / "junk.pt")
    # A valid torch checkpoint that is not HALO.
    torch.save({"model": {"w": torch.zeros(2)}}, tmp_path / "other.pt")
    with pytest.raises(CorruptFileError, match="other.pt"):
        load_original_checkpoint(tmp_path / "other.pt")
