"""The hand's soft-tissue correctives (halohand.handmodel.shape): closed forms, invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from halohand.core.errors import HalohandInputError
from halohand.handmodel import HandIdentity, HandPose, PosePrior, WebXRHandModel
from halohand.handmodel.shape import (
    NUM_SHAPES,
    SHAPE_LIMIT_MM,
    SHAPE_NAMES,
    build_shape_basis,
    shape_basis,
)
from halohand.handmodel.template import load_template
from halohand.handmodel.torch_model import TorchHandModel
from halohand.skeleton import PART_NAMES


@pytest.fixture(scope="module")
def model() -> WebXRHandModel:
    return WebXRHandModel.load()


def _identity(shape: np.ndarray, **kw: object) -> HandIdentity:
    return HandIdentity(shape=shape, **kw)


def test_basis_fields_peak_at_one_mm_along_the_normals() -> None:
    basis = shape_basis()
    assert basis.shape == (NUM_SHAPES, len(load_template().vertices), 3)
    np.testing.assert_allclose(np.linalg.norm(basis, axis=2).max(1), 1e-3, rtol=1e-12)
    np.testing.assert_array_equal(basis, build_shape_basis(load_template()))
    assert not basis.flags.writeable


def test_at_rest_the_displacement_is_the_basis_itself(model: WebXRHandModel) -> None:
    # Template identity, rest pose: every skinning transform is the identity, so the mesh
    # moves by exactly sum_k c_k basis_k.
    coef = np.array([2.0, -1.5, 3.0, 1.0, -0.5])
    moved = model.pose(HandPose(), _identity(coef)).vertices
    plain = model.pose(HandPose(), HandIdentity()).vertices
    np.testing.assert_allclose(moved - plain, np.einsum("s,svc->vc", coef, shape_basis()),
                               atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("side", ["right", "left"])
def test_keypoints_and_part_transforms_do_not_see_the_correctives(
    model: WebXRHandModel, side: str
) -> None:
    rng = np.random.default_rng(4)
    pose = PosePrior().sample(rng)
    base = dict(hand_length=0.2, palm_width=1.08, length_factors=rng.uniform(0.9, 1.1, 16))
    coef = rng.uniform(-1, 1, NUM_SHAPES) * np.array(SHAPE_LIMIT_MM)
    a = model.pose(pose, _identity(coef, **base), side=side)
    b = model.pose(pose, HandIdentity(**base), side=side)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.part_transforms, b.part_transforms)
    np.testing.assert_array_equal(a.rest_keypoints, b.rest_keypoints)
    moved = np.linalg.norm(a.vertices - b.vertices, axis=1)
    assert moved.max() > 1e-3  # at least a millimetre somewhere


def test_each_corrective_stays_in_its_region(model: WebXRHandModel) -> None:
    tpl = load_template()
    weights = tpl.part_weights
    fingers = [PART_NAMES.index(f"{f}{k}") for f in ("index", "middle", "ring", "pinky")
               for k in (2, 3)]  # fmt: skip
    distal = [PART_NAMES.index(f"{f}3") for f in ("thumb", "index", "middle", "ring", "pinky")]
    moved = np.linalg.norm(shape_basis(), axis=2) > 1e-6  # [S, V]
    # Palm fields leave the middle and distal phalanges of the long fingers alone; the pads
    # lie on the distal phalanges; the knuckles on the dorsal side (+Z in the rest frame).
    on_fingers = weights[:, fingers].sum(1) > 0.5
    for name in ("thenar", "palm_hollow", "thumb_web"):
        assert not np.any(moved[SHAPE_NAMES.index(name)] & on_fingers), name
    pads = moved[SHAPE_NAMES.index("finger_pads")]
    assert np.all(weights[pads][:, distal].sum(1) > 0.3)
    n = trimesh.Trimesh(tpl.vertices, tpl.faces, process=False).vertex_normals
    hollow = shape_basis()[SHAPE_NAMES.index("palm_hollow")]
    assert np.all(n[np.linalg.norm(hollow, axis=1) > 1e-6, 2] < 0)  # palmar side only
    assert np.all((hollow * n).sum(1) <= 1e-15)  # and inward


@pytest.mark.parametrize("k", range(NUM_SHAPES))
def test_limits_keep_a_closed_mesh_and_the_documented_volume_sign(
    model: WebXRHandModel, k: int
) -> None:
    pose = PosePrior().gesture("relaxed")
    volume = {}
    for c in (-SHAPE_LIMIT_MM[k], 0.0, SHAPE_LIMIT_MM[k]):
        coef = np.zeros(NUM_SHAPES)
        coef[k] = c
        hand = model.pose(pose, _identity(coef))
        mesh = trimesh.Trimesh(hand.vertices, hand.faces, process=False)
        assert mesh.is_watertight and mesh.is_winding_consistent
        volume[c] = mesh.volume
    grows = SHAPE_NAMES[k] in ("thenar", "finger_pads", "knuckles")
    sign = 1.0 if grows else -1.0
    assert sign * (volume[SHAPE_LIMIT_MM[k]] - volume[0.0]) > 1e-6  # > 1 cm^3
    assert sign * (volume[0.0] - volume[-SHAPE_LIMIT_MM[k]]) > 1e-6


def test_torch_model_matches_and_differentiates_the_correctives(model: WebXRHandModel) -> None:
    rng = np.random.default_rng(7)
    pose = PosePrior().sample(rng)
    factors = rng.uniform(0.9, 1.1, 16)
    coef = rng.uniform(-1, 1, NUM_SHAPES) * np.array(SHAPE_LIMIT_MM)
    ident = HandIdentity(hand_length=0.18, length_factors=factors, palm_width=0.95, shape=coef)
    ref = model.pose(pose, ident, side="left")
    tm = TorchHandModel()
    f, w = torch.tensor(factors)[None], torch.tensor([0.95])
    shape = torch.tensor(coef)[None].requires_grad_(True)
    out = tm(torch.tensor(pose.as_array())[None], f, w,
             tm.scale_for_hand_length(torch.tensor([0.18]), f, w), side="left",
             with_vertices=True, shape=shape)  # fmt: skip
    np.testing.assert_allclose(out.vertices[0].detach().numpy(), ref.vertices, atol=1e-9)
    out.vertices.sum().backward()
    assert torch.all(torch.isfinite(shape.grad)) and torch.all(shape.grad.abs() > 0)


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ([0, 0, 0, 0, 2.5], "knuckles is 2.5 mm, outside"),
        ([6, 0, 0, 0, 0], "thenar is 6 mm"),
        ([0, 0, 0, 0], r"shape must have shape \[5\]"),
        ([0, float("nan"), 0, 0, 0], "not finite"),
    ],
)
def test_bad_coefficients_get_one_line_errors(shape: list, match: str) -> None:
    with pytest.raises(HalohandInputError, match=match):
        HandIdentity(shape=shape)
