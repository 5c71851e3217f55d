"""Tests of the canonicalization layer (spec ``canonicalization.md`` section 11).

Hands are built by forward kinematics on the canonical palm (``skeleton_from_angles``), then
the finger chains are shifted to perturb the palm and the whole hand is moved by a random
rigid motion and scale. Hypothesis drives the generators deterministically.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import SHARED
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from halohand.canonical import (
    CANONICAL_PLANE_ANGLES,
    CANONICAL_SPREAD_ANGLES,
    FINGER_BONE_CHILDREN,
    PART_BONE_INDEX,
    canonical_frames,
    canonical_root_directions,
    canonicalize,
    points_to_part_frames,
    skeleton_from_angles,
)
from halohand.core.errors import HalohandInputError
from halohand.core.rotations import (
    align,
    angle_between,
    rodrigues,
    rot_x,
    rot_y,
    rot_z,
    signed_angle,
    skew,
    swing,
    unit,
)
from halohand.skeleton import BONES, PARENTS, bone_lengths, mirror, part_bone_lengths
from halohand.skeleton.orders import BIOMECH_FROM_OPENPOSE, OPENPOSE_FROM_BIOMECH

F64 = torch.float64
SETTINGS = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ORACLE = SHARED / "specs" / "canonicalization_oracle.json"

# Public bone j (child joint j + 1) of each biomech bone b.
PUB_OF_BIO_BONE = BIOMECH_FROM_OPENPOSE[1:] - 1
# Bone lengths of oracle sample A, biomech bones (levels of thumb..pinky), metres.
BIO_LENGTHS = np.array(
    [0.03, 0.085, 0.088, 0.08, 0.075, 0.036, 0.042, 0.046, 0.043, 0.034]
    + [0.03, 0.025, 0.028, 0.027, 0.02, 0.028, 0.022, 0.024, 0.023, 0.02]
)
LENGTHS = np.empty(20)
LENGTHS[PUB_OF_BIO_BONE] = BIO_LENGTHS
#: Joints of each finger's chain in the project order (thumb..pinky).
FINGER_JOINTS = [list(range(1 + 4 * f, 5 + 4 * f)) for f in range(5)]
PI_AXES = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # spec 3 step 5


def rotation_from_quat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def make_hand(
    flex: np.ndarray,
    abd: np.ndarray,
    length_factor: np.ndarray | None = None,
    palm_shift: np.ndarray | None = None,
    rotation: np.ndarray | None = None,
    translation: np.ndarray | None = None,
    scale: float = 1.0,
) -> torch.Tensor:
    """A right hand in project order: FK, shifted finger chains, then ``s R x + t``."""
    lengths = LENGTHS * (1.0 if length_factor is None else length_factor)
    kp = skeleton_from_angles(
        torch.as_tensor(flex, dtype=F64),
        torch.as_tensor(abd, dtype=F64),
        torch.as_tensor(lengths, dtype=F64),
    ).numpy()
    if palm_shift is not None:
        for f in range(5):
            kp[FINGER_JOINTS[f]] += palm_shift[f]
    if rotation is not None:
        kp = kp @ rotation.T
    kp = scale * kp
    if translation is not None:
        kp = kp + translation
    return torch.as_tensor(kp, dtype=F64)


def random_hands(n: int, seed: int = 0) -> torch.Tensor:
    """``[n, 21, 3]`` generic right hands in metres, random poses and rigid motions."""
    rng = np.random.default_rng(seed)
    return torch.stack(
        [
            make_hand(
                rng.uniform(-0.4, 1.4, 15),
                rng.uniform(-0.3, 0.3, 15),
                rng.uniform(0.85, 1.15, 20),
                rng.uniform(-0.005, 0.005, (5, 3)),
                rotation_from_quat(rng.normal(size=4)),
                rng.uniform(-0.5, 0.5, 3),
            )
            for _ in range(n)
        ]
    )


@st.composite
def hands(draw, max_flex: float = 2.0) -> torch.Tensor:
    floats = {"allow_nan": False, "allow_infinity": False}
    flex = draw(hnp.arrays(np.float64, 15, elements=st.floats(-1.0, max_flex, **floats)))
    abd = draw(hnp.arrays(np.float64, 15, elements=st.floats(-0.6, 0.6, **floats)))
    factor = draw(hnp.arrays(np.float64, 20, elements=st.floats(0.7, 1.3, **floats)))
    shift = draw(hnp.arrays(np.float64, (5, 3), elements=st.floats(-0.005, 0.005, **floats)))
    quat = draw(hnp.arrays(np.float64, 4, elements=st.floats(-1.0, 1.0, **floats)))
    assume(np.linalg.norm(quat) > 0.1)
    trans = draw(hnp.arrays(np.float64, 3, elements=st.floats(-1.0, 1.0, **floats)))
    return make_hand(flex, abd, factor, shift, rotation_from_quat(quat), trans)


def apply(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``[..., 4, 4] x [..., 3] -> [..., 3]``."""
    return (m[..., :3, :3] @ x[..., None])[..., 0] + m[..., :3, 3]


def close(a: torch.Tensor, b, tol: float) -> None:
    b = torch.as_tensor(b, dtype=a.dtype)
    err = (a - b).abs().max().item() if a.numel() else 0.0
    assert err <= tol, f"max error {err:.3g} > {tol:.3g}"


# ---- rotations -----------------------------------------------------------------------------


def test_axis_rotations_and_rodrigues_agree() -> None:
    angle = torch.tensor([0.0, 0.3, -1.2, 3.0], dtype=F64)
    for i, rot in enumerate((rot_x, rot_y, rot_z)):
        axis = torch.eye(3, dtype=F64)[i].expand(4, 3)
        close(rot(angle), rodrigues(axis, angle), 1e-15)
    # Right-handed: R_z(pi/2) x = y, R_x(pi/2) y = z, R_y(pi/2) z = x.
    q = torch.tensor(math.pi / 2, dtype=F64)
    e = torch.eye(3, dtype=F64)
    close(rot_z(q) @ e[0], e[1], 1e-15)
    close(rot_x(q) @ e[1], e[2], 1e-15)
    close(rot_y(q) @ e[2], e[0], 1e-15)
    v, w = torch.randn(2, 5, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    close((skew(v) @ w[..., None])[..., 0], torch.linalg.cross(v, w), 1e-15)


def test_swing_direction_formula() -> None:
    t = torch.tensor([0.4, -1.0, 2.5], dtype=F64)
    p = torch.tensor([-0.3, 0.2, 1.1], dtype=F64)
    z = swing(t, p)[..., :, 2]
    expected = torch.stack([t.sin() * p.cos(), -p.sin(), t.cos() * p.cos()], -1)
    close(z, expected, 1e-15)
    close(swing(t, p), rot_y(t) @ rot_x(p), 1e-15)


def test_angles_are_accurate_and_signed() -> None:
    a = torch.tensor([1.0, 0.0, 0.0], dtype=F64)
    for alpha in (1e-9, 1e-4, 0.7, math.pi - 1e-6):
        b = rodrigues(torch.tensor([0.0, 0.0, 1.0], dtype=F64), torch.tensor(alpha, dtype=F64)) @ a
        assert abs(angle_between(3 * a, 2 * b).item() - alpha) < 1e-15
        z = torch.tensor([0.0, 0.0, 1.0], dtype=F64)
        assert abs(signed_angle(a, b, z).item() - alpha) < 1e-15
        assert abs(signed_angle(b, a, z).item() + alpha) < 1e-15


def test_align_including_parallel_and_antiparallel() -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.randn(6, 3, dtype=F64, generator=g)
    b = torch.randn(6, 3, dtype=F64, generator=g)
    b[1] = 2 * a[1]  # parallel
    b[2] = -a[2]  # exactly antiparallel
    b[3] = -a[3] + 1e-9  # nearly antiparallel
    b[4] = torch.tensor([0.0, 1.0, 0.0], dtype=F64)
    a[4] = torch.tensor([0.0, -1.0, 0.0], dtype=F64)  # the spec's silent-identity case
    r = align(a, b)
    close(r.transpose(-1, -2) @ r, torch.eye(3, dtype=F64).expand(6, 3, 3), 1e-12)
    close(torch.linalg.det(r), torch.ones(6), 1e-12)
    close((r @ unit(a)[..., None])[..., 0], unit(b), 1e-9)
    close(r[1], torch.eye(3, dtype=F64), 1e-15)
    # Gradients are finite at the parallel configuration.
    x = a[1].clone().requires_grad_(True)
    align(x, b[1]).sum().backward()
    assert torch.isfinite(x.grad).all()


# ---- constants (spec 9.3) ------------------------------------------------------------------


def test_root_directions_and_frames_match_spec_table() -> None:
    u = canonical_root_directions()
    table_u = [
        [-0.84880, -0.27935, 0.44889],
        [-0.98007, 0.0, 0.19867],
        [-1.0, 0.0, 0.0],
        [-0.98007, -0.03947, -0.19471],
        [-0.92185, -0.11528, -0.37001],
    ]
    close(u, table_u, 5e-6)
    c, s = math.cos(0.2), math.sin(0.2)
    close(u[1], [-c, 0, s], 1e-15)
    close(u[3], [-c, -s * s, -c * s], 1e-15)
    f = canonical_frames()
    table_x = [
        [-0.14252, -0.69671, -0.70306],
        [0.0, -1.0, 0.0],
        [0.0, -0.99500, 0.09983],
        [-0.01983, -0.95573, 0.29357],
        [-0.03947, -0.92185, 0.38554],
    ]
    table_y = [
        [0.50914, -0.66073, 0.55155],
        [0.19867, 0.0, 0.98007],
        [0.0, 0.09983, 0.99500],
        [-0.19768, 0.29158, 0.93590],
        [-0.38554, 0.37001, 0.84525],
    ]
    close(f[:, 0], table_x, 5e-6)
    close(f[:, 1], table_y, 5e-6)
    close(f[:, 2], u, 0.0)
    close(f @ f.transpose(-1, -2), torch.eye(3, dtype=F64).expand(5, 3, 3), 1e-15)
    close(torch.linalg.det(f), torch.ones(5), 1e-15)


# ---- 1. shapes and structure ---------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (3,), (2, 2), (0,)])
def test_shapes_for_any_leading_shape(shape: tuple[int, ...]) -> None:
    n = int(np.prod(shape))
    kp = random_hands(max(n, 1))[:n].reshape(*shape, 21, 3)
    c = canonicalize(kp)
    expected = {
        "global_transform": (4, 4),
        "normalized_keypoints": (21, 3),
        "bone_transforms": (20, 4, 4),
        "part_transforms": (16, 4, 4),
        "canonical_keypoints": (21, 3),
        "bone_lengths": (20,),
        "part_bone_lengths": (16,),
        "flexion": (15,),
        "abduction": (15,),
        "palm_normal": (3,),
        "plane_angles": (3,),
        "spread_angles": (4,),
        "is_left": (),
    }
    for name, tail in expected.items():
        assert tuple(getattr(c, name).shape) == shape + tail, name
    assert c.part_transforms_halo_units.shape == (*shape, 16, 4, 4)
    assert c.pose_code.shape == (*shape, 16, 3)
    assert c.batch_shape == shape
    if n:
        batched = canonicalize(kp.reshape(-1, 21, 3))
        close(batched.bone_transforms.reshape(c.bone_transforms.shape), c.bone_transforms, 0.0)


def test_structure_and_part_selection() -> None:
    c = canonicalize(random_hands(4))
    last = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=F64)
    for m in (c.global_transform[:, None], c.bone_transforms, c.part_transforms):
        close(m[..., 3, :], last.expand_as(m[..., 3, :]), 0.0)
    close(c.part_transforms[:, 0], torch.eye(4, dtype=F64).expand(4, 4, 4), 0.0)
    close(c.pose_code[:, 0], torch.zeros(4, 3), 0.0)
    # Spec 9.1: parts 1..15 are biomech bones 6, 11, 16, 7, 12, 17, 9, 14, 19, 8, 13, 18, 5,
    # 10, 15 (the bones whose child is the HALO joint of the part).
    spec_bio = np.array([6, 11, 16, 7, 12, 17, 9, 14, 19, 8, 13, 18, 5, 10, 15])
    assert (PART_BONE_INDEX == PUB_OF_BIO_BONE[spec_bio]).all()
    close(c.part_transforms[:, 1:], c.bone_transforms[:, PART_BONE_INDEX], 0.0)
    # Finger-bone order: child joints thumb 2-4, index 6-8, ..., pinky 18-20.
    assert list(FINGER_BONE_CHILDREN) == [j for j in range(1, 21) if j % 4 != 1]


# ---- 2-5. rigidity, joints, bone lengths, canonical shape ------------------------------------


def check_canonical_hand(c, tol: float = 1e-12) -> None:
    """Spec 11 items 2-5 on a (batched) result."""
    eye = torch.eye(3, dtype=F64)
    rot = c.bone_transforms[..., :3, :3]
    close(rot.transpose(-1, -2) @ rot, eye.expand_as(rot), 1e-10)
    close(torch.linalg.det(rot), torch.ones(rot.shape[:-2]), 1e-10)
    grot = c.global_transform[..., :3, :3]
    close(grot.transpose(-1, -2) @ grot, eye.expand_as(grot), 1e-10)

    p, cj, m = c.normalized_keypoints, c.canonical_keypoints, c.bone_transforms
    par, chi = BONES[:, 0], BONES[:, 1]
    close(apply(m, p[..., par, :]), cj[..., par, :], tol)
    close(apply(m, p[..., chi, :]), cj[..., chi, :], tol)
    # Continuity: each finger bone's parent joint lands where its parent bone's child did.
    finger = np.array([j - 1 for j in range(1, 21) if PARENTS[j] != 0])
    parent_bone = PARENTS[finger + 1] - 1
    close(apply(m[..., finger, :, :], p[..., par[finger], :]),
          apply(m[..., parent_bone, :, :], p[..., chi[parent_bone], :]), tol)  # fmt: skip
    close(cj[..., 0, :], torch.zeros(3), 0.0)
    close(torch.linalg.vector_norm(cj[..., chi, :] - cj[..., par, :], dim=-1), c.bone_lengths, tol)

    # Canonical skeleton: every finger is a straight ray along u_f from the wrist.
    u = canonical_root_directions()
    for f, joints in enumerate(FINGER_JOINTS):
        rays = cj[..., joints, :]
        along = (rays * u[f]).sum(-1, keepdim=True)
        close(rays - along * u[f], torch.zeros(3), tol)
        cum = torch.cumsum(c.bone_lengths[..., [j - 1 for j in joints]], dim=-1)
        close(along[..., 0], cum, tol)


@SETTINGS
@given(hands())
def test_rigid_joint_preserving_and_canonical(kp: torch.Tensor) -> None:
    c = canonicalize(kp)
    check_canonical_hand(c)
    close(c.bone_lengths, bone_lengths(kp), 1e-15)
    close(c.part_bone_lengths, part_bone_lengths(kp), 1e-15)
    close(apply(c.global_transform, kp), c.normalized_keypoints, 1e-15)


def test_canonical_skeleton_angles() -> None:
    c = canonicalize(random_hands(3))
    again = canonicalize(c.canonical_keypoints)
    close(again.plane_angles, torch.tensor(CANONICAL_PLANE_ANGLES, dtype=F64).expand(3, 3), 1e-12)
    close(again.spread_angles, torch.tensor(CANONICAL_SPREAD_ANGLES, dtype=F64).expand(3, 4), 1e-12)
    close(again.flexion, torch.zeros(3, 15), 1e-12)
    close(again.abduction, torch.zeros(3, 15), 1e-12)


def test_normalized_frame_axes() -> None:
    c = canonicalize(random_hands(5))
    p = c.normalized_keypoints
    close(p[:, 0], torch.zeros(3), 1e-15)
    mid = unit(p[:, 9])
    close(mid, torch.tensor([-1.0, 0.0, 0.0]).expand(5, 3), 1e-15)
    assert (p[:, 5, 2] > 0).all()  # index MCP on the thumb side
    close(p[:, 5, 1], torch.zeros(5), 1e-15)
    # G maps the palm normal (a direction) to +y.
    y = (c.global_transform[:, :3, :3] @ c.palm_normal[..., None])[..., 0]
    close(y, torch.tensor([0.0, 1.0, 0.0]).expand(5, 3), 1e-15)


def test_global_normalization_equals_spec_recipe() -> None:
    """``G = [Pi R2 R1 | -Pi R2 R1 J0]`` with the two ``align`` rotations of spec 3."""
    kp = random_hands(8, seed=3)
    wrist, index, middle = kp[:, 0], kp[:, 5], kp[:, 9]
    vm, vi = unit(middle - wrist), unit(index - wrist)
    r1 = align(vm, torch.tensor([0.0, -1.0, 0.0], dtype=F64).expand_as(vm))
    n = torch.linalg.cross(vm, vi)
    r2 = align((r1 @ n[..., None])[..., 0], torch.tensor([0.0, 0.0, 1.0], dtype=F64).expand_as(n))
    rot = torch.as_tensor(PI_AXES) @ r2 @ r1
    c = canonicalize(kp)
    close(c.global_transform[:, :3, :3], rot, 1e-14)
    close(c.global_transform[:, :3, 3], -(rot @ wrist[..., None])[..., 0], 1e-14)


def test_spec_antiparallel_align_cases_are_handled() -> None:
    """Middle bone along +y or palm normal mapped to -z: the reference silently fails."""
    kp = canonicalize(random_hands(1, seed=4)).normalized_keypoints[0]  # HALO frame
    to_input = torch.as_tensor(PI_AXES).T  # middle bone -x -> input -y (spec's easy case)
    flip_x = torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=F64))  # middle +y, normal +z
    flip_y = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=F64))  # middle -y, normal -z
    ref = canonicalize(kp @ to_input.T)
    for extra in (flip_x, flip_y):
        c = canonicalize(kp @ (extra @ to_input).T)
        close(c.normalized_keypoints, kp, 1e-15)
        close(c.bone_transforms, ref.bone_transforms, 1e-14)


# ---- 6-8. idempotence, invariance, scale -----------------------------------------------------


def test_idempotence() -> None:
    c = canonicalize(random_hands(6, seed=5))
    eye4 = torch.eye(4, dtype=F64)
    # The canonical skeleton is already normalized: G = I and every M_b = I.
    again = canonicalize(c.canonical_keypoints)
    close(again.global_transform, eye4.expand(6, 4, 4), 1e-14)
    close(again.bone_transforms, eye4.expand(6, 20, 4, 4), 1e-10)
    # Mapped back to the input axes (G^-1 C), G is recovered and M_b stays the identity.
    ginv = torch.linalg.inv(c.global_transform)
    back = canonicalize(apply(ginv[:, None], c.canonical_keypoints))
    close(back.global_transform, c.global_transform, 1e-12)
    close(back.bone_transforms, eye4.expand(6, 20, 4, 4), 1e-10)


@SETTINGS
@given(
    hands(),
    hnp.arrays(np.float64, 4, elements=st.floats(-1, 1)),
    hnp.arrays(np.float64, 3, elements=st.floats(-2, 2)),
    st.floats(1e-3, 1e3),
)
def test_rigid_motion_invariance_and_scale_covariance(kp, quat, trans, scale) -> None:
    assume(np.linalg.norm(quat) > 0.1)
    rot = torch.as_tensor(rotation_from_quat(quat))
    moved = kp @ rot.T + torch.as_tensor(trans)
    c, cm = canonicalize(kp), canonicalize(moved)
    close(cm.normalized_keypoints, c.normalized_keypoints, 1e-12)
    close(cm.bone_transforms, c.bone_transforms, 1e-10)
    close(cm.flexion, c.flexion, 1e-10)
    # The full map x -> M G x: moving joints and query points together changes nothing.
    x = torch.randn(7, 3, dtype=F64, generator=torch.Generator().manual_seed(0)) * 0.1
    q = points_to_part_frames(c, x)
    qm = points_to_part_frames(cm, x @ rot.T + torch.as_tensor(trans))
    close(qm, q, 1e-10)

    cs = canonicalize(scale * kp)
    close(cs.bone_transforms[..., :3, :3], c.bone_transforms[..., :3, :3], 1e-10)
    close(cs.bone_transforms[..., :3, 3] / scale, c.bone_transforms[..., :3, 3], 1e-10)
    close(cs.canonical_keypoints / scale, c.canonical_keypoints, 1e-12)
    close(cs.flexion, c.flexion, 1e-10)


# ---- 9. mirror -----------------------------------------------------------------------------


def test_left_hand_is_mirrored_right_hand_without_double_flip() -> None:
    right = random_hands(4, seed=6)
    left = mirror(right)
    cr = canonicalize(right)
    cl = canonicalize(left, side="left")
    for name in ("bone_transforms", "canonical_keypoints", "normalized_keypoints", "flexion",
                 "abduction", "plane_angles", "spread_angles", "part_bone_lengths"):  # fmt: skip
        close(getattr(cl, name), getattr(cr, name), 1e-13)
    # G acts on the original left coordinates and contains the mirror.
    d = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=F64))
    close(cl.global_transform, cr.global_transform @ d, 1e-15)
    close(torch.linalg.det(cl.global_transform), -torch.ones(4), 1e-12)
    close(apply(cl.global_transform[:, None], left), cl.normalized_keypoints, 1e-15)
    close(cl.palm_normal, mirror(cr.palm_normal), 1e-15)
    assert cl.is_left.all() and not cr.is_left.any()
    # Left query points map to the same part coordinates as their mirrored right twins.
    x = torch.randn(4, 9, 3, dtype=F64, generator=torch.Generator().manual_seed(2)) * 0.1
    close(points_to_part_frames(cl, mirror(x)), points_to_part_frames(cr, x), 1e-13)
    # Treating a left hand as a right one (what the reference's double flip amounts to) is wrong.
    wrong = canonicalize(left, side="right")
    assert (wrong.bone_transforms - cr.bone_transforms).abs().amax(dim=(-3, -2, -1)).min() > 0.05


def test_mixed_sides_in_one_batch() -> None:
    kp = random_hands(4, seed=7)
    is_left = torch.tensor([True, False, True, False])
    mixed = torch.where(is_left[:, None, None], mirror(kp), kp)
    c = canonicalize(mixed, side=is_left)
    close(c.bone_transforms, canonicalize(kp).bone_transforms, 1e-13)
    assert (c.is_left == is_left).all()


# ---- 10. angle round trip ------------------------------------------------------------------


@SETTINGS
@given(
    hnp.arrays(np.float64, 15, elements=st.floats(-3.0, 3.0)),
    hnp.arrays(np.float64, 15, elements=st.floats(-1.45, 1.45)),
)
def test_angle_round_trip(flex: np.ndarray, abd: np.ndarray) -> None:
    kp = make_hand(flex, abd)
    c = canonicalize(kp)
    close(c.flexion, flex, 1e-12)
    close(c.abduction, abd, 1e-12)
    close(c.global_transform, torch.eye(4, dtype=F64), 1e-14)
    check_canonical_hand(c)


def test_straight_hand_is_canonical() -> None:
    kp = make_hand(np.zeros(15), np.zeros(15))
    c = canonicalize(kp)
    close(c.bone_transforms, torch.eye(4, dtype=F64).expand(20, 4, 4), 1e-14)
    close(c.canonical_keypoints, kp, 1e-15)
    check_canonical_hand(c)


# ---- 11. gradients -------------------------------------------------------------------------


def _outputs(kp: torch.Tensor) -> torch.Tensor:
    c = canonicalize(kp)
    return torch.cat(
        [
            c.global_transform[..., :3, :].flatten(-2),
            c.bone_transforms[..., :3, :].flatten(-3),
            c.canonical_keypoints.flatten(-2),
            c.flexion,
            c.abduction,
            c.plane_angles,
            c.spread_angles,
            c.palm_normal,
        ],
        dim=-1,
    )


def test_gradcheck_generic_hands() -> None:
    kp = random_hands(2, seed=8).requires_grad_(True)
    assert torch.autograd.gradcheck(_outputs, (kp,), fast_mode=True)
    x = torch.randn(2, 5, 3, dtype=F64, generator=torch.Generator().manual_seed(3))
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda k, p: points_to_part_frames(canonicalize(k), p), (kp, x), fast_mode=True
    )


def test_gradcheck_exactly_straight_and_canonical_hand() -> None:
    straight = make_hand(np.zeros(15), np.zeros(15))
    assert torch.autograd.gradcheck(_outputs, (straight.requires_grad_(True),), fast_mode=True)
    # Straight fingers on a generic, moved palm.
    rng = np.random.default_rng(9)
    kp = make_hand(np.zeros(15), np.zeros(15), None, rng.uniform(-0.005, 0.005, (5, 3)),
                   rotation_from_quat(rng.normal(size=4)), rng.normal(size=3))  # fmt: skip
    assert torch.autograd.gradcheck(_outputs, (kp.requires_grad_(True),), fast_mode=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_finite_and_dtype(dtype: torch.dtype) -> None:
    kp = torch.cat([random_hands(3, seed=10), make_hand(np.zeros(15), np.zeros(15))[None]])
    kp = kp.to(dtype).requires_grad_(True)
    c = canonicalize(kp)
    assert c.bone_transforms.dtype == dtype and c.part_transforms_halo_units.dtype == dtype
    (c.bone_transforms.sum() + c.canonical_keypoints.sum() + c.flexion.sum()).backward()
    assert torch.isfinite(kp.grad).all()
    assert kp.grad.abs().max() < 1e4
    if dtype == torch.float32:
        ref = canonicalize(kp.detach().double())
        close(c.bone_transforms.double(), ref.bone_transforms, 2e-5)


# ---- degenerate and bad input ----------------------------------------------------------------


def _raises(kp, match: str, **kw) -> None:
    with pytest.raises(HalohandInputError, match=match):
        canonicalize(kp, **kw)


def test_non_finite_and_bad_shapes() -> None:
    kp = random_hands(3, seed=11)
    bad = kp.clone()
    bad[1, 7, 0] = float("nan")
    _raises(bad, r"1 of 3 hands: keypoint index_dip is NaN or inf \(first: hand \[1\]\)")
    bad[2, 0, 2] = float("inf")
    _raises(bad, r"2 of 3 hands: keypoint index_dip")
    _raises(kp[:, :20], r"shape \[\.\.\., 21, 3\]")
    _raises(kp.to(torch.int64), "float32 or float64")
    _raises(kp, "side must be", side="both")
    _raises(kp, "does not match the batch shape", side=torch.tensor([True, False]))
    with pytest.raises(HalohandInputError, match="points must have shape"):
        points_to_part_frames(canonicalize(kp), torch.zeros(2, 5, 3, dtype=F64))
    # Plain numpy input works.
    c = canonicalize(kp.numpy())
    close(c.bone_transforms, canonicalize(kp).bone_transforms, 0.0)


def test_zero_length_bones_raise() -> None:
    kp = random_hands(4, seed=12)
    bad = kp.clone()
    bad[2, 11] = bad[2, 10]  # middle PIP -> DIP collapses
    _raises(bad, r"1 of 4 hands: bone middle_pip->middle_dip is shorter")
    _raises(torch.zeros(2, 21, 3, dtype=F64), r"2 of 2 hands: bone wrist->thumb_cmc")
    # Relative rule: the same hand in millimetres or kilometres is fine; a short bone isn't.
    canonicalize(kp * 1000.0)
    canonicalize(kp * 1e-6)
    short = kp.clone()
    short[0, 12] = short[0, 11] + 1e-5 * unit(short[0, 12] - short[0, 11])
    _raises(short, "middle_dip->middle_tip")
    canonicalize(short, check=False)  # no check: no error


def test_collinear_root_bones_raise() -> None:
    kp = random_hands(2, seed=13)
    bad = kp.clone()
    # Index MCP on the middle root bone's line: the palm plane (and G) is undefined.
    bad[1, 5] = bad[1, 0] + 0.7 * (bad[1, 9] - bad[1, 0])
    _raises(bad, r"1 of 2 hands: the index and middle root bones .* parallel")
    anti = kp.clone()
    anti[0, 17] = anti[0, 0] - 0.9 * (anti[0, 13] - anti[0, 0])  # pinky opposite the ring
    _raises(anti, r"the ring and pinky root bones")
    thumb = kp.clone()
    thumb[1, 1] = thumb[1, 0] + 0.3 * (thumb[1, 5] - thumb[1, 0])
    _raises(thumb, r"the thumb and index root bones")


def test_gimbal_abduction_raises() -> None:
    abd = np.zeros(15)
    slot = list(FINGER_BONE_CHILDREN).index(6)  # index proximal phalanx
    abd[slot] = math.pi / 2  # straight along its local -y axis
    _raises(make_hand(np.full(15, 0.3), abd), r"bone index_mcp->index_pip is at \+-90 deg")
    abd[slot] = math.pi / 2 - 0.01  # close but valid
    c = canonicalize(make_hand(np.full(15, 0.3), abd))
    assert abs(c.abduction[slot].item() - abd[slot]) < 1e-10


# ---- query points and HALO units -------------------------------------------------------------


def test_points_to_part_frames_and_halo_units() -> None:
    kp = random_hands(3, seed=14)
    c = canonicalize(kp)
    # The joints of each part's bone land on the canonical joints of that bone.
    q = points_to_part_frames(c, kp, halo_units=False)  # [3, 21, 16, 3]
    for k in range(1, 16):
        start, end = (int(j) for j in BONES[PART_BONE_INDEX[k - 1]])
        close(q[:, start, k], c.canonical_keypoints[:, start], 1e-12)
        close(q[:, end, k], c.canonical_keypoints[:, end], 1e-12)
    close(q[:, :, 0], c.normalized_keypoints, 1e-12)  # palm: identity after G
    # HALO units: S^-1 M S applied to G x / 0.4 == (M G x) / 0.4, and the pose code is its
    # translation column.
    qh = points_to_part_frames(c, kp)
    close(qh, q / 0.4, 1e-12)
    b = c.part_transforms_halo_units
    gx = apply(c.global_transform[:, None], kp) / 0.4
    close(apply(b[:, None], gx[:, :, None]), qh, 1e-12)
    s = torch.diag(torch.tensor([0.4, 0.4, 0.4, 1.0], dtype=F64))
    close(b, torch.linalg.inv(s) @ c.part_transforms @ s, 1e-13)
    close(c.pose_code, apply(b, torch.zeros(3, 16, 3, dtype=F64)), 0.0)


# ---- 12. oracle ------------------------------------------------------------------------------


def _oracle() -> dict:
    if not ORACLE.exists():
        pytest.skip(f"oracle not found at {ORACLE}")
    return json.loads(ORACLE.read_text())


def _arr(sample: dict, key: str) -> torch.Tensor:
    return torch.tensor(sample[key], dtype=F64)


def _converter21(c) -> torch.Tensor:
    """The reference's ``[21, 4, 4]`` layout: identity, then biomech bones 0..19."""
    return torch.cat([torch.eye(4, dtype=F64)[None], c.bone_transforms[PUB_OF_BIO_BONE]])


def _angles_bio(c) -> torch.Tensor:
    """``[15, 2]`` (theta, phi) of biomech bones 5..19."""
    public = torch.stack([c.flexion, c.abduction], -1)
    out = torch.empty_like(public)
    out[np.argsort(BIOMECH_FROM_OPENPOSE[6:])] = public
    return out


def test_oracle_reference_fields_within_2e3() -> None:
    """The clean atan2 output equals the reference (clipped acos) fields to 2e-3."""
    for s in _oracle()["samples"]:
        c = canonicalize(_arr(s, "input_joints_biomech_m")[OPENPOSE_FROM_BIOMECH])
        close(_converter21(c), _arr(s, "ref_converter_21x4x4"), 2e-3)
        close(c.canonical_keypoints[BIOMECH_FROM_OPENPOSE],
              _arr(s, "ref_canonical_joints_biomech"), 2e-3)  # fmt: skip
        close(_angles_bio(c), _arr(s, "ref_flex_abd_bones5to19"), 2e-3)
        close(c.part_transforms, _arr(s, "selected16_halo_part_order_metres"), 2e-3)
        close(c.part_transforms_halo_units, _arr(s, "selected16_halo_units_SinvMS"), 2e-3)
        close(c.pose_code, _arr(s, "pose_code_o_16x3_halo_units"), 2e-3)
        close(c.part_bone_lengths, _arr(s, "bone_lengths16_m"), 2e-9)
        # Samples B and C have no straight bones: there the reference is exact too.
        if not s["name"].startswith("A"):
            close(_converter21(c), _arr(s, "ref_converter_21x4x4"), 1e-7)


def _clean_vector(c) -> torch.Tensor:
    return torch.cat(
        [
            c.global_transform[:3].flatten(),
            c.normalized_keypoints[BIOMECH_FROM_OPENPOSE].flatten(),
            _converter21(c)[1:, :3].flatten(),
            c.canonical_keypoints[BIOMECH_FROM_OPENPOSE].flatten(),
        ]
    )


def _clean_target(s: dict) -> torch.Tensor:
    return torch.cat(
        [
            _arr(s, "global_normalization_4x4_incl_axis_swap")[:3].flatten(),
            _arr(s, "normalized_joints_biomech").flatten(),
            _arr(s, "clean_converter_21x4x4")[1:, :3].flatten(),
            _arr(s, "clean_canonical_joints_biomech").flatten(),
        ]
    )


def test_oracle_sample_a_rebuilt_matches_clean_fields_to_1e9() -> None:
    """Sample A rebuilt exactly from its listed angles and lengths matches to 1e-9.

    The file stores every number rounded to 9 decimals; the outputs move ~100x more than
    the inputs (4e-8 here), so the unrounded input is needed for a 1e-9 comparison.
    """
    data = _oracle()
    fk = data["fk_angles_used_for_sample_A"]
    to_public = np.argsort(BIOMECH_FROM_OPENPOSE[6:])
    lengths = np.empty(20)
    lengths[PUB_OF_BIO_BONE] = np.ravel(fk["bone_lengths_by_level_then_finger"])
    halo = skeleton_from_angles(
        torch.tensor(fk["flex_bones5to19"], dtype=F64)[to_public],
        torch.tensor(fk["abd_bones5to19"], dtype=F64)[to_public],
        torch.as_tensor(lengths),
    )
    s = data["samples"][0]
    g = _arr(s, "global_normalization_4x4_incl_axis_swap")
    kp = halo @ g[:3, :3]  # HALO frame -> input axes (G is the axis permutation)
    close(kp[BIOMECH_FROM_OPENPOSE], _arr(s, "input_joints_biomech_m"), 5e-10)
    c = canonicalize(kp)
    close(_clean_vector(c), _clean_target(s), 1e-9)


def test_oracle_clean_fields_to_1e9_within_input_rounding() -> None:
    """For every sample some input within the 9-decimal rounding box (+-5e-10) reproduces
    all clean fields (G, normalized joints, 20 matrices, canonical joints) to 1e-9.

    The box point is found by bounded linear least squares on the layer's Jacobian and
    then checked with the exact (non-linear) layer.
    """
    from scipy.optimize import lsq_linear

    half = 5e-10
    for s in _oracle()["samples"]:
        kp = _arr(s, "input_joints_biomech_m")[OPENPOSE_FROM_BIOMECH]
        target = _clean_target(s)
        direct = _clean_vector(canonicalize(kp))
        close(direct, target, 1e-7)  # straight from the rounded input
        jac = torch.autograd.functional.jacobian(
            lambda x: _clean_vector(canonicalize(x)), kp, vectorize=True
        ).reshape(len(target), -1)
        fit = lsq_linear(
            (jac * half * 1e9).numpy(), ((target - direct) * 1e9).numpy(), bounds=(-1, 1),
            tol=1e-12,
        )  # fmt: skip
        delta = torch.as_tensor(fit.x * half).reshape(21, 3)
        close(_clean_vector(canonicalize(kp + delta)), target, 1e-9)
