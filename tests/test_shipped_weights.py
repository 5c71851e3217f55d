"""The weights shipped in the package load offline and describe a hand around its keypoints."""

from __future__ import annotations

import numpy as np
import torch

from halohand import HALO
from halohand.handmodel.prior import PosePrior
from halohand.handmodel.webxr import default_model


def test_pretrained_occupancy_is_a_hand_around_the_keypoints() -> None:
    torch.set_num_threads(1)
    model = HALO.pretrained()
    hand = default_model().pose(PosePrior().gesture("relaxed"))
    kp = hand.keypoints
    # Non-tip joints lie well inside the hand; points 6 cm beyond the skeleton's box are empty.
    joints = kp[[i for i in range(21) if i not in (4, 8, 12, 16, 20)]]
    far = np.concatenate([kp.min(0) - 0.06, kp.max(0) + 0.06])[None].reshape(2, 3)
    occ = model.occupancy(np.concatenate([joints, far]), kp, units="m").detach().numpy()
    assert occ.shape[-1] == len(joints) + 2
    assert (occ[..., : len(joints)] > 0.5).mean() >= 0.9
    assert (occ[..., len(joints) :] < 0.5).all()
