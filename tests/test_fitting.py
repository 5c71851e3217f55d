"""Template fitting: torch forward == numpy model, recovery of a sampled hand, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from halohand.core.errors import HalohandInputError
from halohand.fitting import FitConfig, TorchHandModel, fit_template, fit_templates
from halohand.handmodel import HandIdentity, HandPose, IdentityPrior, PosePrior, WebXRHandModel


@pytest.fixture(scope="module")
def models() -> tuple[WebXRHandModel, TorchHandModel]:
    return WebXRHandModel.load(), TorchHandModel()


@pytest.mark.parametrize("side", ["right", "left"])
def test_torch_forward_matches_numpy(models, side: str) -> None:
    model, tmodel = models
    rng = np.random.default_rng(1)
    for _ in range(3):
        identity = IdentityPrior().sample(rng)
        pose = HandPose.from_array(PosePrior().sample_angles(rng))
        ref = model.pose(pose, identity, side)
        lf = torch.tensor(identity.length_factors)[None]
        pw = torch.tensor([identity.palm_width])
        scale = tmodel.scale_for_hand_length(torch.tensor([identity.hand_length]), lf, pw)
        out = tmodel(
            torch.tensor(pose.as_array())[None], lf, pw, scale, side,
            thickness_offsets=torch.tensor(identity.thickness_offsets)[None],
            with_vertices=True,
        )  # fmt: skip
        np.testing.assert_allclose(out.keypoints[0].numpy(), ref.keypoints, atol=1e-6)
        np.testing.assert_allclose(out.vertices[0].numpy(), ref.vertices, atol=1e-6)
        np.testing.assert_array_equal(tmodel.mesh_faces(side), ref.faces)


def test_torch_forward_global_transform_and_gradients(models) -> None:
    _, tmodel = models
    angles = torch.zeros(2, 15, 3, dtype=torch.float64, requires_grad=True)
    ones = torch.ones(2, 16, dtype=torch.float64)
    one = torch.ones(2, dtype=torch.float64)
    base = tmodel(angles, ones, one, one).keypoints
    rot = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    moved = tmodel(
        angles, ones, one, one, global_rot=rot.expand(2, 3, 3),
        translation=torch.tensor([[0.1, 0.2, 0.3]] * 2, dtype=torch.float64),
    ).keypoints  # fmt: skip
    torch.testing.assert_close(moved, base @ rot.T + torch.tensor([0.1, 0.2, 0.3]).double())
    moved.sum().backward()
    assert angles.grad is not None and torch.isfinite(angles.grad).all()
    assert angles.grad.abs().sum() > 0


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.standard_normal(4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


def test_fit_recovers_sampled_hands(models) -> None:
    """Moderate natural poses, randomly rotated and moved, right and left (one batch):
    keypoints to < 1.5 mm mean; the parameters reproduce the mesh through the numpy model."""
    model, _ = models
    rng = np.random.default_rng(3)
    sides = ["right", "left"]
    hands, identities, targets = [], [], []
    for side in sides:
        identity = IdentityPrior().sample(rng)
        pose = HandPose.from_array(
            PosePrior().perturb(PosePrior().gesture("relaxed").as_array(), rng, 0.5)
        )
        hand = model.pose(pose, identity, side)
        targets.append(hand.keypoints @ _random_rotation(rng).T + np.array([0.05, -0.02, 0.4]))
        hands.append(hand)
        identities.append(identity)
    results = fit_templates(np.stack(targets), sides, FitConfig(iterations=80, starts=("mean",)))
    for res, target, identity, side in zip(results, targets, identities, sides, strict=True):
        assert res.keypoint_error_mm < 1.5
        assert res.max_keypoint_error_mm < 4.0
        err = np.linalg.norm(res.keypoints - target, axis=-1).mean() * 1e3
        assert err == pytest.approx(res.keypoint_error_mm)
        assert abs(res.identity.hand_length - identity.hand_length) < 0.003
        mesh = res.mesh
        assert mesh.is_watertight and mesh.volume > 0  # outward faces on both sides
        assert res.seconds > 0 and res.side == side
        again = model.pose(res.pose, res.identity, side)
        posed = again.vertices @ res.rotation.T + res.translation
        np.testing.assert_allclose(posed, res.vertices, atol=1e-6)


def test_fit_templates_batch_and_rest_hand() -> None:
    model = WebXRHandModel.load()
    hands = [model.pose(HandPose(), HandIdentity(hand_length=h)) for h in (0.16, 0.2)]
    res = fit_templates(
        np.stack([h.keypoints for h in hands]), ["right", "right"],
        FitConfig(iterations=40, starts=("flat",), with_mesh=False),
    )  # fmt: skip
    assert len(res) == 2 and res[0].vertices is None
    for r, h in zip(res, (0.16, 0.2), strict=True):
        assert r.keypoint_error_mm < 1.0
        assert r.identity.hand_length == pytest.approx(h, abs=0.002)
    with pytest.raises(HalohandInputError):
        _ = res[0].mesh


@pytest.mark.parametrize(
    ("keypoints", "side", "match"),
    [
        (np.zeros((20, 3)), "right", "shape"),
        (np.full((21, 3), np.nan), "right", "NaN"),
        ("abc", "right", "numbers"),
        (None, "up", "side"),
        (None, "mm", "millimetres"),
        (np.zeros((21, 3)), "right", "not a hand"),
    ],
)
def test_bad_input_raises(keypoints, side: str, match: str) -> None:
    hand = WebXRHandModel.load().pose()
    if keypoints is None:
        keypoints = hand.keypoints * (1000.0 if side == "mm" else 1.0)
        side = "right" if side == "mm" else side
    with pytest.raises(HalohandInputError, match=match):
        fit_template(keypoints, side, FitConfig(iterations=1))


def test_collinear_palm_and_bad_config() -> None:
    hand = WebXRHandModel.load().pose()
    kp = hand.keypoints.copy()
    kp[:, 0] = 0.0  # flatten onto a plane first: still fine (palm is planar)
    kp[:, 2] = 0.0  # then onto a line
    with pytest.raises(HalohandInputError, match="collinear"):
        fit_template(kp, "right")
    with pytest.raises(HalohandInputError, match="unknown start"):
        FitConfig(starts=("nope",))
    with pytest.raises(HalohandInputError):
        FitConfig(iterations=0)
    with pytest.raises(HalohandInputError, match="sides"):
        fit_templates(np.stack([hand.keypoints] * 2), ["right"])
