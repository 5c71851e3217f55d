"""``halohand demo`` (tiny configuration), the shipped key poses and their interpolation,
and the renderer's compositing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from halohand.apps.cli import app
from halohand.apps.render import gradient_background, render_layer, render_mesh
from halohand.core.errors import HalohandInputError
from halohand.handmodel.keyposes import (
    KEY_POSE_NAMES,
    build_key_poses,
    interpolate_sequence,
    load_key_poses,
    smoothstep,
)
from halohand.handmodel.pose import JOINT_LIMITS, HandPose
from halohand.handmodel.webxr import default_model
from halohand.skeleton import PARENTS


def _bone_lengths(kp: np.ndarray) -> np.ndarray:
    return np.linalg.norm(kp[1:] - kp[PARENTS[1:]], axis=1)


def test_shipped_key_poses_match_the_generator() -> None:
    """demo_poses.json is what ``python -m halohand.handmodel.keyposes`` writes today."""
    shipped = load_key_poses()
    built = build_key_poses()
    assert [p.name for p in shipped] == list(KEY_POSE_NAMES)
    for a, b in zip(shipped, built, strict=True):
        assert a.side == b.side == "right"
        np.testing.assert_allclose(a.angles, b.angles, atol=1e-5)
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=2e-6)
        assert a.keypoints.shape == (21, 3)


def test_sequence_is_a_valid_hand_in_every_frame() -> None:
    """Angle-space interpolation keeps bone lengths and joint limits (unlike keypoint blending)."""
    poses = load_key_poses()
    model = default_model()
    frames = interpolate_sequence(poses, 24)
    assert len(frames) == 24
    assert frames[0].label == poses[0].name
    assert "->" in frames[1].label
    ref = _bone_lengths(poses[0].keypoints)
    lo, hi = JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1]
    for f in frames:
        assert np.all(f.angles >= lo - 1e-9) and np.all(f.angles <= hi + 1e-9)
        hand = model.pose(HandPose.from_array(f.angles))
        np.testing.assert_allclose(_bone_lengths(hand.keypoints), ref, atol=5e-6)  # file: µm
    # the loop closes: the step from the last frame back to the first is small
    step = np.abs(frames[-1].angles - frames[0].angles).max()
    assert step < np.deg2rad(30)


def test_smoothstep_eases() -> None:
    u = np.linspace(0, 1, 11)
    s = smoothstep(u)
    assert s[0] == 0 and s[-1] == 1 and np.all(np.diff(s) >= 0)
    assert s[1] < u[1] and s[-2] > u[-2]  # slow at both ends


def test_render_composites_over_background_with_antialiased_edges() -> None:
    hand = default_model().pose()
    size = (48, 40)
    bg = gradient_background(size)
    img = render_mesh(hand.vertices, hand.faces, size=size, background=bg)
    assert img.shape == (40, 48, 3) and img.dtype == np.uint8
    _, alpha = render_layer(hand.vertices, hand.faces, size=size, supersample=2)
    assert alpha.max() == 1.0 and alpha.min() == 0.0
    assert np.any((alpha > 0) & (alpha < 1))  # partially covered edge pixels
    corner = np.round(bg[0, 0] * 255)
    np.testing.assert_allclose(img[0, 0], corner, atol=1)


def _non_trivial(path: Path) -> None:
    """An image that is more than a flat background: many distinct colours and contrast."""
    arr = np.asarray(Image.open(path).convert("RGB"))
    assert arr.shape[0] > 16 and arr.shape[1] > 16
    assert arr.std() > 10
    assert len(np.unique(arr.reshape(-1, 3), axis=0)) > 50


@pytest.mark.slow
def test_demo_tiny_configuration(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "frames").mkdir(parents=True)
    (out / "frames" / "frame_0007.png").write_bytes(b"stale, from a longer run")
    result = CliRunner().invoke(
        app,
        [
            "demo", "--out-dir", str(out), "--frames", "2", "--resolution", "32",
            "--size", "96", "--meshes", "--no-gallery",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    frames = sorted((out / "frames").glob("frame_*.png"))
    assert [f.name for f in frames] == ["frame_0000.png", "frame_0001.png"]
    for f in frames:
        _non_trivial(f)
    _non_trivial(out / "contact_sheet.png")
    assert not (out / "gestures.png").exists()  # --no-gallery
    gif = Image.open(out / "demo.gif")
    assert gif.n_frames == 2
    assert gif.info.get("loop") == 0  # loops forever
    gif.seek(1)
    assert np.asarray(gif.convert("RGB")).std() > 10
    assert sorted(p.name for p in (out / "meshes").glob("*.ply")) == [
        "frame_0000.ply",
        "frame_0001.ply",
    ]
    doc = json.loads((out / "keypoints.json").read_text())
    assert np.asarray(doc["keypoints"]).shape == (2, 21, 3) and doc["units"] == "m"
    timings = json.loads((out / "timings.json").read_text())
    assert timings["frames"] == 2 and timings["per_frame_s"]["reconstruct"] >= 0
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no temp files
    # the photo step: the example photo through the photo path, beside the keypoint results
    _non_trivial(out / "photo.png")
    stem = "mpsamples_hand_thumb_up"
    report = json.loads((out / "photo" / f"{stem}.json").read_text())
    assert len(report["hands"]) == 1
    hand = report["hands"][0]
    assert (out / "photo" / hand["mesh"]).is_file() and hand["mesh_watertight"]
    _non_trivial(out / "photo" / f"{stem}_overlay.png")
    assert "photo mpsamples_hand_thumb_up.jpg: 1 hand" in result.output
    assert timings["photo"].startswith("photo ") and timings["stages_s"]["photo"] >= 0


def test_demo_refuses_a_missing_photo_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["demo", "--out-dir", str(out), "--photo", str(tmp_path / "nope.jpg")]
    )
    # main() turns a HalohandInputError into one line and exit status 2
    assert isinstance(result.exception, HalohandInputError)
    assert "no such file" in str(result.exception)
    assert not (out / "demo.gif").exists()


def test_demo_without_photo_step(tmp_path: Path) -> None:
    """``--no-photo`` skips the photo path and says so."""
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["demo", "--out-dir", str(out), "--frames", "1", "--resolution", "16", "--size", "48",
         "--no-gallery", "--no-photo"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "photo step skipped" in result.output
    assert not (out / "photo.png").exists() and not (out / "photo").exists()


@pytest.mark.slow
def test_demo_gallery(tmp_path: Path) -> None:
    from halohand.apps.demo import _gallery
    from halohand.handmodel.prior import GESTURES

    count = _gallery(tmp_path, samples=1, seed=0)
    assert count == len(GESTURES) + 1
    _non_trivial(tmp_path / "gestures.png")
    _non_trivial(tmp_path / "samples.png")
    assert (tmp_path / "hands" / "gesture_fist.ply").is_file()
    doc = json.loads((tmp_path / "hands" / "sample_00_keypoints.json").read_text())
    assert doc["units"] == "m" and np.asarray(doc["keypoints"]).shape == (21, 3)


def test_demo_rejects_a_bad_side(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out-dir", str(tmp_path), "--side", "middle"])
    assert result.exit_code != 0
    assert not (tmp_path / "demo.gif").exists()


def test_camera_loops_and_mirrors_for_left_hands() -> None:
    from halohand.apps.demo import camera_views

    right, left = camera_views(8), camera_views(8, "left")
    assert len(right) == 8 and right[0] == pytest.approx(camera_views(1)[0])
    assert [a for a, _ in left] == pytest.approx([-a for a, _ in right])
