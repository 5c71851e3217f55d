"""Scenes as values: hand validation, pinhole projection, object poses, export, and
meshing every hand of a scene with one call."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from halo_fakes import CapsuleNet, hand_keypoints

from halohand.core.errors import HalohandInputError
from halohand.inference.halo import HALO
from halohand.scene import Camera, Hand, Scene, SceneObject
from halohand.skeleton import from_openpose, mirror


def test_hand_reads_units_and_joint_order() -> None:
    kp = hand_keypoints()
    mano_mm = from_openpose(kp * 1000.0, "mano")
    hand = Hand.from_keypoints(mano_mm, convention="mano")
    assert hand.units == "mm" and hand.convention == "mano"
    np.testing.assert_allclose(hand.keypoints_m, kp, atol=1e-12)


@pytest.mark.parametrize(
    ("keypoints", "side", "match"),
    [
        (np.zeros((2, 21, 3)), "right", "one skeleton"),
        (np.full((21, 3), np.nan), "right", "NaN"),
        (np.zeros((20, 3)), "right", "shape"),
        (None, "middle", "side"),
    ],
)
def test_bad_hands_are_refused_in_one_line(keypoints, side, match) -> None:
    kp = hand_keypoints() if keypoints is None else keypoints
    if keypoints is not None and keypoints.shape == (2, 21, 3):
        kp = np.stack([hand_keypoints()] * 2)
    with pytest.raises(HalohandInputError, match=match) as err:
        Hand.from_keypoints(kp, side=side, units="m")
    assert "\n" not in str(err.value)


def test_pinhole_projection_closed_form() -> None:
    cam = Camera(np.array([[500.0, 0, 320], [0, 400.0, 240], [0, 0, 1]]))
    pts = np.array([[0.0, 0.0, 2.0], [0.1, -0.2, 1.0], [0.0, 0.0, -1.0]])
    uv = cam.project(pts)
    np.testing.assert_allclose(uv[0], (320.0, 240.0))
    np.testing.assert_allclose(uv[1], (320.0 + 500.0 * 0.1, 240.0 - 400.0 * 0.2))
    assert np.isnan(uv[2]).all()  # behind the camera
    # moving the camera 1 m back along its axis is the same as moving the points forward
    back = np.eye(4)
    back[2, 3] = 1.0
    moved = Camera(cam.intrinsics, extrinsics=back)
    np.testing.assert_allclose(moved.project(pts[:2] - [0, 0, 1.0]), uv[:2])


def test_camera_from_fov_and_bad_cameras() -> None:
    cam = Camera.from_fov(640, 480, 90.0)
    assert cam.intrinsics[0, 0] == pytest.approx(320.0)
    np.testing.assert_allclose(cam.project(np.array([1.0, 0.0, 1.0])), (640.0, 240.0))
    with pytest.raises(HalohandInputError, match="fx, fy > 0"):
        Camera(np.diag([0.0, 1.0, 1.0]))
    with pytest.raises(HalohandInputError, match="rigid"):
        Camera(np.eye(3), extrinsics=np.diag([1.0, 1.0, -1.0, 1.0]))
    with pytest.raises(HalohandInputError, match="uint8"):
        Camera(np.eye(3), image=np.zeros((4, 4), np.float32))


def test_object_pose_places_the_mesh() -> None:
    box = trimesh.creation.box((0.04, 0.04, 0.04))
    pose = np.eye(4)
    pose[:3, 3] = (0.1, 0.0, 0.0)
    obj = SceneObject(box, pose, "box")
    np.testing.assert_allclose(obj.world_mesh().bounds.mean(0), (0.1, 0.0, 0.0), atol=1e-12)
    with pytest.raises(HalohandInputError, match="rigid"):
        SceneObject(box, np.diag([2.0, 1.0, 1.0, 1.0]))


def test_scene_object_from_a_mesh_in_millimetres(tmp_path) -> None:
    path = tmp_path / "cube_mm.stl"
    trimesh.creation.box((20.0, 20.0, 20.0)).apply_translation((50.0, 0, 0)).export(path)
    obj = SceneObject.load(str(path), units="mm")
    np.testing.assert_allclose(
        obj.mesh.bounds, [[0.04, -0.01, -0.01], [0.06, 0.01, 0.01]], atol=1e-9
    )


def test_reconstruct_scene_meshes_two_hands_and_keeps_objects() -> None:
    kp = hand_keypoints()
    model = HALO(CapsuleNet(kp))
    left = mirror(kp) + np.array([0.25, 0.0, 0.0])
    box = SceneObject(trimesh.creation.box((0.03, 0.03, 0.03)), name="box")
    scene = Scene(
        hands=(Hand.from_keypoints(kp * 100.0, units="cm"), Hand.from_keypoints(left, "left")),
        objects=(box,),
    )
    out = model.reconstruct_scene(scene, resolution=48)
    names = sorted(out.geometry)
    assert names == ["hand_0", "hand_1", "object_0"]
    right_mesh, left_mesh = out.geometry["hand_0"], out.geometry["hand_1"]
    assert right_mesh.is_watertight and left_mesh.is_watertight
    # every hand is meshed in metres where its keypoints are, whatever unit it came in
    for mesh, k in ((right_mesh, kp), (left_mesh, left)):
        centre = 0.5 * (mesh.bounds[0] + mesh.bounds[1])
        assert np.linalg.norm(centre - 0.5 * (k.min(0) + k.max(0))) < 0.03
    # the same hands one by one give the same meshes
    alone = model.reconstruct(left, side="left", units="m", resolution=48)
    np.testing.assert_allclose(left_mesh.vertices, alone.vertices, atol=1e-9)
    with pytest.raises(HalohandInputError, match="Scene"):
        model.reconstruct_scene(kp)  # type: ignore[arg-type]
