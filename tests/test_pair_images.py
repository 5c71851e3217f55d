"""Rendered images of two-hand pairs (``halohand data pair-images``) and the shared scene
renderer they use with the hand-object scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy.ndimage import binary_dilation

from halohand.apps.pair_images import PairImagesConfig, render_pair_split
from halohand.apps.scene_render import render_meshes
from halohand.core.errors import HalohandInputError
from halohand.data.dataset import PairDataset
from halohand.data.engine import generate
from halohand.data.pairs import PairSampler

CONFIG = PairImagesConfig(views=2, size=48, seed=3, renderer="numpy")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pairs") / "d"
    generate(out, {"train": 2}, seed=3, source=PairSampler, source_name=PairSampler.name,
             side="both", hands_per_shard=1, workers=1, progress=False, kind="pairs")  # fmt: skip
    return out


@pytest.fixture(scope="module")
def rendered(pairs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("images")
    report = render_pair_split(pairs, "train", out, CONFIG)
    assert (report["made"], report["skipped"], report["renderer"]) == (2, 0, "numpy")
    return out


def _project(points: np.ndarray, doc: dict, view: int) -> np.ndarray:
    p = points @ doc["rotation"][view].T + doc["translation"][view]
    uv = p @ doc["intrinsics"][view].T
    return uv[:, :2] / uv[:, 2:]


def test_every_vertex_of_both_hands_projects_onto_the_hands_masks(
    pairs: Path, rendered: Path
) -> None:
    """The stored camera is the one that drew the image: each hand's vertices land on the
    silhouette (their own hand's or, where hidden, the other's), and each hand's own mask is
    seen where its vertices are."""
    data = PairDataset(pairs, "train")
    for i in range(2):
        doc = dict(np.load(rendered / "train" / f"p_{i:05d}.npz"))
        assert doc["images"].shape == (2, 48, 48, 3) and doc["images"].dtype == np.uint8
        assert doc["masks"].shape == (2, 48, 48)
        np.testing.assert_array_equal(doc["keypoints"], data.pair(i)["keypoints"])
        assert str(doc["interaction"]) == data.pair(i)["interaction"]
        for view in range(2):
            mask = doc["masks"][view]
            # one pixel of slack: at 48 px, vertices on the silhouette fall either side
            near = binary_dilation(mask > 0)
            for hand, (verts, _) in enumerate(data.pair(i)["meshes"]):
                px = np.clip(np.floor(_project(verts, doc, view)).astype(int), 0, 47)
                assert near[px[:, 1], px[:, 0]].mean() > 0.99, (i, view, hand)
                assert (mask[px[:, 1], px[:, 0]] == hand + 1).mean() > 0.3, (i, view, hand)


def test_renders_are_deterministic_in_any_order_and_resume(pairs: Path, rendered: Path,
                                                           tmp_path: Path) -> None:  # fmt: skip
    first = render_pair_split(pairs, "train", tmp_path, CONFIG, limit=1)
    rest = render_pair_split(pairs, "train", tmp_path, CONFIG)
    assert (first["made"], rest["made"], rest["skipped"]) == (1, 1, 1)
    for i in range(2):
        a = np.load(rendered / "train" / f"p_{i:05d}.npz")
        b = np.load(tmp_path / "train" / f"p_{i:05d}.npz")
        assert set(a.files) == set(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    other = PairImagesConfig(views=2, size=48, seed=4, renderer="numpy")
    with pytest.raises(HalohandInputError, match="other settings"):
        render_pair_split(pairs, "train", tmp_path, other)
    render_pair_split(pairs, "train", tmp_path / "s4", other, limit=1)
    changed = np.load(tmp_path / "s4" / "train" / "p_00000.npz")["images"]
    assert not np.array_equal(changed, np.load(tmp_path / "train" / "p_00000.npz")["images"])


def test_bad_settings_are_refused(pairs: Path, tmp_path: Path) -> None:
    with pytest.raises(HalohandInputError, match="views"):
        PairImagesConfig(views=0)
    with pytest.raises(HalohandInputError, match="size"):
        PairImagesConfig(size=8)
    with pytest.raises(HalohandInputError, match="split"):
        render_pair_split(pairs, "heldout", tmp_path, CONFIG)


def test_render_meshes_tells_up_to_three_meshes_apart() -> None:
    """Three boxes side by side in front of the camera: each one's pixels carry its id."""
    k = np.array([[40.0, 0.0, 24.0], [0.0, 40.0, 24.0], [0.0, 0.0, 1.0]])
    meshes = []
    for i, x in enumerate((-0.08, 0.0, 0.08)):
        box = trimesh.creation.box((0.05, 0.05, 0.05))
        box.apply_translation((x, 0.0, 0.3))
        meshes.append((np.asarray(box.vertices), np.asarray(box.faces), np.full(3, 0.2 * i + 0.3)))
    image, mask = render_meshes(None, meshes, k, 48, np.random.default_rng(0))
    assert image.shape == (48, 48, 3)
    for i, x in enumerate((-0.08, 0.0, 0.08)):
        u = int(24 + 40 * x / 0.3)
        assert mask[24, u] == i + 1
    assert mask[2, 2] == 0
    with pytest.raises(ValueError, match="1 to 3 meshes"):
        render_meshes(None, meshes * 2, k, 48, np.random.default_rng(0))


def test_pair_images_command(pairs: Path, monkeypatch, capsys, tmp_path: Path) -> None:
    from halo_fakes import run_cli

    out = tmp_path / "img"
    args = ["data", "pair-images", "--out", out, "--pairs", pairs, "--splits", "train",
            "--views", "1", "--size", "32", "--renderer", "numpy"]  # fmt: skip
    code, stdout, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0 and "2 pairs rendered" in stdout, err
    assert np.load(out / "train" / "p_00001.npz")["masks"].shape == (1, 32, 32)
    code, stdout, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 0 and "0 pairs rendered, 2 already there" in stdout
    for bad, says in (
        (["--splits", "train,bogus"], "--splits must be one of"),
        (["--views", "0"], "--views"),
        (["--renderer", "vulkan"], "--renderer must be one of"),
        (["--pairs", tmp_path], "not a folder of 'halohand data pairs' output"),
    ):
        code, _, err = run_cli(monkeypatch, capsys, *args, *bad)
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
