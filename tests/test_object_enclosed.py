"""Space an object encloses (``objects/enclosed.py``) and the filled signed-distance grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from halohand.objects.enclosed import enclosed_mask, filled_signed_distance, sphere_directions
from halohand.objects.registry import load_object

N = 40  # grid points per axis of the voxel shapes below


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, z = np.meshgrid(*(np.arange(N),) * 3, indexing="ij")
    return x, y, z


def _cup(open_top: bool) -> np.ndarray:
    """A square cup, 2 cells thick, cells 10..29 in x and y, 5..34 in z (open at the top)."""
    x, y, z = _grid()
    outer = (x >= 10) & (x < 30) & (y >= 10) & (y < 30) & (z >= 5) & (z < 35)
    inner = (x >= 12) & (x < 28) & (y >= 12) & (y < 28) & (z >= 7) & (z < (40 if open_top else 33))
    return outer & ~inner


def test_directions_are_unit_and_spread() -> None:
    d = sphere_directions(48)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-12)
    assert np.linalg.norm(d.mean(0)) < 0.05
    # evenly spread: every direction has a neighbour within 35 degrees, none closer than 15
    cos = d @ d.T - 2 * np.eye(48)
    nearest = np.degrees(np.arccos(np.clip(cos.max(1), -1, 1)))
    assert (nearest < 35).all() and (nearest > 15).all()


def test_closed_box_encloses_its_inside_and_nothing_outside() -> None:
    occ = _cup(open_top=False)
    m = enclosed_mask(occ, np.ones_like(occ))
    x, y, z = _grid()
    cavity = (x >= 12) & (x < 28) & (y >= 12) & (y < 28) & (z >= 7) & (z < 33)
    assert m[cavity].all()
    assert not m[~cavity].any()


def test_open_cup_encloses_its_lower_part_only() -> None:
    occ = _cup(open_top=True)
    m = enclosed_mask(occ, np.ones_like(occ))
    assert m[20, 20, 10] and m[20, 20, 20]  # deep in the cup: the mouth is a small share
    assert not m[20, 20, 33]  # at the rim: half the sky is open
    assert not m[5, 20, 20] and not m[20, 20, 38]  # beside it and above it
    assert not m[occ].any()


def test_slab_encloses_nothing() -> None:
    x, y, z = _grid()
    occ = (z >= 18) & (z < 21)
    assert not enclosed_mask(occ, np.ones_like(occ)).any()


def test_candidates_limit_the_test() -> None:
    occ = _cup(open_top=False)
    none = enclosed_mask(occ, np.zeros_like(occ))
    assert not none.any()


def test_filled_distance_is_negative_in_the_cavity_and_exact_elsewhere() -> None:
    occ = _cup(open_top=True)
    m = enclosed_mask(occ, np.ones_like(occ))
    # the exact distance of the voxel shape, in cells, from its own transforms
    from scipy.ndimage import distance_transform_edt

    d = np.where(occ, -(distance_transform_edt(occ) - 0.5), distance_transform_edt(~occ) - 0.5)
    f = filled_signed_distance(d, m, (1.0, 1.0, 1.0))
    assert f[20, 20, 15] < -3.0 and d[20, 20, 15] > 3.0  # cavity: inside the filled solid
    far = np.zeros_like(occ)
    far[:4], far[-4:] = True, True  # 6+ cells from the cup's sides
    np.testing.assert_array_equal(f[far], d[far])
    assert (f <= d + 1e-12).all()  # filling only adds solid
    np.testing.assert_array_equal(filled_signed_distance(d, np.zeros_like(m), (1, 1, 1)), d)


@pytest.mark.parametrize("oid", ["box_0", "torus_0"])
def test_solid_objects_keep_their_grid(oid: str) -> None:
    obj = load_object(oid)
    a = obj.sdf_grid(24, 0.02)
    b = obj.sdf_grid(24, 0.02, fill_enclosed=True)
    assert torch.equal(a.values, b.values)
    assert b is a  # one grid: the optimiser evaluates it once per step


def test_cup_grid_is_filled_inside() -> None:
    """A hollow cup's grid reads negative halfway down its cavity once filled, positive
    before; outside the cup both agree."""
    obj = load_object("cup_0")
    p = obj.params
    # the body's axis: the handle is on +x, the object centred on its bounding box
    cx = obj.vertices[:, 0].min() + p["radius"]
    z = obj.vertices[:, 2].min() + 0.4 * p["height"]
    q = torch.tensor([[cx, 0.0, z], [cx - p["radius"] - 0.02, 0.0, z]], dtype=torch.float64)
    plain = obj.sdf_grid(48, 0.03)(q)
    filled = obj.sdf_grid(48, 0.03, fill_enclosed=True)(q)
    assert plain[0] > 0.02 and filled[0] < -0.01
    assert abs(float(plain[1] - filled[1])) < 1e-9
