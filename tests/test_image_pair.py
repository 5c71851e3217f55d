"""Two hands of one photo as a pair: the shipped photo of two overlapping thumbs-up right
hands comes out of the placement inside each other; the pair path (refinement along the
camera rays, meshing as a pair) parts them, in the library and in ``halohand image``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from conftest import REPO
from halo_fakes import run_cli

from halohand.apps.cli import reconstruct as reconstruct_cli
from halohand.apps.photo_outputs import pair_meshes, pair_photo_hands
from halohand.core.errors import HalohandInputError
from halohand.image import from_image
from halohand.interaction.plausibility import penetration_volume

PHOTO = REPO / "examples" / "photos" / "mpsamples_hand_landmarker_test_image.jpg"
RESOLUTION = 40


@pytest.fixture(scope="module")
def placed():
    return from_image(PHOTO, fit=True)


def test_pair_path_parts_the_two_hands(placed, shipped_halo) -> None:
    before = placed.meshes(shipped_halo, RESOLUTION)
    assert penetration_volume(*before) > 20.0  # as placed: tens of cm^3 inside each other
    paired, refined = pair_photo_hands(placed, shipped_halo)
    after = pair_meshes(paired, shipped_halo, RESOLUTION)
    assert len(after) == 2 and all(m.is_watertight for m in after)
    assert refined.overlap_before_cm3 > 20.0 and refined.overlap_after_cm3 == 0.0
    assert penetration_volume(*after) < 1.0
    for old, new in zip(placed.hands, paired.hands, strict=True):
        # each hand moved in depth and stays on its landmarks within a few pixels
        assert abs(new.keypoints[:, 2].mean() - old.keypoints[:, 2].mean()) > 0.005
        assert new.reprojection_px.mean() < old.reprojection_px.mean() + 4.0
        assert new.side == old.side and new.fit is old.fit


def test_the_pairs_fists_come_out_one_body_of_genus_0_with_touching_apart(
    placed, shipped_halo
) -> None:
    from halohand.inference.bodies import body_stats

    paired, _ = pair_photo_hands(placed, shipped_halo)
    genus = {}
    for touching in ("merge", "apart"):
        meshes = pair_meshes(paired, shipped_halo, 128, touching)
        stats = [body_stats(m) for m in meshes]
        assert all(m.is_watertight for m in meshes) and [s.count for s in stats] == [1, 1]
        genus[touching] = [int(s.genus[0]) for s in stats]
    # curled fingertips fuse with the palms unless kept apart
    assert min(genus["merge"]) > 0 and genus["apart"] == [0, 0]


def test_a_pair_needs_two_hands(placed, shipped_halo) -> None:
    from dataclasses import replace

    one = replace(placed, hands=placed.hands[:1])
    with pytest.raises(HalohandInputError, match="a pair needs two hands, the photo has 1"):
        pair_photo_hands(one, shipped_halo)


def test_command_writes_the_pair(monkeypatch, capsys, tmp_path, shipped_halo) -> None:
    monkeypatch.setattr(reconstruct_cli, "_load_model", lambda *a: shipped_halo)
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        monkeypatch, capsys, "image", PHOTO, "--out-dir", out, "--resolution", RESOLUTION
    )
    assert code == 0, err
    assert stdout.strip() == f"{PHOTO}: 2 hands (right, right) -> {out}"
    stem = PHOTO.stem
    assert sorted(p.name for p in out.iterdir()) == [
        f"{stem}.json", f"{stem}_hand0_right.ply", f"{stem}_hand1_right.ply",
        f"{stem}_overlay.png",
    ]  # fmt: skip
    report = json.loads((out / f"{stem}.json").read_text())
    pair = report["pair"]
    assert pair["overlap_before_cm3"] > 20.0 and pair["overlap_after_cm3"] == 0.0
    assert len(pair["moved_mm_mean"]) == 2 and pair["steps"] >= 1
    meshes = [trimesh.load(out / h["mesh"], process=False) for h in report["hands"]]
    assert all(m.is_watertight for m in meshes)
    assert penetration_volume(*meshes) < 1.0
    # the JSON's keypoints are the parted ones
    depths = [float(np.mean(np.asarray(h["keypoints_m"])[:, 2])) for h in report["hands"]]
    np.testing.assert_allclose(depths, pair["depth_after_m"], atol=1e-4)


def test_a_right_and_a_left_hand_go_through_reconstruct_pair(placed) -> None:
    """Sides right and left: one reconstruct_pair call with (right, left) keypoints, and the
    meshes come back in the photo's hand order."""
    from dataclasses import replace

    hands = list(placed.hands)
    hands[0] = replace(hands[0], landmarks=replace(hands[0].landmarks, right_score=0.1))
    mixed = replace(placed, hands=tuple(hands))  # hand 0 left, hand 1 right
    calls = []

    class Model:
        def reconstruct_pair(self, keypoints, **kwargs):
            calls.append((np.asarray(keypoints), kwargs))
            return type("Pair", (), {"right": "right mesh", "left": "left mesh"})()

    assert pair_meshes(mixed, Model(), 32) == ["left mesh", "right mesh"]
    ((kp, kwargs),) = calls
    np.testing.assert_array_equal(kp[0], hands[1].keypoints)  # right first
    np.testing.assert_array_equal(kp[1], hands[0].keypoints)
    assert kwargs["units"] == "m" and kwargs["resolution"] == 32
    assert kwargs["touching"] == "merge"
