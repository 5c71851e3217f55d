"""Grasp types of the data engine (``grasp/taxonomy.py``): type choice from the geometry,
pads on the palmar side, pad contact of produced grasps, determinism and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import trimesh
from halo_fakes import run_cli

from halohand.core.errors import HalohandInputError
from halohand.grasp import synthesis
from halohand.grasp import taxonomy as tx
from halohand.grasp.synthesis import (
    SDF_MARGIN_M,
    SynthesisConfig,
    _capsule_distance,
    _finger_spheres,
    _hand_geometry,
    _model,
    _NearPoints,
    sdf_resolution,
    synthesize,
    synthesize_batch,
)
from halohand.objects.registry import load_object, object_from_mesh
from halohand.skeleton import NUM_PARTS


def _obj(mesh: trimesh.Trimesh, name: str):  # noqa: ANN202
    return object_from_mesh(mesh, units="m", object_id=name, orient="keep")


def _top(shares: dict[str, float]) -> str:
    return max(shares, key=shares.get)


def test_plate_gets_disk_pinch_and_no_wrap() -> None:
    plate = _obj(trimesh.creation.box(extents=[0.15, 0.10, 0.008]), "plate")
    shares = tx.choose_types(tx.analyse(plate))
    assert _top(shares) == "disk_pinch"
    assert "power_wrap" not in shares and "spherical" not in shares
    assert sum(shares.values()) == pytest.approx(1.0)


def test_a_book_is_held_by_its_edge_not_wrapped() -> None:
    book = _obj(trimesh.creation.box(extents=[0.13, 0.18, 0.032]), "book")
    shares = tx.choose_types(tx.analyse(book))
    assert _top(shares) == "disk_pinch" and "power_wrap" not in shares


def test_long_cylinder_gets_a_wrap_about_its_axis() -> None:
    rod = _obj(trimesh.creation.cylinder(radius=0.015, height=0.16, sections=48), "rod")
    geo = tx.analyse(rod)
    assert _top(tx.choose_types(geo)) == "power_wrap"
    assert abs(geo.axes[0] @ [0.0, 0.0, 1.0]) == pytest.approx(1.0, abs=1e-3)
    assert geo.wrap_axis is not None and abs(geo.wrap_axis[2]) == pytest.approx(1.0, abs=1e-3)
    assert geo.wrap_width == pytest.approx(0.03, abs=0.004)


def test_small_cube_gets_precision_grasps_only() -> None:
    cube = _obj(trimesh.creation.box(extents=[0.02, 0.02, 0.02]), "cube")
    assert set(tx.choose_types(tx.analyse(cube))) <= {"precision_pinch", "tripod"}


def test_large_ball_gets_spherical_and_a_handled_mug_a_hook() -> None:
    ball = _obj(trimesh.creation.icosphere(3, radius=0.06), "ball")
    assert tx.choose_types(tx.analyse(ball)) == {"spherical": 1.0}
    mug = load_object("mug_0")  # a cup with a ring handle (genus 1)
    geo = tx.analyse(mug)
    assert geo.handle is not None and geo.handle.radius >= 0.008
    assert "hook" in tx.choose_types(geo)
    # The hole is outside the cup: its centre is not inside the object.
    assert mug.signed_distance(geo.handle.centre[None])[0] > 0.0


def test_a_solid_without_a_hole_has_no_handle() -> None:
    box = _obj(trimesh.creation.box(extents=[0.08, 0.05, 0.04]), "box")
    assert tx.find_handle(box) is None


def test_contact_points_lie_on_the_palmar_side() -> None:
    model = _model()
    tpl = model.template
    rest = model(torch.zeros(1, 15, 3), torch.ones(1, NUM_PARTS), torch.ones(1), torch.ones(1),
                 with_vertices=True)  # fmt: skip
    kp, verts = rest.keypoints[0].numpy(), rest.vertices[0].numpy()
    idx = tx.contact_vertices()
    for name, (finger, bone, t, side) in tx.CONTACT_POINTS.items():
        k = tx._FINGER_KP[finger]
        a, b = kp[k[bone - 1]], kp[k[bone]]
        off = verts[idx[name]] - (a + t * (b - a))
        off -= (off @ (b - a)) / ((b - a) @ (b - a)) * (b - a)
        if side == "palmar":
            want = -tpl.rest_frames[tx._WEBXR_PROXIMAL[finger] + bone - 1, :3, 1]
        else:
            want = kp[5] - kp[9]
        cos = off @ want / np.linalg.norm(off) / np.linalg.norm(want)
        assert cos > 0.7, (name, cos)
        # On the phalanx, not the tip: at most 70 % of the way along the bone.
        along = (verts[idx[name]] - a) @ (b - a) / ((b - a) @ (b - a))
        assert 0.2 < along < 0.8, (name, along)


def test_thin_objects_get_a_signed_distance_grid_that_resolves_them() -> None:
    """A 6 mm plate gets cells of at most 0.4 of its thickness (2.4 mm; 64 points over its
    25 cm box would be 4 mm); a 6 cm cube keeps the 64 points; fraction 0 (the default)
    turns it off."""
    cfg = SynthesisConfig(taxonomy=True, sdf_cell_fraction=0.4)
    plate = _obj(trimesh.creation.box(extents=[0.15, 0.10, 0.006]), "plate")
    n = sdf_resolution(plate, cfg)
    assert (0.15 + 2 * SDF_MARGIN_M) / (n - 1) <= 0.4 * 0.006 + 1e-9 and n <= 256
    cube = _obj(trimesh.creation.box(extents=[0.06, 0.06, 0.06]), "cube")
    assert sdf_resolution(cube, cfg) == 64
    assert sdf_resolution(plate, SynthesisConfig(taxonomy=True)) == 64
    with pytest.raises(HalohandInputError, match="sdf_cell_fraction"):
        SynthesisConfig(sdf_cell_fraction=2.0)


def test_types_are_checked() -> None:
    with pytest.raises(HalohandInputError, match="unknown grasp type"):
        SynthesisConfig(taxonomy=True, types=("power_grip",))
    with pytest.raises(HalohandInputError, match="taxonomy"):
        SynthesisConfig(types=("tripod",))


def test_plain_config_dict_is_unchanged() -> None:
    assert "taxonomy" not in SynthesisConfig().to_dict()
    assert SynthesisConfig(taxonomy=True).to_dict()["taxonomy"] is True
    # The object-in-hand proxy's options appear only when changed (earlier runs resume).
    later = {"object_points", "finger_capsules", "separate_cm", "fill_enclosed"}
    assert not later & set(SynthesisConfig().to_dict())
    assert SynthesisConfig(finger_capsules=True).to_dict()["finger_capsules"] is True
    assert SynthesisConfig(separate_cm=5.0).to_dict()["separate_cm"] == 5.0
    assert SynthesisConfig(fill_enclosed=True).to_dict()["fill_enclosed"] is True
    with pytest.raises(HalohandInputError, match="object_points"):
        SynthesisConfig(object_points=0)
    with pytest.raises(HalohandInputError, match="separate_cm"):
        SynthesisConfig(separate_cm=-1.0)


def test_capsule_distance_matches_the_closed_form() -> None:
    """Point-to-segment distance: the projection clamped to the segment, per point,
    segment and hand, against a direct evaluation (interior, both end caps, on the axis)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, 3, generator=g, dtype=torch.float64)
    b = a + torch.randn(3, 4, 3, generator=g, dtype=torch.float64)
    p = torch.cat([torch.randn(50, 3, generator=g, dtype=torch.float64) * 2,
                   (a[0, 0] + 0.3 * (b[0, 0] - a[0, 0]))[None]])  # fmt: skip
    got = _capsule_distance(p, a, b)
    for n in range(3):
        for k in range(4):
            ab = b[n, k] - a[n, k]
            t = ((p - a[n, k]) @ ab / (ab @ ab)).clamp(0, 1)
            want = torch.linalg.vector_norm(p - a[n, k] - t[:, None] * ab, dim=-1)
            torch.testing.assert_close(got[n, :, k], want, atol=2e-6, rtol=0)
    assert got[0, -1, 0] < 2e-6  # a point on the axis
    # Finite gradients everywhere, the axis point included.
    a.requires_grad_(True)
    _capsule_distance(p, a, b).sum().backward()
    assert torch.isfinite(a.grad).all()


def test_capsules_see_a_wall_between_the_spheres() -> None:
    """A point inside the index finger's proximal phalanx between two of its proxy spheres
    (where a thin wall through the finger leaves its surface points) is outside every
    sphere but inside the bone's capsule: what ``finger_capsules`` adds to the
    object-in-hand term."""
    geo = _hand_geometry()
    kp, _ = _model().rest_pose()
    bone = 3  # index proximal: 4.5 cm long, spheres 1.4 cm apart, radius 7 mm
    i, j = geo.bone_kp[bone]
    a, b = kp[i], kp[j]
    side = np.cross(b - a, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    point = a + 0.65 * (b - a) + 0.6 * geo.bone_radius[bone] * side
    centres, radii, _ = _finger_spheres(kp[None], geo.bone_kp, geo.bone_radius)
    assert (np.linalg.norm(centres[0] - point, axis=1) > radii).all()
    seg = torch.tensor(kp[geo.bone_kp])  # [15, 2, 3]
    dist = _capsule_distance(torch.tensor(point[None]), seg[None, :, 0], seg[None, :, 1])
    depth = geo.bone_radius[bone] - float(dist[0, 0, bone])
    assert depth == pytest.approx(0.4 * geo.bone_radius[bone], rel=1e-6)


def test_tripod_pads_touch_a_capsule() -> None:
    capsule = _obj(trimesh.creation.capsule(height=0.06, radius=0.018), "capsule")
    cfg = SynthesisConfig(taxonomy=True, types=("tripod",), steps=120, max_penetration_mm=5.0,
                          sdf_resolution=48, stability_filter=False)  # fmt: skip
    res = synthesize_batch(capsule, 2, seed=3, side="right", config=cfg)
    assert list(res["grasp_type"]) == ["tripod", "tripod"]
    names = list(tx.contact_vertices())
    pads = [names.index(c) for c in tx.GRASP_TYPES["tripod"].contacts]
    d = res["contact_distance_mm"][:, pads]
    # Every pad of the type within the contact distance, nothing deep inside.
    assert (np.abs(d) <= cfg.contact_mm).all(), d
    assert (res["penetration_mm"] <= 5.0).all() and (res["pad_contacts"] == 3).all()


def test_near_points_keep_every_point_that_can_enter_the_hand() -> None:
    """A point left out by :class:`_NearPoints` is ``margin`` outside every capsule at the
    update; after any move of the segment ends below ``margin`` it is still outside, so the
    kept points give the same overlap sum as all points; a larger move is stale."""
    g = torch.Generator().manual_seed(1)
    dt = torch.float64
    a = torch.rand(2, 5, 3, generator=g, dtype=dt) * 0.1
    b = a + torch.randn(2, 5, 3, generator=g, dtype=dt) * 0.03
    pts = torch.rand(4000, 3, generator=g, dtype=dt) * 0.14 - 0.02
    radius, margin = 0.008, 0.005

    def depth(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return radius - _capsule_distance(p, a, b)

    near = _NearPoints(pts, margin)
    movers = torch.cat([a, b], 1)
    assert near.stale(movers)
    near.update(depth(pts[None].expand(2, -1, -1), a, b).amax(-1), movers)
    kept = near.points()
    assert kept.shape[1] < len(pts) // 2  # most points are far from the hand
    for trial in range(5):
        # Every end moves by less than the margin (uniform direction, length < margin).
        step = torch.randn(2, 10, 3, generator=g, dtype=dt)
        step *= 0.999 * margin / torch.linalg.vector_norm(step, dim=-1, keepdim=True)
        step *= torch.rand(2, 10, 1, generator=g, dtype=dt) ** (1.0 / (trial + 1))
        a2, b2 = a + step[:, :5], b + step[:, 5:]
        assert not near.stale(torch.cat([a2, b2], 1))
        full = torch.relu(depth(pts[None].expand(2, -1, -1), a2, b2)).sum((-1, -2))
        sub = torch.relu(depth(near.points(), a2, b2)).sum((-1, -2))
        torch.testing.assert_close(sub, full, rtol=1e-12, atol=1e-15)
    assert near.stale(torch.cat([a + margin, b], 1))


def test_near_points_change_only_the_rounding(monkeypatch) -> None:
    """The engine with the near-point subset and with every point kept (an infinite
    margin) gives the same grasps to rounding over a short run in which the subset is used."""
    mug = load_object("mug_5")
    cfg = SynthesisConfig(taxonomy=True, steps=40, sdf_resolution=32, stability_filter=False,
                          finger_capsules=True, object_points=1500, separate_cm=5.0)  # fmt: skip
    used = []
    points = _NearPoints.points
    monkeypatch.setattr(_NearPoints, "points", lambda self: used.append(1) or points(self))
    fast = synthesize_batch(mug, 3, seed=5, config=cfg)
    assert len(used) > 10  # most steps read the subset
    monkeypatch.setattr(synthesis, "NEAR_MARGIN_M", float("inf"))
    full = synthesize_batch(mug, 3, seed=5, config=cfg)
    np.testing.assert_allclose(fast["keypoints"], full["keypoints"], atol=1e-7, rtol=0)
    np.testing.assert_allclose(fast["energy"], full["energy"], rtol=1e-7)


@pytest.mark.parametrize("capsules", [False, True])
def test_batches_are_deterministic_in_the_seed(capsules: bool) -> None:
    box = _obj(trimesh.creation.box(extents=[0.05, 0.03, 0.02]), "box_small")
    cfg = SynthesisConfig(
        taxonomy=True,
        steps=3,
        sdf_resolution=24,
        stability_filter=False,
        finger_capsules=capsules,
        object_points=300 if capsules else 600,
    )
    a = synthesize_batch(box, 3, seed=11, config=cfg)
    b = synthesize_batch(box, 3, seed=11, config=cfg)
    c = synthesize_batch(box, 3, seed=12, config=cfg)
    np.testing.assert_array_equal(a["keypoints"], b["keypoints"])
    np.testing.assert_array_equal(a["grasp_type"], b["grasp_type"])
    assert not np.array_equal(a["keypoints"], c["keypoints"])
    assert np.isfinite(a["energy_object_in_hand"]).all()


def test_taxonomy_run_resumes_and_records_types(tmp_path) -> None:
    cfg = SynthesisConfig(batch_size=2, steps=3, max_batches=2, sdf_resolution=24,
                          taxonomy=True, stability_filter=False)  # fmt: skip
    out = tmp_path / "grasps"
    synthesize(["sphere_1"], 100, out, seed=1, config=cfg, show_progress=False)
    shards = sorted((out / "sphere_1").glob("batch_*.npz"))
    assert len(shards) == 2
    with np.load(shards[0]) as z:
        assert set(z["grasp_type"]) <= set(tx.TYPE_NAMES) and len(z["grasp_type"]) == 2
    assert json.loads((out / "config.json").read_text())["config"]["taxonomy"] is True
    stamps = [p.stat().st_mtime_ns for p in shards]
    again = synthesize(["sphere_1"], 100, out, seed=1, config=cfg, show_progress=False)
    assert again["objects"][0]["shards_reused"] == 2
    assert [p.stat().st_mtime_ns for p in shards] == stamps


@pytest.mark.parametrize(
    "args",
    [("--types", "tripod"), ("--taxonomy", "--types", "power_grip")],
)
def test_cli_bad_types_exit_2_with_one_line(monkeypatch, capsys, tmp_path, args) -> None:
    code, _, err = run_cli(monkeypatch, capsys, "grasp", "synthesize", "--out", tmp_path / "o",
                           "--objects", "box_0", *args)  # fmt: skip
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:")
