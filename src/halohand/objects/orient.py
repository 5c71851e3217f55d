"""A canonical orientation for user meshes: the principal axes of the solid.

The grasp model was trained on objects that stand upright in the registry's frame (long
axis +z, bounding-box centre at the origin; ``objects.registry``); a mesh file in any other
orientation is turned into that frame before grasps are generated and the grasps are turned
back (``GraspObject.to_file_frame``).

The rule (:func:`principal_rotation`), for a closed, outward-wound mesh:

1. **Axes**: the eigenvectors of the solid's second-moment (inertia) tensor about its centre
   of mass (exact, from the mesh's signed tetrahedra; trimesh's mass properties).
2. **Order**: by the solid's variance along each axis: the largest spread goes to z, the
   middle one to x, the smallest to y, except that an axis of (near, within ``TIE``)
   rotational symmetry across which the object is wide (a torus, a squat cylinder, a
   disc) goes to z. This is the rule that keeps the registry in its frame: cylinders,
   capsules and bottles stand on their axis, tori lie flat, mugs stand with the handle
   along x (their handle widens x beyond the body's depth y), 4 of the 5 boxes keep
   their x and y. Ordering by bounding-box extent instead would lay every mug on its side
   (handle up) and stand every torus on edge.
3. **Signs**: each axis points toward the solid's positive third central moment (the thin,
   light end, the "tail"): the bulk of the volume lies toward -z, a bottle's neck points
   +z and a mug's handle +x, as in the registry. Where an axis' third moment is below
   ``SKEW_TOL`` of its natural scale (a mirror-symmetric object) its sign is unconstrained
   and is fixed by the right-hand rule; if all three are signed, the axis with the weakest
   third moment is flipped when the frame would be left-handed.

An object with no preferred axis (all three variances within ``TIE``: a ball, a cube)
keeps the file's axes (``R`` = identity).

The result is a proper rotation ``R`` (``det R = +1``): a point ``p`` (metres, about the
mesh's origin) has canonical coordinates ``R @ p``. Objects with a symmetry (a box, a
cylinder, a ball) have several equally valid canonical frames; this rule picks one, and all
give the same canonical shape.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import trimesh

from halohand.core.errors import HalohandInputError

__all__ = ["ORIENTS", "SKEW_TOL", "TIE", "principal_rotation", "third_moments"]

#: ``orient=`` values: ``"principal"`` (turn to the principal frame) or ``"keep"`` (the
#: file's frame).
ORIENTS: Final[tuple[str, ...]] = ("principal", "keep")
#: Extents within this fraction of each other count as equal (ordered by variance instead).
TIE: Final = 0.02
#: A third moment below this fraction of ``volume * sigma^3`` leaves the axis' sign free.
SKEW_TOL: Final = 1e-3


def check_orient(orient: str) -> str:
    """``orient`` if it is one of :data:`ORIENTS`.

    Raises:
        HalohandInputError: any other value.
    """
    if orient not in ORIENTS:
        raise HalohandInputError(f"unknown orient {orient!r}; use {' or '.join(ORIENTS)}")
    return orient


def third_moments(mesh: trimesh.Trimesh, axes: np.ndarray, center: np.ndarray) -> np.ndarray:
    """``[3]`` third central moments of the solid, ``int (a_k . (p - center))^3 dV`` (m^6).

    ``axes``: ``[3, 3]`` unit rows. Exact for a closed, outward-wound mesh: the solid is the
    signed sum of the tetrahedra (centre, triangle), and over a tetrahedron with the values
    ``x_0 = 0, x_1, x_2, x_3`` of a linear function at its corners
    ``int x^3 dV = V * h_3(x_1, x_2, x_3) / 20`` (``h_3``: all monomials of degree 3).
    """
    tri = np.asarray(mesh.triangles, dtype=np.float64) - center  # [F, 3 corners, 3]
    vol = np.einsum("fi,fi->f", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0  # signed
    x = tri @ np.asarray(axes, dtype=np.float64).T  # [F, 3 corners, 3 axes]
    a, b, c = x[:, 0], x[:, 1], x[:, 2]
    h3 = a**3 + b**3 + c**3 + a * a * (b + c) + b * b * (a + c) + c * c * (a + b) + a * b * c
    return (vol[:, None] * h3).sum(0) / 20.0


def principal_rotation(mesh: trimesh.Trimesh) -> np.ndarray:
    """``[3, 3]`` proper rotation turning ``mesh`` (closed, outward, metres) into its
    canonical frame (module docstring): canonical point = ``R @ p``.

    Raises:
        HalohandInputError: the mesh is not a closed solid of positive volume.
    """
    if not mesh.is_watertight or not mesh.volume > 0:
        raise HalohandInputError("a principal frame needs a closed mesh of positive volume")
    center = np.asarray(mesh.center_mass, dtype=np.float64)
    # Second moments of the solid: covariance = trace(I)/2 * 1 - I (per unit mass).
    inertia = np.asarray(mesh.moment_inertia, dtype=np.float64) / mesh.mass
    cov = 0.5 * np.trace(inertia) * np.eye(3) - inertia
    var, vec = np.linalg.eigh(cov)  # ascending variance, columns are axes
    if var[2] - var[0] < TIE * var[2]:
        return np.eye(3)  # no preferred axis (a ball, a cube): the file's axes
    axes = _settle_ties(vec.T, var)
    order = [1, 0, 2]  # variance: middle -> x, smallest -> y, largest -> z
    if var[2] - var[1] < TIE * var[2] and var[1] - var[0] >= TIE * var[2]:
        # An axis of (near) rotational symmetry with the spread across it (a torus, a squat
        # cylinder, a disc): the symmetry axis goes to z, as in the registry.
        order = [1, 2, 0]
    axes, var = axes[order], var[order]
    m3 = third_moments(mesh, axes, center)
    scale = mesh.volume * np.sqrt(np.maximum(var, 0.0)) ** 3
    signed = np.abs(m3) > SKEW_TOL * scale
    # Skewed axes point to their tail; the others (mirror-symmetric: either sign gives the
    # same shape) to the side of a fixed generic direction of the file, so that a file
    # read in other units, whose axes differ by rounding only, gets the same frame.
    lean = np.where(signed, m3, axes @ _GENERIC)
    axes = axes * np.where(lean < 0.0, -1.0, 1.0)[:, None]
    if np.linalg.det(axes) < 0.0:
        # Flip an axis whose sign the object leaves free, else the least skewed one.
        free = np.flatnonzero(~signed)
        k = int(free[-1]) if len(free) else int(np.argmin(np.abs(m3) / scale))
        axes[k] *= -1.0
    return axes


#: A direction of the file's frame off its axes and diagonals: it settles the sign of a
#: symmetric axis and the in-plane axes of a round object (never orthogonal to a file axis,
#: nor to (1, +-1, 0) or (1, +-1, +-1)).
_GENERIC: Final = np.array([0.9, 0.4, 0.17]) / np.linalg.norm([0.9, 0.4, 0.17])


def _settle_ties(axes: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Principal ``axes`` (rows, ascending ``var``) with equal variances (within ``TIE``)
    replaced by axes from the file's frame: there the eigenvectors are any basis of their
    plane (a cylinder, a torus) or of space (a ball, a cube), and rounding picks one.

    (All three equal is left to the caller.) Two equal: the plane normal to the distinct
    axis ``n`` gets ``u``, the file axis least along ``n`` projected onto the plane (into
    slot 1, which becomes x), and ``n x u``.
    """
    top = var[2]
    low_tie, high_tie = var[1] - var[0] < TIE * top, var[2] - var[1] < TIE * top
    if not (low_tie or high_tie):
        return axes
    out = axes.copy()
    k_n, k_other = (2, 0) if low_tie else (0, 2)
    n = axes[k_n]
    e = np.eye(3)[int(np.argmin(np.abs(n)))]
    u = e - (e @ n) * n
    u /= np.linalg.norm(u)
    out[1], out[k_other] = u, np.cross(n, u)
    return out
