"""Maximum errors of the canonicalization layer against the spec's oracle file, as JSON.

Three comparisons per sample (the tests in ``tests/test_canonical.py`` assert the same):

* ``direct``: from the stored inputs, every field against its oracle value (``clean_*`` and
  shared fields, and the reference ``ref_*`` / ``selected16`` / ``pose_code`` fields).
* ``rounding_box``: the file stores numbers rounded to 9 decimals and the outputs move ~100x
  more than the inputs, so clean fields are also compared at the input within +-5e-10 of the
  stored one that fits them best (bounded linear least squares on the layer's Jacobian,
  then evaluated exactly).
* ``rebuilt_A``: sample A rebuilt from its listed angles and lengths (no input rounding).

    .venv/bin/python benchmarks/studies/canonical_oracle.py [--oracle PATH] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import lsq_linear

from halohand.canonical import canonicalize, skeleton_from_angles
from halohand.skeleton.orders import BIOMECH_FROM_OPENPOSE, OPENPOSE_FROM_BIOMECH

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import REPO, emit  # noqa: E402

F64 = torch.float64
DEFAULT = REPO.parent / "shared/specs/canonicalization_oracle.json"
PUB_OF_BIO_BONE = BIOMECH_FROM_OPENPOSE[1:] - 1
PUB_FINGER_OF_BIO = np.argsort(BIOMECH_FROM_OPENPOSE[6:])


def fields(c) -> dict[str, torch.Tensor]:
    """Layer outputs in the oracle's layouts (biomech order, [21, 4, 4] converter)."""
    conv = torch.cat([torch.eye(4, dtype=F64)[None], c.bone_transforms[PUB_OF_BIO_BONE]])
    angles = torch.empty(15, 2, dtype=F64)
    angles[PUB_FINGER_OF_BIO] = torch.stack([c.flexion, c.abduction], -1)
    return {
        "global_normalization_4x4_incl_axis_swap": c.global_transform,
        "normalized_joints_biomech": c.normalized_keypoints[BIOMECH_FROM_OPENPOSE],
        "converter_21x4x4": conv,
        "canonical_joints_biomech": c.canonical_keypoints[BIOMECH_FROM_OPENPOSE],
        "flex_abd_bones5to19": angles,
        "selected16_halo_part_order_metres": c.part_transforms,
        "selected16_halo_units_SinvMS": c.part_transforms_halo_units,
        "pose_code_o_16x3_halo_units": c.pose_code,
        "bone_lengths16_m": c.part_bone_lengths,
    }


CLEAN = {  # our field -> oracle key, for the atan2 ("clean") comparison
    "global_normalization_4x4_incl_axis_swap": "global_normalization_4x4_incl_axis_swap",
    "normalized_joints_biomech": "normalized_joints_biomech",
    "converter_21x4x4": "clean_converter_21x4x4",
    "canonical_joints_biomech": "clean_canonical_joints_biomech",
    "bone_lengths16_m": "bone_lengths16_m",
}
REF = {  # produced by the original (clipped acos) code
    "converter_21x4x4": "ref_converter_21x4x4",
    "canonical_joints_biomech": "ref_canonical_joints_biomech",
    "flex_abd_bones5to19": "ref_flex_abd_bones5to19",
    "selected16_halo_part_order_metres": "selected16_halo_part_order_metres",
    "selected16_halo_units_SinvMS": "selected16_halo_units_SinvMS",
    "pose_code_o_16x3_halo_units": "pose_code_o_16x3_halo_units",
}


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(f"{float((a - b).abs().max()):.3g}")


def errors(out: dict, sample: dict, keys: dict) -> dict[str, float]:
    return {
        ours: max_abs(out[ours], torch.tensor(sample[theirs], dtype=F64))
        for ours, theirs in keys.items()
    }


def clean_vector(kp: torch.Tensor) -> torch.Tensor:
    out = fields(canonicalize(kp))
    return torch.cat([out[k].flatten() for k in CLEAN])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oracle", type=Path, default=DEFAULT)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    data = json.loads(args.oracle.read_text())
    report: dict = {"oracle": str(args.oracle), "samples": {}}
    for s in data["samples"]:
        kp = torch.tensor(s["input_joints_biomech_m"], dtype=F64)[OPENPOSE_FROM_BIOMECH]
        out = fields(canonicalize(kp))
        target = torch.cat([torch.tensor(s[v], dtype=F64).flatten() for v in CLEAN.values()])
        direct = clean_vector(kp)
        jac = torch.autograd.functional.jacobian(clean_vector, kp, vectorize=True)
        jac = jac.reshape(len(target), -1)
        half = 5e-10
        fit = lsq_linear(
            (jac * half * 1e9).numpy(),
            ((target - direct) * 1e9).numpy(),
            bounds=(-1, 1),
            tol=1e-12,
        )
        fitted = clean_vector(kp + torch.as_tensor(fit.x * half).reshape(21, 3))
        report["samples"][s["name"]] = {
            "direct_clean_max_abs": errors(out, s, CLEAN),
            "direct_ref_max_abs": errors(out, s, REF),
            "rounding_box_clean_max_abs": max_abs(fitted, target),
        }

    fk = data["fk_angles_used_for_sample_A"]
    lengths = np.empty(20)
    lengths[PUB_OF_BIO_BONE] = np.ravel(fk["bone_lengths_by_level_then_finger"])
    halo = skeleton_from_angles(
        torch.tensor(fk["flex_bones5to19"], dtype=F64)[PUB_FINGER_OF_BIO],
        torch.tensor(fk["abd_bones5to19"], dtype=F64)[PUB_FINGER_OF_BIO],
        torch.as_tensor(lengths),
    )
    a = data["samples"][0]
    g = torch.tensor(a["global_normalization_4x4_incl_axis_swap"], dtype=F64)
    rebuilt = halo @ g[:3, :3]
    report["rebuilt_A"] = {
        "input_vs_stored_max_abs": max_abs(
            rebuilt[BIOMECH_FROM_OPENPOSE], torch.tensor(a["input_joints_biomech_m"], dtype=F64)
        ),
        "clean_max_abs": errors(fields(canonicalize(rebuilt)), a, CLEAN),
    }
    emit(report, args.json, indent=2)


if __name__ == "__main__":
    main()
