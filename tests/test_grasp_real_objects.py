"""Real household meshes (vendored from robosuite 1.5.2) in the grasp object registry, and
:func:`object_from_mesh` for user mesh files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.objects.registry import (
    REAL_DIR,
    REAL_OBJECTS,
    TEST_OBJECTS,
    load_object,
    object_from_mesh,
    object_ids,
    parse_object_list,
)

#: Expected box sides (cm, sorted) after the robosuite XML scale; and which were repaired.
EXPECTED_CM = {
    "real_bottle": (5.511, 5.855, 16.0),
    "real_bread": (4.0, 4.8, 4.8),
    "real_can": (5.0, 5.0, 8.0),
    "real_cereal": (3.0, 10.0, 15.0),
    "real_lemon": (4.0, 4.0, 6.75),
    "real_milk": (3.972, 3.972, 14.4),
}
REPAIRED = {"real_bottle", "real_can"}


def test_real_split_is_separate_from_the_procedural_registry() -> None:
    real = object_ids("real")
    assert real == list(REAL_OBJECTS) == list(EXPECTED_CM)
    assert all(o.startswith("real_") for o in real)
    # train / test / all are the procedural objects only, unchanged.
    assert not set(real) & set(object_ids("all"))
    assert sorted(object_ids("test")) == sorted(TEST_OBJECTS)
    assert len(object_ids("all")) == len(object_ids("train")) + len(object_ids("test")) == 35
    assert parse_object_list("real") == real
    assert parse_object_list("real_can, box_0") == ["real_can", "box_0"]
    with pytest.raises(HalohandInputError):
        load_object("real_teapot")
    for oid in real:  # vendored files and the licence travel with the package
        assert (REAL_DIR / REAL_OBJECTS[oid][0]).is_file()
    assert (REAL_DIR / "LICENSE-robosuite.txt").is_file() and (REAL_DIR / "NOTICE").is_file()


@pytest.mark.parametrize("oid", list(EXPECTED_CM))
def test_real_object_is_a_centred_outward_hand_scale_solid(oid: str) -> None:
    obj = load_object(oid)
    m = obj.mesh
    assert obj.split == "real" and obj.kind == "mesh" and obj.object_id == oid
    assert m.is_watertight and m.is_winding_consistent and m.body_count == 1
    assert m.volume > 0  # outward winding
    np.testing.assert_allclose(m.bounds.mean(0), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.sort(m.extents) * 100, EXPECTED_CM[oid], atol=0.01)
    assert m.extents[2] >= m.extents.max() - 1e-9  # long axis z (bread: x and z tie)
    assert 0.04 <= m.extents.max() <= 0.2 and m.extents.min() >= 0.02  # metres, graspable
    assert bool(obj.repairs) == (oid in REPAIRED)
    np.testing.assert_array_equal(obj.offset_m, 0.0)
    # Every one is nearly convex (volume >= 0.93 of its hull): the centroid is inside,
    # well away from the surface.
    assert m.volume / m.convex_hull.volume > 0.93
    assert obj.signed_distance(m.center_mass[None])[0] < -0.01
    assert obj.contains(np.zeros((1, 3)))[0]
    pts, normals = obj.surface_points(300, seed=1)
    assert np.abs(obj.signed_distance(pts)).max() < 1e-6
    assert obj.contains(pts + 1e-3 * normals).mean() < 0.01  # concave creases aside
    assert obj.contains(pts - 5e-4 * normals).mean() > 0.97


def test_real_object_sdf_grid_agrees_with_the_exact_distance() -> None:
    import torch

    obj = load_object("real_lemon")
    grid = obj.sdf_grid(resolution=24, margin=0.02)
    pts, normals = obj.surface_points(100, seed=3)
    q = pts + 0.004 * normals
    np.testing.assert_allclose(grid(torch.tensor(q)).numpy(), obj.signed_distance(q), atol=2.5e-3)


def test_object_from_mesh_box_in_mm_auto_units_and_offset() -> None:
    box = trimesh.creation.box(extents=(40.0, 60.0, 100.0))  # millimetres
    box.apply_translation((5.0, -7.0, 30.0))
    obj = object_from_mesh(box, units="auto", orient="keep")  # the file's axes: see below
    assert obj.unit_scale == 0.001 and obj.kind == "mesh" and obj.split == "adhoc"
    np.testing.assert_allclose(obj.mesh.extents, (0.04, 0.06, 0.1), atol=1e-12)
    np.testing.assert_allclose(obj.mesh.bounds.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(obj.offset_m, (0.005, -0.007, 0.03), atol=1e-12)
    np.testing.assert_allclose(obj.mesh.volume, 0.04 * 0.06 * 0.1, rtol=1e-9)
    assert obj.repairs == () and obj.signed_distance(np.zeros((1, 3)))[0] == pytest.approx(-0.02)
    # Back to the input frame and units.
    back = (obj.vertices + obj.offset_m) / obj.unit_scale
    np.testing.assert_allclose(np.sort(back, 0), np.sort(np.asarray(box.vertices), 0), atol=1e-9)
    # Turned to its principal frame (the default; 60 mm -> x, 40 mm -> y) and back alike.
    turned = object_from_mesh(box, units="auto")
    np.testing.assert_allclose(turned.mesh.extents, (0.06, 0.04, 0.1), atol=1e-12)
    back = turned.to_file_frame(turned.vertices)
    np.testing.assert_allclose(np.sort(back, 0), np.sort(np.asarray(box.vertices), 0), atol=1e-9)
    # The input is not modified; explicit units and no centring.
    assert box.bounds[0, 2] == pytest.approx(-20.0)
    raw = object_from_mesh(box, units="mm", center=False, orient="keep")
    np.testing.assert_allclose(raw.mesh.bounds, box.bounds / 1000.0, atol=1e-12)
    np.testing.assert_array_equal(raw.offset_m, 0.0)


def test_object_from_mesh_file_units_and_repairs(tmp_path: Path) -> None:
    cyl = trimesh.creation.cylinder(radius=3.0, height=12.0, sections=32)  # centimetres
    path = tmp_path / "cup.stl"
    cyl.export(path)
    obj = object_from_mesh(path)
    assert obj.object_id == "cup" and obj.unit_scale == 0.01 and obj.source == str(path)
    np.testing.assert_allclose(obj.mesh.extents[2], 0.12, atol=1e-6)
    # Inward winding is turned outward; a missing triangle is filled.
    inverted = trimesh.Trimesh(cyl.vertices / 100.0, cyl.faces[:, ::-1])
    fixed = object_from_mesh(inverted, units="m")
    assert fixed.mesh.volume > 0 and fixed.repairs
    holed = trimesh.creation.box(extents=(0.04, 0.05, 0.1))
    holed.update_faces(np.arange(len(holed.faces)) != 0)
    fixed = object_from_mesh(holed)
    assert fixed.mesh.is_watertight and any("filled" in r for r in fixed.repairs)


def _one_line_error(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg
    return msg


def test_object_from_mesh_rejects_bad_input(tmp_path: Path) -> None:
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.04)
    cut = sphere.copy()
    cut.update_faces(cut.triangles_center[:, 2] < 0.03)  # a cap cut off: a 40-edge hole
    with pytest.raises(HalohandInputError) as exc:
        object_from_mesh(cut)
    assert "not a closed surface" in _one_line_error(exc)
    empty = tmp_path / "empty.stl"
    empty.write_bytes(b"")
    with pytest.raises(HalohandInputError) as exc:
        object_from_mesh(empty)
    assert "empty" in _one_line_error(exc)
    with pytest.raises(HalohandInputError):
        object_from_mesh(trimesh.Trimesh())
    with pytest.raises(HalohandInputError) as exc:
        object_from_mesh(tmp_path / "missing.obj")
    assert "no such mesh file" in _one_line_error(exc)
    text = tmp_path / "notes.txt"
    text.write_text("not a mesh\n")
    with pytest.raises(CorruptFileError):
        object_from_mesh(text)
    bad = sphere.copy()
    v = bad.vertices.copy()
    v[0, 0] = np.nan
    with pytest.raises(HalohandInputError) as exc:
        object_from_mesh(trimesh.Trimesh(v, bad.faces, process=False))
    assert "non-finite" in _one_line_error(exc)
    for mesh, units in ((sphere, "km"), (sphere, "mm"), (sphere.copy().apply_scale(10.0), "auto")):
        with pytest.raises(HalohandInputError) as exc:
            object_from_mesh(mesh, units=units)
        _one_line_error(exc)
    two = trimesh.util.concatenate([sphere, sphere.copy().apply_translation((0.1, 0.0, 0.0))])
    with pytest.raises(HalohandInputError) as exc:
        object_from_mesh(two)
    assert "2 separate parts" in _one_line_error(exc)
