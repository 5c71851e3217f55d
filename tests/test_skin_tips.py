"""Fingertip keypoints on the skin (the skin-tip convention of MANO-based data), made from
posed meshes: ray exits against closed forms, tips on the surface, datasets that serve
them."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from halohand.handmodel.prior import PosePrior
from halohand.handmodel.skin_tips import ray_exit_distances, skin_tip_keypoints
from halohand.handmodel.webxr import default_model
from halohand.objects.inside import winding_number
from halohand.skeleton.conventions import FINGER_CHAINS, TIP_EXTENSION, detect_convention


def test_ray_exits_of_a_box_are_the_closed_form() -> None:
    box = trimesh.creation.box(extents=(2.0, 4.0, 6.0))  # half sides 1, 2, 3
    rng = np.random.default_rng(0)
    origins = rng.uniform(-0.9, 0.9, (50, 3))
    directions = rng.normal(size=(50, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    t = ray_exit_distances(box.vertices, box.faces, origins, directions)
    half = np.array([1.0, 2.0, 3.0])
    # the exit is where the first coordinate reaches its face
    with np.errstate(divide="ignore"):
        per_axis = np.where(directions > 0, half - origins, -half - origins) / directions
    np.testing.assert_allclose(t, per_axis.min(axis=1), rtol=1e-12, atol=1e-12)
    away = ray_exit_distances(box.vertices, box.faces, np.array([[5.0, 0, 0]]),
                              np.array([[1.0, 0, 0]]))  # fmt: skip
    assert np.isinf(away).all()


@pytest.mark.parametrize("gesture", ["spread", "fist", "point"])
def test_skin_tips_lie_on_the_surface_along_the_distal_bone(gesture: str) -> None:
    hand = default_model().pose(PosePrior().gesture(gesture))
    v, f, kp = np.asarray(hand.vertices), np.asarray(hand.faces), np.asarray(hand.keypoints)
    skin = skin_tip_keypoints(v, f, kp)
    tips = [c[3] for c in FINGER_CHAINS]
    others = [j for j in range(21) if j not in tips]
    np.testing.assert_array_equal(skin[others], kp[others])
    for finger, chain in enumerate(FINGER_CHAINS):
        bone = kp[chain[3]] - kp[chain[2]]
        d = bone / np.linalg.norm(bone)
        moved = skin[chain[3]] - kp[chain[3]]
        # out along the distal bone, by about the template's skin extension past the joint
        assert np.linalg.norm(np.cross(moved, d)) < 1e-12 and moved @ d > 0
        assert moved @ d / np.linalg.norm(bone) == pytest.approx(TIP_EXTENSION[finger], abs=0.1)
        # on the skin: 0.3 mm before it is inside, 0.3 mm after it is outside
        w = winding_number(v, f, np.stack([skin[chain[3]] - 3e-4 * d, skin[chain[3]] + 3e-4 * d]))
        assert w[0] > 0.5 > w[1]
    assert detect_convention(skin) == ["mano"] and detect_convention(kp) == ["rig"]


def test_the_skin_tip_does_not_depend_on_where_the_tip_joint_is() -> None:
    """The ray starts at the DIP joint: a tip joint placed past the skin, or deeper inside,
    gives the same skin point."""
    hand = default_model().pose(PosePrior().gesture("spread"))
    v, f, kp = np.asarray(hand.vertices), np.asarray(hand.faces), np.asarray(hand.keypoints)
    chain = FINGER_CHAINS[1]
    bone = kp[chain[3]] - kp[chain[2]]
    want = skin_tip_keypoints(v, f, kp)[chain[3]]
    for factor in (0.5, 3.0):
        moved = kp.copy()
        moved[chain[3]] = kp[chain[2]] + factor * bone
        np.testing.assert_allclose(skin_tip_keypoints(v, f, moved)[chain[3]], want, atol=1e-12)
    # a finger whose DIP joint is outside the mesh keeps its tip
    far = kp.copy()
    far[chain[2]] += 0.2
    far[chain[3]] += 0.2
    np.testing.assert_array_equal(skin_tip_keypoints(v, f, far)[chain[3]], far[chain[3]])
