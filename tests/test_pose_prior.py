"""The natural pose prior and the identity prior."""

from __future__ import annotations

import numpy as np
import pytest

from halohand.handmodel import GESTURES, HandPose, IdentityPrior, PosePrior, WebXRHandModel
from halohand.handmodel.collision import load_sphere_proxy, self_intersection_volume
from halohand.handmodel.pose import JOINT_LIMITS, POSE_JOINTS
from halohand.handmodel.prior import HAND_LENGTH_SAMPLE_RANGE

EXPECTED_GESTURES = {"flat", "relaxed", "spread", "fist", "point", "pinch", "ok", "tripod",
                     "cylinder", "sphere", "lateral_pinch", "victory", "thumbs_up", "hook",
                     "claw", "horns", "call", "table_top"}  # fmt: skip


@pytest.fixture(scope="module")
def model() -> WebXRHandModel:
    return WebXRHandModel.load()


def test_gesture_library(model: WebXRHandModel) -> None:
    assert set(GESTURES) == EXPECTED_GESTURES
    arrays = np.stack(list(GESTURES.values()))
    assert arrays.shape == (len(GESTURES), 15, 3)
    # Within the limits (HandPose validates) and pairwise distinct.
    for name, angles in GESTURES.items():
        HandPose.from_array(angles)
        assert PosePrior().gesture(name).as_array() == pytest.approx(angles)
    flat = arrays.reshape(len(GESTURES), -1)
    dists = np.linalg.norm(flat[:, None] - flat[None], axis=-1)
    assert np.all(dists[~np.eye(len(GESTURES), dtype=bool)] > np.deg2rad(10))


def test_every_gesture_is_collision_free(model: WebXRHandModel) -> None:
    prior = PosePrior()
    for name in GESTURES:
        pose = prior.gesture(name)
        assert model.self_penetration(pose) <= prior.max_penetration, name


@pytest.mark.parametrize("name", ["fist", "pinch", "cylinder"])
def test_gesture_self_intersection_volume_is_small(model: WebXRHandModel, name: str) -> None:
    hand = model.pose(PosePrior().gesture(name))
    assert self_intersection_volume(hand.vertices, hand.faces, 50_000) < 0.2e-6  # 0.2 cm^3


def test_samples_within_limits_and_deterministic() -> None:
    prior = PosePrior()
    a = [prior.sample(np.random.default_rng(s)).as_array() for s in range(20)]
    b = [prior.sample(np.random.default_rng(s)).as_array() for s in range(20)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    arr = np.stack(a)
    assert np.all(arr >= JOINT_LIMITS[..., 0] - 1e-12)
    assert np.all(arr <= JOINT_LIMITS[..., 1] + 1e-12)


def test_samples_are_collision_free(model: WebXRHandModel) -> None:
    prior = PosePrior()
    rng = np.random.default_rng(0)
    pens = [model.self_penetration(prior.sample(rng)) for _ in range(40)]
    assert max(pens) <= prior.max_penetration


def test_sampled_hands_have_small_self_intersection() -> None:
    from halohand.handmodel import WebXRHandSource

    source = WebXRHandSource()
    rng = np.random.default_rng(123)
    vols = []
    for i in range(8):
        hand = source.sample(rng)
        vols.append(
            self_intersection_volume(hand.vertices, hand.faces, 40_000, np.random.default_rng(i))
        )
    # < 1 cm^3 each (benchmarks/studies/handmodel_stats.py: p95 ~0.1 cm^3)
    assert max(vols) < 1.0e-6


def test_prior_is_structured_not_uniform_noise() -> None:
    prior = PosePrior()
    rng = np.random.default_rng(1)
    arr = np.stack([prior.sample_angles(rng) for _ in range(400)])
    pip, dip = POSE_JOINTS.index("middle_pip"), POSE_JOINTS.index("middle_dip")
    mcp_i, mcp_m = POSE_JOINTS.index("index_mcp"), POSE_JOINTS.index("middle_mcp")
    # Joints of a finger and neighbouring fingers move together, as gestures make them.
    assert np.corrcoef(arr[:, pip, 0], arr[:, dip, 0])[0, 1] > 0.6
    assert np.corrcoef(arr[:, mcp_i, 0], arr[:, mcp_m, 0])[0, 1] > 0.4
    # Twist stays small.
    assert np.abs(np.rad2deg(arr[:, 3:, 2])).max() <= 10 + 1e-9


def test_prior_validation() -> None:
    with pytest.raises(ValueError, match="unknown gesture 'wave'"):
        PosePrior(gestures=("fist", "wave"))
    with pytest.raises(ValueError, match="at least one gesture"):
        PosePrior(gestures=())
    with pytest.raises(ValueError, match="blend_probability"):
        PosePrior(blend_probability=1.5)
    with pytest.raises(ValueError, match="unknown gesture"):
        PosePrior().gesture("wave")


def test_gesture_subset_prior() -> None:
    quiet = dict(curl_noise_deg=0.0, flexion_noise_deg=0.0, abduction_noise_deg=0.0)
    prior = PosePrior(gestures=("fist",), blend_probability=0.0, twist_noise_deg=0.0, **quiet)
    pose = prior.sample(np.random.default_rng(0))
    assert np.allclose(pose.as_array(), GESTURES["fist"])


def test_identity_prior_ranges() -> None:
    prior = IdentityPrior()
    rng = np.random.default_rng(0)
    ids = [prior.sample(rng) for _ in range(300)]
    lengths = np.array([i.hand_length for i in ids])
    lo, hi = HAND_LENGTH_SAMPLE_RANGE
    assert lengths.min() >= lo and lengths.max() <= hi
    assert lengths.min() < lo + 0.005 and lengths.max() > hi - 0.005
    factors = np.stack([i.length_factors for i in ids])
    assert 0.8 < factors.min() and factors.max() < 1.25
    offsets = np.stack([i.thickness_offsets for i in ids])
    # The part keypoints cannot see stays small: about 2.5 % std, never beyond ~9 %.
    assert 0.015 < offsets.std() < 0.035
    assert np.abs(offsets).max() < 0.09
    # Finger bones share a per-finger factor: bones of one finger correlate.
    assert np.corrcoef(factors[:, 1], factors[:, 2])[0, 1] > 0.3


def test_sphere_proxy_is_consistent() -> None:
    proxy = load_sphere_proxy()
    assert len(proxy.radii) > 100
    assert np.all(proxy.radii > 0)
    assert proxy.group_count.sum() == len(proxy.pairs)
