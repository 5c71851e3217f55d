"""The realism of ``halohand data render``: crease shading, skin, backgrounds, the forearm,
the switches that turn each off, and the visible-hand rule the detection rates use."""

from __future__ import annotations

import colorsys
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from halohand.apps.synthetic import (
    MIN_HAND_AREA,
    SKIN_TONES,
    Look,
    arm_stub,
    background,
    crease_occlusion,
    hand_visible,
    make_renderer,
    render_scene,
    render_set,
    sample_scene,
    skin_albedo,
    skin_group,
)
from halohand.core.errors import HalohandInputError


def test_crease_occlusion_is_zero_on_open_skin_and_high_in_a_gap() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.01)
    alone = crease_occlusion(sphere.vertices, sphere.vertex_normals, 0.02)
    assert alone.max() < 0.05
    # two fingers side by side, 2 mm apart: their facing sides are shaded, the outer not
    a, b = sphere.vertices - [0.011, 0, 0], sphere.vertices + [0.011, 0, 0]
    verts = np.concatenate([a, b])
    normals = np.concatenate([sphere.vertex_normals, sphere.vertex_normals])
    occ = crease_occlusion(verts, normals, 0.02)
    facing = np.r_[sphere.vertex_normals[:, 0] > 0.9, sphere.vertex_normals[:, 0] < -0.9]
    outer = np.r_[sphere.vertex_normals[:, 0] < -0.9, sphere.vertex_normals[:, 0] > 0.9]
    assert occ[facing].mean() > 0.1 and occ[outer].mean() < 0.02


def test_skin_groups_split_the_palette_in_half_whatever_the_jitter() -> None:
    for jitter in (0.94, 1.0, 1.06):
        groups = [skin_group(np.clip(t * jitter, 0, 1)) for t in SKIN_TONES]
        assert groups == ["light"] * 4 + ["dark"] * 4, jitter


def test_hand_visible_needs_every_keypoint_in_the_frame_and_enough_hand() -> None:
    mask = np.zeros((100, 100), dtype=np.uint8)
    mask[20:60, 20:60] = 1
    kp = np.random.default_rng(0).uniform(20, 60, size=(21, 2))
    assert hand_visible(kp, mask)
    out = kp.copy()
    out[8] = [101.0, 50.0]  # a fingertip past the right border
    assert not hand_visible(out, mask)
    small = np.zeros_like(mask)
    small.flat[: int(MIN_HAND_AREA * mask.size) - 1] = 1
    assert not hand_visible(kp, small)


def _saturation(img: np.ndarray) -> float:
    rgb = img.reshape(-1, 3)[::97]
    return float(np.mean([colorsys.rgb_to_hsv(*c)[1] for c in rgb]))


def test_photo_like_backgrounds_are_less_saturated_than_version_2s() -> None:
    new = [_saturation(background(k % 4, 64, s)) for s, k in enumerate(range(24))]
    old = [_saturation(background(k % 4, 64, s, photo_like=False)) for s, k in enumerate(range(24))]
    assert np.mean(new) < 0.7 * np.mean(old)
    img = background(3, 64, 5, defocus_px=2.0)
    assert img.shape == (64, 64, 3) and np.isfinite(img).all() and 0 <= img.min() <= img.max() <= 1


def test_nails_are_lighter_than_the_back_of_the_fingers() -> None:
    scene, hand = sample_scene(11, 0, 128)
    plain = skin_albedo(hand, scene, scene.skin, shading=False)
    shaded = skin_albedo(hand, scene, scene.skin, shading=True)
    lum = shaded @ [0.2126, 0.7152, 0.0722]
    gain = lum / (plain @ [0.2126, 0.7152, 0.0722])
    near_tip = (
        np.linalg.norm(
            hand.canonical_vertices[:, None] - hand.rest_keypoints[[8, 12, 16, 20]][None], axis=2
        ).min(1)
        < 0.01 * scene.hand_length / 0.185
    )
    assert gain[near_tip].max() > 1.1  # the nails
    assert np.median(np.abs(gain - 1.0)) < 0.06  # most skin keeps its tone


def test_forearm_starts_inside_the_wrist_end() -> None:
    for index in range(6):
        scene, hand = sample_scene(4, index, 128)
        kp = hand.keypoints @ scene.rotation.T + scene.translation
        hv = hand.vertices @ scene.rotation.T + scene.translation
        av, af = arm_stub(scene, kp, hv)
        assert af.max() < len(av)
        # its first ring's centre lies inside the hand, and the ring itself reaches past the
        # hand's surface there (it covers the wrist's capped end)
        mesh = trimesh.Trimesh(hv, hand.faces, process=False)
        assert mesh.contains(av[:24].mean(0)[None])[0]
        assert not mesh.contains(av[:24]).all()


def test_switches_change_the_look_not_the_labels() -> None:
    gl, _ = make_renderer("auto", 96)
    scene, hand = sample_scene(8, 1, 96)
    full = render_scene(scene, hand, gl)
    for off in ("backgrounds", "exposure", "shading"):
        other = render_scene(scene, hand, gl, Look(**{off: False}))
        np.testing.assert_array_equal(
            full["labels"]["keypoints_2d"], other["labels"]["keypoints_2d"]
        )
        where = (full["mask"] == 0) if off == "backgrounds" else (full["mask"] == 1)
        diff = np.abs(full["image"].astype(int) - other["image"])[where].mean()
        assert diff > 2.0, off
    # version 2's palette: light tones near paper white (this scene's tone differs little)
    old = render_scene(scene, hand, gl, Look(skin=False))["labels"]["skin_srgb"]
    assert np.abs(old - full["labels"]["skin_srgb"]).max() > 0.005
    assert skin_group(SKIN_TONES[0]) == "light" and SKIN_TONES[0].mean() < 0.75


def test_manifest_records_a_changed_look_and_refuses_another(tmp_path: Path) -> None:
    render_set(tmp_path, 1, seed=2, size=64, renderer="numpy", log=None, look=Look(wrist=False))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["look"] == {"wrist": False}
    with pytest.raises(HalohandInputError, match="other settings"):
        render_set(tmp_path, 1, seed=2, size=64, renderer="numpy", log=None)


def test_camera_switch_keeps_the_scene_but_the_field_of_view() -> None:
    for index in range(12):
        new, _ = sample_scene(6, index, 128)
        old, _ = sample_scene(6, index, 128, Look(camera=False))
        fov_new, fov_old = (2 * np.degrees(np.arctan(64 / s.intrinsics[0, 0])) for s in (new, old))
        assert 35.0 <= fov_new <= 60.0 and fov_new <= fov_old <= 75.0
        np.testing.assert_array_equal(new.rotation, old.rotation)
        np.testing.assert_array_equal(new.skin, old.skin)


def test_smooth_hand_keeps_its_silhouette_and_the_labels_their_mesh() -> None:
    gl, _ = make_renderer("auto", 128)
    scene, hand = sample_scene(9, 2, 128)
    smooth = render_scene(scene, hand, gl)
    facets = render_scene(scene, hand, gl, Look(smooth=False))
    assert len(smooth["labels"]["vertices"]) == len(hand.vertices)
    a, b = (smooth["mask"] == 1).sum(), (facets["mask"] == 1).sum()
    assert abs(a - b) < 0.06 * b
