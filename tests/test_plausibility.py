"""Plausibility checks (``halohand.canonical.plausibility``) and ``halohand check``."""

from __future__ import annotations

import json
from pathlib import Path

import halo_fakes
import numpy as np
import pytest

from halohand.apps.cli.check import skeleton_warning
from halohand.canonical.plausibility import (
    ANGLE_JOINTS,
    ANGLE_LIMITS_DEG,
    BONE_NAMES,
    check_skeleton,
    fix_skeleton,
    repose_skeleton,
)
from halohand.core.errors import HalohandInputError
from halohand.handmodel.prior import GESTURES, PosePrior
from halohand.handmodel.webxr import WebXRHandSource, default_model
from halohand.skeleton import mirror


@pytest.fixture(scope="module")
def hands() -> dict[str, np.ndarray]:
    """Project hands in metres: prior samples (random identity) and every library gesture."""
    rng = np.random.default_rng(7)
    source = WebXRHandSource()
    right = [source.sample(rng, "right").keypoints for _ in range(24)]
    left = [source.sample(rng, "left").keypoints for _ in range(16)]
    model, prior = default_model(), PosePrior()
    gestures = [model.pose(prior.gesture(g)).keypoints for g in GESTURES]
    right = np.array(right + gestures)
    left = np.array(left + [mirror(g) for g in gestures])
    return {"right": right, "left": left}


def _kinds(report, severity: str = "error") -> set[tuple[str, str]]:
    return {(f.kind, f.name) for f in report.findings if f.severity == severity}


def test_project_hands_have_no_findings(hands) -> None:
    for side, kp in hands.items():
        report = check_skeleton(kp, side)
        assert report.findings == (), [f.message for f in report.findings][:3]
        assert report.units == "m" and report.plausible
        assert report.flexion_deg.shape == (len(kp), 15)
        assert (report.mirror_score > 0.5).all()


def test_mirrored_and_swapped_side_detected(hands) -> None:
    for side, kp in hands.items():
        other = "left" if side == "right" else "right"
        for report in (check_skeleton(mirror(kp), side), check_skeleton(kp, other)):
            assert report.looks_mirrored.all()
            flagged = {f.hand for f in report.findings if f.kind == "mirrored"}
            assert len(flagged) == len(kp)
    one = check_skeleton(hands["right"][0], "left")
    assert ("mirrored", "hand") in _kinds(one)
    assert one.for_hand(())[0].kind == "mirrored"  # the cause is listed first


def _with_angle(kp: np.ndarray, joint: str, kind: str, deg: float) -> np.ndarray:
    report = check_skeleton(kp)
    flex, abd = report.flexion_deg.copy(), report.abduction_deg.copy()
    (flex if kind == "flexion" else abd)[..., ANGLE_JOINTS.index(joint)] = deg
    return repose_skeleton(kp, "right", flex, abd)


def test_hyperextended_pip_detected(hands) -> None:
    kp = hands["right"][0]
    bad = _with_angle(kp, "index_pip", "flexion", -45.0)
    report = check_skeleton(bad)
    assert _kinds(report) == {("flexion", "index_pip")}
    (f,) = report.findings
    assert f.value == pytest.approx(-45.0, abs=1e-6) and f.low == -30.0
    mild = check_skeleton(_with_angle(kp, "index_pip", "flexion", -20.0))
    assert _kinds(mild, "warning") == {("flexion", "index_pip")} and mild.plausible


def test_long_phalanx_detected(hands) -> None:
    kp = hands["right"][1].copy()
    # middle phalanx of the ring finger 3x as long; the distal joints follow it
    step = kp[15] - kp[14]
    kp[15:17] += 2 * step
    report = check_skeleton(kp)
    assert _kinds(report) == {("bone_length", "ring_pip->ring_dip")}
    assert report.bone_ratios[BONE_NAMES.index("ring_pip->ring_dip")] > 0.35


def test_degenerate_skeletons_reported_not_raised(hands) -> None:
    kp = hands["right"][2].copy()
    zero = kp.copy()
    zero[10] = zero[9]
    report = check_skeleton(np.stack([kp, zero]))
    assert [f.hand for f in report.findings] == [(1,)]
    assert report.findings[0].kind == "degenerate"
    assert report.findings[0].name == "middle_mcp->middle_pip"
    assert report.degenerate.tolist() == [False, True]
    assert np.isnan(report.flexion_deg[1]).all()
    flat = kp.copy()
    flat[13] = flat[9] * 1.02  # ring MCP on the middle root bone's line
    assert ("degenerate", "middle/ring root bones") in _kinds(check_skeleton(flat))
    with pytest.raises(HalohandInputError, match="degenerate"):
        fix_skeleton(zero)
    with pytest.raises(HalohandInputError, match="NaN"):
        check_skeleton(np.full((21, 3), np.nan))
    with pytest.raises(HalohandInputError, match="shape"):
        check_skeleton(np.zeros((20, 3)))


def test_units(hands) -> None:
    kp = hands["right"][:3]
    for unit, scale in (("mm", 1000.0), ("cm", 100.0)):
        report = check_skeleton(kp * scale)
        assert report.units == unit and report.findings == ()
    wrong = check_skeleton(kp * 1000.0, units="m")
    assert {f.kind for f in wrong.findings} == {"units"}
    assert "looks like mm" in wrong.findings[0].message
    tiny = check_skeleton(kp * 3e-3)  # fits no unit
    assert {f.kind for f in tiny.findings} >= {"units"} and tiny.units is None
    child = check_skeleton(kp * 0.45)  # 7-10 cm: a hand, but a very small one
    assert {(f.kind, f.severity) for f in child.findings} == {("hand_size", "warning")}


def test_repose_round_trip_and_batch_shapes(hands) -> None:
    kp = hands["left"][:6].reshape(2, 3, 21, 3)
    np.testing.assert_allclose(repose_skeleton(kp, "left"), kp, atol=1e-12)
    moved = kp @ np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]).T + 0.3
    report = check_skeleton(moved, np.array([True, True, True]))
    assert report.batch_shape == (2, 3) and report.findings == ()
    assert report.hands()[-1] == (1, 2)


def test_fix_skeleton(hands) -> None:
    kp = hands["right"][:8]
    # plausible hands do not move
    same = fix_skeleton(kp)
    assert same.units == "m" and same.moved_mm.max() < 1e-9
    # implausible: a hyperextended joint, an over-abducted MCP, a 3x phalanx per hand
    bad = kp.copy()
    for i in range(len(bad)):
        bad[i] = _with_angle(bad[i], ANGLE_JOINTS[3 + i % 12], "flexion", -70.0)
        bad[i] = _with_angle(bad[i], "pinky_mcp", "abduction", 70.0)
    bad[:, 7:9] += 2 * (bad[:, 7:8] - bad[:, 6:7])
    assert not check_skeleton(bad).plausible
    fixed = fix_skeleton(bad * 1000.0)  # millimetres in, millimetres out
    assert fixed.units == "mm"
    again = check_skeleton(fixed.keypoints)
    assert again.findings == (), [f.message for f in again.findings][:3]
    np.testing.assert_allclose(fixed.keypoints[:, 0], bad[:, 0] * 1000.0, atol=1e-9)
    np.testing.assert_allclose(fixed.moved_mm, fixed.moved)
    # near-plausible: 3 deg beyond the warning band moves the fingertip by millimetres
    lo = ANGLE_LIMITS_DEG["middle_pip"][0][0]
    near = _with_angle(kp[0], "middle_pip", "flexion", lo - 3.0)
    result = fix_skeleton(near)
    assert check_skeleton(result.keypoints).findings == ()
    assert 0.1 < result.moved_mm.max() < 3.0
    assert result.moved_mm[:11].max() < 1e-9  # wrist, thumb, index, middle MCP and PIP stay


def test_skeleton_warning_for_reconstruct(hands) -> None:
    kp = hands["right"][:2]
    left = np.array([False, False])
    assert skeleton_warning(kp, left, "m", True) is None
    msg = skeleton_warning(mirror(kp), left, "m", True)
    assert msg is not None and msg.startswith("2 of 2 hands look mirrored") and "\n" not in msg
    assert "flexion" not in msg  # the wrong side's symptoms are not repeated
    bad = _with_angle(kp[0], "ring_pip", "flexion", -50.0)[None]
    msg = skeleton_warning(bad, left[:1], "m", False)
    assert msg is not None and "ring_pip flexion -50.0" in msg and "hand [" not in msg


# ---- command line -------------------------------------------------------------------------


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys, *args: object) -> tuple[int, str, str]:
    monkeypatch.setenv("COLUMNS", "160")  # the report table is wide
    return halo_fakes.run_cli(monkeypatch, capsys, *args)


def test_cli_reports_and_writes(monkeypatch, capsys, tmp_path: Path, hands) -> None:
    kp = hands["right"][0]
    np.save(tmp_path / "ok.npy", kp)
    code, out, err = run_cli(monkeypatch, capsys, "check", tmp_path / "ok.npy")
    assert code == 0 and err == "" and "no findings" in out
    bad = _with_angle(kp, "index_pip", "flexion", -45.0) * 100.0  # centimetres
    doc = {"keypoints": bad.tolist(), "side": "right"}
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    code, out, err = run_cli(
        monkeypatch, capsys, "check", tmp_path / "bad.json", "--json", tmp_path / "r.json",
        "--fix-skeleton", tmp_path / "fixed.npy",
    )  # fmt: skip
    assert code == 0, err
    assert "index_pip" in out and "implausible: 1 errors" in out and "units cm" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["units"] == "cm" and report["errors"] == 1
    assert report["findings"][0]["name"] == "index_pip"
    fixed = np.load(tmp_path / "fixed.npy")
    assert fixed.shape == (21, 3) and check_skeleton(fixed).findings == ()
    assert report["fix"]["unit"] == "mm" and report["fix"]["max_moved"] > 1.0
    # a sequence in MANO order, checked as the wrong side: one row per frame with findings
    from halohand.skeleton import from_openpose

    np.save(tmp_path / "seq.npy", from_openpose(hands["right"][:3], "mano"))
    code, out, err = run_cli(
        monkeypatch, capsys, "check", tmp_path / "seq.npy", "--format", "mano",
        "--side", "left", "--fix-skeleton", tmp_path / "seq_fixed.npy",
    )  # fmt: skip
    assert code == 0, err
    assert "0 of 3 frames without findings" in out and "looks like a right hand" in out
    assert np.load(tmp_path / "seq_fixed.npy").shape == (3, 21, 3)


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("nan", "NaN"),
        ("shape", "shape"),
        ("missing", "no such file"),
        ("side", "--side must be"),
        ("fix_degenerate", "cannot fix a degenerate"),
        ("json_dir", "is a folder"),
    ],
)
def test_cli_bad_input(monkeypatch, capsys, tmp_path: Path, hands, case, fragment) -> None:
    kp = hands["right"][0].copy()
    path, extra = tmp_path / f"{case}.npy", []
    if case == "nan":
        kp[3, 1] = np.nan
    elif case == "shape":
        kp = kp[:20]
    elif case == "side":
        extra = ["--side", "up"]
    elif case == "fix_degenerate":
        kp[6] = kp[5]
        extra = ["--fix-skeleton", tmp_path / "out.npy"]
    elif case == "json_dir":
        extra = ["--json", tmp_path]
    if case != "missing":
        np.save(path, kp)
    code, out, err = run_cli(monkeypatch, capsys, "check", path, *extra)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and fragment in err, err
    assert not (tmp_path / "out.npy").exists()
