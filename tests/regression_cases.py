"""The pinned cases of the regression test (shared by the test and the pin script).

Each case runs a user-facing path of halohand on fixed inputs and returns plain arrays
(or JSON), so that a refactor can be checked against outputs recorded before it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: Hands of the demo's key poses used by the cases (index into the shipped key poses).
KEY_POSE_INDICES = (0, 3, 6)
RESOLUTION = 96


def _key_keypoints() -> np.ndarray:
    from halohand.handmodel.keyposes import load_key_poses

    poses = load_key_poses()
    return np.stack([poses[i].keypoints for i in KEY_POSE_INDICES])


def reconstruct_case() -> dict[str, np.ndarray]:
    """Meshes of ``HALO.reconstruct``: right hands in metres, a mirrored left hand in mm."""
    import halohand

    torch.manual_seed(0)
    model = halohand.HALO.pretrained()
    kp = _key_keypoints()
    out: dict[str, np.ndarray] = {}
    meshes = model.reconstruct(kp, side="right", units="m", resolution=RESOLUTION)
    left = kp[1].copy() * 1000.0
    left[:, 0] *= -1.0
    meshes.append(model.reconstruct(left, side="left", units="mm", resolution=RESOLUTION))
    for i, mesh in enumerate(meshes):
        out[f"mesh{i}_vertices"] = np.asarray(mesh.vertices, dtype=np.float64)
        out[f"mesh{i}_faces"] = np.asarray(mesh.faces, dtype=np.int64)
        out[f"mesh{i}_parts"] = np.asarray(mesh.vertex_attributes["part"], dtype=np.uint8)
    return out


def occupancy_case() -> dict[str, np.ndarray]:
    """Occupancy and part probabilities at fixed points, and d(sum occ)/d(keypoints)."""
    import halohand

    model = halohand.HALO.pretrained()
    kp = _key_keypoints()[:2]
    rng = np.random.default_rng(7)
    lo, hi = kp.min((0, 1)) - 0.03, kp.max((0, 1)) + 0.03
    points = rng.uniform(lo, hi, size=(2000, 3))
    occ, parts = model.occupancy(points, kp, units="m", return_parts=True)
    kp_t = torch.tensor(kp, requires_grad=True)
    model.occupancy(torch.as_tensor(points[:300]), kp_t, units="m").sum().backward()
    return {
        "occ_points": points,
        "occ_values": occ.detach().numpy(),
        "occ_parts": parts.detach().numpy(),
        "occ_grad_keypoints": kp_t.grad.numpy(),
    }


def grasp_case() -> dict[str, np.ndarray]:
    """Refined grasps of a registry object with a fixed seed (shipped grasp VAE)."""
    from halohand.grasp import GraspGenerator

    torch.manual_seed(0)
    grasps = GraspGenerator.pretrained().generate(
        "box_0", n=2, seed=3, refine=True, candidates=2, meshes=False
    )
    return {"grasp_keypoints": np.asarray(grasps.keypoints, dtype=np.float64)}


def evaluate_case(workdir: Path) -> dict[str, Any]:
    """``halohand evaluate`` of the shipped model on a two-hand toy test split."""
    from halohand.data.engine import generate
    from halohand.evaluation.evaluate import evaluate
    from halohand.handmodel.toy import ToyHandSource
    from halohand.inference.halo import pretrained_path

    workdir = Path(workdir)
    data = workdir / "hands"
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        generate(
            data, {"train": 1, "val": 1, "test": 2}, seed=5, source=ToyHandSource(),
            side="both", workers=1, progress=False,
        )  # fmt: skip
        doc = evaluate(
            pretrained_path(), data, "test", resolution=64, coarse_resolution=16,
            n_samples=20_000, progress=False, device="cpu",
        )  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "per_hand": [
            {k: v for k, v in r.items() if k != "seconds" and not k.endswith("_s")}
            for r in doc["per_hand"]
        ],
        "hands": doc["hands"],
        "variant": doc["variant"],
    }


def tmp_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="halohand_regression_"))
