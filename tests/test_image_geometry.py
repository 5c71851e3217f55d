"""The photo path's geometry without the models: anchors, decoding, merging, regions, crops
and placement (synthetic inputs with known answers; fast)."""

from __future__ import annotations

import numpy as np
import pytest

from halohand.image.detect import (
    ANCHORS,
    INPUT_SIZE,
    HandRegion,
    PalmDetection,
    decode,
    letterbox,
    weighted_nms,
)
from halohand.image.landmarks import crop
from halohand.image.place import photo_camera, snap_to_rays, solve_translation


def test_anchors_cover_the_detector_grids() -> None:
    assert ANCHORS.shape == (2016, 2)
    # stride 8: 24x24 cells x 2 anchors, then stride 16: 12x12 cells x 6 anchors
    assert np.allclose(ANCHORS[0], [0.5 / 24, 0.5 / 24]) and np.allclose(ANCHORS[1], ANCHORS[0])
    assert np.allclose(ANCHORS[2], [1.5 / 24, 0.5 / 24])
    assert np.allclose(ANCHORS[1152:1158], [0.5 / 12, 0.5 / 12])
    assert np.allclose(ANCHORS[-1], [11.5 / 12, 11.5 / 12])


def test_decode_offsets_boxes_and_keypoints_from_their_anchor() -> None:
    raw = np.zeros((2016, 18), dtype=np.float32)
    logits = np.full(2016, -10.0, dtype=np.float32)
    i = 1152 + 6 * (12 * 5 + 7)  # stride-16 cell (row 5, column 7)
    logits[i] = 4.0
    raw[i, :4] = [2.0, -3.0, 40.0, 20.0]
    raw[i, 4:6] = [1.0, 1.0]
    scores, boxes, kps = decode(raw, logits)
    centre = np.array([7.5, 5.5]) * 16
    assert scores.shape == (1,) and scores[0] == pytest.approx(1 / (1 + np.exp(-4.0)))
    assert np.allclose(
        boxes[0], [centre[0] + 2 - 20, centre[1] - 3 - 10, centre[0] + 22, centre[1] + 7]
    )
    assert np.allclose(kps[0, 0], centre + 1) and np.allclose(kps[0, 1], centre)


def test_weighted_nms_merges_overlaps_and_keeps_the_rest() -> None:
    scores = np.array([0.9, 0.6, 0.8, 0.7])
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [5, 5, 5, 5]], float)
    kps = np.zeros((4, 7, 2))
    kps[1] += 1.0
    merged = weighted_nms(scores, boxes, kps)
    assert [m[0] for m in merged] == [0.9, 0.8, 0.7]  # the degenerate box stands alone
    w = np.array([0.9, 0.6]) / 1.5
    assert np.allclose(merged[0][1], w[0] * boxes[0] + w[1] * boxes[1])
    assert np.allclose(merged[0][2], w[1])


def test_letterbox_maps_back_to_the_photo() -> None:
    rgb = np.zeros((100, 300, 3), dtype=np.uint8)
    tensor, box = letterbox(rgb)
    assert tensor.shape == (INPUT_SIZE, INPUT_SIZE, 3) and tensor.dtype == np.float32
    assert np.allclose(box.to_image(np.array([[0.0, box.pad[1]], [192.0, 192.0 - box.pad[1]]])),
                       [[0, 0], [300, 100]], atol=0.6)  # fmt: skip


@pytest.mark.parametrize(("direction", "angle"), [((0, -1), 0.0), ((1, 0), 90.0), ((0, 1), 180.0)])
def test_hand_region_turns_the_fingers_up_and_moves_toward_them(direction, angle) -> None:
    d = np.array(direction, dtype=float)
    kps = np.zeros((7, 2)) + 100.0
    kps[2] = 100.0 + 30.0 * d  # wrist centre -> middle-finger base
    palm = PalmDetection(0.9, np.array([80.0, 80.0, 120.0, 120.0]), kps)
    region = palm.hand_region()
    assert abs(abs(np.degrees(region.rotation)) - angle) < 1e-9
    assert region.size == pytest.approx(40 * 2.6)
    assert np.allclose(region.center, 100.0 + 20.0 * d)  # half the box height ahead
    # the crop's top centre lies toward the fingers
    assert np.allclose(region.to_image(np.array([112.0, 0.0]), 224), region.center + 52 * d)


def test_crop_samples_the_rotated_region() -> None:
    rgb = np.zeros((200, 300, 3), dtype=np.uint8)
    rgb[40:50, 200:210] = 255  # a bright square right of the region's centre
    region = HandRegion(np.array([150.0, 45.0]), 112.0, np.pi / 2)
    out = crop(rgb, region)
    # rotation +90 deg: the crop's up (-v) is the photo's +x, so the square is near the top
    v, u = np.argwhere(out[..., 0] > 0.5).mean(0)
    assert abs(u - 112) < 3 and abs(v - (112 - 55 * 2)) < 4
    assert np.allclose(region.to_image(np.array([u, v]), 224), [205, 45], atol=2)


def _hand_points() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(scale=0.03, size=(21, 3))


def test_translation_recovers_a_known_placement() -> None:
    cam = photo_camera(640, 480, 800.0)
    world = _hand_points()
    t_true = np.array([0.05, -0.02, 0.4])
    pixels = cam.project(world + t_true)
    t = solve_translation(world, pixels, cam.intrinsics)
    assert np.allclose(t, t_true, atol=1e-6)
    assert np.allclose(snap_to_rays(world + t, pixels, cam.intrinsics), world + t, atol=1e-9)


def test_snapping_reprojects_exactly_and_keeps_depth() -> None:
    cam = photo_camera(640, 480, 800.0)
    world = _hand_points()
    pixels = cam.project(world + [0.0, 0.0, 0.5]) + np.random.default_rng(1).normal(0, 5, (21, 2))
    t = solve_translation(world, pixels, cam.intrinsics)
    snapped = snap_to_rays(world + t, pixels, cam.intrinsics)
    assert np.allclose(cam.project(snapped), pixels, atol=1e-9)
    assert np.allclose(snapped[:, 2], (world + t)[:, 2])
    assert abs(t[2] - 0.5) < 0.05


def test_camera_render_projects_and_keeps_the_nearest_surface() -> None:
    from halohand.apps.render import render_camera_layer

    k = np.array([[100.0, 0.0, 32.0], [0.0, 100.0, 24.0], [0.0, 0.0, 1.0]])

    def square(x0, x1, y0, y1, z):  # facing the camera (normal toward -z)
        v = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], float)
        return v, np.array([[0, 2, 1], [0, 3, 2]])

    far_v, far_f = square(-0.2, 0.2, -0.1, 0.1, 1.0)  # pixels 12..52 x 14..34
    near_v, near_f = square(0.0, 0.1, 0.0, 0.1, 0.5)  # pixels 32..52 x 24..44
    v = np.concatenate([far_v, near_v])
    f = np.concatenate([far_f, near_f + 4])
    colors = np.concatenate([np.tile([1.0, 0.0, 0.0], (4, 1)), np.tile([0.0, 0.0, 1.0], (4, 1))])
    rgb, alpha = render_camera_layer(v, f, k, (64, 48), colors, supersample=1)
    assert alpha[20, 20] == 1 and alpha[5, 5] == 0 and alpha[40, 20] == 0
    assert rgb[20, 20, 0] > rgb[20, 20, 2]  # far square: red
    assert rgb[30, 40, 2] > rgb[30, 40, 0]  # near square in front of it: blue
    assert alpha[40, 40] == 1  # the near square below the far one's edge
    # behind the camera: nothing drawn
    _, none = render_camera_layer(v * [1, 1, -1], f, k, (64, 48), colors, supersample=1)
    assert none.sum() == 0
