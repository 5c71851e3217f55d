"""Rotations: every conversion the package uses, as pure batched functions.

Each function broadcasts over leading dimensions ``...`` and takes torch tensors or numpy
arrays: tensors stay tensors (differentiable, in their dtype and on their device), numpy
arrays (and lists, scalars) give numpy arrays computed with numpy, without importing torch.
Both run the same formula (:mod:`halohand.core._arrays`). Rotations are right-handed 3 x 3
matrices acting on column vectors (``v' = R @ v``); angles are in radians.

Angles are computed with ``atan2`` of a sine-like and a cosine-like quantity, never with
``acos``/``asin``: those lose precision near 0 and pi and have infinite derivatives there,
which is exactly where straight fingers live.

- :func:`rot_x`, :func:`rot_y`, :func:`rot_z`: elementary rotations, ``[...] -> [..., 3, 3]``;
- :func:`rodrigues`: unit axis and angle -> matrix;
- :func:`axis_angle_to_matrix` / :func:`matrix_to_axis_angle`: rotation vectors (axis times
  angle) <-> matrices;
- :func:`align`: the rotation taking one direction to another;
- :func:`quaternion_to_matrix`: unit quaternions ``(x, y, z, w)`` -> matrices;
- :func:`rotation_6d_to_matrix`: two columns, by Gram-Schmidt -> matrices;
- :func:`swing`: HALO's twist-free bone swing ``R_y R_x``;
- :func:`skew`, :func:`unit`, :func:`angle_between`, :func:`signed_angle`: the vector helpers
  they are built from.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from halohand.core._arrays import is_tensor, namespace

if TYPE_CHECKING:
    import torch

    Array = TypeVar("Array", np.ndarray, torch.Tensor)
else:
    Array = TypeVar("Array")

__all__ = [
    "align",
    "angle_between",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "quaternion_to_matrix",
    "rodrigues",
    "rot_x",
    "rot_y",
    "rot_z",
    "rotation_6d_to_matrix",
    "signed_angle",
    "skew",
    "swing",
    "unit",
]


def _arrays(*xs: Any) -> tuple[Any, list[Any]]:
    """The namespace for ``xs`` and ``xs`` as its arrays (non-tensors join the first tensor's
    dtype and device when there is one)."""
    xp = namespace(*xs)
    like = next((x for x in xs if is_tensor(x)), None)
    if like is None:
        return xp, [xp.asarray(x) for x in xs]
    torch = xp.torch
    return xp, [
        x if is_tensor(x) else torch.as_tensor(x, dtype=like.dtype, device=like.device) for x in xs
    ]


def unit(v: Array, eps: float = 0.0) -> Array:
    """Normalize ``[..., 3]`` vectors; ``eps`` clamps the norm from below (0: no clamp)."""
    xp, (v,) = _arrays(v)
    n = xp.norm(v, keepdim=True)
    if eps > 0.0:
        n = xp.clamp_min(n, eps)
    return v / n


def skew(v: Array) -> Array:
    """Cross-product matrix ``[v]_x`` with ``[v]_x @ w == v x w``: ``[..., 3] -> [..., 3, 3]``."""
    xp, (v,) = _arrays(v)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = xp.zeros_like(x)
    return xp.stack([xp.stack([o, -z, y], -1), xp.stack([z, o, -x], -1),
                     xp.stack([-y, x, o], -1)], -2)  # fmt: skip


def rodrigues(axis: Array, angle: Array | float) -> Array:
    """Rotation by ``angle`` (rad) about the unit ``axis``: ``I + sin a K + (1 - cos a) K^2``.

    Args:
        axis: ``[..., 3]`` unit axes. Not renormalized: a non-unit axis gives a non-rotation,
            so callers pass unit vectors (or call :func:`unit` first).
        angle: ``[...]`` angles in radians, right-handed about ``axis``.

    Returns:
        ``[..., 3, 3]`` rotation matrices.
    """
    xp, (axis, angle) = _arrays(axis, angle)
    k = skew(axis)
    s = xp.sin(angle)[..., None, None]
    c = xp.cos(angle)[..., None, None]
    return xp.eye(3, k) + s * k + (1.0 - c) * (k @ k)


def axis_angle_to_matrix(rvec: Array) -> Array:
    """Rotation vectors (unit axis times angle, radians) ``[..., 3]`` -> ``[..., 3, 3]``.

    Rodrigues' formula on the unnormalised ``K = [rvec]_x``: ``I + a K + b K^2`` with
    ``a = sin(t) / t`` and ``b = (1 - cos t) / t^2 = 2 sin^2(t / 2) / t^2`` written as
    ``sinc``, so small angles keep full precision, the zero vector gives exactly the identity
    and the gradient there is finite (``dR = [d rvec]_x``).
    """
    xp, (rvec,) = _arrays(rvec)
    theta = xp.norm(rvec)[..., None, None]
    k = skew(rvec)
    a = xp.sinc(theta / math.pi)  # sin(t) / t
    b = 0.5 * xp.sinc(theta / (2 * math.pi)) ** 2  # (1 - cos t) / t^2
    return xp.eye(3, k) + a * k + b * (k @ k)


def matrix_to_axis_angle(rotation: Array) -> Array:
    """Rotation vectors ``[..., 3]`` (angle in ``[0, pi]`` times unit axis) of ``[..., 3, 3]``
    rotation matrices; the inverse of :func:`axis_angle_to_matrix`.

    The angle is ``atan2(sin, cos)`` from the antisymmetric part ``w = sin(t) n`` and the
    trace. Up to 90 degrees the vector is ``w t / sin t``; beyond, where ``w`` fades, the axis
    comes from the symmetric part ``(R + R^T) / 2 - cos(t) I = (1 - cos t) n n^T`` (its
    largest column), signed to agree with ``w``. At exactly pi the sign is arbitrary.
    """
    xp, (r,) = _arrays(rotation)
    w = 0.5 * xp.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0],
                        r[..., 1, 0] - r[..., 0, 1]], -1)  # fmt: skip
    sin = xp.norm(w)
    cos = 0.5 * (r[..., 0, 0] + r[..., 1, 1] + r[..., 2, 2] - 1.0)
    theta = xp.atan2(sin, cos)
    wide = cos < 0.0
    # Small angles: w t / sin t (the unused branch stays finite for torch.where's gradient).
    ratio = xp.sinc(xp.where(wide, xp.zeros_like(theta), theta) / math.pi)
    near = w / ratio[..., None]
    # Wide angles: the dominant column of the symmetric part, normalised and signed.
    eye = xp.eye(3, r)
    sym = 0.5 * (r + xp.transpose(r)) - cos[..., None, None] * eye
    diag = xp.stack([sym[..., 0, 0], sym[..., 1, 1], sym[..., 2, 2]], -1)
    pick = eye[diag.argmax(-1)]  # [..., 3] one-hot
    col = (sym * pick[..., None, :]).sum(-1)
    # col = (1 - cos) n n_j and diag_j = (1 - cos) n_j^2, so col / sqrt((1 - cos) diag_j) = +-n.
    scale = xp.sqrt(xp.where(wide, (1.0 - cos) * (diag * pick).sum(-1), xp.ones_like(cos)))
    axis = col / scale[..., None]
    sign = xp.where((axis * w).sum(-1) < 0.0, -xp.ones_like(cos), xp.ones_like(cos))
    far = axis * (sign * theta)[..., None]
    return xp.where(wide[..., None], far, near)


def _axis_rotation(angle: Any, axis: int) -> Any:
    """Rotation by ``angle`` radians about coordinate axis 0, 1 or 2: ``[...] -> [..., 3, 3]``."""
    xp, (angle,) = _arrays(angle)
    c, s = xp.cos(angle), xp.sin(angle)
    o, z = xp.ones_like(c), xp.zeros_like(c)
    if axis == 0:
        rows = (o, z, z, z, c, -s, z, s, c)
    elif axis == 1:
        rows = (c, z, s, z, o, z, -s, z, c)
    else:
        rows = (c, -s, z, s, c, z, z, z, o)
    return xp.stack(rows, -1).reshape(*c.shape, 3, 3)


def rot_x(angle: Array | float) -> Array:
    """Right-handed rotation about +x: ``[...] -> [..., 3, 3]`` (y -> z for +pi/2)."""
    return _axis_rotation(angle, 0)


def rot_y(angle: Array | float) -> Array:
    """Right-handed rotation about +y: ``[...] -> [..., 3, 3]`` (z -> x for +pi/2)."""
    return _axis_rotation(angle, 1)


def rot_z(angle: Array | float) -> Array:
    """Right-handed rotation about +z: ``[...] -> [..., 3, 3]`` (x -> y for +pi/2)."""
    return _axis_rotation(angle, 2)


def swing(flexion: Array, abduction: Array) -> Array:
    """HALO's twist-free bone swing ``Rf(theta, phi) = R_y(theta) @ R_x(phi)``.

    ``Rf @ z = (sin t cos p, -sin p, cos t cos p)``: flexion ``t`` turns +z toward +x (the
    palmar side), abduction ``p`` lifts it toward -y. Shapes ``[...], [...] -> [..., 3, 3]``.
    """
    xp, (flexion, abduction) = _arrays(flexion, abduction)
    ct, st = xp.cos(flexion), xp.sin(flexion)
    cp, sp = xp.cos(abduction), xp.sin(abduction)
    # Closed form of R_y(t) @ R_x(p): one stack instead of two matrices and a product.
    rows = (
        (ct, st * sp, st * cp),
        (xp.zeros_like(ct), cp, -sp),
        (-st, ct * sp, ct * cp),
    )
    return xp.stack([xp.stack(row, -1) for row in rows], -2)


def quaternion_to_matrix(q: Array) -> Array:
    """Unit quaternions ``[..., 4]`` in ``(x, y, z, w)`` order (glTF, scipy) -> ``[..., 3, 3]``.

    Not renormalized: pass unit quaternions (:func:`unit` works on the last axis of any
    length). ``q`` and ``-q`` give the same rotation.
    """
    xp, (q,) = _arrays(q)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)),
        (2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)),
        (2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)),
    )
    return xp.stack([xp.stack(row, -1) for row in rows], -2)


def rotation_6d_to_matrix(d6: Array) -> Array:
    """``[..., 6]`` two 3-vectors -> ``[..., 3, 3]`` rotations, by Gram-Schmidt.

    The first column is the first vector normalised, the second the second vector made
    orthogonal to it and normalised, the third their cross product (a continuous
    parametrisation for regression). Norms are clamped at 1e-12.
    """
    xp, (d6,) = _arrays(d6)
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = unit(a1, eps=1e-12)
    b2 = unit(a2 - (b1 * a2).sum(-1)[..., None] * b1, eps=1e-12)
    b3 = xp.cross(b1, b2)
    return xp.stack([b1, b2, b3], -1)


def angle_between(a: Array, b: Array) -> Array:
    """Unsigned angle in ``[0, pi]`` between ``[..., 3]`` vectors (any non-zero norms).

    ``atan2(|a x b|, a . b)``: accurate at every angle, unlike ``acos`` of a dot product.
    The gradient is finite except at exactly parallel / antiparallel pairs, where the
    unsigned angle has a kink; use :func:`signed_angle` where a reference axis exists.
    """
    xp, (a, b) = _arrays(a, b)
    return xp.atan2(xp.norm(xp.cross(a, b)), (a * b).sum(-1))


def signed_angle(a: Array, b: Array, axis: Array) -> Array:
    """Signed angle in ``(-pi, pi]`` from ``a`` to ``b`` about the unit ``axis``.

    For ``a, b`` perpendicular to ``axis`` this is the ``alpha`` with
    ``b / |b| == rodrigues(axis, alpha) @ a / |a|``; it equals the spec's ``sang(a, b; r)``
    (the unsigned angle, negated when ``r . (a x b) < 0``) but is smooth through 0, so
    gradients are exact for coplanar configurations too. Shapes ``[..., 3] x 3 -> [...]``.
    """
    xp, (a, b, axis) = _arrays(a, b, axis)
    return xp.atan2((axis * xp.cross(a, b)).sum(-1), (a * b).sum(-1))


def align(a: Array, b: Array, antiparallel_tol: float = 1e-6) -> Array:
    """A rotation taking direction ``a`` to direction ``b``: ``[..., 3] x 2 -> [..., 3, 3]``.

    Away from antiparallel pairs this is the minimal rotation (about ``a x b``), computed as
    ``I + K + K^2 / (1 + c)`` with ``K = [a^ x b^]_x`` and ``c = a^ . b^``; unlike the
    axis-angle form it is smooth (and exact) at ``a || b``, where it is the identity.

    Where ``1 + c < antiparallel_tol`` the minimal rotation is undefined (exactly
    antiparallel) or ill-conditioned, and any rotation choice is necessarily discontinuous
    there. This returns a deterministic one: a half turn about an axis perpendicular to
    ``a`` (built from the coordinate axis least aligned with ``a``) followed by the minimal,
    well-conditioned rotation from ``-a`` to ``b``. It still maps ``a`` to ``b`` exactly.
    ``a`` and ``b`` must be non-zero.
    """
    xp, (a, b) = _arrays(a, b)
    a = unit(a)
    b = unit(b)
    c = (a * b).sum(-1)[..., None, None]
    eye = xp.eye(3, a)
    k = skew(xp.cross(a, b))
    anti = xp.broadcast_to(c < antiparallel_tol - 1.0, (*c.shape[:-2], 3, 3))
    # The unused branch must stay finite so that torch.where does not leak NaN gradients.
    near = eye + k + (k @ k) / xp.where(anti, xp.ones_like(c), 1.0 + c)

    # Antiparallel branch: half turn about p (p perpendicular to a), then -a -> b.
    e = eye[abs(a).argmin(-1)]
    p = unit(xp.cross(a, e))
    half_turn = 2.0 * p[..., :, None] * p[..., None, :] - eye
    k2 = skew(xp.cross(-a, b))
    c2 = xp.where(anti, -c, xp.ones_like(c))
    far = (eye + k2 + (k2 @ k2) / (1.0 + c2)) @ half_turn
    return xp.where(anti, far, near)
