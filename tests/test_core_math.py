"""Rotations (``halohand.core.rotations``) and skinning (``halohand.core.skinning``) against
closed forms and scipy, for torch and numpy inputs."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.transform import Rotation

from halohand.core.rotations import (
    align,
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    quaternion_to_matrix,
    rodrigues,
    rot_x,
    rot_y,
    rot_z,
    rotation_6d_to_matrix,
    skew,
    swing,
    unit,
)
from halohand.core.skinning import (
    forward_kinematics,
    homogeneous,
    rigid_inverse,
    skin,
    transform_points,
)

F64 = torch.float64
SETTINGS = settings(max_examples=40, deadline=None)
vectors = hnp.arrays(np.float64, 3, elements=st.floats(-4.0, 4.0, allow_subnormal=False))


def _rotations(n: int, seed: int = 0) -> np.ndarray:
    return Rotation.random(n, random_state=seed).as_matrix()


def _assert_rotation(r: np.ndarray, tol: float = 1e-12) -> None:
    eye = np.broadcast_to(np.eye(3), r.shape)
    np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), eye, atol=tol)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=tol)


# ---- rotations ---------------------------------------------------------------------------


@SETTINGS
@given(vectors)
def test_axis_angle_matches_scipy_and_is_a_rotation(rvec: np.ndarray) -> None:
    r = axis_angle_to_matrix(rvec)
    np.testing.assert_allclose(r, Rotation.from_rotvec(rvec).as_matrix(), atol=1e-14)
    _assert_rotation(r)
    # numpy and torch run the same formula (their sin and cos may differ by an ulp).
    np.testing.assert_allclose(r, axis_angle_to_matrix(torch.tensor(rvec)).numpy(), atol=1e-14)


@SETTINGS
@given(vectors, st.floats(-7.0, 7.0))
def test_rodrigues_matches_scipy_and_axis_angle(axis: np.ndarray, angle: float) -> None:
    if np.linalg.norm(axis) < 1e-3:
        axis = np.array([0.0, 0.0, 1.0])
    n = unit(axis)
    r = rodrigues(n, angle)
    np.testing.assert_allclose(r, Rotation.from_rotvec(n * angle).as_matrix(), atol=1e-14)
    np.testing.assert_allclose(r, axis_angle_to_matrix(n * angle), atol=1e-14)
    _assert_rotation(r)
    r_torch = rodrigues(torch.tensor(n), torch.tensor(angle, dtype=F64)).numpy()
    np.testing.assert_allclose(r, r_torch, atol=1e-15)


def test_axis_angle_at_zero_small_and_pi() -> None:
    np.testing.assert_array_equal(axis_angle_to_matrix(np.zeros(3)), np.eye(3))
    np.testing.assert_array_equal(rodrigues(np.array([0.0, 1.0, 0.0]), 0.0), np.eye(3))
    # Small angles: I + K + K^2 / 2 up to O(t^3), with no loss of relative precision.
    v = np.array([1e-9, -2e-9, 3e-9])
    k = skew(v)
    np.testing.assert_allclose(
        axis_angle_to_matrix(v), np.eye(3) + k + k @ k / 2, rtol=0, atol=1e-25
    )
    # pi: R = 2 n n^T - I, whatever the formula's branch.
    n = unit(np.array([1.0, 2.0, -2.0]))
    half_turn = 2.0 * np.outer(n, n) - np.eye(3)
    np.testing.assert_allclose(axis_angle_to_matrix(math.pi * n), half_turn, atol=1e-15)
    np.testing.assert_allclose(rodrigues(n, math.pi), half_turn, atol=1e-15)


def test_axis_angle_gradient_is_finite_and_exact_at_zero() -> None:
    rvec = torch.zeros(2, 3, dtype=F64, requires_grad=True)
    (jac,) = torch.autograd.functional.jacobian(axis_angle_to_matrix, (rvec[0],))
    assert torch.isfinite(jac).all()
    # dR/dv_i at zero is the generator [e_i]_x.
    torch.testing.assert_close(jac.permute(2, 0, 1), skew(torch.eye(3, dtype=F64)))
    angle = torch.zeros((), dtype=F64, requires_grad=True)
    rodrigues(torch.tensor([0.0, 0.0, 1.0], dtype=F64), angle).sum().backward()
    assert torch.isfinite(angle.grad)


def test_matrix_to_axis_angle_inverts_axis_angle() -> None:
    r = Rotation.random(500, random_state=1)
    got = matrix_to_axis_angle(r.as_matrix())
    np.testing.assert_allclose(got, r.as_rotvec(), atol=1e-13)
    n = unit(np.array([0.3, -0.5, 0.8]))
    for angle in (0.0, 1e-10, 1e-4, 1.0, math.pi / 2, 3.0, math.pi - 1e-7, math.pi - 1e-12):
        back = matrix_to_axis_angle(axis_angle_to_matrix(angle * n))
        np.testing.assert_allclose(back, angle * n, atol=1e-12, err_msg=str(angle))
    at_pi = matrix_to_axis_angle(axis_angle_to_matrix(math.pi * n))  # sign is free at pi
    np.testing.assert_allclose(np.abs(at_pi @ n), math.pi, atol=1e-12)
    # Gradients stay finite on both branches and at the identity.
    m = torch.tensor(np.concatenate([r.as_matrix()[:20], np.eye(3)[None]]), requires_grad=True)
    matrix_to_axis_angle(m).sum().backward()
    assert torch.isfinite(m.grad).all()


def test_elementary_rotations_match_scipy_and_rodrigues() -> None:
    angle = np.array([0.0, 0.3, -1.2, 3.0, math.pi])
    for i, (rot, name) in enumerate(((rot_x, "x"), (rot_y, "y"), (rot_z, "z"))):
        want = Rotation.from_euler(name, angle[:, None]).as_matrix()
        np.testing.assert_allclose(rot(angle), want, atol=1e-15)
        np.testing.assert_allclose(rot(angle), rodrigues(np.eye(3)[i], angle), atol=1e-15)
        np.testing.assert_allclose(rot(angle), rot(torch.tensor(angle)).numpy(), atol=1e-15)
    assert rot_x(0.5).shape == (3, 3) and rot_y(np.zeros((2, 4))).shape == (2, 4, 3, 3)
    t, p = np.array([0.4, -1.0]), np.array([-0.3, 1.1])
    np.testing.assert_allclose(swing(t, p), rot_y(t) @ rot_x(p), atol=1e-15)


def test_quaternion_and_6d_conversions() -> None:
    r = Rotation.random(50, random_state=2)
    q = r.as_quat()  # scipy: (x, y, z, w)
    np.testing.assert_allclose(quaternion_to_matrix(q), r.as_matrix(), atol=1e-15)
    np.testing.assert_allclose(quaternion_to_matrix(-q), r.as_matrix(), atol=1e-15)
    np.testing.assert_array_equal(quaternion_to_matrix(np.array([0.0, 0, 0, 1])), np.eye(3))
    m = r.as_matrix()
    d6 = np.concatenate([2.0 * m[..., 0], m[..., 1] + 0.3 * m[..., 0]], -1)
    np.testing.assert_allclose(rotation_6d_to_matrix(d6), m, atol=1e-14)
    _assert_rotation(rotation_6d_to_matrix(np.random.default_rng(0).normal(size=(20, 6))))


@SETTINGS
@given(vectors, vectors)
def test_align_takes_a_to_b(a: np.ndarray, b: np.ndarray) -> None:
    if np.linalg.norm(a) < 1e-3 or np.linalg.norm(b) < 1e-3:
        return
    r = align(a, b)
    _assert_rotation(r)
    np.testing.assert_allclose(r @ unit(a), unit(b), atol=1e-12)
    np.testing.assert_allclose(r, align(torch.tensor(a), torch.tensor(b)).numpy(), atol=1e-15)


def test_align_parallel_and_antiparallel() -> None:
    a = np.array([0.2, -0.4, 0.9])
    np.testing.assert_allclose(align(a, 3.0 * a), np.eye(3), atol=1e-15)
    r = align(a, -a)
    _assert_rotation(r)
    np.testing.assert_allclose(r @ unit(a), -unit(a), atol=1e-15)


def test_numpy_inputs_do_not_import_torch() -> None:
    code = (
        "import sys; from halohand.core import rotations as r, skinning as s; "
        "m = r.rot_x(0.3) @ r.axis_angle_to_matrix([0.1, 0.2, 0.3]); "
        "m = m @ r.align([1, 0, 0], [0, 1, 0]); "
        "s.skin([[0.0, 0, 0]], [[1.0]], s.homogeneous(m[None])); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- skinning ----------------------------------------------------------------------------


def _random_skin(seed: int = 0, batch: tuple[int, ...] = (2,)) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(30, 3))
    w = rng.random((30, 5))
    w /= w.sum(1, keepdims=True)
    t = homogeneous(_rotations(int(np.prod(batch)) * 5, seed).reshape(*batch, 5, 3, 3),
                    rng.normal(size=(*batch, 5, 3)))  # fmt: skip
    return v, w, t


def test_skin_with_identity_transforms_returns_the_input() -> None:
    v, w, _ = _random_skin()
    eye = np.broadcast_to(np.eye(4), (3, 5, 4, 4))
    want = np.broadcast_to(v, (3, 30, 3))
    np.testing.assert_allclose(skin(v, w, eye), want, atol=1e-15)
    out = skin(torch.tensor(v), torch.tensor(w), torch.tensor(eye))
    np.testing.assert_allclose(out.numpy(), want, atol=1e-15)
    np.testing.assert_array_equal(skin(v, np.eye(5)[np.arange(30) % 5], eye), want)


def test_skin_with_one_rigid_transform_applies_it() -> None:
    v, w, t = _random_skin()
    same = np.broadcast_to(t[:, :1], t.shape)  # every joint moves the same way
    np.testing.assert_allclose(skin(v, w, same), transform_points(t[:, 0], v), atol=1e-14)
    joint = np.arange(30) % 5
    got = skin(v, np.eye(5)[joint], t)  # each vertex on one joint: moved by that joint only
    for i in range(30):
        want = transform_points(t[:, joint[i]], v[i : i + 1])[:, 0]
        np.testing.assert_allclose(got[:, i], want, atol=1e-14)


def test_skin_numpy_and_torch_agree_and_differentiate() -> None:
    v, w, t = _random_skin(1, batch=(2, 3))
    got = skin(v, w, t)
    assert got.shape == (2, 3, 30, 3)
    tt = torch.tensor(t, requires_grad=True)
    out = skin(torch.tensor(v), torch.tensor(w), tt)
    np.testing.assert_allclose(out.detach().numpy(), got, atol=1e-15)
    out.sum().backward()
    assert torch.isfinite(tt.grad).all() and tt.grad[..., 3, :].abs().sum() == 0
    # Affine [..., 3, 4] transforms are read the same as their 4 x 4 form.
    np.testing.assert_array_equal(skin(v, w, t[..., :3, :]), got)


def test_forward_kinematics_composes_down_the_tree() -> None:
    parents = np.array([-1, 0, 1, 0, 3, 4, 2])
    rng = np.random.default_rng(3)
    local = homogeneous(_rotations(2 * 7, 4).reshape(2, 7, 3, 3), rng.normal(size=(2, 7, 3)))
    world = forward_kinematics(local, parents)
    for j, p in enumerate(parents):
        want = local[:, j] if p < 0 else world[:, p] @ local[:, j]
        np.testing.assert_allclose(world[:, j], want, atol=1e-14)
    torch_world = forward_kinematics(torch.tensor(local), parents.tolist())
    np.testing.assert_allclose(torch_world.numpy(), world, atol=1e-15)
    with pytest.raises(ValueError, match="precede"):
        forward_kinematics(local, [-1, 2, 0, 0, 0, 0, 0])


def test_rigid_inverse_and_homogeneous() -> None:
    rng = np.random.default_rng(5)
    t = homogeneous(_rotations(4, 6), rng.normal(size=(4, 3)))
    np.testing.assert_allclose(
        rigid_inverse(t) @ t, np.broadcast_to(np.eye(4), t.shape), atol=1e-14
    )
    np.testing.assert_array_equal(homogeneous(np.eye(3)), np.eye(4))
    tt = homogeneous(torch.tensor(_rotations(4, 6)), torch.tensor(t[:, :3, 3]))
    np.testing.assert_array_equal(tt.numpy(), t)
    np.testing.assert_allclose(rigid_inverse(tt).numpy(), rigid_inverse(t), atol=1e-15)
    p = rng.normal(size=(4, 7, 3))
    np.testing.assert_allclose(
        transform_points(t, p), (t[:, None, :3, :3] @ p[..., None])[..., 0] + t[:, None, :3, 3]
    )


def test_similarity_transform_recovers_a_known_similarity_and_removes_reflections() -> None:
    from halohand.core.alignment import procrustes_align, similarity_transform
    from halohand.core.rotations import axis_angle_to_matrix

    rng = np.random.default_rng(3)
    src = rng.normal(size=(21, 3))
    rot = axis_angle_to_matrix(np.array([0.3, -1.1, 0.7]))
    dst = 2.5 * src @ rot.T + np.array([0.1, -0.4, 2.0])
    scale, got_rot, trans = similarity_transform(src, dst)
    assert scale == pytest.approx(2.5)
    np.testing.assert_allclose(got_rot, rot, atol=1e-10)
    np.testing.assert_allclose(trans, [0.1, -0.4, 2.0], atol=1e-10)
    np.testing.assert_allclose(procrustes_align(src, dst), dst, atol=1e-10)
    # a mirrored target: the best proper rotation, never a reflection
    _, mirror_rot, _ = similarity_transform(src, src * np.array([-1.0, 1.0, 1.0]))
    assert np.linalg.det(mirror_rot) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="N, 3"):
        similarity_transform(src, dst[:5])
