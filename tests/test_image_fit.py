"""Fitting the hand model to landmarks: the twist-swing start, the fit on synthetic
landmarks of known hands (both sides), and the plausibility measures."""

from __future__ import annotations

import numpy as np
import pytest

from halohand.handmodel.pose import JOINT_LIMITS, HandIdentity, HandPose
from halohand.handmodel.prior import PosePrior
from halohand.handmodel.webxr import default_model
from halohand.image.fit import (
    FitSettings,
    analytic_start,
    fit_landmarks,
    plausibility,
    swing,
    twist_swing_angles,
)
from halohand.image.place import photo_camera


def _rx(t: float) -> np.ndarray:
    c, s = np.cos(t), np.sin(t)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(t: float) -> np.ndarray:
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def test_swing_is_exact() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        rest = np.array([0.05, -0.03, -1.0]) + 0.05 * rng.standard_normal(3)
        f, a = rng.uniform(-0.3, 1.9), rng.uniform(-0.5, 0.5)
        target = _ry(a) @ _rx(-f) @ rest
        f2, a2 = swing(rest, target)
        np.testing.assert_allclose(_ry(a2) @ _rx(-f2) @ rest, target, atol=1e-9)
        assert abs(a2) <= abs(a) + 1e-9  # the solution with the least abduction


def test_twist_swing_recovers_model_poses() -> None:
    """Keypoints of posed model hands -> angles within a few degrees (twist of straight
    fingers and of hinges is unobservable and comes from the prior)."""
    model = default_model()
    rng = np.random.default_rng(3)
    for _ in range(6):
        truth = PosePrior().sample_angles(rng)
        hand = model.pose(HandPose.from_array(truth))
        angles = twist_swing_angles(hand.keypoints / 1.0, clamp=False)
        err = np.degrees(np.abs(angles - truth))
        assert err[:, 0].max() < 6.0  # flexion
        assert np.median(err[:, 1]) < 2.0  # abduction
        p = plausibility(hand.keypoints, "right")
        assert p["bones_outside"] == 0 and p["limit_violations"] == 0


def test_plausibility_flags_a_stretched_bone_and_a_bent_back_finger() -> None:
    hand = default_model().pose()
    kp = hand.keypoints.copy()
    kp[7:9] += 1.0 * (kp[7] - kp[6])  # index middle phalanx twice its length
    assert plausibility(kp, "right")["bones_outside"] >= 1
    bent = default_model().pose(HandPose.from_degrees(index_dip=(70, 0, 0))).keypoints.copy()
    # the tip turned half round the middle phalanx: the DIP bent 70 degrees backwards
    axis = (bent[7] - bent[6]) / np.linalg.norm(bent[7] - bent[6])
    rel = bent[8] - bent[7]
    bent[8] = bent[7] + 2.0 * axis * (axis @ rel) - rel
    assert plausibility(bent, "right")["limit_violations"] >= 1


def _synthetic(side: str, seed: int):
    """A posed hand in front of a 640x480 camera: its pixels, centred metric joints with
    5 mm noise, placed keypoints with 8 mm noise, the camera."""
    rng = np.random.default_rng(seed)
    model = default_model()
    pose = PosePrior().sample(rng)
    hand = model.pose(pose, HandIdentity(hand_length=0.185), side=side)
    rot = _ry(0.4) @ _rx(2.6)  # palm toward the camera, fingers up
    kp = hand.keypoints @ rot.T + np.array([0.02, -0.01, 0.45])
    cam = photo_camera(640, 480, 600.0)
    pixels = cam.project(kp)
    world = kp - kp.mean(0) + 0.005 * rng.standard_normal(kp.shape)
    placed = kp + 0.008 * rng.standard_normal(kp.shape)
    return kp, pixels, world, placed, cam


@pytest.mark.parametrize("side", ["right", "left"])
def test_fit_reprojects_and_recovers_a_known_hand(side: str) -> None:
    kp, pixels, world, placed, cam = _synthetic(side, 5)
    start_angles, _, _, _ = analytic_start(placed * ([-1, 1, 1] if side == "left" else 1))
    assert np.all(start_angles >= JOINT_LIMITS[..., 0] - 1e-9)
    (fit,) = fit_landmarks(pixels[None], world[None], placed[None], [side], cam.intrinsics,
                           FitSettings(iterations=120))  # fmt: skip
    size_px = np.linalg.norm(np.diff(pixels[[0, 9, 10, 11, 12]], axis=0), axis=1).sum()
    assert fit.reprojection_px.mean() < 0.02 * size_px
    assert fit.reprojection_px.mean() < fit.start_reprojection_px.mean()
    # root-relative 3D error of a few millimetres (depth comes from the metric joints)
    rel = (fit.keypoints - fit.keypoints[0]) - (kp - kp[0])
    assert np.linalg.norm(rel, axis=1).mean() < 0.012
    angles = fit.pose.as_array()
    assert np.all(angles >= JOINT_LIMITS[..., 0] - 1e-9)
    assert np.all(angles <= JOINT_LIMITS[..., 1] + 1e-9)
    assert fit.vertices.shape == (1159, 3) and np.isfinite(fit.vertices).all()
    p = plausibility(fit.keypoints, side)
    assert p["bones_outside"] == 0


def test_fit_stays_inside_the_priors_on_random_landmarks() -> None:
    """Property: whatever the landmarks (posed hands under heavy noise, or points thrown at
    random), the fitted pose is inside the joint limits, the identity inside the identity
    prior's support, the hand's length in range and consistent with the keypoints, and the
    plausibility measure finds nothing outside."""
    from halohand.handmodel.pose import HAND_LENGTH_RANGE
    from halohand.handmodel.prior import IdentityPrior
    from halohand.skeleton import PART_NAMES

    rng = np.random.default_rng(11)
    cam = photo_camera(640, 480, 600.0)
    pixels, world, placed, sides = [], [], [], []
    for seed, side in zip(range(3), ("right", "left", "right"), strict=True):
        kp, px, _, _, _ = _synthetic(side, 20 + seed)
        pixels.append(px + rng.normal(0.0, 25.0, px.shape))
        world.append(kp - kp.mean(0) + rng.normal(0.0, 0.02, kp.shape))
        placed.append(kp + rng.normal(0.0, 0.03, kp.shape))
        sides.append(side)
    for side in ("left", "right", "left"):
        px = rng.uniform([200, 140], [440, 340], size=(21, 2))
        rays = np.c_[px, np.ones(21)] @ np.linalg.inv(cam.intrinsics).T
        pixels.append(px)
        world.append(rng.normal(0.0, 0.04, (21, 3)))
        placed.append(rays * rng.uniform(0.3, 0.7, (21, 1)))
        sides.append(side)
    fits = fit_landmarks(np.stack(pixels), np.stack(world), np.stack(placed), sides,
                         cam.intrinsics, FitSettings(iterations=60))  # fmt: skip
    prior = IdentityPrior()
    finger_bound = 2.5 * (prior.finger_std + prior.bone_std) + 1e-9
    palm_bound = 2.5 * max(prior.palm_length_std, prior.palm_width_std) + 1e-9
    for fit, side in zip(fits, sides, strict=True):
        angles = fit.pose.as_array()
        assert np.all(angles >= JOINT_LIMITS[..., 0] - 1e-9)
        assert np.all(angles <= JOINT_LIMITS[..., 1] + 1e-9)
        log_f = np.log(fit.identity.length_factors)
        assert abs(log_f[PART_NAMES.index("palm")]) <= palm_bound
        assert np.abs(np.delete(log_f, PART_NAMES.index("palm"))).max() <= finger_bound
        assert abs(np.log(fit.identity.palm_width)) <= palm_bound
        length = fit.identity.hand_length
        assert HAND_LENGTH_RANGE[0] <= length <= HAND_LENGTH_RANGE[1]
        chain = fit.keypoints[[0, 9, 10, 11, 12]]
        np.testing.assert_allclose(np.linalg.norm(np.diff(chain, axis=0), axis=1).sum(),
                                   length, rtol=1e-6)  # fmt: skip
        p = plausibility(fit.keypoints, side)
        assert p["limit_violations"] == 0 and p["bones_outside"] == 0, p


def test_fit_of_no_hands_is_empty() -> None:
    cam = photo_camera(64, 64, 60.0)
    empty = np.zeros((0, 21, 2))
    assert (
        fit_landmarks(empty, np.zeros((0, 21, 3)), np.zeros((0, 21, 3)), [], cam.intrinsics) == []
    )


@pytest.mark.slow
def test_image_command_fits_by_default(tmp_path) -> None:
    """``halohand image`` (fits by default) on the thumbs-up example: the fit's entry in
    the JSON, its keypoints reproject within a few percent of the hand and are plausible."""
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from halohand.apps.cli import app

    photo = Path(__file__).parents[1] / "examples" / "photos" / "mpsamples_thumbs-up.png"
    result = CliRunner().invoke(
        app, ["image", str(photo), "--out-dir", str(tmp_path), "--resolution", "32"]
    )
    assert result.exit_code == 0, result.output
    (hand,) = json.loads((tmp_path / "mpsamples_thumbs-up.json").read_text())["hands"]
    fit = hand["fit"]
    pixels = np.asarray(hand["landmarks_px"])
    size_px = np.linalg.norm(np.diff(pixels[[0, 9, 10, 11, 12]], axis=0), axis=1).sum()
    assert fit["reprojection_px_mean"] < 0.04 * size_px
    assert fit["reprojection_px_mean"] < fit["start_reprojection_px_mean"]
    assert fit["plausibility"]["fit"]["bones_outside"] <= 1
    placed = fit["plausibility"]["placed"]
    assert placed["bones_outside"] > fit["plausibility"]["fit"]["bones_outside"]
    assert np.asarray(hand["keypoints_m"]).shape == (21, 3)
    assert (tmp_path / hand["mesh"]).is_file()
