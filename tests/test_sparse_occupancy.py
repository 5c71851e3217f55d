"""HALO.occupancy without gradients (inference.query.sparse_occupancy): the values of the
dense evaluation, network calls bounded in (point, part) pairs, gradients untouched.

Tolerances: against the dense evaluation (every part at every point, unfolded, then the
network's supports) 1e-4 and the same decisions at the model's level; against the chunked
query it replaces (the same folded float32 network on the same pairs) 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from halo_fakes import hand_keypoints, query_points

from halohand.fields import OccupancyNetwork, hand_conditioning, part_inputs, skip_mask
from halohand.fields.skipping import effective_radii
from halohand.inference import query as query_module
from halohand.inference.halo import HALO, keypoint_box
from halohand.inference.query import (
    can_query_sparse,
    knuckle_spread_of,
    pair_batches,
    query_occupancy,
    sparse_occupancy,
)
from halohand.skeleton import mirror

K = 16


def _dense(net: OccupancyNetwork, kp_m: np.ndarray, points_m: np.ndarray, side: str):
    """Every part at every point (the unfolded network, no pair selection), then the
    network's own part supports: the dense evaluation, ``[N]`` occupancy and ``[N, 16]``."""
    with torch.no_grad():
        hands = hand_conditioning(torch.as_tensor(kp_m)[None], side=side)
        pts = torch.as_tensor(points_m)[None]
        canon, code = part_inputs(hands.to_halo_frame(pts), hands.part_matrices)
        logits = net.part_logits(
            canon, code, hands.bone_lengths, canonical_keypoints=hands.canonical_keypoints,
            knuckle_spread=knuckle_spread_of(net, hands),
        )  # fmt: skip
        support = skip_mask(pts.float(), hands.keypoints.float(), effective_radii(net))
        logits = logits.masked_fill(~support, float("-inf"))
        return torch.sigmoid(logits.amax(-1))[0], torch.sigmoid(logits)[0]


@pytest.fixture(scope="module")
def hands() -> list[tuple[np.ndarray, str]]:
    spread, fist, relaxed = (hand_keypoints(g) for g in ("spread", "fist", "relaxed"))
    turned = relaxed @ np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).T
    return [(spread, "right"), (fist, "right"), (mirror(turned) + 0.5, "left")]


def test_pair_batches_bound_every_call() -> None:
    rng = np.random.default_rng(0)
    counts = rng.integers(1, K + 1, 5000)
    for bound in (1, 7, 16, 100, 4096, 10**6):
        spans = pair_batches(counts, bound)
        assert spans[0][0] == 0 and spans[-1][1] == len(counts)
        assert all(a < e for a, e in spans)
        assert all(e0 == a1 for (_, e0), (a1, _) in zip(spans, spans[1:], strict=False))
        for a, e in spans:
            # within the bound, or a single point that alone exceeds it
            assert counts[a:e].sum() <= bound or e - a == 1
            # greedy: the next point would not have fitted
            if e < len(counts):
                assert counts[a : e + 1].sum() > bound
    assert pair_batches(np.zeros(0, dtype=np.int64), 10) == []


def test_shipped_occupancy_equals_the_dense_evaluation(shipped_halo: HALO, hands) -> None:
    net = shipped_halo.network
    level = shipped_halo.iso_level
    for i, (kp, side) in enumerate(hands):
        pts = query_points(kp, 20_000, seed=i)
        cond = hand_conditioning(torch.as_tensor(kp)[None], side)
        with torch.no_grad():
            assert can_query_sparse(net, cond, torch.zeros(1, 1, 3))
        # with a graph to build (points that need gradients) the differentiable loop runs
        assert not can_query_sparse(net, cond, torch.zeros(1, 1, 3, requires_grad=True))
        # through the path users call, in millimetres
        occ, parts = shipped_halo.occupancy(
            pts * 1000, kp * 1000, side=side, units="mm", return_parts=True
        )
        ref_occ, ref_parts = _dense(net, kp, pts, side)
        assert occ.dtype == torch.float32 and not occ.requires_grad
        # float32 in another order (part transforms folded into the first layer): ~1.1e-5
        # measured, as far as either evaluation lies from a float64 one
        assert (occ - ref_occ).abs().max() < 1e-4
        assert (parts - ref_parts).abs().max() < 1e-4
        assert torch.equal(occ >= level, ref_occ >= level)
        assert (occ == 0).any() and (occ >= level).any()  # both sides of the surface


def test_worker_threads_and_batches_of_hands_give_the_same_values(
    shipped_halo: HALO, hands
) -> None:
    net = shipped_halo.network
    kp = np.stack([h[0] for h in hands])
    sides = torch.tensor([h[1] == "left" for h in hands])
    pts = torch.as_tensor(np.stack([query_points(k, 6000, seed=7) for k in kp]))
    with torch.no_grad():
        cond = hand_conditioning(torch.as_tensor(kp), sides)
        ref, ref_parts = query_occupancy(net, cond, pts)
    before = torch.get_num_threads()
    occ, parts = sparse_occupancy(
        net, cond, pts, return_parts=True, chunk_size=2500, mask_chunk=700, workers=2
    )
    assert torch.get_num_threads() == before
    assert (occ - ref).abs().max() < 1e-6 and (parts - ref_parts).abs().max() < 1e-6
    # one point set for every hand, in centimetres
    shared = pts[:1] * 100
    with torch.no_grad():
        ref_shared, _ = query_occupancy(net, cond, pts[:1].expand(3, -1, -1))
    occ_shared, none = sparse_occupancy(net, cond, shared, scale=0.01, workers=2)
    assert none is None and (occ_shared - ref_shared).abs().max() < 1e-6


def test_network_calls_stay_within_the_pair_bound(shipped_halo: HALO, monkeypatch) -> None:
    net = shipped_halo.network
    kp = hand_keypoints("fist")
    pts = torch.as_tensor(query_points(kp, 120_000, seed=3))[None]
    cond = hand_conditioning(torch.as_tensor(kp)[None])
    calls: list[int] = []
    tests: list[int] = []
    folded = net.folded_logits
    support = query_module.skip_mask

    def spy_network(points, *args):  # noqa: ANN001, ANN002, ANN202
        calls.append(points.shape[0])
        return folded(points, *args)

    def spy_support(points, *args):  # noqa: ANN001, ANN002, ANN202
        tests.append(points.shape[1])
        return support(points, *args)

    monkeypatch.setattr(net, "folded_logits", spy_network)
    monkeypatch.setattr(query_module, "skip_mask", spy_support)
    occ, _ = sparse_occupancy(net, cond, pts, chunk_size=50_000, mask_chunk=3000, max_pairs=5000)
    monkeypatch.undo()
    active = int(skip_mask(pts.float(), cond.keypoints.float(), effective_radii(net)).sum())
    assert max(calls) <= 5000 and sum(calls) == active and len(calls) >= active // 5000
    assert max(tests) <= 3000 and sum(tests) == pts.shape[1]
    with torch.no_grad():
        ref, _ = query_occupancy(net, cond, pts, return_parts=False)
    assert (occ - ref).abs().max() < 1e-6


def test_points_outside_every_support_cost_no_network_call(shipped_halo: HALO, monkeypatch) -> None:
    net = shipped_halo.network
    kp = hand_keypoints("relaxed")
    far = kp.mean(0) + np.random.default_rng(0).normal(0, 1, (500, 3))
    far = kp.mean(0) + 0.3 * far / np.linalg.norm(far, axis=1, keepdims=True)
    calls: list[int] = []
    folded = net.folded_logits
    monkeypatch.setattr(net, "folded_logits", lambda p, *a: calls.append(1) or folded(p, *a))
    occ = shipped_halo.occupancy(far, kp, units="m")
    assert calls == [] and (occ == 0).all()


def test_gradients_take_the_differentiable_query(shipped_halo: HALO, monkeypatch) -> None:
    kp = hand_keypoints("spread")
    pts = query_points(kp, 400, seed=5)
    used: list[str] = []
    sparse = query_module.sparse_occupancy
    monkeypatch.setattr(
        "halohand.inference.halo.sparse_occupancy",
        lambda *a, **k: used.append("sparse") or sparse(*a, **k),
    )
    plain = shipped_halo.occupancy(pts, kp, units="m")
    assert used == ["sparse"]
    p = torch.tensor(pts, requires_grad=True)
    k = torch.tensor(kp, requires_grad=True)
    occ = shipped_halo.occupancy(p, k, units="m")
    assert used == ["sparse"] and occ.requires_grad
    occ.sum().backward()
    for g in (p.grad, k.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    # the differentiable query runs the network unfolded: float32 in another order
    torch.testing.assert_close(occ.detach(), plain, atol=1e-4, rtol=0)


def test_occupancy_inside_a_threaded_extraction_runs_nested(shipped_halo: HALO) -> None:
    # An occupancy function that calls HALO.occupancy, evaluated in worker threads: the
    # inner query runs in the worker's thread (it must not wait for the outer one's lock).
    import threading

    from halohand.inference.extract import evaluate_grid

    kp = hand_keypoints("relaxed")
    lo, hi = keypoint_box(kp, 0.04)

    def fn(p: np.ndarray) -> np.ndarray:
        return shipped_halo.occupancy(p.astype(np.float64), kp, units="m").numpy()

    out: list = []
    worker = threading.Thread(
        target=lambda: out.append(
            evaluate_grid(fn, lo, hi, resolution=16, hierarchical=False, batch=1000, workers=2)
        ),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "nested occupancy query did not finish"
    values = out[0][0]
    axes = [np.linspace(lo[i], hi[i], 17) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    want = shipped_halo.occupancy(grid.astype(np.float32).astype(np.float64), kp, units="m")
    assert np.abs(values.reshape(-1) - want.numpy()).max() < 1e-6
    assert torch.get_num_threads() == 1
