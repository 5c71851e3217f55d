"""The weights shipped in the package load offline and describe a hand around its keypoints."""

from __future__ import annotations

import numpy as np
import torch

from halohand import HALO
from halohand.handmodel.prior import PosePrior
from halohand.handmodel.webxr import default_model


def test_pretrained_occupancy_is_a_hand_around_the_keypoints(shipped_halo: HALO) -> None:
    model = shipped_halo
    hand = default_model().pose(PosePrior().gesture("relaxed"))
    kp = hand.keypoints
    # Non-tip joints lie well inside the hand; points 6 cm beyond the skeleton's box are empty.
    joints = kp[[i for i in range(21) if i not in (4, 8, 12, 16, 20)]]
    far = np.concatenate([kp.min(0) - 0.06, kp.max(0) + 0.06])[None].reshape(2, 3)
    occ = model.occupancy(np.concatenate([joints, far]), kp, units="m").detach().numpy()
    assert occ.shape[-1] == len(joints) + 2
    assert (occ[..., : len(joints)] > 0.5).mean() >= 0.9
    assert (occ[..., len(joints) :] < 0.5).all()


def test_pretrained_mesh_parts_match_the_network_at_the_vertices(shipped_halo: HALO) -> None:
    # Part colours come from the extraction grid (the inside end of each vertex's lattice
    # edge), not from a second network pass: they must agree with the per-part argmax at
    # the vertices themselves except along part borders.
    model = shipped_halo
    kp = default_model().pose(PosePrior().gesture("relaxed")).keypoints
    mesh = model.reconstruct(kp, units="m", resolution=64)
    assert mesh.is_watertight
    _, parts = model.occupancy(np.asarray(mesh.vertices), kp, units="m", return_parts=True)
    at_vertices = parts.detach().numpy().argmax(-1).reshape(-1)
    agreement = (at_vertices == mesh.vertex_attributes["part"]).mean()
    assert agreement >= 0.95, agreement
    # every part that wins on at least 1 % of the vertices is shown
    share = np.bincount(at_vertices, minlength=16) / len(at_vertices)
    shown = np.bincount(mesh.vertex_attributes["part"], minlength=16) > 0
    assert shown[share >= 0.01].all() and (share >= 0.01).sum() >= 11


def test_pretrained_mesh_with_part_candidates_matches_every_part(shipped_halo: HALO) -> None:
    # The finest extraction level evaluates only the parts near the max one level before;
    # on the shipped model that must give the mesh of evaluating every part.
    kp = default_model().pose(PosePrior().gesture("fist")).keypoints
    fast = shipped_halo.reconstruct(kp, units="m", resolution=128)
    every = HALO.pretrained(part_candidates=None).reconstruct(kp, units="m", resolution=128)
    assert fast.is_watertight and len(fast.faces) == len(every.faces)
    assert np.abs(np.asarray(fast.vertices) - np.asarray(every.vertices)).max() < 1e-5
    assert (fast.vertex_attributes["part"] == every.vertex_attributes["part"]).all()


def test_grasps_keep_the_halo_they_were_trained_with() -> None:
    # The grasp model's loss, refinement and selection were tuned against one HALO, shipped
    # beside it; retraining the default reconstruction model must not change grasps.
    import hashlib

    from halohand.grasp.generate import GraspGenerator, grasp_halo
    from halohand.inference.halo import pretrained_path

    path = pretrained_path().parent / "halo_grasp.safetensors"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest.startswith("11ccd9c5"), digest
    halo = grasp_halo()
    assert halo.iso_level == 0.5
    gen = GraspGenerator.pretrained()
    ref = dict(halo.network.state_dict())
    for name, value in gen.halo.network.state_dict().items():
        assert torch.equal(value, ref[name]), name
