"""More point inputs of the part MLPs: Fourier features of the canonical points (config
``point_frequencies``) and the points in bone lengths (``point_bone_scale``).

The inputs enter every path that runs the part MLPs: the generic forward (dense and
masked), the folded inference path (``query`` with a part mask, the lattice query of mesh
extraction, the sparse occupancy query) and the differentiable sparse query. Each is checked
against the generic forward on a network whose feature weights are not zero. Adding the
features to a trained network with zero weights keeps its function (the warm start of
``init_weights``). Tolerances: float32 paths within 1e-5 of each other (other orders of
the same sums); float64 to 1e-9.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch
from halo_fakes import hand_keypoints
from inference_paths import (
    check_every_inference_path,
    check_same_function,
    fake_hands,
    query_gradients,
)

from halohand.fields import OccupancyConfig, OccupancyNetwork
from halohand.fields.encoding import encode_points, encoding_size
from halohand.inference.halo import HALO
from halohand.inference.query import query_occupancy
from halohand.training.widen import adapt_network

FREQUENCIES = (3.0, 12.5, 50.0)


def test_encode_points_is_sines_then_cosines_frequency_major() -> None:
    pts = torch.tensor([[0.1, -0.2, 0.03], [0.0, 0.5, -0.25]], dtype=torch.float64)
    got = encode_points(pts, (1.0, 4.0))
    assert got.shape == (2, 12) == (2, encoding_size((1.0, 4.0)))
    for i in range(2):
        angles = [2 * math.pi * f * float(pts[i, d]) for f in (1.0, 4.0) for d in range(3)]
        want = [math.sin(a) for a in angles] + [math.cos(a) for a in angles]
        np.testing.assert_allclose(got[i].numpy(), want, rtol=0, atol=1e-12)
    assert encode_points(pts[None], ()).shape == (1, 2, 0)
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\]"):
        encode_points(pts[:, :2], (1.0,))


def test_config_validates_and_round_trips_the_point_inputs() -> None:
    cfg = OccupancyConfig(point_frequencies=(2, 8))
    assert cfg.point_frequencies == (2.0, 8.0)
    assert cfg.point_features == 15 and cfg.in_features == OccupancyConfig().in_features + 12
    assert OccupancyConfig.from_dict(cfg.to_dict()) == cfg
    both = OccupancyConfig(point_frequencies=(2,), point_bone_scale=True)
    assert (both.encoding_start, both.point_features) == (6, 12)
    assert OccupancyConfig.from_dict(both.to_dict()) == both
    for bad in ((0.0,), (-1.0,), (float("nan"),)):
        with pytest.raises(ValueError, match="point_frequencies"):
            OccupancyConfig(point_frequencies=bad)


@pytest.fixture(
    scope="module",
    params=[(FREQUENCIES, False), ((), True), (FREQUENCIES, True)],
    ids=["fourier", "bone_scale", "both"],
)
def encoded(request, mlp_halo: HALO) -> tuple[OccupancyNetwork, OccupancyNetwork]:
    """The shipped network, and the same with more point inputs (Fourier features, points
    in bone lengths, both) whose weights are random."""
    plain = mlp_halo.network
    frequencies, bone_scale = request.param
    config = dataclasses.replace(
        plain.config, point_frequencies=frequencies, point_bone_scale=bone_scale
    )
    net = adapt_network(plain, config)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        w = net.mlp.layers[0].weight
        w[:, 3 : config.point_features] = 0.05 * torch.randn(
            w.shape[0], config.point_features - 3, w.shape[2], generator=gen
        )
    return plain, net.eval()


@pytest.mark.parametrize("bone_scale", [False, True])
def test_zero_feature_weights_keep_the_trained_function(mlp_halo: HALO, bone_scale: bool) -> None:
    plain = mlp_halo.network
    config = dataclasses.replace(
        plain.config, point_frequencies=FREQUENCIES, point_bone_scale=bone_scale
    )
    net = adapt_network(plain, config)
    hands, points = check_same_function(plain, net)
    # the new weights learn: their gradient is not zero
    occ, _ = query_occupancy(net, hands, points)
    occ.sum().backward()
    grad = net.mlp.layers[0].weight.grad[:, 3 : config.point_features]
    assert grad.abs().max() > 0
    with pytest.raises(ValueError, match="more point inputs"):
        adapt_network(net, dataclasses.replace(config, point_frequencies=(1.0,)))


def test_every_inference_path_sees_the_features(encoded) -> None:
    # The float32 paths round the features' phases differently (up to ~2 pi 50 x 0.3 rad
    # before reduction); random weights on 50-cycle features make that up to ~4e-5.
    check_every_inference_path(*encoded, atol=1e-4)


def test_the_differentiable_sparse_query_sees_the_features(encoded) -> None:
    _, net32 = encoded
    net = copy.deepcopy(net32).double()
    kp, pts = fake_hands(("relaxed", "spread"))
    batch = (kp, pts, [False, False])
    want = query_gradients(net, batch, sparse=False)
    got = query_gradients(net, batch, sparse=True, max_pairs=1000, workers=2)
    assert got.keys() == want.keys()
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=1e-9, atol=1e-9, msg=key)


def test_reconstruct_with_features_gives_a_closed_hand(encoded) -> None:
    _, net = encoded
    halo = HALO(net)
    mesh = halo.reconstruct(hand_keypoints("relaxed"), resolution=64)
    assert mesh.is_watertight and len(mesh.faces) > 1000
