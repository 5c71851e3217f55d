"""How well ``check_skeleton`` separates plausible from implausible hands, and what
``fix_skeleton`` costs, on the project's hand model. Prints JSON (numbers in docs/check.md).

    .venv/bin/python benchmarks/studies/plausibility_fix.py [--samples 400] [--seed 0]
        [--json OUT]

Reports, on ``--samples`` natural right and as many left hands (``WebXRHandSource``: random
identity, pose prior):

- false alarms: hands with an error / a warning finding, checked as their own side;
- side: hands flagged as mirrored when checked as their own side, their mirror images and
  the hands checked as the other side (flagged = ``error`` severity), and the score margins;
- tracking noise: hands with an error / a warning / a mirrored error after i.i.d. Gaussian
  noise per coordinate;
- perturbations of the right hands, one per hand: a long-finger joint 15-45 deg beyond its
  error band in flexion (hyperextension or overflexion), an MCP 10-20 deg beyond its error
  band in abduction, a phalanx (or thumb metacarpal) 2-3x and a fingertip segment 3-3.5x as
  long, and a flexion 1-5 deg beyond the warning band (near plausible). For each: the
  detection rate, then ``fix_skeleton``: the share of fixed hands with no finding at all
  and, per hand, the largest joint displacement of the perturbation, of the fix, and of the
  fixed hand from the unperturbed one (mm: median, 95th percentile, max). The angle cases
  set the angle regardless of its original value, so only the bone cases have an
  unperturbed hand the fix should come back to.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402


def _stats(x: np.ndarray) -> dict[str, float]:
    return {
        "median": round(float(np.median(x)), 3),
        "p95": round(float(np.percentile(x, 95)), 3),
        "max": round(float(np.max(x)), 3),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400, help="hands per side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from halohand.canonical.plausibility import (
        ANGLE_JOINTS,
        ANGLE_LIMITS_DEG,
        check_skeleton,
        fix_skeleton,
        repose_skeleton,
    )
    from halohand.handmodel.webxr import WebXRHandSource
    from halohand.skeleton import BONES, mirror

    rng = np.random.default_rng(args.seed)
    source = WebXRHandSource()
    t0 = time.perf_counter()
    right = np.array([source.sample(rng, "right").keypoints for _ in range(args.samples)])
    left = np.array([source.sample(rng, "left").keypoints for _ in range(args.samples)])
    sample_s = time.perf_counter() - t0

    def hands_with(report, severity: str, kind: str | None = None) -> int:
        return len(
            {f.hand for f in report.findings if f.severity == severity and kind in (None, f.kind)}
        )

    out: dict = {"samples_per_side": args.samples, "seed": args.seed}
    t0 = time.perf_counter()
    natural = {"right": check_skeleton(right, "right"), "left": check_skeleton(left, "left")}
    check_s = time.perf_counter() - t0
    out["check_ms_per_hand"] = round(1000 * check_s / (2 * args.samples), 3)
    out["false_alarms"] = {
        side: {"error": hands_with(r, "error"), "warning": hands_with(r, "warning")}
        for side, r in natural.items()
    }
    side_out = {}
    for side, kp in (("right", right), ("left", left)):
        other = "left" if side == "right" else "right"
        mirrored = check_skeleton(mirror(kp), side)
        swapped = check_skeleton(kp, other)
        side_out[side] = {
            "own_side_flagged": hands_with(natural[side], "error", "mirrored"),
            "mirror_image_flagged": hands_with(mirrored, "error", "mirrored"),
            "other_side_flagged": hands_with(swapped, "error", "mirrored"),
            "score_own_min": round(float(natural[side].mirror_score.min()), 3),
            "score_mirrored_max": round(float(mirrored.mirror_score.max()), 3),
        }
    out["side"] = side_out

    noise = {}
    for sigma_mm in (1.0, 2.0, 5.0):
        noisy = right + rng.normal(0.0, sigma_mm / 1000.0, right.shape)
        r = check_skeleton(noisy, "right")
        noise[f"{sigma_mm:g}mm"] = {
            "error": hands_with(r, "error"),
            "warning": hands_with(r, "warning"),
            "mirrored": hands_with(r, "error", "mirrored"),
        }
    out["tracking_noise"] = noise

    base = natural["right"]
    n = len(right)
    long_joints = list(range(3, 15))
    mcps = [j for j in long_joints if ANGLE_JOINTS[j].endswith("_mcp")]

    def angle_case(kind: str, joints: list[int], band: int, lo_deg: float, hi_deg: float):
        flex, abd = base.flexion_deg.copy(), base.abduction_deg.copy()
        target = flex if kind == "flexion" else abd
        k = 0 if kind == "flexion" else 2
        for i in range(n):
            j = joints[rng.integers(len(joints))]
            lo, hi = ANGLE_LIMITS_DEG[ANGLE_JOINTS[j]][k + band]
            over = rng.uniform(lo_deg, hi_deg)
            target[i, j] = lo - over if rng.random() < 0.5 else hi + over
        return repose_skeleton(right, "right", flex, abd)

    def bone_case(bones: list[int], lo: float, hi: float) -> np.ndarray:
        bad = right.copy()
        for i in range(n):
            b = bones[rng.integers(len(bones))]
            parent, child = BONES[b]
            step = (rng.uniform(lo, hi) - 1.0) * (bad[i, child] - bad[i, parent])
            chain = np.arange(child, child + 4 - (child - 1) % 4)  # child and its distal joints
            bad[i, chain] += step
        return bad

    tips = [b for b in range(20) if b % 4 == 3]  # DIP/IP -> tip
    phalanges = [b for b in range(20) if b % 4 in (1, 2)]  # thumb MC, P1; finger P1, P2
    cases = {
        "flexion 15-45 deg beyond error band": angle_case("flexion", long_joints, 1, 15, 45),
        "MCP abduction 10-20 deg beyond error band": angle_case("abduction", mcps, 1, 10, 20),
        "phalanx or thumb metacarpal 2-3x long": bone_case(phalanges, 2.0, 3.0),
        "fingertip segment 3-3.5x long": bone_case(tips, 3.0, 3.5),
        "flexion 1-5 deg beyond warning band": angle_case("flexion", long_joints, 0, 1, 5),
    }
    results = {}
    for name, bad in cases.items():
        report = check_skeleton(bad, "right")
        severity = "warning" if "warning band" in name else "error"
        detected = len({f.hand for f in report.findings if f.severity == severity})
        t0 = time.perf_counter()
        fixed = fix_skeleton(bad, "right")
        fix_ms = 1000 * (time.perf_counter() - t0) / n
        again = check_skeleton(fixed.keypoints, "right")
        perturbed = np.linalg.norm(bad - right, axis=-1).max(-1) * 1000
        to_original = np.linalg.norm(fixed.keypoints - right, axis=-1).max(-1) * 1000
        results[name] = {
            "detected": f"{detected}/{n}",
            "fixed_clean": f"{n - len({f.hand for f in again.findings})}/{n}",
            "perturbed_mm": _stats(perturbed),
            "moved_mm": _stats(fixed.moved_mm.max(-1)),
            "fixed_to_original_mm": _stats(to_original),
            "fix_ms_per_hand": round(fix_ms, 3),
        }
    out["perturbations"] = results
    out["sampling_s"] = round(sample_s, 1)
    emit(out, args.json, indent=1)
    return out


if __name__ == "__main__":
    main()
