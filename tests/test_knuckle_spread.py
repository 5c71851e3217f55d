"""The knuckle spread as a network input: the feature's invariances and statistics, the
function-preserving warm start, and every inference path reading it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from halo_fakes import hand_keypoints, query_points
from inference_paths import (
    check_every_inference_path,
    check_same_function,
    check_sparse_gradients,
)

from halohand import HALO
from halohand.core.errors import HalohandInputError
from halohand.fields import OccupancyConfig, OccupancyNetwork, hand_conditioning
from halohand.fields.knuckles import (
    KNUCKLE_SPREAD_LIMIT,
    KNUCKLE_SPREAD_MEAN,
    KNUCKLE_SPREAD_STD,
    knuckle_spread,
)
from halohand.inference.query import query_occupancy
from halohand.training.widen import adapt_network


def _rotation(seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    return q


def test_spread_is_a_ratio_of_the_knuckles_invariant_to_pose_frame_and_units() -> None:
    kp = hand_keypoints("spread")
    want = (
        np.log(np.linalg.norm(kp[5] - kp[17]) / np.linalg.norm(kp[0] - kp[9])) - KNUCKLE_SPREAD_MEAN
    ) / KNUCKLE_SPREAD_STD
    moved = 1000.0 * kp @ _rotation(0).T + np.array([0.3, -2.0, 5.0])
    mirrored = kp * np.array([-1.0, 1.0, 1.0])
    fist = hand_keypoints("fist")  # the same palm: the rig's palm does not bend
    got = knuckle_spread(torch.as_tensor(np.stack([kp, moved, mirrored, fist])))
    torch.testing.assert_close(got, torch.full((4,), want, dtype=torch.float64))


def test_spread_is_clipped_and_rejects_bad_hands() -> None:
    kp = hand_keypoints("spread")
    wide = kp.copy()
    wide[17] = kp[5] + 3.0 * (kp[17] - kp[5])  # a little knuckle far out
    got = knuckle_spread(torch.as_tensor(wide[None]))
    assert float(got) == KNUCKLE_SPREAD_LIMIT
    with pytest.raises(HalohandInputError, match=r"\[B, 21, 3\]"):
        knuckle_spread(torch.as_tensor(kp))
    same = kp.copy()
    same[17] = same[5]
    with pytest.raises(HalohandInputError, match="distinct"):
        knuckle_spread(torch.as_tensor(same[None]))


def test_spread_constants_are_the_hand_priors_statistics() -> None:
    # standardized over fresh identities of the data's prior: mean ~0 and std ~1 (the
    # constants come from 2,000 identities; 300 here, so the bounds are a few std errors)
    from halohand.handmodel.prior import IdentityPrior
    from halohand.handmodel.webxr import default_model

    model, prior = default_model(), IdentityPrior()
    rng = np.random.default_rng(11)
    kp = np.stack([model.pose(None, prior.sample(rng)).keypoints for _ in range(300)])
    x = knuckle_spread(torch.as_tensor(kp)).numpy()
    assert abs(x.mean()) < 0.2
    assert 0.85 < x.std() < 1.15


def test_spread_follows_the_palm_width_that_the_canonical_skeleton_drops() -> None:
    # two identities that differ only in palm width: the same bone lengths and canonical
    # skeleton up to a few per cent of the width change, a different spread
    from halohand.handmodel.pose import HandIdentity
    from halohand.handmodel.webxr import default_model

    model = default_model()
    narrow, wide = (
        np.asarray(model.pose(None, HandIdentity(palm_width=w)).keypoints) for w in (0.9, 1.1)
    )
    hands = hand_conditioning(torch.as_tensor(np.stack([narrow, wide])))
    spread = hands.knuckle_spread
    assert float(spread[1] - spread[0]) > 2.5  # 2 x 10 % of width -> > 2.5 std
    canon = hands.canonical_keypoints
    width = torch.linalg.vector_norm(canon[:, 5] - canon[:, 17], dim=-1)
    assert float(width[1] / width[0]) < 1.03  # the canonical palm barely moves


def test_config_round_trips_and_old_configs_do_not_read_the_spread() -> None:
    config = OccupancyConfig(knuckle_spread=True)
    assert OccupancyConfig.from_dict(config.to_dict()) == config
    assert config.in_features == OccupancyConfig().in_features + 1
    old = OccupancyConfig().to_dict()
    del old["knuckle_spread"]  # a file written before the field existed
    assert not OccupancyNetwork(OccupancyConfig.from_dict(old)).reads_knuckle_spread


@pytest.fixture(scope="module")
def spread_net(mlp_halo: HALO) -> tuple[OccupancyNetwork, OccupancyNetwork]:
    """A shipped MLP network, and the same reading the knuckle spread with random weights."""
    plain = mlp_halo.network
    config = dataclasses.replace(plain.config, knuckle_spread=True)
    net = adapt_network(plain, config)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(2)
        w = net.mlp.layers[0].weight
        w[:, -1] = 0.8 * torch.randn(w.shape[0], w.shape[2], generator=gen)
    return plain, net.eval()


def test_added_spread_keeps_the_trained_function(mlp_halo: HALO) -> None:
    plain = mlp_halo.network
    net = adapt_network(plain, dataclasses.replace(plain.config, knuckle_spread=True))
    assert net.reads_knuckle_spread
    check_same_function(plain, net)
    with pytest.raises(ValueError, match="drop the knuckle spread"):
        adapt_network(net, plain.config)


def test_every_inference_path_reads_the_spread(spread_net) -> None:
    check_every_inference_path(*spread_net, atol=2e-5)


def test_the_spread_changes_the_occupancy_and_is_required(spread_net) -> None:
    _, net = spread_net
    kp = hand_keypoints("relaxed")
    hands = hand_conditioning(torch.as_tensor(kp[None]))
    points = torch.as_tensor(query_points(kp, 2000, seed=4)[None])
    with torch.no_grad():
        want, _ = query_occupancy(net, hands, points)
        other = dataclasses.replace(hands, keypoints=hands.keypoints.clone())
        other.keypoints[0, 17] += 0.3 * (other.keypoints[0, 17] - other.keypoints[0, 5])
        got, _ = query_occupancy(net, other, points)
    assert (got - want).abs().max() > 1e-2
    p = hands.to_halo_frame(points).float()
    with pytest.raises(HalohandInputError, match="knuckle spread"):
        net.query(p, hands.part_matrices.float(), hands.bone_lengths.float())


def test_sparse_gradients_through_the_spread_equal_the_chunked_query(spread_net) -> None:
    # the spread is differentiable in the keypoints: the sparse query's first-layer
    # constants carry it as the chunked query's forward does
    want = check_sparse_gradients(spread_net[1])
    assert want["keypoints"][0, 17].abs().max() > 0


def test_reconstruct_reads_the_spread_from_a_saved_network(spread_net, tmp_path) -> None:
    from halohand.fields.io import load_model, save_model

    _, net = spread_net
    path = tmp_path / "spread.safetensors"
    save_model(path, net)
    loaded = load_model(path)
    assert loaded.reads_knuckle_spread
    mesh = HALO(loaded).reconstruct(hand_keypoints("relaxed"), resolution=64)
    assert mesh.is_watertight and len(mesh.faces) > 1000


def test_mano_placed_hands_read_as_the_typical_hand(spread_net) -> None:
    # MANO-based keypoints place the knuckles elsewhere, so their spread is not read: a
    # hand named "mano" is queried with the spread at 0, one named "rig" with its own
    _, net = spread_net
    model = HALO(net)
    kp = hand_keypoints("relaxed")
    wide = kp.copy()
    wide[17] = kp[5] + 1.15 * (kp[17] - kp[5])  # a wider knuckle spread, same fingers
    pts = torch.as_tensor(query_points(kp, 2000, seed=5))
    rig = model.prepare(wide, convention="rig").conditioning
    mano = model.prepare(wide, convention="mano").conditioning
    assert float(rig.knuckle_spread[0]) > 1.0 and float(mano.knuckle_spread[0]) == 0.0
    read = dataclasses.replace(mano, spread_known=None)  # the same hand, its spread read
    assert float(read.knuckle_spread[0]) == float(rig.knuckle_spread[0])
    with torch.no_grad():
        neutral, _ = query_occupancy(net, mano, pts[None])
        own, _ = query_occupancy(net, read, pts[None])
    got = model.occupancy(pts, wide, units="m", convention="mano")
    torch.testing.assert_close(got, neutral[0].to(got.dtype), rtol=0, atol=2e-5)
    assert (own - neutral).abs().max() > 1e-2
