"""Contact-aware refinement of a hand and an object together."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from halohand.core.errors import HalohandInputError
from halohand.fitting.contact_refine import (
    FINGER_CHAINS,
    TIPS,
    ContactRefineConfig,
    finger_capsules,
    finger_gaps,
    refine_hand_object,
)
from halohand.skeleton.bones import bone_lengths
from halohand.training.keypoint_refiner import hand_bank

FAST = ContactRefineConfig(steps=30, interior_points=600, lr=1.5e-3, clean_keypoints=False)


@pytest.fixture(scope="module")
def halo():
    from halohand.inference.halo import HALO

    return HALO.pretrained()


@pytest.fixture(scope="module")
def scene():
    """A hand whose index tip is 8 mm deep in a 3 cm ball placed off the finger's side."""
    kp = hand_bank(1, 8)[0].numpy() + [0.0, 0.0, 0.4]
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.03)
    tip = kp[8]
    away = np.cross(kp[8] - kp[7], kp[5] - kp[9])  # off the finger, across the palm plane
    away /= np.linalg.norm(away)
    pose = np.eye(4)
    pose[:3, 3] = tip + away * (0.03 - 0.008)
    return kp, ball, pose


def test_penetrating_finger_is_pushed_out_and_kept_in_contact(halo, scene):
    kp, ball, pose = scene
    res = refine_hand_object(halo, kp, ball, pose, config=FAST)
    assert 1 in res.contact_fingers  # the index finger was near the ball
    assert res.overlap_before_cm3 > 0.5
    assert res.overlap_after_cm3 <= 0.3 * res.overlap_before_cm3
    # still touching: the index tip joint stays near the ball (the pad is ~5.5 mm under
    # it, more where the model's finger ends past the joint) and the refined hand's
    # surface reaches the ball's to within 1 mm
    assert -2.0 < res.tip_distance_mm[1] < 15.0
    surface = halo.reconstruct(res.keypoints, units="m", resolution=96).vertices
    gap_m = np.linalg.norm(surface - res.object_pose[:3, 3], axis=1).min() - 0.03
    assert gap_m < 0.001
    np.testing.assert_allclose(bone_lengths(res.keypoints), bone_lengths(kp), atol=1e-9)
    assert np.linalg.norm(res.object_pose[:3, 3] - pose[:3, 3]) < 0.02
    assert res.moved_mm.max() < 30.0
    assert len(TIPS) == 5


def test_fixed_object_cleaned_keypoints_and_errors(halo, scene):
    from halohand.fitting.keypoint_refiner import refine_keypoints

    kp, ball, pose = scene
    cfg = ContactRefineConfig(steps=3, interior_points=300, move_object=False)
    res = refine_hand_object(halo, kp, ball, pose, config=cfg)
    np.testing.assert_array_equal(res.object_pose, pose)
    # Cleaning first: the joints then move about the refiner's skeleton, bones kept from it.
    cleaned = refine_keypoints(kp)
    np.testing.assert_allclose(bone_lengths(res.keypoints), bone_lengths(cleaned), atol=1e-9)
    assert not np.allclose(bone_lengths(cleaned), bone_lengths(kp), atol=1e-4)
    with pytest.raises(HalohandInputError, match=r"\[21, 3\]"):
        refine_hand_object(halo, kp[:20], ball, pose)
    with pytest.raises(HalohandInputError, match="rigid"):
        refine_hand_object(halo, kp, ball, np.diag([2.0, 1.0, 1.0, 1.0]))
    bad = kp.copy()
    bad[0, 0] = np.nan
    with pytest.raises(HalohandInputError, match="NaN"):
        refine_hand_object(halo, bad, ball, pose)


def test_finger_capsules_run_along_the_bones_with_interpolated_radius():
    kp = torch.randn(2, 21, 3, dtype=torch.float64)
    points, radius = finger_capsules(kp, (0.008, 0.007, 0.006, 0.0055))
    assert points.shape == (2, 5, 13, 3) and radius.shape == (13,)
    for f, chain in enumerate(FINGER_CHAINS):
        torch.testing.assert_close(points[:, f, 0], kp[:, chain[0]])  # knuckle
        torch.testing.assert_close(points[:, f, 4], kp[:, chain[1]])
        torch.testing.assert_close(points[:, f, -1], kp[:, chain[3]])  # tip
        torch.testing.assert_close(points[:, f, 2], (kp[:, chain[0]] + kp[:, chain[1]]) / 2)
    assert radius[0] == 0.008 and radius[4] == 0.007 and radius[-1] == 0.0055
    assert radius[2] == pytest.approx(0.0075)


def test_finger_gap_against_a_plane_closed_form():
    """Fingers lying along x at heights 1..5 cm over the plane z = 0: each finger's gap is
    its lowest capsule point's height minus the radius there (soft minimum within ~1 mm)."""
    kp = torch.zeros(21, 3, dtype=torch.float64)
    radii = (0.008, 0.007, 0.006, 0.0055)
    for f, chain in enumerate(FINGER_CHAINS):
        for j, joint in enumerate(chain):
            # tilted down toward the tip: the tip is the lowest point of each finger
            kp[joint] = torch.tensor([0.02 * j, 0.02 * f, 0.01 * (f + 1) + 0.004 * (3 - j)])
    gaps = finger_gaps(kp, lambda p: p[:, 2], radii, temperature=1e-4)
    expected = torch.tensor([0.01 * (f + 1) - 0.0055 for f in range(5)], dtype=torch.float64)
    torch.testing.assert_close(gaps, expected, atol=2e-4, rtol=0)
    # differentiable in the keypoints: raising the tips raises the gap
    kp.requires_grad_(True)
    finger_gaps(kp, lambda p: p[:, 2], radii).sum().backward()
    assert (kp.grad[[c[-1] for c in FINGER_CHAINS], 2] > 0.5).all()
