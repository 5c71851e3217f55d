"""Touching parts kept apart (halohand.inference.touching): lattice rules against brute
force, meshes of overlapping balls with known topology, the hierarchical extraction
against the dense one, and the shipped model's fist."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from halohand.core.errors import HalohandInputError
from halohand.inference.bodies import body_stats
from halohand.inference.extract import lattice_grid, mesh_from_grid
from halohand.inference.touching import (
    CARVED,
    HAND_CONTACTS,
    PartContacts,
    contact_cells,
    keep_apart,
)
from halohand.skeleton import ADJACENT_PARTS, JOINED_PARTS, PART_NAMES

NEIGHBOURS = [s for s in itertools.product((-1, 0, 1), repeat=3) if s != (0, 0, 0)]


def _apart_pairs(inside: np.ndarray, labels: np.ndarray, joined: np.ndarray) -> int:
    """Brute force: inside point pairs one cell apart whose parts are not joined."""
    n = 0
    for p in zip(*np.nonzero(inside), strict=True):
        for s in NEIGHBOURS:
            q = tuple(np.add(p, s))
            if all(0 <= q[a] < inside.shape[a] for a in range(3)) and inside[q]:
                n += not joined[labels[p], labels[q]]
    return n


def _random_lattice(seed: int, shape=(7, 8, 9), parts: int = 4):
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, shape).astype(np.float32)
    values[rng.uniform(size=shape) < 0.2] = 1.0  # ties, as deep inside two parts
    labels = rng.integers(0, parts, shape).astype(np.uint8)
    joined = np.eye(parts, dtype=bool)
    joined[0, 1] = joined[1, 0] = True
    return values, labels, joined


def test_part_tables() -> None:
    names = dict(enumerate(PART_NAMES))
    # symmetric, a part joined to itself, adjacency inside the joined pairs
    for table in (ADJACENT_PARTS, JOINED_PARTS):
        assert (table == table.T).all() and table.diagonal().all()
    assert (JOINED_PARTS >= ADJACENT_PARTS).all()
    # a finger's bones are adjacent in a chain; the palm holds every first bone
    index = [PART_NAMES.index(f"index{k}") for k in (1, 2, 3)]
    assert ADJACENT_PARTS[0, index[0]] and ADJACENT_PARTS[index[0], index[1]]
    assert not ADJACENT_PARTS[index[0], index[2]]
    # touching skin: a fingertip and the palm, a fingertip and the thumb, two fingers' tips
    for a, b in (("index3", "palm"), ("middle3", "thumb1"), ("index3", "middle3"),
                 ("thumb3", "index2")):  # fmt: skip
        assert not JOINED_PARTS[PART_NAMES.index(a), PART_NAMES.index(b)], (a, b)
    # the webs of the base
    assert JOINED_PARTS[PART_NAMES.index("index1"), PART_NAMES.index("middle1")]
    assert JOINED_PARTS[PART_NAMES.index("thumb1"), PART_NAMES.index("index1")]
    assert len(names) == len(JOINED_PARTS)


@pytest.mark.parametrize("seed", range(5))
def test_contact_cells_match_brute_force(seed: int) -> None:
    values, labels, joined = _random_lattice(seed)
    inside = values >= 0.5
    cells = contact_cells(inside, labels, joined)
    expected = np.zeros(cells.shape, dtype=bool)
    for c in np.ndindex(cells.shape):
        corners = [tuple(np.add(c, o)) for o in itertools.product((0, 1), repeat=3)]
        parts = {int(labels[p]) for p in corners if inside[p]}
        expected[c] = any(not joined[a, b] for a in parts for b in parts)
    np.testing.assert_array_equal(cells, expected)


@pytest.mark.parametrize("seed", range(5))
def test_keep_apart_leaves_no_pair_and_takes_only_touching_points(seed: int) -> None:
    values, labels, joined = _random_lattice(seed)
    before = values.copy()
    inside = before >= 0.5
    assert _apart_pairs(inside, labels, joined) > 0
    taken = keep_apart(values, labels, joined, 0.5)
    after = values >= 0.5
    assert _apart_pairs(after, labels, joined) == 0
    changed = values != before
    assert taken == changed.sum() and (values[changed] == CARVED).all()
    # every point taken was inside, next to an inside point of a part it is not joined to
    # (a random lattice has outside points everywhere: no taken region is enclosed)
    for p in zip(*np.nonzero(changed), strict=True):
        assert inside[p]
        assert any(
            all(0 <= q[a] < inside.shape[a] for a in range(3))
            and inside[q]
            and not joined[labels[p], labels[q]]
            for q in (tuple(np.add(p, s)) for s in NEIGHBOURS)
        )
    # nothing to do twice
    assert keep_apart(values, labels, joined, 0.5) == 0


def test_keep_apart_needs_a_contiguous_lattice() -> None:
    values, labels, joined = _random_lattice(0)
    with pytest.raises(ValueError, match="contiguous"):
        keep_apart(values[:, ::2], labels[:, ::2], joined, 0.5)


def _balls(centres, radii, n: int = 48):
    """Part probabilities of balls on an ``n^3`` lattice over [-1, 1]^3: (max, argmax)."""
    axis = np.linspace(-1.0, 1.0, n)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)
    distance = np.linalg.norm(grid[..., None, :] - np.asarray(centres), axis=-1) - radii
    probs = 1.0 / (1.0 + np.exp(20.0 * distance))
    return probs.max(-1).astype(np.float32), probs.argmax(-1).astype(np.uint8)


def _topology(values: np.ndarray) -> tuple[int, list[int]]:
    stats = body_stats(mesh_from_grid(values, -np.ones(3), np.ones(3), 0.5))
    return stats.count, stats.genus.tolist()


@pytest.mark.parametrize(
    "offset", [(0.5, 0.0, 0.0), (0.4, 0.3, 0.0), (0.45, 0.2, -0.25), (0.3, 0.3, 0.3)]
)
def test_two_overlapping_balls_come_apart(offset) -> None:
    values, labels = _balls([(-0.25, 0, 0), np.subtract(offset, (0.25, 0, 0))], [0.45, 0.4])
    assert _topology(values) == (1, [0])
    # joined: still one ball-pair body
    same = values.copy()
    assert keep_apart(same, labels, np.ones((2, 2), dtype=bool), 0.5) == 0
    # not joined: two bodies of genus 0, the gap under two lattice steps
    keep_apart(values, labels, np.eye(2, dtype=bool), 0.5)
    assert _topology(values) == (2, [0, 0])


def test_a_ring_of_three_parts_opens_where_two_only_touch() -> None:
    # three capsules in a triangle, A (part 0), B (1) and C (2): C meets A and B at
    # joints (joined), A and B meet without being joined (a fingertip on the palm)
    ends = [(-0.5, -0.4, 0.0), (0.5, -0.4, 0.0), (0.0, 0.5, 0.0)]
    n = 56
    axis = np.linspace(-1.0, 1.0, n)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)
    probs = []
    for a, b in ((0, 2), (1, 2), (0, 1)):
        p, q = np.asarray(ends[a]), np.asarray(ends[b])
        t = np.clip(((grid - p) @ (q - p)) / ((q - p) @ (q - p)), 0.0, 1.0)
        distance = np.linalg.norm(grid - (p + t[..., None] * (q - p)), axis=-1) - 0.12
        probs.append(1.0 / (1.0 + np.exp(25.0 * distance)))
    probs = np.stack(probs, -1)
    values = probs.max(-1).astype(np.float32)
    labels = probs.argmax(-1).astype(np.uint8)
    assert _topology(values) == (1, [1])  # merged: a ring
    joined = np.eye(3, dtype=bool)
    joined[0, 2] = joined[2, 0] = joined[1, 2] = joined[2, 1] = True
    # the ring opens where A and B meet: one body, a U
    keep_apart(values, labels, joined, 0.5)
    assert _topology(values) == (1, [0])


def test_hierarchical_extraction_keeps_parts_apart_like_the_dense_one() -> None:
    # ball 0 overlaps ball 1 (not joined) and ball 2 (joined) on its other side
    centres = np.array([(-0.1, 0.0, 0.0), (0.33, 0.05, 0.02), (-0.35, 0.3, 0.05)])
    radii = np.array([0.3, 0.25, 0.2])

    def fn(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.linalg.norm(points[:, None, :] - centres, axis=-1) - radii
        probs = 1.0 / (1.0 + np.exp(40.0 * d))
        return probs.max(-1), probs.argmax(-1)

    joined = np.eye(3, dtype=bool)
    joined[0, 2] = joined[2, 0] = True
    contacts = PartContacts(joined, np.eye(3, dtype=bool))
    box = (-np.ones(3), np.ones(3))
    dense = lattice_grid(fn, *box, resolution=64, hierarchical=False, contacts=contacts)
    fine = lattice_grid(fn, *box, resolution=64, coarse_resolution=8, contacts=contacts)
    np.testing.assert_array_equal(dense.values >= 0.5, fine.values >= 0.5)
    assert (dense.values == CARVED).sum() > 0
    stats = body_stats(fine.mesh(0.5))
    # ball 1 comes off balls 0 + 2 (joined)
    assert stats.count == 2 and stats.genus.tolist() == [0, 0]


def test_the_shipped_models_fist_is_one_body_of_genus_0(shipped_halo) -> None:
    from halohand.handmodel.keyposes import load_key_poses

    fist = next(p for p in load_key_poses() if p.name == "fist")
    merged = shipped_halo.reconstruct(fist.keypoints, units="m", resolution=128)
    apart = shipped_halo.reconstruct(fist.keypoints, units="m", resolution=128, touching="apart")
    a, b = body_stats(merged), body_stats(apart)
    # the fingertips fuse with the palm unless kept apart
    assert a.count == 1 and a.genus[0] > 0
    assert b.count == 1 and b.genus[0] == 0
    # the same hand: the gaps are under two lattice steps thick
    assert abs(apart.volume - merged.volume) < 0.02 * merged.volume
    # part colours still come with the vertices
    assert len(apart.vertex_attributes["part"]) == len(apart.vertices)


def test_touching_must_be_merge_apart_or_a_table(shipped_halo) -> None:
    from halohand.handmodel.keyposes import load_key_poses

    fist = next(p for p in load_key_poses() if p.name == "fist")
    with pytest.raises(HalohandInputError, match="touching"):
        shipped_halo.reconstruct(fist.keypoints, units="m", resolution=64, touching="glue")
    with pytest.raises(HalohandInputError, match=r"\[16, 16\]"):
        small = PartContacts(np.eye(3, dtype=bool), np.eye(3, dtype=bool))
        shipped_halo.reconstruct(fist.keypoints, units="m", resolution=64, touching=small)
    # a table of its own: every part joined keeps nothing apart
    merged = shipped_halo.reconstruct(fist.keypoints, units="m", resolution=128)
    everything = PartContacts(np.ones((16, 16), dtype=bool), ADJACENT_PARTS)
    joined = shipped_halo.reconstruct(
        fist.keypoints, units="m", resolution=128, touching=everything
    )
    assert body_stats(joined).genus[0] == body_stats(merged).genus[0] > 0


def test_hand_contacts_are_the_skeletons_tables() -> None:
    assert HAND_CONTACTS.joined is JOINED_PARTS
    assert HAND_CONTACTS.adjacent is ADJACENT_PARTS


def test_only_points_taken_apart_escape_the_bubble_rule() -> None:
    # one outside lattice point inside a ball: filled back as a bubble, unless it was taken
    # outside on purpose (CARVED); two-hand separation's negative values are filled as ever
    values, _ = _balls([(0.0, 0.0, 0.0)], [0.6], n=33)
    centre = (16, 16, 16)
    counts = {}
    for value in (0.1, -0.3, CARVED):
        grid = values.copy()
        grid[centre] = value
        counts[value] = body_stats(mesh_from_grid(grid, -np.ones(3), np.ones(3), 0.5)).count
    assert counts == {0.1: 1, -0.3: 1, CARVED: 2}


def test_a_part_inside_another_is_not_hollowed_out() -> None:
    # a small ball of part 1 wholly inside a large ball of part 0, not joined: taking the
    # small one's rim outside would separate nothing and leave a hollow; it stays merged
    values, labels = _balls([(0.0, 0.0, 0.0)], [0.6], n=40)
    axis = np.linspace(-1.0, 1.0, 40)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)
    labels[np.linalg.norm(grid - (0.05, 0.0, 0.0), axis=-1) < 0.25] = 1
    before = values.copy()
    assert keep_apart(values, labels, np.eye(2, dtype=bool), 0.5) == 0
    np.testing.assert_array_equal(values, before)
    assert _topology(values) == (1, [0])
