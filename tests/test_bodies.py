"""Bodies of closed meshes (inference.bodies) against closed forms: count, signed volume,
genus and face labels; and marching cubes' rule for one or two lattice points enclosed by
the other side of the level (inference.extract): they close no surface of their own."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

import halohand.inference.extract as extract
from halohand.inference.bodies import body_stats
from halohand.inference.extract import mesh_from_grid


def test_body_stats_counts_volumes_and_genus() -> None:
    big = trimesh.creation.icosphere(subdivisions=4, radius=0.04)
    speck = trimesh.creation.icosphere(subdivisions=2, radius=0.002)
    speck.apply_translation([0.07, 0.0, 0.0])
    ring = trimesh.creation.torus(major_radius=0.02, minor_radius=0.005)
    ring.apply_translation([0.0, 0.09, 0.0])
    bubble = trimesh.creation.icosphere(subdivisions=2, radius=0.003)
    bubble.invert()  # faces into a hollow: negative volume
    mesh = trimesh.util.concatenate([speck, big, bubble, ring])
    stats = body_stats(mesh)
    assert stats.count == 4
    # largest first: the ball, the ring (2 pi^2 R r^2), the speck, the bubble; each the
    # polyhedron's own volume, and within 6 % of the smooth shape's (coarse spheres)
    want = [big.volume, ring.volume, speck.volume, -abs(bubble.volume)]
    np.testing.assert_allclose(stats.volumes, want, rtol=1e-9)
    smooth = [4 / 3 * np.pi * 0.04**3, 2 * np.pi**2 * 0.02 * 0.005**2, 4 / 3 * np.pi * 0.002**3,
              -4 / 3 * np.pi * 0.003**3]  # fmt: skip
    np.testing.assert_allclose(stats.volumes, smooth, rtol=0.06)
    np.testing.assert_array_equal(stats.genus, [0, 1, 0, 0])
    assert stats.face_body.shape == (len(mesh.faces),)
    sizes = [len(part.faces) for part in (big, ring, speck, bubble)]
    assert np.array_equal(np.bincount(stats.face_body), sizes)
    assert body_stats(trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), int))).count == 0


def _ball() -> np.ndarray:
    """``[101]^3`` occupancy of a 3 cm ball over a 10 cm cube (lattice step 1 mm)."""
    axis = np.linspace(-0.05, 0.05, 101)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    return (1.0 / (1.0 + np.exp((np.sqrt(x**2 + y**2 + z**2) - 0.03) / 0.001))).astype(np.float32)


LO, HI = np.full(3, -0.05), np.full(3, 0.05)


@pytest.mark.parametrize(
    "points",
    [
        [(50, 52, 47)],  # what the topology study found in 3 of 60 hands
        [(50, 52, 47), (50, 52, 48)],  # two face neighbours
        [(30, 50, 50), (30, 51, 51)],  # two on a diagonal: two one-point bubbles
    ],
)
def test_one_or_two_enclosed_lattice_points_close_no_surface(points: list) -> None:
    grid = _ball()
    for p in points:
        grid[p] = 0.45
    inside = grid > 0.5
    enclosed = extract._enclosed_points(inside, extract._corner_counts(inside))
    want = sorted(np.ravel_multi_index(p, grid.shape) for p in points)
    np.testing.assert_array_equal(enclosed, want)
    before = grid.copy()
    mesh = mesh_from_grid(grid, LO, HI)
    np.testing.assert_array_equal(grid, before)  # the caller's grid is not changed
    stats = body_stats(mesh)
    assert stats.count == 1 and stats.genus[0] == 0 and mesh.is_watertight
    clean = mesh_from_grid(_ball(), LO, HI)
    np.testing.assert_array_equal(mesh.faces, clean.faces)
    np.testing.assert_array_equal(mesh.vertices, clean.vertices)


@pytest.mark.parametrize(
    "points",
    [
        [(50, 50, 88)],  # one point 8 mm outside the ball
        [(50, 50, 88), (50, 51, 88)],  # two face neighbours
        [(50, 50, 84), (52, 50, 88)],  # two apart: two one-point specks
        [(50, 50, 81)],  # one lattice step off the surface
    ],
)
def test_specks_of_one_or_two_lattice_points_are_removed(points: list) -> None:
    grid = _ball()
    for p in points:
        grid[p] = 0.55
    inside = grid > 0.5
    specks = extract._enclosed_points(inside, extract._corner_counts(inside), specks=True)
    want = sorted(np.ravel_multi_index(p, grid.shape) for p in points)
    np.testing.assert_array_equal(specks, want)
    before = grid.copy()
    mesh = mesh_from_grid(grid, LO, HI)
    np.testing.assert_array_equal(grid, before)  # the caller's grid is not changed
    assert body_stats(mesh).count == 1 and mesh.is_watertight
    clean = mesh_from_grid(_ball(), LO, HI)
    np.testing.assert_array_equal(mesh.faces, clean.faces)
    np.testing.assert_array_equal(mesh.vertices, clean.vertices)


def test_three_enclosed_or_outside_points_stay_bodies_and_a_lone_point_meshes() -> None:
    grid = _ball()
    grid[50, 52, 46:49] = 0.45  # three in a row: beyond the rule, measured as a body
    grid[50, 50, 87:90] = 0.55  # three in a row outside the ball: a body too
    stats = body_stats(mesh_from_grid(grid, LO, HI))
    assert stats.count == 3 and (stats.volumes[1:] < 0).sum() == 1
    single = np.zeros((9, 9, 9), dtype=np.float32)
    single[4, 4, 4] = 1.0  # a grid holding one inside point meshes it (8 faces)
    alone = body_stats(mesh_from_grid(single, LO, HI))
    assert alone.count == 1 and len(alone.face_body) == 8 and alone.volumes[0] > 0


def test_the_rule_off_leaves_the_octahedral_bubble(monkeypatch) -> None:
    grid = _ball()
    grid[50, 52, 47] = 0.45
    monkeypatch.setattr(extract, "_enclosed_points", lambda *args, **kwargs: np.zeros(0, int))
    stats = body_stats(mesh_from_grid(grid, LO, HI))
    assert stats.count == 2
    assert np.bincount(stats.face_body)[1] == 8 and stats.genus[1] == 0
    assert -(1e-3**3) < stats.volumes[1] < 0  # facing into a hollow smaller than a cell
