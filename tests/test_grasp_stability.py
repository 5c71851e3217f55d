"""Grasp stability in MuJoCo and the contact metrics beside the paper's (docs/grasp.md)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from halohand.core.errors import HalohandInputError
from halohand.grasp.metrics import (
    FINGER_PARTS,
    FINGERS,
    contact_checks,
    human_plausible,
    opposition,
)
from halohand.grasp.stability import (
    MAX_SHIFT_M,
    convex_parts,
    hand_parts,
    simulate_grasp,
    simulate_hulls,
)
from halohand.objects.registry import object_from_mesh

pytest.importorskip("mujoco")

R = 0.03  # sphere radius (m)


@pytest.fixture(scope="module")
def ball():
    return object_from_mesh(trimesh.creation.icosphere(3, radius=R), units="m", object_id="ball")


def _slab(x: float) -> np.ndarray:
    """Corners of a 2 x 10 x 10 cm slab whose face nearest the origin is at ``x``."""
    centre = x + np.sign(x) * 0.01
    return trimesh.creation.box(extents=[0.02, 0.1, 0.1]).vertices + [centre, 0.0, 0.0]


def test_sphere_between_two_boxes_holds_in_all_directions(ball):
    # The slabs touch the sphere on opposite sides: the skin margin presses on it.
    res = simulate_hulls([_slab(-R), _slab(R)], ball)
    assert res.stable, res.shift_m
    assert res.shift_m.max() < 1e-3  # held in place, not just slowed
    assert res.start_overlap_mm < 0.1


def test_sphere_without_holder_falls(ball):
    # The same sphere with a slab far away: free fall moves it ~4.9 m in 1 s in five
    # directions; toward the slab it stops there, 20 cm down, still beyond 2 cm.
    res = simulate_hulls([_slab(-0.2)], ball)
    assert not res.stable
    assert not res.holds.any()
    assert res.shift_m.max() == pytest.approx(0.5 * 9.81, rel=0.02)


def test_one_sided_support_fails_and_gap_beyond_skin_fails(ball):
    one_side = simulate_hulls([_slab(-R)], ball)
    assert not one_side.stable
    assert one_side.holds[1]  # pushed into the slab (gravity -x): it holds there
    assert not one_side.holds[0]
    gap = simulate_hulls([_slab(-R - 0.004), _slab(R + 0.004)], ball)  # 4 mm > 2 mm skin
    assert not gap.stable
    assert (gap.shift_m >= MAX_SHIFT_M).sum() >= 4


def test_simulation_is_deterministic(ball):
    a = simulate_hulls([_slab(-R), _slab(R + 0.0015)], ball)
    b = simulate_hulls([_slab(-R), _slab(R + 0.0015)], ball)
    np.testing.assert_array_equal(a.shift_m, b.shift_m)


@pytest.mark.slow  # CoACD on a torus: ~25 s on the shared 2-core machine
def test_concave_object_is_decomposed_and_convex_one_is_its_hull(ball):
    assert len(convex_parts(ball)) == 1
    ring = object_from_mesh(trimesh.creation.torus(0.03, 0.01), units="m", object_id="ring")
    parts = convex_parts(ring)
    assert len(parts) >= 4  # a torus is no single hull
    # The parts stay near the ring: no hull fills the hole.
    centre_dist = np.linalg.norm(np.concatenate(parts)[:, :2], axis=1)
    assert centre_dist.min() > 0.015


def _labelled_hand(parts: dict[int, np.ndarray], size=(0.015,) * 3) -> trimesh.Trimesh:
    """One mesh of boxes (15 mm cubes), each labelled with a HALO part; faces subdivided to 1 mm
    edges, so that a vertex lies near the point of a face nearest the sphere (the checks
    measure vertices, as on a HALO mesh of ~1 mm edges)."""
    meshes, labels = [], []
    for part, centre in parts.items():
        m = trimesh.creation.box(extents=size).subdivide_to_size(0.001)
        m.apply_translation(centre)
        meshes.append(m)
        labels.append(np.full(len(m.vertices), part))
    hand = trimesh.util.concatenate(meshes)
    hand.vertex_attributes["part"] = np.concatenate(labels).astype(np.uint8)
    return hand


def _checks(hand, obj, points=None):
    return contact_checks(hand.vertices, hand.faces, hand.vertex_attributes["part"],
                          obj.vertices, obj.faces, points)  # fmt: skip


def test_pinch_of_thumb_and_index_opposes_and_holds(ball):
    thumb, index = FINGER_PARTS["thumb"][-1], FINGER_PARTS["index"][-1]
    # Box faces touch the sphere at x = -R and x = +R.
    hand = _labelled_hand({thumb: [-R - 0.0075, 0, 0], index: [R + 0.0075, 0, 0]})
    c = _checks(hand, ball)
    assert c.touching.tolist() == [True, True, False, False, False]
    assert c.opposition
    assert c.normals[0] @ c.normals[1] < -0.9
    assert c.max_penetration_mm < 0.5
    assert len(hand_parts(hand)) == 2
    st = simulate_grasp(hand, ball)
    # Two small pads at the equator: friction holds against gravity along y and z.
    assert st.stable, st.shift_m
    assert human_plausible(st.stable, c.max_penetration_mm, c.opposition)


def test_fingers_on_one_side_do_not_oppose(ball):
    thumb, index, middle = (FINGER_PARTS[f][-1] for f in ("thumb", "index", "middle"))
    # Thumb on +x, index and middle at 45 degrees from it (angle 45 < 90): no opposition.
    d = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)
    hand = _labelled_hand({
        thumb: [R + 0.0075, 0, 0],
        index: d * (R + 0.0075),
        middle: [0, 0, -R - 0.05],  # far: not touching
    })  # fmt: skip
    c = _checks(hand, ball)
    assert c.touching.tolist() == [True, True, False, False, False]
    assert not c.opposition


def test_opposition_rule():
    n = np.zeros((5, 3))
    n[0] = [1, 0, 0]
    n[3] = [np.cos(np.radians(100)), np.sin(np.radians(100)), 0]  # ring at 100 degrees
    touching = np.array([True, False, False, True, False])
    assert opposition(touching, n)
    assert not opposition(touching, n, opposition_deg=110.0)
    assert not opposition(np.array([False, False, False, True, False]), n)  # no thumb
    n[3] = [0, 1, 0]  # exactly 90 degrees: not above it
    assert not opposition(touching, n)
    with pytest.raises(HalohandInputError):
        opposition(touching[:4], n)


def test_finger_contact_counts_vertices_within_2_mm_or_inside(ball):
    little = FINGER_PARTS["little"][0]
    ring = FINGER_PARTS["ring"][0]
    palm = 0
    # Little finger 1.5 mm off the surface (touches), ring 3 mm off (does not), the palm
    # 4 mm inside (not a finger, but the deepest point).
    hand = _labelled_hand({
        little: [0, 0, R + 0.0015 + 0.0075],
        ring: [0, 0, -R - 0.003 - 0.0075],
        palm: [R + 0.0075 - 0.004, 0, 0],
    })  # fmt: skip
    c = _checks(hand, ball)
    assert dict(zip(FINGERS, c.touching.tolist(), strict=True)) == {
        "thumb": False, "index": False, "middle": False, "ring": False, "little": True,
    }  # fmt: skip
    assert c.max_penetration_mm == pytest.approx(4.0, abs=0.3)  # icosphere facets
    assert not c.opposition
    np.testing.assert_allclose(c.normals[4], [0, 0, 1], atol=0.05)


def test_human_plausible_needs_all_three():
    assert human_plausible(True, 5.0, True)
    assert not human_plausible(True, 5.1, True)
    assert not human_plausible(False, 0.0, True)
    assert not human_plausible(True, 0.0, False)


def test_hand_without_part_labels_is_refused():
    with pytest.raises(HalohandInputError, match="part labels"):
        hand_parts(trimesh.creation.box())


def test_finger_through_a_thin_plate_counts_its_full_depth():
    plate = object_from_mesh(trimesh.creation.box(extents=[0.15, 0.1, 0.008]), units="m",
                             object_id="plate", orient="keep")  # fmt: skip
    # A 15 mm thick "finger" straight through the 8 mm plate: no vertex of it is more than
    # 4 mm inside the plate, but the plate's surface lies up to 7.5 mm inside the finger.
    hand = _labelled_hand({FINGER_PARTS["index"][1]: [0.0, 0.0, 0.0]}, (0.015, 0.015, 0.05))
    only_hand_vertices = _checks(hand, plate)
    assert only_hand_vertices.max_penetration_mm < 4.01  # plate corners are far from it
    surface = plate.surface_points(4000, 0)[0]
    both = _checks(hand, plate, surface)
    assert 6.0 < both.max_penetration_mm <= 7.5 + 1e-6
    # the two directions, reported apart: the deeper one is the object inside the finger
    assert both.hand_in_object_mm == pytest.approx(only_hand_vertices.max_penetration_mm)
    assert both.object_in_hand_mm == both.max_penetration_mm


# -- evaluation and command line -------------------------------------------------------------


def test_evaluate_with_physics_on_a_far_hand(tmp_path) -> None:
    from halo_fakes import hand_keypoints

    from halohand.grasp.evaluate import evaluate_grasps
    from halohand.inference.halo import HALO
    from halohand.objects.registry import load_object

    box = load_object("box_0")

    def far(obj, n, seed):  # a relaxed right hand 20 cm beside the box
        kp = hand_keypoints("relaxed")
        kp = kp - kp[[0, 5, 9, 13, 17]].mean(0) + [obj.mesh.bounds[1, 0] + 0.2, 0.0, 0.0]
        return np.stack([kp] * n), 0.0

    res = evaluate_grasps(far, [box], HALO.pretrained(), n=2, resolution=32, progress=False,
                          physics=True)  # fmt: skip
    row = res["objects"][0]
    assert row["stable"] == 0.0 and row["plausible"] == 0.0 and row["opposition"] == 0.0
    assert row["penetration_ok"] == 1.0 and row["max_penetration_mm"] == 0.0
    assert all(row[f"touch_{f}"] == 0.0 for f in FINGERS)
    assert all(row[f"holds_{d}"] == 0.0 for d in ("+x", "-x", "+y", "-y", "+z", "-z"))
    assert len(res["grasps"]) == 2 and min(res["grasps"][0]["shift_mm"].values()) > 20.0


def test_evaluate_command_physics_and_sheets(tmp_path, monkeypatch, capsys) -> None:
    from halo_fakes import run_cli

    out, sheets = tmp_path / "e.json", tmp_path / "sheets"
    code, _, err = run_cli(
        monkeypatch, capsys, "grasp", "evaluate", "--objects", "box_4", "--n", "2",
        "--resolution", "32", "--candidates", "1", "--physics", "--sheets", sheets,
        "--json", out, "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    import json

    doc = json.loads(out.read_text())
    assert doc["physics"] is True
    row = doc["objects"][0]
    for key in ("stable", "plausible", "opposition", "penetration_ok", "touch_thumb", "holds_-z"):
        assert 0.0 <= row[key] <= 1.0
    assert len(doc["grasps"]) == 2 and set(doc["grasps"][0]["shift_mm"]) == {
        "+x", "-x", "+y", "-y", "+z", "-z",
    }  # fmt: skip
    assert (sheets / "box_4.png").stat().st_size > 0
