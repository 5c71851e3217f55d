"""Pushing two hands apart where their HALO occupancy fields overlap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from halohand.core.errors import HalohandInputError
from halohand.fitting.pair_refine import PairRefineConfig, overlap_grid, refine_pair
from halohand.skeleton.bones import bone_lengths
from halohand.training.keypoint_refiner import hand_bank

FAST = PairRefineConfig(steps=25, grid=14, lr=2e-3)


@pytest.fixture(scope="module")
def halo():
    from halohand.inference.halo import HALO

    return HALO.pretrained()


@pytest.fixture(scope="module")
def pair() -> np.ndarray:
    bank = hand_bank(2, 5).numpy()
    return np.stack([bank[0], bank[1] * [-1.0, 1.0, 1.0] + [0.0, 0.0, 0.02]])


def test_overlap_grid_covers_the_boxes_overlap():
    a = torch.zeros(2, 21, 3, dtype=torch.float64)
    a[0, 1:] = torch.tensor([0.1, 0.1, 0.1], dtype=torch.float64)
    a[1] = a[0] + 0.05
    grid, cell = overlap_grid(a, 0.0, 4)
    assert grid.shape == (64, 3)
    np.testing.assert_allclose(cell, (0.05 / 4) ** 3)
    assert float(grid.min()) > 0.05 and float(grid.max()) < 0.1
    far = a.clone()
    far[1] += 1.0
    assert overlap_grid(far, 0.01, 4) is None


def test_overlapping_pair_is_pushed_apart_keeping_bones(halo, pair):
    res = refine_pair(halo, pair, config=FAST)
    assert res.overlap_before_cm3 > 20.0  # the hands share tens of cm^3
    assert res.overlap_after_cm3 <= 0.2 * res.overlap_before_cm3
    bones_before = bone_lengths(pair)
    bones_after = bone_lengths(res.keypoints)
    assert np.abs(bones_after - bones_before).max() < 2e-3
    assert res.keypoints.shape == (2, 21, 3) and res.moved_mm.shape == (2, 21)


def test_separate_pair_is_left_alone(halo, pair):
    apart = pair.copy()
    apart[1] += [0.5, 0.0, 0.0]
    res = refine_pair(halo, apart, config=FAST)
    assert res.steps == 0 and res.overlap_before_cm3 == 0.0
    np.testing.assert_array_equal(res.keypoints, apart)


def test_bad_input(halo, pair):
    with pytest.raises(HalohandInputError, match=r"\[2, 21, 3\] or \[42, 3\]"):
        refine_pair(halo, pair[0])
    with pytest.raises(HalohandInputError, match="two sides, each right or left"):
        refine_pair(halo, pair, sides=("right", "up"))
    with pytest.raises(HalohandInputError, match="in front of the camera"):
        refine_pair(halo, pair, along_rays=True)  # the pair sits around the origin
    bad = pair.copy()
    bad[0, 3, 1] = np.nan
    with pytest.raises(HalohandInputError, match="NaN"):
        refine_pair(halo, bad)


def test_pair_in_a_photo_parts_along_the_camera_rays(halo, pair):
    """Two right hands (two people's) 40 cm in front of a camera, inside each other: each
    moves rigidly along the ray through its centre, so its place in the photo stays."""
    twin = np.stack([pair[0], pair[0] + [0.01, 0.0, 0.01]]) + [0.0, 0.0, 0.4]
    res = refine_pair(halo, twin, sides=("right", "right"), config=FAST, along_rays=True)
    assert res.overlap_before_cm3 > 20.0
    assert res.overlap_after_cm3 <= 0.2 * res.overlap_before_cm3
    for before, after in zip(twin, res.keypoints, strict=True):
        move = after - before
        np.testing.assert_allclose(move, np.broadcast_to(move[0], move.shape), atol=1e-12)
        ray = before.mean(0) / np.linalg.norm(before.mean(0))
        assert np.linalg.norm(np.cross(move[0], ray)) < 1e-12  # along the ray
        centre = before.mean(0)
        uv = (centre + move[0])[:2] / (centre + move[0])[2]
        np.testing.assert_allclose(uv, centre[:2] / centre[2], atol=1e-12)
    # one hand came forward, the other went back
    assert np.sign(res.keypoints[0, 0, 2] - twin[0, 0, 2]) != np.sign(
        res.keypoints[1, 0, 2] - twin[1, 0, 2]
    )


def test_articulate_keeps_bones_and_is_rigid_with_one_rotation(pair):
    from halohand.core.rotations import axis_angle_to_matrix
    from halohand.fitting.articulate import articulate

    base = torch.from_numpy(pair)
    gen = torch.Generator().manual_seed(0)
    turns = 0.5 * torch.randn(2, 21, 3, generator=gen, dtype=torch.float64)
    posed = articulate(base, turns, torch.ones(2, 3, dtype=torch.float64))
    torch.testing.assert_close(bone_lengths(posed), bone_lengths(base))
    assert not torch.allclose(posed, base + 1.0)
    torch.testing.assert_close(articulate(base, torch.zeros(2, 21, 3, dtype=torch.float64)), base)
    one = turns[:, :1]
    rot = axis_angle_to_matrix(one[:, 0])
    rigid = (base - base[:, :1]) @ rot.transpose(-1, -2) + base[:, :1]
    torch.testing.assert_close(articulate(base, one), rigid)
    # A rotation at the index PIP moves only the index DIP and tip.
    only = torch.zeros(2, 21, 3, dtype=torch.float64)
    only[:, 6] = torch.tensor([0.3, 0.0, 0.0])
    moved = (articulate(base, only) - base).norm(dim=-1) > 1e-12
    assert moved[:, [7, 8]].all() and moved.sum() == 4
