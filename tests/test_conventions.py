"""Keypoint conventions: the rig's joint centres against skin fingertips (MANO-style)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from halo_fakes import CapsuleNet, hand_keypoints, run_cli

from halohand.core.errors import HalohandInputError
from halohand.handmodel.template import load_template
from halohand.inference.halo import HALO
from halohand.skeleton.conventions import (
    FINGER_CHAINS,
    MOVED_TIPS,
    TIP_EXTENSION,
    TIP_MARGIN_M,
    detect_convention,
    from_rig,
    resolve_convention,
    tip_ratio,
    to_rig,
)


def skin_tips(kp: np.ndarray, fingers: tuple[int, ...] = MOVED_TIPS) -> np.ndarray:
    """A rig hand's keypoints with each tip of ``fingers`` moved to where its finger's skin
    ends (less the margin): the closed-form inverse of :func:`to_rig`."""
    out = kp.copy()
    for f in fingers:
        chain = FINGER_CHAINS[f]
        bone = kp[chain[3]] - kp[chain[2]]
        length = np.linalg.norm(bone)
        out[chain[3]] = kp[chain[2]] + bone / length * (
            length * (1.0 + TIP_EXTENSION[f]) - TIP_MARGIN_M
        )
    return out


def test_tip_extension_is_the_templates() -> None:
    """The constant is what the embedded hand's mesh shows: skin past each tip joint along
    its distal bone, over the bone's length."""
    t = load_template()
    kp, v = t.rest_keypoints, t.vertices
    for f, chain in enumerate(FINGER_CHAINS):
        d = kp[chain[3]] - kp[chain[2]]
        length = np.linalg.norm(d)
        d /= length
        rel = v - kp[chain[3]]
        along = rel @ d
        near = (np.linalg.norm(rel - along[:, None] * d, axis=1) < 0.008) & (along > -0.005)
        assert along[near].max() / length == pytest.approx(TIP_EXTENSION[f], abs=0.01)


def test_detection_tells_the_rig_from_skin_tips() -> None:
    rig = np.stack([hand_keypoints(g) for g in ("spread", "fist", "point", "relaxed")])
    assert detect_convention(rig) == ["rig"] * 4
    assert detect_convention(skin_tips(rig[0])) == ["mano"]
    assert (np.median(tip_ratio(rig)[:, 1:4], axis=-1) < 0.6).all()
    assert detect_convention(torch.from_numpy(rig[1])) == ["rig"]
    assert resolve_convention("mano", rig) == ["mano"] * 4
    # auto reads one call's hands alike (one source): the majority of the ratios decides
    mixed = np.stack([skin_tips(rig[0]), rig[1], rig[2]])
    assert detect_convention(mixed) == ["mano", "rig", "rig"]
    assert resolve_convention("auto", mixed) == ["rig"] * 3
    noisy = rig[[0, 1, 2, 3] * 3] + np.random.default_rng(0).normal(0, 0.005, (12, 21, 3))
    assert resolve_convention("auto", noisy) == ["rig"] * 12
    with pytest.raises(ValueError, match="unknown keypoint convention"):
        resolve_convention("openpose", rig)


def test_to_rig_inverts_skin_tips_and_keeps_the_rest() -> None:
    kp = hand_keypoints("relaxed")
    skin = skin_tips(kp)
    back = to_rig(skin, ["mano"])
    np.testing.assert_allclose(back, kp, atol=1e-12)
    assert to_rig(kp, ["rig"]) is kp
    # millimetres: the margin is in metres
    np.testing.assert_allclose(to_rig(skin_tips(kp) * 1000.0, ["mano"], 1e-3) / 1000.0,
                               to_rig(skin, ["mano"]), atol=1e-12)  # fmt: skip
    # batch with mixed readings, and torch (differentiable) gives the numpy values
    both = np.stack([skin, kp])
    np.testing.assert_allclose(to_rig(both, ["mano", "rig"]), np.stack([kp, kp]), atol=1e-12)
    t = torch.tensor(both, requires_grad=True)
    out = to_rig(t, ["mano", "rig"])
    np.testing.assert_allclose(out.detach().numpy(), np.stack([kp, kp]), atol=1e-12)
    out.sum().backward()
    assert torch.isfinite(t.grad).all()


def test_to_rig_moves_the_thumb_only_when_asked() -> None:
    """``fingers`` adds the thumb to the moved tips, by the same rule (numpy and torch)."""
    kp = hand_keypoints("relaxed")
    skin = skin_tips(kp)
    thumb = FINGER_CHAINS[0]
    np.testing.assert_array_equal(to_rig(skin, ["mano"])[thumb[3]], skin[thumb[3]])
    moved = to_rig(skin, ["mano"], fingers=(0, *MOVED_TIPS))
    bone = skin[thumb[3]] - skin[thumb[2]]
    length = np.linalg.norm(bone)
    expected = skin[thumb[2]] + bone / length * (length + TIP_MARGIN_M) / (1 + TIP_EXTENSION[0])
    np.testing.assert_allclose(moved[thumb[3]], expected, atol=1e-12)
    np.testing.assert_array_equal(np.delete(moved, thumb[3], 0),
                                  np.delete(to_rig(skin, ["mano"]), thumb[3], 0))  # fmt: skip
    t = to_rig(torch.tensor(skin), ["mano"], fingers=(0, *MOVED_TIPS))
    np.testing.assert_allclose(t.numpy(), moved, atol=1e-12)


def test_model_reads_skin_tips_in_their_convention() -> None:
    model = HALO(CapsuleNet(hand_keypoints("spread")))
    kp = hand_keypoints("spread")
    skin = skin_tips(kp)
    prepared = model.prepare(skin)
    assert prepared.conventions == ("mano",)
    np.testing.assert_allclose(prepared.keypoints[0], kp, atol=1e-12)
    assert model.prepare(skin, convention="rig").conventions == ("rig",)
    auto = model.reconstruct(skin, resolution=32)
    rig = model.reconstruct(kp, resolution=32)
    np.testing.assert_allclose(auto.vertices, rig.vertices)
    pts = torch.from_numpy(kp[[4, 8, 12]])
    torch.testing.assert_close(model.occupancy(pts, skin, convention="mano"),
                               model.occupancy(pts, kp))  # fmt: skip
    with pytest.raises(HalohandInputError, match="unknown keypoint convention"):
        model.prepare(kp, convention="mediapipe-ish")


def test_a_network_may_have_the_thumb_tip_moved_too() -> None:
    from halohand.fields import OccupancyConfig, OccupancyNetwork

    kp = hand_keypoints("spread")
    skin = skin_tips(kp, (0, *MOVED_TIPS))  # every tip on the skin, the thumb's too
    four = HALO(_network(("rig",)))
    five = HALO(OccupancyNetwork(OccupancyConfig(hidden=(16, 16), skin_tip_fingers=range(5))))
    assert four.moved_tips == MOVED_TIPS and five.moved_tips == (0, 1, 2, 3, 4)
    thumb = FINGER_CHAINS[0][3]
    # the default leaves the thumb's skin tip as given, a five-tip network moves it as well
    np.testing.assert_allclose(four.prepare(skin).keypoints[0], np.where(
        np.arange(21)[:, None] == thumb, skin, kp), atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(five.prepare(skin).keypoints[0], kp, atol=1e-12)
    # the occupancy path reads the same hands
    pts = torch.from_numpy(kp[[4, 8]])
    torch.testing.assert_close(five.occupancy(pts, skin, convention="mano"),
                               five.occupancy(pts, kp))  # fmt: skip


def test_cli_reports_and_uses_the_convention(monkeypatch, capsys, tmp_path) -> None:
    skin = skin_tips(hand_keypoints("spread"))
    np.save(tmp_path / "skin.npy", skin)
    code, out, err = run_cli(monkeypatch, capsys, "check", tmp_path / "skin.npy")
    assert code == 0, err
    assert "convention: mano" in out
    code, out, _ = run_cli(monkeypatch, capsys, "check", tmp_path / "skin.npy",
                           "--convention", "rig")  # fmt: skip
    assert code == 0 and "convention: rig" in out
    code, _, err = run_cli(monkeypatch, capsys, "reconstruct", tmp_path / "skin.npy",
                           "--out-dir", tmp_path / "o", "--convention", "bogus")  # fmt: skip
    assert code == 2 and "unknown keypoint convention" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_from_rig_is_the_closed_form_inverse_of_to_rig() -> None:
    kp = np.stack([hand_keypoints(g) for g in ("relaxed", "fist")])
    skin = from_rig(kp, ["mano", "rig"])
    np.testing.assert_allclose(skin[0], skin_tips(kp[0]), atol=1e-12)
    np.testing.assert_array_equal(skin[1], kp[1])
    np.testing.assert_allclose(to_rig(skin, ["mano", "rig"]), kp, atol=1e-12)
    one = kp[0]
    assert from_rig(one, ["rig"]) is one
    # millimetres: the margin is in metres
    np.testing.assert_allclose(from_rig(kp[0] * 1000.0, ["mano"], 1e-3) / 1000.0, skin[0],
                               atol=1e-12)  # fmt: skip
    # a model that moves all five tips gets all five back, the thumb's included
    five = (0, 1, 2, 3, 4)
    skin5 = from_rig(kp, ["mano", "mano"], fingers=five)
    assert not np.allclose(skin5[:, 4], kp[:, 4])  # the thumb's tip moved
    for hand in range(2):
        np.testing.assert_allclose(skin5[hand], skin_tips(kp[hand], five), atol=1e-12)
    np.testing.assert_allclose(to_rig(skin5, ["mano", "mano"], fingers=five), kp, atol=1e-12)


def _network(conventions: tuple[str, ...]) -> torch.nn.Module:
    from halohand.fields import OccupancyConfig, OccupancyNetwork

    torch.manual_seed(0)
    return OccupancyNetwork(OccupancyConfig(hidden=(16, 16), keypoint_conventions=conventions))


def test_a_network_trained_on_skin_tips_reads_them_as_given() -> None:
    rig_net = _network(("rig",))
    both_net = _network(("rig", "mano"))
    both_net.load_state_dict(rig_net.state_dict())  # the same function, other metadata
    rig_model, both_model = HALO(rig_net), HALO(both_net)
    assert rig_model.native == ("rig",) and both_model.native == ("rig", "mano")
    assert HALO(CapsuleNet(hand_keypoints("spread"))).native == ("rig",)  # no config
    kp = hand_keypoints("relaxed")
    skin = skin_tips(kp)
    prepared = both_model.prepare(skin)
    assert prepared.conventions == ("mano",)
    np.testing.assert_array_equal(prepared.keypoints[0], skin)
    np.testing.assert_allclose(rig_model.prepare(skin).keypoints[0], kp, atol=1e-12)
    pts = torch.from_numpy(np.concatenate([kp, skin]))
    as_given = both_model.occupancy(pts, skin, convention="mano")
    torch.testing.assert_close(as_given, rig_model.occupancy(pts, skin, convention="rig"))
    torch.testing.assert_close(rig_model.occupancy(pts, skin, convention="mano"),
                               rig_model.occupancy(pts, kp, convention="rig"))  # fmt: skip
    assert not torch.allclose(as_given, rig_model.occupancy(pts, kp, convention="rig"))


def test_keypoint_conventions_config() -> None:
    from halohand.fields import OccupancyConfig
    from halohand.training.widen import adapt_network

    cfg = OccupancyConfig(keypoint_conventions=["rig", "mano"])
    assert cfg.keypoint_conventions == ("rig", "mano")
    assert OccupancyConfig.from_dict(cfg.to_dict()) == cfg
    assert OccupancyConfig().keypoint_conventions == ("rig",)
    for bad in ((), ("mano",), ("rig", "mediapipe")):
        with pytest.raises(ValueError, match="keypoint_conventions"):
            OccupancyConfig(keypoint_conventions=bad)
    five = OccupancyConfig(skin_tip_fingers=[0, 1, 2, 3, 4])
    assert five.skin_tip_fingers == (0, 1, 2, 3, 4)
    assert OccupancyConfig.from_dict(five.to_dict()) == five
    assert OccupancyConfig().skin_tip_fingers == MOVED_TIPS
    for bad in ((), (1, 1), (5,), (-1, 2)):
        with pytest.raises(ValueError, match="skin_tip_fingers"):
            OccupancyConfig(skin_tip_fingers=bad)
    # a warm start onto skin tips keeps the weights and takes the new metadata
    rig_net = _network(("rig",))
    both = adapt_network(
        rig_net, dataclasses.replace(rig_net.config, keypoint_conventions=("rig", "mano"))
    )
    assert both.config.keypoint_conventions == ("rig", "mano")
    for a, b in zip(rig_net.state_dict().values(), both.state_dict().values(), strict=True):
        assert torch.equal(a, b)
