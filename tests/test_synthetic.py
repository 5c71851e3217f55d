"""``halohand data render``: rendered photos with ground truth, deterministic and resumable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from halohand.apps.cli import app
from halohand.apps.synthetic import (
    make_renderer,
    read_labels,
    render_scene,
    render_set,
    sample_scene,
)
from halohand.core.errors import HalohandInputError


def _renderer() -> str:
    """``egl`` where a headless context starts here, else ``numpy`` (the same checks run)."""
    return make_renderer("auto", 64)[1]


def test_render_is_deterministic_and_resumable(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    name = _renderer()
    render_set(a, 3, seed=5, size=64, renderer=name, log=None)
    report = render_set(a, 4, seed=5, size=64, renderer=name, log=None)  # resume, extend
    assert report["skipped"] == 3 and report["rendered"] == 1
    render_set(b, 4, seed=5, size=64, renderer=name, log=None)
    for sub in ("images", "masks", "labels"):
        files = sorted(p.name for p in (a / sub).iterdir())
        assert len(files) == 4
        for f in files:
            assert (a / sub / f).read_bytes() == (b / sub / f).read_bytes(), f"{sub}/{f}"
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["seed"] == 5 and manifest["n"] == 4 and manifest["renderer"] == name
    assert not list(a.rglob("*.tmp"))


def test_render_refuses_other_settings_and_bad_values(tmp_path: Path) -> None:
    render_set(tmp_path, 1, seed=1, size=64, renderer="numpy", log=None)
    with pytest.raises(HalohandInputError, match="other settings"):
        render_set(tmp_path, 1, seed=2, size=64, renderer="numpy", log=None)
    with pytest.raises(HalohandInputError, match="--n"):
        render_set(tmp_path / "x", 0, seed=1, size=64, renderer="numpy", log=None)
    with pytest.raises(HalohandInputError, match="--renderer"):
        render_set(tmp_path / "y", 1, seed=1, size=64, renderer="vulkan", log=None)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.parametrize("renderer", ["auto", "numpy"])
def test_labels_match_the_image(renderer: str) -> None:
    """The 2D keypoints are the 3D keypoints projected, they fall on the hand's mask, and
    the hand is drawn over the background."""
    gl, _ = make_renderer(renderer, 128)
    scene, hand = sample_scene(3, 0, 128)
    out = render_scene(scene, hand, gl)
    lab = out["labels"]
    k, kp3 = lab["intrinsics"], lab["keypoints_3d"]
    proj = kp3[:, :2] / kp3[:, 2:] * k[[0, 1], [0, 1]] + k[:2, 2]
    np.testing.assert_allclose(proj, lab["keypoints_2d"], atol=1e-9)
    mask = out["mask"]
    assert set(np.unique(mask)) <= {0, 1, 2} and (mask == 1).sum() > 100
    inside = [(0 <= u < 128 and 0 <= v < 128) for u, v in lab["keypoints_2d"]]
    u, v = np.round(lab["keypoints_2d"][inside]).astype(int).T
    u, v = np.clip(u, 0, 127), np.clip(v, 0, 127)
    assert np.mean(mask[v, u] > 0) > 0.6  # joints lie on the hand (a few on its outline)
    assert out["image"].shape == (128, 128, 3) and out["image"].std() > 5
    np.testing.assert_allclose(
        np.linalg.norm(lab["vertices"] - lab["vertices"].mean(0), axis=1).max() < 0.3, True
    )


def test_render_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["data", "render", "--out", str(tmp_path), "--n", "2", "--seed", "3", "--size", "64"]
    )
    assert result.exit_code == 0, result.output
    assert "2 rendered" in result.output
    img = Image.open(tmp_path / "images" / "000001.png")
    assert img.size == (64, 64)
    assert read_labels(tmp_path, 1)["keypoints_3d"].shape == (21, 3)
