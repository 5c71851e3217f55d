"""HALO.occupancy with gradients (inference.query.sparse_query): the values and first
derivatives of the chunked differentiable query, on the active (point, part) pairs only;
the thread helpers it and the hot paths use (inference.threads).

Tolerances: in float64 (a double copy of the shipped network) the two queries run the same
operations in another grouping, 1e-9; in float32, 1e-5 on values (differently sized matrix
products round differently) and a relative 1e-3 on gradients.
"""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch
from halo_fakes import hand_keypoints, query_points
from inference_paths import query_gradients

from halohand.fields import OccupancyConfig, OccupancyNetwork, hand_conditioning
from halohand.inference import query as query_module
from halohand.inference.halo import HALO
from halohand.inference.query import (
    GRAD_SPARSE_MIN_POINTS,
    _active_calls,
    can_query_sparse_grad,
)
from halohand.inference.threads import fair_threads, torch_threads, worker_count
from halohand.skeleton import mirror


@pytest.fixture(scope="module")
def batch() -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """Two hands (a right one and a mirrored, shifted left one), 1500 points each."""
    spread, relaxed = hand_keypoints("spread"), hand_keypoints("relaxed")
    left = mirror(relaxed) + 0.3
    kp = np.stack([spread, left])
    pts = np.stack([query_points(spread, 1500, 1), query_points(left, 1500, 2)])
    return kp, pts, [False, True]


@pytest.fixture(scope="module", params=["shipped", "mlp"])
def net64(request) -> OccupancyNetwork:
    """The shipped network (bone-frame grids) and a shipped plain-MLP one, in float64."""
    halo = request.getfixturevalue("shipped_halo" if request.param == "shipped" else "mlp_halo")
    return copy.deepcopy(halo.network).double()


@pytest.mark.parametrize("parts_weight", [0.0, 0.3])
def test_values_and_gradients_equal_the_chunked_query_in_float64(
    net64: OccupancyNetwork, batch, parts_weight: float
) -> None:
    want = query_gradients(net64, batch, sparse=False, parts_weight=parts_weight)
    got = query_gradients(
        net64, batch, sparse=True, parts_weight=parts_weight, max_pairs=1000, workers=2
    )
    assert (want["occ"] > 0).any() and (want["occ"] == 0).any()
    for key, value in want.items():
        assert got[key] is not None, key
        torch.testing.assert_close(got[key], value, rtol=1e-9, atol=1e-9, msg=key)


def test_values_and_gradients_equal_the_chunked_query_in_float32(shipped_halo: HALO, batch) -> None:
    net = copy.deepcopy(shipped_halo.network)
    want = query_gradients(net, batch, sparse=False)
    got = query_gradients(net, batch, sparse=True, max_pairs=1000)
    torch.testing.assert_close(got["occ"], want["occ"], rtol=0, atol=1e-5)
    for key in ("points", "keypoints", "w1", "b4"):
        scale = want[key].abs().max()
        torch.testing.assert_close(got[key] / scale, want[key] / scale, rtol=0, atol=1e-3)


def test_checkpointed_calls_workers_and_batches_give_the_same_result(
    net64: OccupancyNetwork, batch
) -> None:
    kept = query_gradients(net64, batch, sparse=True, max_pairs=700, workers=1)
    for kwargs in ({"checkpoint_pairs": 0, "workers": 1}, {"workers": 2}, {"max_pairs": 5000}):
        got = query_gradients(net64, batch, sparse=True, **{"max_pairs": 700, **kwargs})
        for key, value in kept.items():
            torch.testing.assert_close(got[key], value, rtol=1e-12, atol=1e-12, msg=key)


def test_network_calls_stay_within_the_pair_bound(shipped_halo: HALO, batch) -> None:
    kp, pts, side = batch
    hands = hand_conditioning(torch.as_tensor(kp), side=torch.tensor(side))
    radii = shipped_halo.network.config.part_radii_m
    for max_pairs in (1, 300, 4096):
        calls = _active_calls(torch.as_tensor(pts), hands, 1.0, torch.tensor(radii), 16, 512,
                              max_pairs, workers=2)  # fmt: skip
        pairs = [int(mask.sum()) for _, _, mask in calls]
        assert all(p <= max(max_pairs, 16) for p in pairs)
        # every active point exactly once, in point order per hand
        for hand in range(2):
            idx = torch.cat([i for h, i, _ in calls if h == hand])
            assert (idx[1:] > idx[:-1]).all()
        assert all(mask.any(1).all() for _, _, mask in calls)


def test_points_outside_every_support_are_zero_with_zero_gradient(shipped_halo: HALO) -> None:
    kp = hand_keypoints("relaxed")
    rng = np.random.default_rng(0)
    far = rng.normal(0, 1, (GRAD_SPARSE_MIN_POINTS, 3))
    far = kp.mean(0) + 0.3 * far / np.linalg.norm(far, axis=1, keepdims=True)
    near = query_points(kp, 64, 3)
    pts = torch.tensor(np.concatenate([far, near]), requires_grad=True)
    k = torch.tensor(kp, requires_grad=True)
    occ = shipped_halo.occupancy(pts, k, units="m")
    occ.sum().backward()
    n = len(far)
    assert (occ[:n] == 0).all() and (pts.grad[:n] == 0).all()
    assert pts.grad[n:].abs().sum() > 0 and k.grad.abs().sum() > 0


def test_points_whose_active_pairs_underflow_to_zero_get_no_gradient(
    net64: OccupancyNetwork, batch
) -> None:
    # Every part but the palm ends at logit ~ -1000 (probability exactly 0): at points
    # outside the palm's support the max then picks the inactive palm, which has no
    # gradient in the chunked query and must get none here.
    net = copy.deepcopy(net64)
    with torch.no_grad():
        net.mlp.layers[-1].bias[1:] -= 1000.0
    want = query_gradients(net, batch, sparse=False)
    got = query_gradients(net, batch, sparse=True, max_pairs=1000, workers=2)
    for key in ("occ", "points", "keypoints", "w0", "b4"):
        torch.testing.assert_close(got[key], want[key], rtol=1e-9, atol=1e-9, msg=key)
    assert (want["occ"] == 0).any() and want["points"].abs().sum() > 0


def test_halo_takes_the_sparse_query_for_large_differentiable_queries(
    shipped_halo: HALO, monkeypatch
) -> None:
    used: list[str] = []
    sparse, chunked = query_module.sparse_query, query_module.query_occupancy
    monkeypatch.setattr(
        "halohand.inference.halo.sparse_query",
        lambda *a, **k: used.append("sparse") or sparse(*a, **k),
    )
    monkeypatch.setattr(
        "halohand.inference.halo.query_occupancy",
        lambda *a, **k: used.append("chunked") or chunked(*a, **k),
    )
    one = hand_keypoints("spread")
    for hands, n, path in (
        (1, GRAD_SPARSE_MIN_POINTS, "sparse"),
        (1, GRAD_SPARSE_MIN_POINTS - 1, "chunked"),
        (3, GRAD_SPARSE_MIN_POINTS // 2, "chunked"),  # many hands, few points each
    ):
        used.clear()
        kp = torch.tensor(np.stack([one] * hands), requires_grad=True)
        pts = torch.as_tensor(query_points(one, n, 4))
        occ = shipped_halo.occupancy(pts, kp, units="m")
        assert used == [path] and occ.requires_grad
    smooth = OccupancyNetwork(OccupancyConfig(smooth_max=True, part_radii_m=(0.05,) * 16))
    hands = hand_conditioning(torch.as_tensor(hand_keypoints("spread"))[None])
    assert not can_query_sparse_grad(smooth, hands, None, 10**6)
    assert can_query_sparse_grad(shipped_halo.network, hands, None, 10**6)


def test_torch_threads_sets_and_restores_and_nests() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
        assert worker_count() == before
        with torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    assert worker_count() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("restored even so")
    assert torch.get_num_threads() == before


def test_torch_threads_blocks_of_two_threads_take_turns() -> None:
    before = torch.get_num_threads()
    seen: list[int] = []

    def block() -> None:
        for _ in range(50):
            with torch_threads(1):
                seen.append(torch.get_num_threads())

    workers = [threading.Thread(target=block) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert seen == [1] * 100
    assert torch.get_num_threads() == before


def test_fair_threads_stays_between_one_and_the_wanted_count() -> None:
    for wanted in (1, 2, 64):
        assert 1 <= fair_threads(wanted) <= wanted


def test_the_command_sets_a_passive_openmp_wait_policy_unless_the_user_did(
    monkeypatch, capsys
) -> None:
    import os

    from halo_fakes import run_cli

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert run_cli(monkeypatch, capsys, "--help")[0] == 0
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    run_cli(monkeypatch, capsys, "--help")
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
