"""The embedded WebXR hand model: template facts, posing, GT transforms, validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import igl
import numpy as np
import pytest
import trimesh
from conftest import SHARED, requires_shared

from halohand.apps.render import render_mesh
from halohand.core.errors import HalohandInputError
from halohand.core.rotations import rot_x, rot_y, rot_z
from halohand.core.skinning import forward_kinematics, homogeneous, skin
from halohand.handmodel import (
    HandIdentity,
    HandPose,
    HandSource,
    PosedHand,
    WebXRHandModel,
    WebXRHandSource,
    make_source,
)
from halohand.handmodel.build_template import build, save_npz
from halohand.handmodel.pose import JOINT_LIMITS_DEG, POSE_JOINTS
from halohand.handmodel.template import JOINT_PART, TEMPLATE_PATH, load_template
from halohand.skeleton import NUM_PARTS, PART_BONES, hand_length, part_bone_lengths

GLB = SHARED / "assets" / "webxr-generic-hand" / "right.glb"


@pytest.fixture(scope="module")
def model() -> WebXRHandModel:
    return WebXRHandModel.load()


@pytest.fixture(scope="module")
def samples() -> list[PosedHand]:
    """24 sampled hands, every other one left."""
    source = WebXRHandSource()
    rng = np.random.default_rng(7)
    return [source.sample(rng, side="left" if i % 2 else "right") for i in range(24)]


def _mesh(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    return trimesh.Trimesh(vertices, faces, process=False)


# -- the template ---------------------------------------------------------------------------


def test_template_facts_from_source_md() -> None:
    tpl = load_template()
    assert tpl.vertices.shape == (1159, 3)
    assert tpl.faces.shape == (2314, 3)
    mesh = _mesh(tpl.vertices, tpl.faces)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.euler_number == 2  # genus 0
    assert len(mesh.split(only_watertight=False)) == 1
    assert 330.0 < mesh.volume * 1e6 < 350.0  # cm^3, positive: outward faces
    assert np.allclose(tpl.rest_joints[0], 0.0)  # wrist at the origin
    assert 0.17 < hand_length(tpl.rest_keypoints) < 0.19  # "about 18 cm"


def test_template_skin_weights() -> None:
    tpl = load_template()
    assert np.allclose(tpl.joint_weights.sum(1), 1.0)
    assert np.all((tpl.joint_weights > 0).sum(1) <= 4)
    tips = [i for i, n in enumerate(tpl.joint_names) if n.endswith("tip")]
    assert np.all(tpl.joint_weights[:, tips] == 0)
    assert np.count_nonzero(tpl.joint_weights.sum(0) > 0) == 20
    assert np.allclose(tpl.part_weights.sum(1), 1.0)
    assert set(np.unique(tpl.part_labels)) == set(range(NUM_PARTS))
    assert np.all(tpl.parents[1:] < np.arange(1, 25))


def test_template_frames_are_rigid() -> None:
    rot = load_template().rest_frames[:, :3, :3]
    assert np.allclose(rot @ np.swapaxes(rot, 1, 2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(rot), 1.0)


@requires_shared(GLB)
def test_build_template_reproduces_shipped_file(tmp_path: Path) -> None:
    """Same arrays as the shipped file: integers and names exactly, floats to 1e-15 (one
    ulp of rounding in the frame products differs between numpy releases)."""
    out = tmp_path / "t.npz"
    save_npz(out, build(GLB))
    with np.load(out) as built, np.load(TEMPLATE_PATH) as shipped:
        assert sorted(built.files) == sorted(shipped.files)
        for key in shipped.files:
            a, b = built[key], shipped[key]
            assert a.dtype == b.dtype and a.shape == b.shape, key
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-15, err_msg=key)
            else:
                np.testing.assert_array_equal(a, b, err_msg=key)


def test_license_notice_ships_with_template() -> None:
    text = (TEMPLATE_PATH.parent / "LICENSE-webxr-generic-hand.md").read_text()
    assert "Copyright (c) 2019 Amazon" in text and "MIT License" in text


# -- posing ---------------------------------------------------------------------------------


def test_rest_pose_reproduces_template(model: WebXRHandModel) -> None:
    hand = model.pose()
    tpl = model.template
    assert np.allclose(hand.vertices, tpl.vertices, atol=1e-12)
    assert np.allclose(hand.canonical_vertices, tpl.vertices, atol=1e-12)
    assert np.allclose(hand.part_transforms, np.eye(4), atol=1e-12)
    assert np.allclose(hand.keypoints, tpl.rest_keypoints)


def test_record_fields(samples: list[PosedHand]) -> None:
    for hand in samples[:4]:
        v = len(hand.vertices)
        assert hand.vertices.shape == (v, 3) and hand.vertices.dtype == np.float64
        assert hand.faces.dtype == np.int64 and hand.faces.shape[1] == 3
        assert hand.keypoints.shape == (21, 3)
        assert hand.rest_keypoints is not None and hand.rest_keypoints.shape == (21, 3)
        assert hand.part_transforms.shape == (16, 4, 4)
        assert hand.canonical_vertices.shape == (v, 3)
        assert hand.skin_weights.shape == (v, 16)
        assert hand.part_labels.shape == (v,) and hand.part_labels.dtype == np.int64
        assert np.allclose(hand.keypoints[0], 0.0)
        assert np.allclose(hand.bone_lengths, part_bone_lengths(hand.keypoints))
        # Bone lengths do not depend on the pose.
        assert np.allclose(part_bone_lengths(hand.rest_keypoints), hand.bone_lengths)


def test_sampled_meshes_are_watertight(samples: list[PosedHand]) -> None:
    for hand in samples:
        mesh = _mesh(hand.vertices, hand.faces)
        assert mesh.is_watertight and mesh.is_winding_consistent
        assert mesh.volume > 0  # outward orientation, left hands included
        assert np.isfinite(hand.vertices).all()


def test_keypoints_inside_or_near_surface(samples: list[PosedHand]) -> None:
    for hand in samples:
        sd = igl.signed_distance(hand.keypoints, hand.vertices, hand.faces)[0]
        assert sd.max() <= 0.002, f"keypoint {int(sd.argmax())} is {sd.max() * 1000:.1f} mm out"


def test_keypoints_are_the_rig_joints(model: WebXRHandModel) -> None:
    rng = np.random.default_rng(3)
    identity = WebXRHandSource().identity_prior.sample(rng)
    pose = WebXRHandSource().pose_prior.sample(rng, identity)
    hand = model.pose(pose, identity)
    rest, _, scale = model.identity_frames(identity)
    joints = model.posed_frames(rest, pose)[:, :3, 3] * scale
    webxr_kp = [0, 1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 16, 17, 18, 19, 21, 22, 23, 24]
    assert np.allclose(hand.keypoints, joints[webxr_kp])
    assert hand_length(hand.keypoints) == pytest.approx(identity.hand_length)


def _check_part_maps(hand: PosedHand, pure: np.ndarray) -> None:
    """Every part's GT transform maps its posed pure vertices and its bone's keypoints onto
    the canonical hand within 1e-5 m."""
    for k in range(NUM_PARTS):
        t = hand.part_transforms[k]
        assert np.allclose(t[:3, :3] @ t[:3, :3].T, np.eye(3), atol=1e-12)
        assert np.linalg.det(t[:3, :3]) == pytest.approx(1.0)
        sel = pure[:, k]
        mapped = hand.vertices[sel] @ t[:3, :3].T + t[:3, 3]
        assert np.abs(mapped - hand.canonical_vertices[sel]).max(initial=0.0) < 1e-5
        ends = PART_BONES[k]
        mapped_kp = hand.keypoints[ends] @ t[:3, :3].T + t[:3, 3]
        assert np.abs(mapped_kp - hand.rest_keypoints[ends]).max() < 1e-5


@pytest.mark.parametrize("side", ["right", "left"])
def test_part_transforms_map_pure_parts_to_canonical(model: WebXRHandModel, side: str) -> None:
    rng = np.random.default_rng(11)
    source = WebXRHandSource()
    for _ in range(5):
        identity = source.identity_prior.sample(rng)
        hand = model.pose(source.pose_prior.sample(rng, identity), identity, side=side)
        _check_part_maps(hand, hand.skin_weights == 1.0)


def test_part_transforms_on_one_part_skin(model: WebXRHandModel) -> None:
    """Some parts have no vertex fully weighted to them in the asset: give every vertex its
    dominant joint only, then every vertex must map exactly."""
    tpl = model.template
    one_hot = np.eye(25)[tpl.joint_weights.argmax(1)]
    part_w = np.zeros((len(one_hot), NUM_PARTS))
    np.add.at(part_w.T, JOINT_PART, one_hot.T)
    rigid = WebXRHandModel(dataclasses.replace(tpl, joint_weights=one_hot, part_weights=part_w))
    rng = np.random.default_rng(12)
    source = WebXRHandSource()
    for side in ("right", "left"):
        identity = source.identity_prior.sample(rng)
        hand = rigid.pose(source.pose_prior.sample(rng, identity), identity, side=side)
        assert np.all(hand.skin_weights.sum(0) > 0)
        _check_part_maps(hand, hand.skin_weights == 1.0)


def test_canonical_is_rest_pose_of_same_identity(model: WebXRHandModel) -> None:
    identity = HandIdentity(hand_length=0.2, palm_width=1.1, thickness_offsets=np.full(16, 0.03))
    posed = model.pose(HandPose.from_degrees(index_mcp=50, thumb_cmc=(20, 30)), identity)
    rest = model.pose(HandPose(), identity)
    assert np.allclose(posed.canonical_vertices, rest.vertices)
    assert np.allclose(posed.rest_keypoints, rest.keypoints)


def test_left_is_mirror_of_right() -> None:
    right = WebXRHandSource().sample(np.random.default_rng(5), side="right")
    left = WebXRHandSource().sample(np.random.default_rng(5), side="left")
    flip = np.array([-1.0, 1.0, 1.0])
    assert left.side == "left" and right.side == "right"
    assert np.allclose(left.vertices, right.vertices * flip)
    assert np.allclose(left.keypoints, right.keypoints * flip)
    assert np.allclose(left.canonical_vertices, right.canonical_vertices * flip)
    assert np.allclose(
        _mesh(left.vertices, left.faces).volume, _mesh(right.vertices, right.faces).volume
    )


def test_flexion_curls_toward_palm(model: WebXRHandModel) -> None:
    rest = model.pose().keypoints
    bent = model.pose(HandPose.from_degrees(index_mcp=60, index_pip=60)).keypoints
    # Palm faces -Z in the model frame: the index tip moves palmward and toward the wrist.
    assert bent[8, 2] < rest[8, 2] - 0.03
    assert bent[8, 1] < rest[8, 1] - 0.03


def test_abduction_spreads_away_from_middle(model: WebXRHandModel) -> None:
    rest = model.pose().keypoints
    spread = model.pose(
        HandPose.from_degrees(index_mcp=(0, 15), ring_mcp=(0, 15), pinky_mcp=(0, 15))
    ).keypoints
    assert spread[8, 0] < rest[8, 0] - 0.01  # index toward the thumb (-X)
    assert spread[16, 0] > rest[16, 0] + 0.01  # ring toward the little finger (+X)
    assert spread[20, 0] > rest[20, 0] + 0.01


# -- identity -------------------------------------------------------------------------------


def test_thickness_is_invisible_to_keypoints(model: WebXRHandModel) -> None:
    pose = HandPose.from_degrees(index_mcp=30, middle_pip=40, thumb_cmc=(10, 20))
    thin = HandIdentity(hand_length=0.18, length_factors=np.linspace(0.95, 1.05, 16))
    thick = dataclasses.replace(thin, thickness_offsets=np.full(16, 0.05))
    a, b = model.pose(pose, thin), model.pose(pose, thick)
    assert np.allclose(a.keypoints, b.keypoints, atol=1e-12)
    assert np.allclose(a.part_transforms, b.part_transforms, atol=1e-12)
    vol_a = _mesh(a.vertices, a.faces).volume
    vol_b = _mesh(b.vertices, b.faces).volume
    assert 1.05 < vol_b / vol_a < 1.15  # ~ +10 % for +5 % radial thickness


def test_length_factors_change_bone_lengths(model: WebXRHandModel) -> None:
    factors = np.ones(16)
    factors[1] = 1.2  # index1
    base = model.pose().bone_lengths
    longer = model.pose(identity=HandIdentity(length_factors=factors)).bone_lengths
    # Along the bone exactly x1.2; the joint offsets' small sideways parts are not scaled.
    assert longer[1] == pytest.approx(1.2 * base[1], rel=1e-3)
    assert np.allclose(np.delete(longer, 1), np.delete(base, 1))


# -- validation -----------------------------------------------------------------------------


def test_pose_limits_raise_naming_joint() -> None:
    with pytest.raises(ValueError, match=r"index_pip flexion 130\.0 deg .*\[-5, 110\]"):
        HandPose.from_degrees(index_pip=130)
    with pytest.raises(HalohandInputError, match="thumb_cmc abduction"):
        HandPose.from_degrees(thumb_cmc=(0, 90))
    with pytest.raises(ValueError, match="not finite"):
        HandPose(flexion=np.full(15, np.nan))
    with pytest.raises(ValueError, match=r"shape \[15\]"):
        HandPose(flexion=np.zeros(16))
    with pytest.raises(ValueError, match="unknown pose joint 'index_tip'"):
        HandPose.from_degrees(index_tip=10)
    with pytest.raises(ValueError, match=r"shape \[15, 3\]"):
        HandPose.from_array(np.zeros((21, 3)))


def test_every_limit_is_enforced() -> None:
    for j, name in enumerate(POSE_JOINTS):
        for k, (lo, hi) in enumerate(JOINT_LIMITS_DEG[name]):
            ok = np.zeros((15, 3))
            ok[j, k] = np.deg2rad(hi)
            HandPose.from_array(ok)
            bad = ok.copy()
            bad[j, k] = np.deg2rad(hi + 1.0)
            with pytest.raises(ValueError, match=name):
                HandPose.from_array(bad)
            bad[j, k] = np.deg2rad(lo - 1.0)
            with pytest.raises(ValueError, match=name):
                HandPose.from_array(bad)


def test_identity_validation() -> None:
    with pytest.raises(ValueError, match="hand_length 18 m"):
        HandIdentity(hand_length=18.0)  # centimetres by mistake
    with pytest.raises(ValueError, match="length_factors of ring2"):
        HandIdentity(length_factors=np.where(np.arange(16) == 11, 2.0, 1.0))
    with pytest.raises(ValueError, match="palm_width"):
        HandIdentity(palm_width=0.2)
    with pytest.raises(ValueError, match="thickness_offsets of palm"):
        HandIdentity(thickness_offsets=np.where(np.arange(16) == 0, 0.5, 0.0))
    with pytest.raises(ValueError, match=r"shape \[16\]"):
        HandIdentity(length_factors=np.ones(15))


def test_model_and_source_argument_checks(model: WebXRHandModel) -> None:
    with pytest.raises(ValueError, match="side must be"):
        model.pose(side="both")
    with pytest.raises(ValueError, match="pose must be a HandPose"):
        model.pose(np.zeros((15, 3)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="side must be"):
        WebXRHandSource().sample(np.random.default_rng(0), side="Right")
    with pytest.raises(ValueError, match="numpy.random.Generator"):
        WebXRHandSource().sample(0)  # type: ignore[arg-type]


# -- source ---------------------------------------------------------------------------------


def test_make_source_webxr() -> None:
    source = make_source("webxr")
    assert isinstance(source, WebXRHandSource) and isinstance(source, HandSource)
    assert source.name == "webxr"


def test_sampling_is_deterministic() -> None:
    a = WebXRHandSource().sample(np.random.default_rng(42))
    b = WebXRHandSource().sample(np.random.default_rng(42))
    c = WebXRHandSource().sample(np.random.default_rng(43))
    for field in ("vertices", "keypoints", "part_transforms", "canonical_vertices"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.allclose(a.keypoints, c.keypoints)


def test_sampled_sizes_span_the_identity_range(samples: list[PosedHand]) -> None:
    lengths = np.array([hand_length(h.keypoints) for h in samples])
    assert lengths.min() >= 0.15 - 1e-9 and lengths.max() <= 0.22 + 1e-9
    assert lengths.max() - lengths.min() > 0.03


# -- helpers --------------------------------------------------------------------------------


def test_lbs_helpers() -> None:
    angles = np.array([0.3, -1.1])
    for rot in (rot_x(angles), rot_y(angles), rot_z(angles)):
        assert rot.shape == (2, 3, 3)
        assert np.allclose(rot @ np.swapaxes(rot, 1, 2), np.eye(3))
    local = homogeneous(rot_z(np.array([0.5, 0.5])), np.array([[1.0, 0, 0], [1.0, 0, 0]]))
    world = forward_kinematics(local, np.array([-1, 0]))
    assert np.allclose(world[1], local[0] @ local[1])
    verts = np.random.default_rng(0).random((5, 3))
    weights = np.full((5, 2), 0.5)
    assert np.allclose(skin(verts, weights, np.tile(np.eye(4), (2, 1, 1))), verts)


def test_render_mesh_draws_the_hand(model: WebXRHandModel) -> None:
    hand = model.pose()
    img = render_mesh(hand.vertices, hand.faces, size=(64, 48))
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    covered = (img < 250).any(-1).mean()
    assert 0.1 < covered < 0.9
    with pytest.raises(ValueError, match="unknown view"):
        render_mesh(hand.vertices, hand.faces, view="top")
