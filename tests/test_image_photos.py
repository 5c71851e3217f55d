"""Real photos (examples/photos, Apache-2.0) through the whole photo path: the hands found
and their sides, their size, placement and reprojection, watertight meshes in the camera
frame and the command's outputs.

Expected hands, read off the photos: two overlapping thumbs-up right hands (the one behind
is found by the masked second detection pass); one left thumbs-up (palm toward the camera,
fingers pointing right); one right thumbs-up on black (RGBA); the V-sign close-up of a
right palm over a wooden floor (found only in the grey view: :mod:`halohand.image.find`)
carries an EXIF focal length.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from conftest import REPO
from halo_fakes import run_cli

from halohand.apps.cli import reconstruct as reconstruct_cli
from halohand.canonical.plausibility import check_skeleton
from halohand.image import PhotoHands, from_image

PHOTOS = REPO / "examples" / "photos"
EXPECTED = {
    "mpsamples_hand_landmarker_test_image.jpg": ["right", "right"],
    "mpsamples_hand_thumb_up.jpg": ["left"],
    "mpsamples_thumbs-up.png": ["right"],
    "mpsamples_hand_victory.jpg": ["right"],
}


def hand_length_m(keypoints: np.ndarray) -> float:
    chain = keypoints[[0, 9, 10, 11, 12]]
    return float(np.linalg.norm(np.diff(chain, axis=0), axis=1).sum())


@pytest.fixture(scope="module")
def results() -> dict[str, PhotoHands]:
    # the placement itself (fit=False): the fit has tests of its own (test_image_fit.py)
    return {name: from_image(PHOTOS / name, fit=False) for name in EXPECTED}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_hands_and_sides(results, name) -> None:
    assert [h.side for h in results[name].hands] == EXPECTED[name]
    for hand in results[name].hands:
        assert hand.landmarks.presence >= 0.85
        assert abs(hand.landmarks.right_score - 0.5) >= 0.35  # a clear call
        # the model's side agrees with the chirality of the placed skeleton
        report = check_skeleton(hand.keypoints, hand.side, "m")
        assert not report.looks_mirrored.any() and report.plausible, name


def test_the_close_up_uses_its_exif_focal_length(results) -> None:
    victory = results["mpsamples_hand_victory.jpg"]
    assert victory.photo.size == (3000, 4000)  # upright after EXIF
    assert victory.focal_source == "exif" and victory.photo.focal_35mm == 26
    assert results["mpsamples_hand_thumb_up.jpg"].focal_source == "default"


@pytest.mark.parametrize("name", [n for n, sides in EXPECTED.items() if sides])
def test_hands_are_upright_gestures_of_a_hands_size(results, name) -> None:
    for hand in results[name].hands:
        y = hand.landmarks.pixels[:, 1]  # down
        if name == "mpsamples_hand_victory.jpg":
            # V sign: index and middle straight up, ring and little curled below their bases
            assert y.argmin() in (8, 12) and y[8] < y[6] < y[5] and y[12] < y[10] < y[9]
            assert y[16] > y[14] and y[20] > y[18]
        else:  # a thumbs-up: the thumb tip is the topmost joint
            assert y.argmin() == 4
        assert 0.15 <= hand_length_m(hand.keypoints) <= 0.22
        assert 0.2 <= hand.keypoints[:, 2].mean() <= 1.0  # an arm's length from the camera


@pytest.mark.parametrize("name", [n for n, sides in EXPECTED.items() if sides])
def test_placed_keypoints_reproject_onto_the_landmarks(results, name) -> None:
    result = results[name]
    for hand in result.hands:
        pixels = hand.landmarks.pixels
        assert hand.reprojection_px.mean() <= 8.0
        assert np.allclose(result.camera.project(hand.keypoints), pixels, atol=1e-6)
        # the rigid placement alone: within a few percent of the hand's pixel size
        diag = np.linalg.norm(pixels.max(0) - pixels.min(0))
        assert hand.rigid_reprojection_px.mean() <= 0.05 * diag


def test_meshes_are_watertight_and_sit_on_the_hands(results, shipped_halo) -> None:
    result = results["mpsamples_hand_landmarker_test_image.jpg"]
    meshes = result.meshes(shipped_halo, resolution=48)
    assert len(meshes) == 2
    for hand, mesh in zip(result.hands, meshes, strict=True):
        assert mesh.is_watertight and len(mesh.faces) > 1000
        uv = result.camera.project(np.asarray(mesh.vertices))
        lo, hi = hand.landmarks.pixels.min(0), hand.landmarks.pixels.max(0)
        margin = 0.25 * (hi - lo)
        inside = ((uv >= lo - margin) & (uv <= hi + margin)).all(axis=1)
        assert inside.mean() >= 0.95
    # the scene holds the hands in metres and the photo's camera
    scene = result.scene
    assert len(scene.hands) == 2 and scene.camera.image.shape == (427, 640, 3)


def test_command_writes_json_meshes_and_overlay(monkeypatch, capsys, tmp_path, shipped_halo):
    monkeypatch.setattr(reconstruct_cli, "_load_model", lambda *a: shipped_halo)
    out = tmp_path / "out"
    photo = PHOTOS / "mpsamples_hand_thumb_up.jpg"
    code, stdout, err = run_cli(
        monkeypatch, capsys, "image", photo, "--out-dir", out, "--resolution", "48"
    )
    assert code == 0, err
    assert stdout.strip() == f"{photo}: 1 hand (left) -> {out}"
    stem = photo.stem
    assert sorted(p.name for p in out.iterdir()) == [
        f"{stem}.json", f"{stem}_hand0_left.ply", f"{stem}_overlay.png",
    ]  # fmt: skip
    report = json.loads((out / f"{stem}.json").read_text())
    (hand,) = report["hands"]
    assert hand["side"] == "left" and hand["mesh_watertight"] is True
    assert 0.15 <= hand["hand_length_m"] <= 0.22
    assert np.asarray(hand["landmarks_px"]).shape == (21, 2)
    assert np.asarray(hand["keypoints_m"]).shape == (21, 3)
    mesh = trimesh.load(out / hand["mesh"], process=False)
    assert mesh.is_watertight
    from PIL import Image

    overlay = np.asarray(Image.open(out / f"{stem}_overlay.png"))
    original = np.asarray(Image.open(photo).convert("RGB"))
    assert overlay.shape == original.shape
    changed = np.abs(overlay.astype(int) - original).sum(-1) > 30
    # the mesh covers the hand: the changed pixels lie around the landmarks
    ys, xs = np.nonzero(changed)
    lm = np.asarray(hand["landmarks_px"])
    assert 0.03 <= changed.mean() <= 0.5
    assert lm[:, 0].min() - 60 <= xs.mean() <= lm[:, 0].max() + 60
    assert lm[:, 1].min() - 60 <= ys.mean() <= lm[:, 1].max() + 60
