"""Batched rotation helpers for the canonicalization layer.

Pure torch functions, differentiable, batched over any leading dimensions ``...``; they
work in the dtype and on the device of their inputs. Rotations are right-handed and act on
column vectors (``v' = R @ v``).

Angles are computed with ``atan2`` of a sine-like and a cosine-like quantity, never with
``acos``/``asin``: those lose precision near 0 and pi and have infinite derivatives there,
which is exactly where straight fingers live.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "align",
    "angle_between",
    "rodrigues",
    "rot_x",
    "rot_y",
    "rot_z",
    "signed_angle",
    "skew",
    "swing",
    "unit",
]


def unit(v: Tensor, eps: float = 0.0) -> Tensor:
    """Normalize ``[..., 3]`` vectors; ``eps`` clamps the norm from below (0: no clamp)."""
    n = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    if eps > 0.0:
        n = n.clamp_min(eps)
    return v / n


def skew(v: Tensor) -> Tensor:
    """Cross-product matrix ``[v]_x`` with ``[v]_x @ w == v x w``: ``[..., 3] -> [..., 3, 3]``."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack(
        [torch.stack([o, -z, y], -1), torch.stack([z, o, -x], -1), torch.stack([-y, x, o], -1)],
        dim=-2,
    )


def rodrigues(axis: Tensor, angle: Tensor) -> Tensor:
    """Rotation by ``angle`` (rad) about the unit ``axis``: ``I + sin a K + (1 - cos a) K^2``.

    Args:
        axis: ``[..., 3]`` unit axes. Not renormalized: a non-unit axis gives a non-rotation,
            so callers pass unit vectors (or call :func:`unit` first).
        angle: ``[...]`` angles in radians, right-handed about ``axis``.

    Returns:
        ``[..., 3, 3]`` rotation matrices.
    """
    k = skew(axis)
    s = torch.sin(angle)[..., None, None]
    c = torch.cos(angle)[..., None, None]
    eye = torch.eye(3, dtype=axis.dtype, device=axis.device)
    return eye + s * k + (1.0 - c) * (k @ k)


def _axis_rotation(angle: Tensor, i: int, j: int) -> Tensor:
    # Rotation in the (i, j) coordinate plane; the remaining axis is fixed.
    c, s = torch.cos(angle), torch.sin(angle)
    out = torch.zeros(*angle.shape, 3, 3, dtype=angle.dtype, device=angle.device)
    k = 3 - i - j
    out[..., k, k] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., i, j] = -s
    out[..., j, i] = s
    return out


def rot_x(angle: Tensor) -> Tensor:
    """Right-handed rotation about +x: ``[...] -> [..., 3, 3]`` (y -> z for +pi/2)."""
    return _axis_rotation(angle, 1, 2)


def rot_y(angle: Tensor) -> Tensor:
    """Right-handed rotation about +y: ``[...] -> [..., 3, 3]`` (z -> x for +pi/2)."""
    return _axis_rotation(angle, 2, 0)


def rot_z(angle: Tensor) -> Tensor:
    """Right-handed rotation about +z: ``[...] -> [..., 3, 3]`` (x -> y for +pi/2)."""
    return _axis_rotation(angle, 0, 1)


def swing(flexion: Tensor, abduction: Tensor) -> Tensor:
    """HALO's twist-free bone swing ``Rf(theta, phi) = R_y(theta) @ R_x(phi)``.

    ``Rf @ z = (sin t cos p, -sin p, cos t cos p)``: flexion ``t`` turns +z toward +x (the
    palmar side), abduction ``p`` lifts it toward -y. Shapes ``[...], [...] -> [..., 3, 3]``.
    """
    ct, st = torch.cos(flexion), torch.sin(flexion)
    cp, sp = torch.cos(abduction), torch.sin(abduction)
    # Closed form of R_y(t) @ R_x(p): one stack instead of two matrices and a product.
    rows = (
        (ct, st * sp, st * cp),
        (torch.zeros_like(ct), cp, -sp),
        (-st, ct * sp, ct * cp),
    )
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def angle_between(a: Tensor, b: Tensor) -> Tensor:
    """Unsigned angle in ``[0, pi]`` between ``[..., 3]`` vectors (any non-zero norms).

    ``atan2(|a x b|, a . b)``: accurate at every angle, unlike ``acos`` of a dot product.
    The gradient is finite except at exactly parallel / antiparallel pairs, where the
    unsigned angle has a kink; use :func:`signed_angle` where a reference axis exists.
    """
    return torch.atan2(torch.linalg.vector_norm(torch.linalg.cross(a, b), dim=-1), (a * b).sum(-1))


def signed_angle(a: Tensor, b: Tensor, axis: Tensor) -> Tensor:
    """Signed angle in ``(-pi, pi]`` from ``a`` to ``b`` about the unit ``axis``.

    For ``a, b`` perpendicular to ``axis`` this is the ``alpha`` with
    ``b / |b| == rodrigues(axis, alpha) @ a / |a|``; it equals the spec's ``sang(a, b; r)``
    (the unsigned angle, negated when ``r . (a x b) < 0``) but is smooth through 0, so
    gradients are exact for coplanar configurations too. Shapes ``[..., 3] x 3 -> [...]``.
    """
    return torch.atan2((axis * torch.linalg.cross(a, b)).sum(-1), (a * b).sum(-1))


def align(a: Tensor, b: Tensor, antiparallel_tol: float = 1e-6) -> Tensor:
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
    a = unit(a)
    b = unit(b)
    c = (a * b).sum(-1)[..., None, None]
    eye = torch.eye(3, dtype=a.dtype, device=a.device)
    k = skew(torch.linalg.cross(a, b))
    anti = (c < antiparallel_tol - 1.0).expand(*c.shape[:-2], 3, 3)
    # The unused branch must stay finite so that torch.where does not leak NaN gradients.
    near = eye + k + (k @ k) / torch.where(anti, torch.ones_like(c), 1.0 + c)

    # Antiparallel branch: half turn about p (p perpendicular to a), then -a -> b.
    e = torch.nn.functional.one_hot(a.abs().argmin(-1), 3).to(a.dtype)
    p = unit(torch.linalg.cross(a, e))
    half_turn = 2.0 * p[..., :, None] * p[..., None, :] - eye
    k2 = skew(torch.linalg.cross(-a, b))
    c2 = torch.where(anti, -c, torch.ones_like(c))
    far = (eye + k2 + (k2 @ k2) / (1.0 + c2)) @ half_turn
    return torch.where(anti, far, near)
