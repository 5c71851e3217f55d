"""DexYCB and HO3D annotation readers, on small files of the datasets' structure."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import trimesh

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.core.rotations import axis_angle_to_matrix
from halohand.data.adapters import YCB_OBJECTS, load_dexycb_frame, load_ho3d_frame
from halohand.data.adapters.ho3d import GL_TO_CV
from halohand.skeleton.orders import from_openpose

SERIAL = "836212060125"
K = np.array([[615.0, 0.0, 313.5], [0.0, 614.0, 241.0], [0.0, 0.0, 1.0]])


def _hand(seed: int = 0) -> np.ndarray:
    """``[21, 3]`` distinct points 0.4-0.6 m in front of a camera (project order)."""
    rng = np.random.default_rng(seed)
    return np.array([0.0, 0.0, 0.5]) + rng.uniform(-0.08, 0.08, (21, 3))


def _pose(rvec: np.ndarray, t: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = axis_angle_to_matrix(rvec)
    out[:3, 3] = t
    return out


def _dexycb_tree(tmp_path, joints: np.ndarray, poses: np.ndarray, ids=(5, 10), grasp=1):
    (tmp_path / "calibration" / "intrinsics").mkdir(parents=True)
    (tmp_path / "calibration" / "intrinsics" / f"{SERIAL}_640x480.yml").write_text(
        "serial: '836212060125'\ncolor:\n  fx: 615.0\n  fy: 614.0\n  ppx: 313.5\n  ppy: 241.0\n"
    )
    seq = tmp_path / "20200709-subject-01" / "20200709_141754"
    (seq / SERIAL).mkdir(parents=True)
    (seq / "meta.yml").write_text(
        f"ycb_ids: [{', '.join(map(str, ids))}]\nycb_grasp_ind: {grasp}\n"
        "mano_sides: [left]\nnum_frames: 72\n"
    )
    uv = joints @ K.T
    label = seq / SERIAL / "labels_000000.npz"
    np.savez(
        label,
        joint_3d=joints[None].astype(np.float32),
        joint_2d=(uv[:, :2] / uv[:, 2:]).astype(np.float32)[None],
        pose_y=poses[:, :3, :].astype(np.float32),
        pose_m=np.zeros((1, 51), np.float32),
        seg=np.zeros((4, 4), np.uint8),
    )
    return label


def test_dexycb_frame_reads_joints_poses_and_intrinsics(tmp_path):
    joints = _hand()
    poses = np.stack([_pose(np.array([0.1, 0.2, 0.3]), np.array([0.0, 0.05, 0.6])),
                      _pose(np.array([-0.4, 0.0, 1.0]), np.array([0.03, 0.0, 0.55]))])  # fmt: skip
    frame = load_dexycb_frame(_dexycb_tree(tmp_path, joints, poses))
    np.testing.assert_allclose(frame.keypoints_m, joints, atol=1e-6)
    np.testing.assert_allclose(frame.object_poses, poses, atol=1e-6)
    np.testing.assert_allclose(frame.intrinsics, K)
    assert frame.side == "left"
    assert frame.object_names == (YCB_OBJECTS[5], YCB_OBJECTS[10])
    assert frame.grasped == 1
    # The stored 2D joints are the projection of the 3D joints through the read camera.
    proj = frame.camera.project(frame.keypoints_m)
    np.testing.assert_allclose(proj, frame.extras["joint_2d"][0], atol=1e-2)


def test_dexycb_scene_places_the_users_mesh_at_the_object_pose(tmp_path):
    poses = np.stack([_pose(np.array([0.1, 0.2, 0.3]), np.array([0.0, 0.05, 0.6]))])
    frame = load_dexycb_frame(_dexycb_tree(tmp_path, _hand(), poses, ids=(14,), grasp=0))
    mug = trimesh.creation.box(extents=(0.08, 0.06, 0.1))
    scene = frame.to_scene({"025_mug": mug}, units="m")
    (obj,) = scene.objects
    np.testing.assert_allclose(
        obj.world_mesh().vertices, trimesh.transform_points(mug.vertices, poses[0]), atol=1e-6
    )
    assert scene.hands[0].side == "left"
    np.testing.assert_allclose(scene.keypoints_m()[0], frame.keypoints_m, atol=1e-12)
    with pytest.raises(HalohandInputError, match="not in the frame"):
        frame.to_scene({"011_banana": mug})


def test_dexycb_unannotated_hand_and_bad_files(tmp_path):
    poses = np.stack([np.eye(4), np.eye(4)])
    label = _dexycb_tree(tmp_path, -np.ones((21, 3)), poses)
    assert load_dexycb_frame(label).keypoints_m is None
    assert load_dexycb_frame(label, intrinsics=K * 1.0).keypoints_m is None
    with pytest.raises(HalohandInputError, match="no such DexYCB label"):
        load_dexycb_frame(tmp_path / "missing.npz")
    bad = label.parent / "labels_000001.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CorruptFileError, match="cannot read DexYCB labels"):
        load_dexycb_frame(bad)
    data = dict(np.load(label))
    data["joint_3d"] = data["joint_3d"].copy()
    data["joint_3d"][0, 3, 1] = np.nan
    np.savez(bad, **data)
    with pytest.raises(HalohandInputError, match="joint_3d contains NaN"):
        load_dexycb_frame(bad)
    data["joint_3d"] = np.zeros((1, 20, 3), np.float32)
    np.savez(bad, **data)
    with pytest.raises(HalohandInputError, match=r"joint_3d must be \[1, 21, 3\]"):
        load_dexycb_frame(bad)
    (label.parent.parent / "meta.yml").write_text("ycb_ids: [5, 99]\n")
    with pytest.raises(HalohandInputError, match="unknown YCB ids"):
        load_dexycb_frame(label)
    other = tmp_path / "x" / "y" / "999" / "labels_000000.npz"
    other.parent.mkdir(parents=True)
    np.savez(other, **dict(np.load(label)))
    (other.parent.parent / "meta.yml").write_text("ycb_ids: [5, 10]\n")
    with pytest.raises(HalohandInputError, match="no calibration/intrinsics/999_640x480.yml"):
        load_dexycb_frame(other)


def _ho3d_meta(tmp_path, joints_cv: np.ndarray, rvec_gl, t_gl, **override) -> os.PathLike:
    meta = {
        "handJoints3D": from_openpose(joints_cv, "mano") @ GL_TO_CV.T,
        "camMat": K,
        "objRot": np.asarray(rvec_gl, dtype=np.float64).reshape(3, 1),
        "objTrans": np.asarray(t_gl, dtype=np.float64),
        "objName": "006_mustard_bottle",
        "handPose": np.zeros(48),
        "handBeta": np.zeros(10),
        "handTrans": np.zeros(3),
    }
    meta.update(override)
    path = tmp_path / "train" / "MC1" / "meta" / "0000.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(meta, protocol=2))
    return path


def test_ho3d_frame_is_turned_into_the_opencv_frame_and_project_order(tmp_path):
    joints = _hand(1)
    rvec, t = np.array([0.3, -0.2, 0.5]), np.array([0.02, -0.01, -0.55])  # OpenGL: z < 0
    frame = load_ho3d_frame(_ho3d_meta(tmp_path, joints, rvec, t))
    np.testing.assert_allclose(frame.keypoints_m, joints, atol=1e-12)
    # A model point lands where HO3D's own projection (OpenGL point, negate y and z, K) puts it.
    x = np.array([0.01, 0.02, -0.03])
    gl = axis_angle_to_matrix(rvec) @ x + t
    uv_dataset = K @ (GL_TO_CV @ gl)
    uv_dataset = uv_dataset[:2] / uv_dataset[2]
    world = trimesh.transform_points(x[None], frame.object_poses[0])
    np.testing.assert_allclose(frame.camera.project(world)[0], uv_dataset, atol=1e-9)
    assert frame.object_names == ("006_mustard_bottle",) and frame.side == "right"
    assert frame.camera.project(frame.keypoints_m).shape == (21, 2)
    assert np.all(frame.keypoints_m[:, 2] > 0)  # in front of the camera


def test_ho3d_refuses_evaluation_frames_bad_fields_and_foreign_globals(tmp_path):
    joints = _hand(2)
    with pytest.raises(HalohandInputError, match="evaluation-split frame"):
        load_ho3d_frame(_ho3d_meta(tmp_path, joints, [0, 0, 0], [0, 0, -0.5],
                                   handJoints3D=np.zeros(3)))  # fmt: skip
    with pytest.raises(HalohandInputError, match="no 'objName'"):
        load_ho3d_frame(_ho3d_meta(tmp_path, joints, [0, 0, 0], [0, 0, -0.5], objName=None))
    with pytest.raises(HalohandInputError, match="camMat contains NaN"):
        load_ho3d_frame(_ho3d_meta(tmp_path, joints, [0, 0, 0], [0, 0, -0.5],
                                   camMat=np.full((3, 3), np.nan)))  # fmt: skip
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"handJoints3D": os.getcwd}, protocol=2))
    with pytest.raises(CorruptFileError, match="refusing to load global"):
        load_ho3d_frame(evil)
    with pytest.raises(HalohandInputError, match="no such HO3D meta"):
        load_ho3d_frame(tmp_path / "nope.pkl")
