"""Refinement of generated grasps in the hand model's pose space (``grasp/pose_refine.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from halo_fakes import run_cli

from halohand.core.errors import HalohandInputError
from halohand.grasp import taxonomy as tx
from halohand.grasp.generate import generate_grasps, shipped_model_path
from halohand.grasp.pose_refine import PoseRefineConfig, refine_poses
from halohand.grasp.synthesis import GraspStarts, SynthesisConfig, optimise_starts
from halohand.grasp.vae import load_vae
from halohand.objects.registry import load_object


@pytest.fixture(scope="module")
def samples():  # noqa: ANN201
    torch.set_num_threads(1)
    vae, _ = load_vae(shipped_model_path())
    obj = load_object("capsule_4")
    return obj, generate_grasps(vae, obj, 3, seed=2, refine=False).keypoints


def test_refinement_pushes_the_hands_out_and_keeps_them_near(samples) -> None:  # noqa: ANN001
    """More steps of the engine's energy leave the hands less deep in the object than the
    fitted hands (1 step), keep every hand within a hand's length of where it was sampled,
    and give each a type the object's geometry allows."""
    obj, kp = samples
    fitted = refine_poses(
        obj, kp, config=PoseRefineConfig(steps=1, fit_iterations=60, engine_starts=0)
    )
    refined = refine_poses(
        obj, kp, config=PoseRefineConfig(steps=60, fit_iterations=60, engine_starts=0)
    )
    assert refined["keypoints"].shape == (3, 21, 3) and refined["keypoints"].dtype == np.float32
    assert (fitted["fit_error_mm"] < 5.0).all()
    depth = np.maximum(fitted["penetration_mm"], fitted["object_in_hand_mm"])
    after = np.maximum(refined["penetration_mm"], refined["object_in_hand_mm"])
    assert after.mean() < depth.mean(), (depth, after)
    moved = np.linalg.norm(refined["keypoints"] - kp, axis=-1).max(1)
    assert (moved < 0.18).all(), moved
    allowed = set(tx.choose_types(tx.analyse(obj)))
    assert set(refined["grasp_type"]) <= allowed


def test_separation_moves_sunken_hands_out(samples) -> None:  # noqa: ANN001
    """Hands sunk 2 cm into the object start, with ``separate_cm``, from a rigid move that
    leaves them far less deep (one descent step, so the move is what is measured)."""
    obj, kp = samples
    sunk = (
        kp - 0.02 * kp.mean(1, keepdims=True) / np.linalg.norm(kp.mean(1), axis=-1)[:, None, None]
    )
    cfg = {"steps": 1, "fit_iterations": 60, "engine_starts": 0}
    kept = refine_poses(obj, sunk, config=PoseRefineConfig(**cfg, separate_cm=0.0))
    moved = refine_poses(obj, sunk, config=PoseRefineConfig(**cfg, separate_cm=6.0))
    assert moved["penetration_mm"].mean() < 0.5 * kept["penetration_mm"].mean(), (
        kept["penetration_mm"], moved["penetration_mm"])  # fmt: skip
    shift = np.linalg.norm(moved["keypoints"] - kept["keypoints"], axis=-1).mean(1)
    assert (shift < 0.065).all()  # at most the largest move tried (6 cm) and one step


def test_anchor_keeps_the_samples_articulation(samples) -> None:  # noqa: ANN001
    """The anchor term pulls each refined hand's joint angles toward its fitted sample's: a
    strong anchor ends nearer the fitted angles than none, and its energy is reported."""
    obj, kp = samples
    cfg = dict(steps=40, fit_iterations=60, engine_starts=0, halo_steps=0)
    fitted = refine_poses(obj, kp, config=PoseRefineConfig(**{**cfg, "steps": 1}))
    free = refine_poses(obj, kp, config=PoseRefineConfig(**cfg))
    held = refine_poses(obj, kp, config=PoseRefineConfig(**cfg, anchor=2000.0))
    assert "energy_anchor" in held and "energy_anchor" not in free
    drift_free = np.abs(free["angles"] - fitted["angles"]).mean()
    drift_held = np.abs(held["angles"] - fitted["angles"]).mean()
    assert drift_held < 0.5 * drift_free, (drift_held, drift_free)
    with pytest.raises(HalohandInputError, match="anchor"):
        PoseRefineConfig(anchor=-1.0)


def test_anchor_is_not_stored_in_engine_settings_unless_set() -> None:
    from halohand.grasp.synthesis import EnergyWeights

    assert "anchor" not in SynthesisConfig().to_dict()["weights"]
    weights = SynthesisConfig(weights=EnergyWeights(anchor=0.5)).to_dict()["weights"]
    assert weights["anchor"] == 0.5


def test_engine_starts_never_end_higher(samples) -> None:  # noqa: ANN001
    """With engine-placed starts beside each fitted hand, each sample's output is the start
    of lowest final energy: never above the fitted hand's own result (rows are optimised
    independently), one output per sample."""
    obj, kp = samples
    cfg = {"steps": 20, "fit_iterations": 40}
    alone = refine_poses(obj, kp, seed=3, config=PoseRefineConfig(**cfg, engine_starts=0))
    multi = refine_poses(obj, kp, seed=3, config=PoseRefineConfig(**cfg, engine_starts=2))
    assert multi["keypoints"].shape == (3, 21, 3) and multi["engine_start"].shape == (3,)
    assert (multi["energy"] <= alone["energy"] + 1e-9).all(), (alone["energy"], multi["energy"])
    same = ~multi["engine_start"]
    np.testing.assert_allclose(multi["keypoints"][same], alone["keypoints"][same], atol=1e-6)
    with pytest.raises(HalohandInputError, match="engine_starts"):
        PoseRefineConfig(engine_starts=9)


def test_refinement_is_deterministic(samples) -> None:  # noqa: ANN001
    obj, kp = samples
    cfg = PoseRefineConfig(steps=3, fit_iterations=20)
    a = refine_poses(obj, kp[:2], seed=1, config=cfg)
    b = refine_poses(obj, kp[:2], seed=1, config=cfg)
    np.testing.assert_array_equal(a["keypoints"], b["keypoints"])


def test_bad_input_is_refused(samples) -> None:  # noqa: ANN001
    obj, kp = samples
    with pytest.raises(HalohandInputError, match=r"\[n, 21, 3\]"):
        refine_poses(obj, kp[:, :20])
    with pytest.raises(HalohandInputError, match="steps"):
        PoseRefineConfig(steps=0)
    with pytest.raises(HalohandInputError, match="lr"):
        PoseRefineConfig(lr=0.0)


def test_taxonomy_starts_need_types() -> None:
    n = 1
    starts = GraspStarts(
        angles=np.zeros((n, 15, 3)), rotation=np.eye(3)[None], translation=np.zeros((n, 3)),
        length_factors=np.ones((n, 16)), palm_width=np.ones(n), hand_length=np.full(n, 0.18),
        power=np.zeros(n, bool), types=None, object_points=np.zeros((10, 3)),
    )  # fmt: skip
    with pytest.raises(HalohandInputError, match="types"):
        optimise_starts(load_object("box_0"), starts, config=SynthesisConfig(taxonomy=True))


@pytest.mark.slow
def test_generator_refines_poses_on_request(samples) -> None:  # noqa: ANN001
    """``GraspGenerator.generate(refine_pose=True)`` runs the refinement on the same samples:
    other keypoints than without it, its time accounted."""
    from halohand.grasp.generate import GraspGenerator

    obj, _ = samples
    gen = GraspGenerator.pretrained()
    plain = gen.generate(obj, 1, seed=4, refine=False, candidates=1, meshes=False)
    posed = gen.generate(obj, 1, seed=4, refine=False, candidates=1, meshes=False,
                         refine_pose=True)  # fmt: skip
    assert "refine_pose" in posed.seconds and "refine_pose" not in plain.seconds
    assert posed.keypoints.shape == plain.keypoints.shape == (1, 21, 3)
    assert np.abs(posed.keypoints - plain.keypoints).max() > 1e-3


@pytest.mark.slow
def test_cli_refine_pose_writes_refined_grasps(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    code, _, err = run_cli(
        monkeypatch, capsys, "grasp", "capsule_4", "--n", "1", "--out-dir", str(out),
        "--candidates", "1", "--refine-pose", "--resolution", "32", "--no-sheet",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((out / "grasps.json").read_text())
    assert summary["refine_pose"] is True and "refine_pose" in summary["seconds"]
    assert np.load(out / "keypoints.npy").shape == (1, 21, 3)


def test_clear_penetration_lifts_halo_out_and_leaves_free_hands(samples) -> None:  # noqa: ANN001
    """Refined hands pressed 4 mm further into the object leave it (HALO's occupancy at
    points under the surface, other points than the step's own, drops by half or more) by
    small moves; a hand 10 cm away does not move at all."""
    from halohand.grasp.energies import interpenetration
    from halohand.grasp.generate import (
        clear_penetration,
        grasp_halo,
        penetration_probes,
        refine_translation,
    )

    obj, kp = samples
    halo = grasp_halo()
    kp = refine_translation(halo, kp, obj)
    inward = -kp.mean(1, keepdims=True) / np.linalg.norm(kp.mean(1), axis=-1)[:, None, None]
    pressed = kp + 0.004 * inward
    far = kp[:1] - 0.10 * inward[:1]
    hands = np.concatenate([pressed, far])
    out = clear_penetration(halo, hands, obj, steps=20, seed=0)
    probes = torch.as_tensor(penetration_probes(obj, 1500, 7, shell_mm=8.0, shell_fraction=1.0))

    def pen(k: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            p = probes[None].expand(len(k), -1, -1) * 100.0
            return interpenetration(halo, torch.as_tensor(k * 100.0), p).numpy()

    before, after = pen(hands[:-1]), pen(out[:-1])
    assert (before > 0).all() and after.sum() <= 0.5 * before.sum(), (before, after)
    moved = np.linalg.norm(out - hands, axis=-1).max(1)
    assert (moved[:-1] < 0.01).all() and moved[-1] < 1e-12, moved
