"""Grasp groundwork: procedural objects, grasp metrics against closed forms, the grasp data
engine (tiny run, resume) and the CLI's bad-input convention."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import trimesh
from halo_fakes import run_cli

from halohand.core.errors import HalohandInputError
from halohand.grasp.metrics import (
    contact_ratio,
    diversity,
    intersection_volume,
    kmeans_diversity,
    min_signed_distance,
)
from halohand.grasp.synthesis import SynthesisConfig, load_grasps, synthesize
from halohand.objects.registry import (
    KINDS,
    TEST_OBJECTS,
    WIDE_KINDS,
    load_object,
    make_object,
    object_ids,
    parse_object_list,
)

# -- objects ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_objects_watertight_centred_hand_scale(kind: str) -> None:
    obj = load_object(f"{kind}_0")
    m = obj.mesh
    assert m.is_watertight and m.is_winding_consistent and m.volume > 0
    np.testing.assert_allclose(m.bounds.mean(0), 0.0, atol=1e-9)
    assert 0.015 < m.extents.min() and m.extents.max() < 0.2  # metres, graspable
    pts, normals = obj.surface_points(600, seed=1)
    assert pts.shape == normals.shape == (600, 3)
    assert np.abs(obj.signed_distance(pts)).max() < 1e-6
    # Slightly out along the normal is outside, slightly in is inside.
    assert not obj.contains(pts + 1e-3 * normals).any()
    assert obj.contains(pts - 5e-4 * normals).mean() > 0.97


def test_registry_split_and_determinism() -> None:
    assert len(object_ids()) == len(object_ids("train")) + len(object_ids("test"))
    assert sorted(object_ids("test")) == sorted(TEST_OBJECTS) and len(TEST_OBJECTS) == 6
    assert not set(object_ids("train")) & set(TEST_OBJECTS)
    assert load_object("box_4").split == "test" and load_object("box_0").split == "train"
    val = object_ids("val")
    assert len(val) == 7 and not set(val) & set(object_ids("all"))  # neither train nor test
    assert load_object("mug_5").split == "val" and parse_object_list("val") == val
    a, b = make_object("bottle", 7), make_object("bottle", 7)
    np.testing.assert_array_equal(a.vertices, b.vertices)
    assert parse_object_list("box_0, mug_1") == ["box_0", "mug_1"]
    for bad in ("box_9", "teapot_0", "box"):
        with pytest.raises(HalohandInputError):
            load_object(bad)


@pytest.mark.parametrize("kind", WIDE_KINDS)
def test_wide_objects_are_closed_solids_of_their_shape(kind: str) -> None:
    """The kinds of split "wide": closed, outward, centred; the cup is one handle's genus
    (Euler characteristic 0) with a thin wall, the rest genus 0; plates and books thin,
    balls, plates and books larger than the training spheres and boxes."""
    obj = load_object(f"{kind}_0")
    m = obj.mesh
    assert obj.split == "train" and obj.kind == kind
    assert m.is_watertight and m.is_winding_consistent and m.volume > 0
    np.testing.assert_allclose(m.bounds.mean(0), 0.0, atol=1e-9)
    assert m.euler_number == (0 if kind == "cup" else 2)
    ext = np.sort(m.extents)
    if kind in ("plate", "book"):
        assert ext[0] < 0.036 and ext[2] > 0.1
    if kind == "ball":
        assert ext[0] > 0.105  # the training spheres are at most 10 cm across
    if kind == "cup":
        # hollow: the centre of the cavity, half-way up, is outside the solid
        assert not obj.contains(np.array([[0.0, 0.0, 0.05]])).any()
        assert m.volume < 0.35 * m.convex_hull.volume
    pts, normals = obj.surface_points(400, seed=1)
    assert np.abs(obj.signed_distance(pts)).max() < 1e-6
    assert not obj.contains(pts + 1e-3 * normals).any()


def test_wide_split_is_training_only_and_keeps_the_registry() -> None:
    wide = object_ids("wide")
    assert len(wide) == len(WIDE_KINDS) * 5 and wide[0] == "plate_0"
    assert object_ids("train_wide") == object_ids("train") + wide
    assert not set(wide) & set(object_ids("all")) and not set(wide) & set(object_ids("val"))
    assert parse_object_list("wide") == wide
    # the procedural registry and its splits are as before
    assert len(object_ids("all")) == 35 and len(object_ids("train")) == 29
    for bad in ("plate_5", "cup_9", "plate"):
        with pytest.raises(HalohandInputError):
            load_object(bad)


def test_sdf_grid_matches_exact_near_surface() -> None:
    obj = make_object("box", 3)
    grid = obj.sdf_grid(resolution=32, margin=0.03)
    rng = np.random.default_rng(0)
    pts, normals = obj.surface_points(300, seed=2)
    q = pts + normals * rng.uniform(-0.005, 0.01, size=(300, 1))
    approx = grid(torch.tensor(q)).numpy()
    np.testing.assert_allclose(approx, obj.signed_distance(q), atol=1.5e-3)
    # Far outside the grid the value still grows with the distance.
    far = grid(torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))
    assert float(far) > 0.9
    n = grid.normals(torch.tensor(pts[:50] + 0.002 * normals[:50]))
    assert (n.numpy() * normals[:50]).sum(1).min() > 0.9


# -- metrics ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [(0.02, 0.01, 0.0), (0.005, 0.015, 0.03), (0.05, 0.0, 0.0)])
def test_intersection_volume_of_boxes_is_exact(shift: tuple[float, float, float]) -> None:
    a = trimesh.creation.box(extents=(0.04, 0.04, 0.04))
    b = trimesh.creation.box(extents=(0.04, 0.04, 0.04))
    b.apply_translation(shift)
    expected = np.prod(np.maximum(0.04 - np.abs(shift), 0.0)) * 1e6  # cm^3
    got = intersection_volume(a.vertices, a.faces, b.vertices, b.faces)
    assert got == pytest.approx(expected, abs=1e-9)


def test_intersection_volume_of_spheres_matches_lens() -> None:
    r1, r2, d = 0.03, 0.025, 0.04
    s1 = trimesh.creation.icosphere(4, r1)
    s2 = trimesh.creation.icosphere(4, r2)
    s2.apply_translation((d, 0, 0))
    lens = (
        math.pi * (r1 + r2 - d) ** 2
        * (d * d + 2 * d * r2 - 3 * r2 * r2 + 2 * d * r1 + 6 * r1 * r2 - 3 * r1 * r1)
        / (12 * d) * 1e6
    )  # fmt: skip
    got = intersection_volume(s1.vertices, s1.faces, s2.vertices, s2.faces)
    assert got == pytest.approx(lens, rel=0.02)


def test_an_empty_hand_mesh_neither_intersects_nor_touches() -> None:
    box = trimesh.creation.box(extents=(0.04, 0.04, 0.04))
    empty_v, empty_f = np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    assert intersection_volume(empty_v, empty_f, box.vertices, box.faces) == 0.0
    assert min_signed_distance(empty_v, box.vertices, box.faces) == float("inf")


def test_min_signed_distance_and_contact_ratio() -> None:
    box = trimesh.creation.box(extents=(0.04, 0.04, 0.04))
    pts = np.array([[0.0, 0.0, 0.015], [0.0, 0.0, 0.05]])
    assert min_signed_distance(pts, box.vertices, box.faces) == pytest.approx(-0.005)
    assert min_signed_distance(pts[1:], box.vertices, box.faces) == pytest.approx(0.03)
    assert contact_ratio(np.array([-0.001, 0.002, -0.0, -1e-6])) == pytest.approx(0.5)
    with pytest.raises(HalohandInputError):
        contact_ratio(np.zeros(0))


def test_kmeans_diversity_closed_form() -> None:
    # 3 tight, far-apart clusters of 3 points each at distances 0 and 0.1 from their mean:
    # uniform histogram -> entropy ln 3; mean distance to the centre (0 + 0.1 + 0.1) / 3.
    # A single run from 3 random points finds it only when they fall in different clusters
    # (27 of 84 draws); the lowest distortion of 20 runs finds it.
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 63)) * 100.0
    e = np.zeros(63)
    e[0] = 0.1
    x = np.concatenate([centres, centres + e, centres - e])
    for seed in range(5):
        ent, size = kmeans_diversity(x, k=3, seed=seed)
        assert ent == pytest.approx(math.log(3), abs=1e-9)
        assert size == pytest.approx(0.2 / 3, rel=1e-4)  # vq's distances: ~1e-5 relative
    single = [kmeans_diversity(x, k=3, seed=s, restarts=1)[0] for s in range(20)]
    assert min(single) < math.log(3) - 0.1  # one run alone can merge two clusters
    with pytest.raises(HalohandInputError):
        kmeans_diversity(x[:2], k=3)


def test_diversity_ignores_global_pose() -> None:
    from scipy.spatial.transform import Rotation

    from halohand.handmodel import make_source

    rng = np.random.default_rng(0)
    src = make_source("webxr")
    kp = np.stack([src.sample(rng).keypoints for _ in range(24)])
    rots = Rotation.random(24, random_state=1).as_matrix()
    moved = np.einsum("nij,nkj->nki", rots, kp) + rng.normal(size=(24, 1, 3))
    a = diversity(kp, "right", seed=3)
    b = diversity(moved, "right", seed=3)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert 0.0 < a[0] <= math.log(20) and a[1] > 0.0


# -- synthesis --------------------------------------------------------------------------------


def test_tiny_synthesis_is_finite_and_resumes(tmp_path) -> None:
    cfg = SynthesisConfig(batch_size=3, steps=4, max_batches=2, sdf_resolution=24)
    out = tmp_path / "grasps"
    s1 = synthesize(["sphere_1"], 100, out, seed=5, config=cfg, show_progress=False)
    shards = sorted((out / "sphere_1").glob("batch_*.npz"))
    assert len(shards) == 2 and s1["attempts"] == 6
    with np.load(shards[1]) as z:
        assert z["keypoints"].shape == (3, 21, 3) and str(z["side"][0]) == "left"
        for key in ("keypoints", "angles", "translation", "energy", "energy_contact",
                    "energy_penetration", "penetration_mm"):  # fmt: skip
            assert np.isfinite(z[key]).all(), key
    stamps = [p.stat().st_mtime_ns for p in shards]
    s2 = synthesize(["sphere_1"], 100, out, seed=5, config=cfg, show_progress=False)
    assert s2["objects"][0]["shards_reused"] == 2
    assert [p.stat().st_mtime_ns for p in shards] == stamps
    assert json.loads((out / "summary.json").read_text())["attempts"] == 6
    all_rows = load_grasps(out, accepted_only=False)
    assert all_rows["keypoints"].shape == (6, 21, 3)
    assert set(all_rows["object_id"]) == {"sphere_1"}
    with pytest.raises(HalohandInputError, match="other settings"):
        synthesize(["sphere_1"], 100, out, seed=6, config=cfg, show_progress=False)


@pytest.mark.parametrize(
    "args",
    [
        ("--objects", "teapot_0"),
        ("--objects", "box_0", "--n-per-object", "0"),
        ("--objects", "box_0", "--side", "middle"),
        ("--objects", "box_0", "--steps", "zero"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(monkeypatch, capsys, tmp_path, args) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "grasp", "synthesize", "--out", tmp_path / "o",
                           *args)  # fmt: skip
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:")
