"""Checks shared by the tests of the part MLPs' added inputs (Fourier features, points in
bone lengths, feature grids, the knuckle spread) and of the differentiable queries: every
path that runs the part MLPs computes the same occupancy as the float64 generic forward, on
a network whose new inputs change its function; values and first derivatives through
either differentiable query (:func:`query_gradients`)."""

from __future__ import annotations

import copy

import numpy as np
import torch
from halo_fakes import hand_keypoints, query_points
from torch import Tensor

from halohand.fields import HandConditioning, OccupancyNetwork, hand_conditioning
from halohand.fields.skipping import effective_radii, skip_mask
from halohand.inference.halo import keypoint_box
from halohand.inference.lattice_query import LatticeQuery
from halohand.inference.query import query_occupancy, sparse_occupancy, sparse_query


def fake_hands(gestures=("spread", "fist")) -> tuple[np.ndarray, np.ndarray]:
    """``[G, 21, 3]`` keypoints (metres) of the gestures and ``[G, 3000, 3]`` query points
    around them."""
    kp = np.stack([hand_keypoints(g) for g in gestures])
    pts = np.stack([query_points(k, 3000, seed=i) for i, k in enumerate(kp)])
    return kp, pts


def query_gradients(
    net: OccupancyNetwork,
    batch: tuple[np.ndarray, np.ndarray, list[bool]],
    sparse: bool,
    parts_weight: float = 0.0,
    **kwargs: object,
) -> dict[str, Tensor]:
    """Values and gradients of ``occ.sum() + parts_weight * parts[..., 5].sum()`` through the
    sparse (``kwargs`` go to it) or the chunked differentiable query, for ``batch`` =
    (keypoints ``[B, 21, 3]``, points ``[B, N, 3]``, one left flag per hand): the occupancy,
    the gradients of the points, the keypoints, the weight and bias of every layer
    (``w{i}``, ``b{i}``) and, with grids, the grid table; the part probabilities with
    ``parts_weight``."""
    kp_np, pts_np, side = batch
    dtype = net.mlp.layers[0].weight.dtype
    kp = torch.tensor(kp_np, requires_grad=True)
    pts = torch.tensor(pts_np, requires_grad=True)
    for p in net.parameters():
        p.grad = None
    hands = hand_conditioning(kp, side=torch.tensor(side))
    want_parts = parts_weight != 0.0
    if sparse:
        occ, parts = sparse_query(net, hands, pts, return_parts=want_parts, **kwargs)
    else:
        occ, parts = query_occupancy(net, hands, pts, return_parts=want_parts)
    loss = occ.sum()
    if want_parts:
        loss = loss + parts_weight * parts[..., 5].sum()
    loss.backward()
    out = {"occ": occ.detach(), "points": pts.grad, "keypoints": kp.grad}
    if want_parts:
        out["parts"] = parts.detach()
    for i, layer in enumerate(net.mlp.layers):
        out[f"w{i}"] = layer.weight.grad
        out[f"b{i}"] = layer.bias.grad
    if net.grids is not None:
        out["grid_table"] = net.grids.table.grad
    assert occ.dtype == dtype
    return out


def check_same_function(
    plain: OccupancyNetwork, net: OccupancyNetwork
) -> tuple[HandConditioning, Tensor]:
    """``net`` (``plain`` with more point inputs added by ``adapt_network``) gives
    ``plain``'s occupancy within 1e-6 on two hands' query points, inside and outside;
    returns those hands and points for further checks."""
    kp, pts = fake_hands()
    hands = hand_conditioning(torch.as_tensor(kp), torch.tensor([False, True]))
    points = torch.as_tensor(pts)
    with torch.no_grad():
        want, _ = query_occupancy(plain, hands, points)
        got, _ = query_occupancy(net, hands, points)
    assert (want > 0.5).any() and (want < 0.5).any()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    return hands, points


def check_every_inference_path(plain: OccupancyNetwork, net: OccupancyNetwork, atol: float) -> None:
    """``net`` (``plain`` with more point inputs) differs from ``plain`` by > 1e-2 somewhere,
    and its float32 paths (generic dense and masked, chunked and sparse folded queries, the
    lattice query of mesh extraction) agree with its float64 generic forward within
    ``atol``, with a median difference below 1e-6."""
    kp, pts = fake_hands()
    hands = hand_conditioning(torch.as_tensor(kp), torch.tensor([False, True]))
    points = torch.as_tensor(pts)
    with torch.no_grad():  # the float64 generic forward is the reference
        truth, truth_parts = query_occupancy(copy.deepcopy(net).double(), hands, points)
        truth, truth_parts = truth.float(), truth_parts.float()
    # float32, generic and differentiable: every part (dense) and the supported pairs
    # packed in blocks (masked)
    radii = effective_radii(net)
    p_halo = hands.to_halo_frame(points).float()
    mask = skip_mask(points.float(), hands.keypoints.float(), radii.float())
    args = (p_halo, hands.part_matrices.float(), hands.bone_lengths.float())
    skeleton = {"canonical_keypoints": hands.canonical_keypoints.float()}
    if net.reads_knuckle_spread:
        skeleton["knuckle_spread"] = hands.knuckle_spread.float()
    _, dense_parts = net.query(*args, return_parts=True, **skeleton)
    masked = net.query(*args, part_mask=mask, **skeleton)
    with torch.no_grad():  # float32, folded: the chunked query and the sparse one
        ref, _ = query_occupancy(net, hands, points)
        base, _ = query_occupancy(plain, hands, points)
        folded, _ = sparse_occupancy(net, hands, points, return_parts=False)
    assert (truth - base).abs().max() > 1e-2  # the inputs change the function
    for got in (ref, folded, masked.detach()):
        torch.testing.assert_close(got, truth, rtol=0, atol=atol)
        assert (got - truth).abs().median() < 1e-6
    torch.testing.assert_close(dense_parts.detach()[mask], truth_parts[mask], rtol=0, atol=atol)
    # the lattice query of mesh extraction (float32 metres about the box centre)
    for i in range(2):
        cond = hand_conditioning(torch.as_tensor(kp[i : i + 1]), bool(i))
        lo, hi = keypoint_box(kp[i], 0.04)
        centre = 0.5 * (lo + hi)
        query = LatticeQuery(net, cond, centre, radii, 0.3, 0.01)
        values, _, _ = query((pts[i] - centre).astype(np.float32), None)
        np.testing.assert_allclose(values, truth[i].numpy(), rtol=0, atol=atol)
        assert np.median(np.abs(values - truth[i].numpy())) < 1e-6


def check_sparse_gradients(net32: OccupancyNetwork) -> dict[str, Tensor]:
    """The differentiable sparse query of ``net32`` (in float64) gives the chunked query's
    values and first derivatives (points, keypoints, layers, grid table) within 1e-9 on a
    relaxed right hand's query points, inside and outside; returns the chunked query's."""
    from halohand.inference.query import can_query_sparse_grad

    net = copy.deepcopy(net32).double()
    kp = np.stack([hand_keypoints("relaxed")])
    batch = (kp, query_points(kp[0], 2000, seed=3)[None], [False])
    hands = hand_conditioning(torch.as_tensor(kp), torch.tensor([False]))
    assert can_query_sparse_grad(net, hands, points=10**6)
    want = query_gradients(net, batch, sparse=False)
    got = query_gradients(net, batch, sparse=True, max_pairs=700, workers=2)
    assert (want["occ"] > 0.5).any() and (want["occ"] < 0.5).any()
    assert got.keys() == want.keys()
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=1e-9, atol=1e-9, msg=key)
    return want
