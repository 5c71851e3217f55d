"""Touching parts kept apart on the extraction lattice: one body where skin touches skin.

HALO's occupancy is the max over its parts, so wherever two parts' fields overlap, the
mesh joins them. That is right where tissue joins (a part and its parent, the webs of the
palm: :data:`~halohand.skeleton.bones.JOINED_PARTS`) and wrong where skin only touches
skin: a curled fingertip on the palm, a thumb folded over the fingers, two fingers
pressed together. There the surfaces fuse into tunnels (genus 2-6 on the fists of the
demo's key poses and the shipped photos) that no real hand has.

With the parts kept apart, every extraction level also refines the cells with inside
corners of two parts that are not adjacent (:func:`contact_cells`), so contacts (and thin
gaps between fingers) are evaluated on the final lattice; there, :func:`keep_apart` takes
the less inside point of every pair of inside points one cell apart whose parts are not
joined outside (value :data:`CARVED`). Marching cubes then closes each part's surface on
its own side: the parts touch with a gap under one lattice step (~1 mm at 256^3 for an
adult hand) instead of merging.

All functions take ``[A, B, C]`` lattices: ``inside`` bool, ``labels`` integer part
indices (the argmax part at every lattice point), ``joined`` ``[K, K]`` bool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from halohand.skeleton.bones import ADJACENT_PARTS, JOINED_PARTS

#: The value given to the lattice points taken outside: below any occupancy, and below
#: any value two-hand separation makes (>= -0.5), so meshing tells them apart (see
#: :func:`keep_apart`).
CARVED = -1.0


@dataclass(frozen=True, eq=False)
class PartContacts:
    """Which parts merge where they meet, and where the extraction looks closer.

    Attributes:
        joined: ``[K, K]`` bool, the pairs whose surfaces merge where they meet; others
            are kept apart (:func:`keep_apart`).
        adjacent: ``[K, K]`` bool, the pairs that meet in every shape, at a joint (a subset
            of ``joined``). Every extraction level refines the cells with inside corners of
            two parts not adjacent (:func:`contact_cells`): a contact, or a thin gap between
            two fingers that a coarse lattice would miss, lies there.
    """

    joined: np.ndarray
    adjacent: np.ndarray


#: HALO's 16 parts: tissue joins adjacent parts and the base of the hand
#: (:data:`~halohand.skeleton.bones.JOINED_PARTS`).
HAND_CONTACTS = PartContacts(JOINED_PARTS, ADJACENT_PARTS)


def neighbours(axis: int) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Indexes of a 3D array without its last / its first entry along ``axis``: entry ``i``
    of the first view and entry ``i`` of the second are neighbours, the two ends of one
    lattice edge."""
    lower = [slice(None)] * 3
    upper = [slice(None)] * 3
    lower[axis], upper[axis] = slice(None, -1), slice(1, None)
    return tuple(lower), tuple(upper)


def _apart_masks(joined: np.ndarray) -> np.ndarray:
    """``[2^K]`` bool: whether a set of parts (bit k: part k) holds two not joined."""
    k = len(joined)
    masks = np.arange(1 << k, dtype=np.int64)
    bits = (masks[:, None] >> np.arange(k)) & 1
    out = np.zeros(1 << k, dtype=bool)
    for a in range(k):
        for b in range(a + 1, k):
            if not joined[a, b]:
                out |= (bits[:, a] & bits[:, b]).astype(bool)
    return out


_MASK_CACHE: dict[bytes, np.ndarray] = {}


def contact_cells(inside: np.ndarray, labels: np.ndarray, joined: np.ndarray) -> np.ndarray:
    """``[A-1, B-1, C-1]`` bool: the cells with inside corners of two parts not joined
    (along an edge or across a diagonal; ``joined`` may be any ``[K, K]`` bool table of
    at most 16 parts: each set of parts is looked up in a table of them all).
    """
    k = len(joined)
    if k > 16:
        raise ValueError(f"contact_cells takes at most 16 parts, got {k}")
    key = np.packbits(joined).tobytes()
    table = _MASK_CACHE.get(key)
    if table is None:
        table = _MASK_CACHE[key] = _apart_masks(joined)
    # the set of parts of each cell's inside corners, as bits: OR along the three axes
    sets = np.left_shift(np.uint16(1), labels.astype(np.uint16))
    sets[~inside] = 0
    for axis in range(3):
        lower, upper = neighbours(axis)
        sets = sets[lower] | sets[upper]
    # a single part (a power of two) or none cannot touch: the table is read only where
    # there are two or more
    several = np.flatnonzero(sets & (sets - np.uint16(1)))
    cells = np.zeros(sets.shape, dtype=bool)
    cells.reshape(-1)[several] = table[sets.reshape(-1)[several]]
    return cells


#: ``[26, 3]`` the steps to a lattice point's 26 neighbours.
_STEPS = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)])[
    np.arange(27) != 13
]


def keep_apart(values: np.ndarray, labels: np.ndarray, joined: np.ndarray, threshold: float) -> int:
    """Take inside lattice points outside until no two parts that are not joined have
    inside points in one lattice cell; in place.

    Args:
        values: ``[A, B, C]`` float occupancy on the lattice; changed in place: the points
            taken outside get :data:`CARVED`.
        labels: ``[A, B, C]`` argmax part of every lattice point.
        joined: ``[K, K]`` bool, the pairs of parts that may merge.
        threshold: the mesh level; a point is inside at ``values >= threshold``.

    Returns:
        how many lattice points were taken outside.

    Of every pair of inside points of parts not joined among each other's 26 neighbours
    (one cell apart), the one less inside is taken (on a tie, which deep in both parts is
    the rule since both values are ~1, the one of the higher part index). Marching cubes
    joins two inside points only through cells whose corners they are, so no surface then
    joins the two parts except through a third part joined to both. A region of taken
    points with no other outside point around it (a part's core inside another's) would
    separate nothing and close a hollow: it is left as it was. :data:`CARVED` lies
    below any occupancy: marching cubes' decider on a cell's face, comparing the products
    of the two diagonals' distances to the level, then never joins two inside corners
    across two taken ones, and :func:`~halohand.inference.extract.mesh_from_grid` does not
    fill them back in as a bubble.
    """
    if not values.flags.c_contiguous:
        raise ValueError("keep_apart changes values in place: they must be C-contiguous")
    inside = values >= threshold
    shape = np.asarray(values.shape)
    # Every such pair has an end with a face neighbour of another part (along the cell
    # path between the two, the part changes somewhere): only those ends are looked at.
    changes = np.zeros(values.shape, dtype=bool)
    for axis in range(3):
        lower, upper = neighbours(axis)
        differ = labels[lower] != labels[upper]
        changes[lower] |= differ
        changes[upper] |= differ
    changes &= inside
    p = np.flatnonzero(changes)
    if len(p) == 0:
        return 0
    flat_values = values.reshape(-1)
    flat_labels = labels.reshape(-1)
    flat_inside = inside.reshape(-1)
    # One step at a time on arrays the size of ``p``: small temporaries are recycled by
    # the allocator, where [len(p), 26] ones cost fresh pages on every call (measured
    # 2-15x slower inside the extraction than on the same lattice again).
    at = np.unravel_index(p, values.shape)
    border = np.zeros(len(p), dtype=bool)
    for axis in range(3):
        border |= (at[axis] == 0) | (at[axis] == shape[axis] - 1)
    on_border = bool(border.any())
    own_label = flat_labels[p]
    own_value = flat_values[p]
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    taken: list[np.ndarray] = []
    for step in _STEPS:
        q = p + int(step @ strides)
        if on_border:  # neighbours beyond the lattice's faces are not there
            beyond = np.zeros(len(p), dtype=bool)
            for axis in np.flatnonzero(step):
                moved = at[axis] + step[axis]
                beyond |= (moved < 0) | (moved >= shape[axis])
            q = np.where(beyond, p, q)  # itself: the same part, never a pair
        other_label = flat_labels[q]
        pair = np.flatnonzero(flat_inside[q] & (other_label != own_label))
        if len(pair) == 0:
            continue
        pair = pair[~joined[own_label[pair], other_label[pair]]]
        a, b = p[pair], q[pair]
        va, vb = own_value[pair], flat_values[b]
        take_b = (vb < va) | ((vb == va) & (other_label[pair] > own_label[pair]))
        taken.append(np.where(take_b, b, a))
    if not taken:
        return 0
    out = np.unique(np.concatenate(taken))
    before = flat_values[out]
    flat_values[out] = CARVED
    # A region of taken points enclosed by inside points separates nothing (the parts
    # stay joined around it) and would close a hollow: it goes back.
    enclosed = _enclosed_regions(out, flat_values, values.shape, threshold)
    flat_values[out[enclosed]] = before[enclosed]
    return int(np.count_nonzero(~enclosed))


def _enclosed_regions(
    taken: np.ndarray, flat_values: np.ndarray, shape: tuple[int, ...], threshold: float
) -> np.ndarray:
    """``[n]`` bool: which of the sorted flat indices ``taken`` (values :data:`CARVED`)
    lie in regions of taken points (joined through their 26 neighbours) with no other
    outside point among their 26 neighbours."""
    n = len(taken)
    size = int(np.prod(shape))
    at = np.stack(np.unravel_index(taken, shape), 1)
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    rows, cols = [], []
    opening = np.zeros(n, dtype=bool)
    for step in _STEPS:
        inside_lattice = np.all((at + step >= 0) & (at + step < np.asarray(shape)), axis=1)
        other = np.where(inside_lattice, taken + int(step @ strides), 0)
        j = np.minimum(np.searchsorted(taken, other), n - 1)
        linked = inside_lattice & (taken[j] == other)
        rows.append(np.flatnonzero(linked))
        cols.append(j[linked])
        value = flat_values[np.clip(other, 0, size - 1)]
        opening |= inside_lattice & (value < threshold) & (value != CARVED)
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    count, region = connected_components(graph, directed=False)
    open_region = np.zeros(count, dtype=bool)
    open_region[region[opening]] = True
    return ~open_region[region]
