"""Test helpers for the API / CLI tests: a real hand skeleton and an analytic "network".

:class:`CapsuleNet` implements ``OccupancyNetwork.query`` in closed form: each part is a
union of capsules around its bones *in that part's canonical frame*, built from one hand's
canonical skeleton. It is hand-specific, but the canonical skeleton does not change under
rigid motion, unit changes or mirroring (left hands), so the same net gives the same
surface for all of those: exactly what the frame / units / side tests need, at a fraction
of a real network's cost and with a non-empty, predictable mesh.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from halohand.skeleton import PART_BONES

#: Capsule radius and sigmoid softness (metres).
RADIUS_M = 0.009
SOFTNESS_M = 0.002
HALO_UNIT_M = 0.4


def query_points(kp_m: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``[n, 3]`` query points around a hand: half uniform in its extraction box
    (keypoints' cube + 4 cm), half within ~1 cm of the bones (where the surface and the
    part borders are)."""
    from halohand.inference.halo import keypoint_box

    rng = np.random.default_rng(seed)
    lo, hi = keypoint_box(kp_m, 0.04)
    uniform = rng.uniform(lo, hi, size=(n - n // 2, 3))
    a, b = rng.integers(0, 21, (2, n // 2))
    t = rng.uniform(0, 1, (n // 2, 1))
    near = kp_m[a] + t * (kp_m[b] - kp_m[a]) + rng.normal(0, 0.01, (n // 2, 3))
    return np.concatenate([uniform, near])


def hand_keypoints(gesture: str = "spread") -> np.ndarray:
    """``[21, 3]`` keypoints (metres, OpenPose order) of the embedded hand in a gesture."""
    from halohand.handmodel.prior import PosePrior
    from halohand.handmodel.webxr import default_model

    return np.asarray(default_model().pose(PosePrior().gesture(gesture)).keypoints, np.float64)


def _seg_dist(p: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Distance of ``p [..., 3]`` to segments ``a, b [S, 3]`` -> ``[..., S]``."""
    ab = b - a
    ap = p[..., None, :] - a
    t = ((ap * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    return (ap - t[..., None] * ab).norm(dim=-1)


class CapsuleNet(nn.Module):
    """Analytic stand-in for ``OccupancyNetwork`` (see the module docstring).

    Args:
        keypoints_m: ``[21, 3]`` right-hand keypoints (metres) defining the canonical skeleton.
    """

    def __init__(self, keypoints_m: np.ndarray) -> None:
        super().__init__()
        from halohand.canonical import canonicalize

        c = canonicalize(torch.as_tensor(keypoints_m, dtype=torch.float64))
        p = c.normalized_keypoints / HALO_UNIT_M  # HALO frame = palm's canonical frame
        q = c.canonical_keypoints / HALO_UNIT_M
        segs: list[tuple[Tensor, Tensor]] = []
        palm = [(0, 1), (0, 5), (0, 9), (0, 13), (0, 17), (5, 9), (9, 13), (13, 17), (1, 5)]
        segs.append((p[[a for a, _ in palm]], p[[b for _, b in palm]]))
        for k in range(1, 16):
            a, b = PART_BONES[k]
            segs.append((q[[a]], q[[b]]))
        self.segments = segs
        self.calls = 0

    def query(
        self,
        points: Tensor,
        part_matrices: Tensor,
        bone_lengths: Tensor | None = None,
        *,
        return_parts: bool = False,
        part_mask: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        self.calls += 1
        pts = points.to(part_matrices.dtype)
        canon = torch.einsum("bkij,bnj->bnki", part_matrices[..., :3, :3], pts)
        canon = canon + part_matrices[..., None, :, :3, 3]  # [B, N, 16, 3]
        logits = []
        for k, (a, b) in enumerate(self.segments):
            d = _seg_dist(canon[:, :, k], a.to(pts), b.to(pts)).amin(-1)
            logits.append((RADIUS_M / HALO_UNIT_M - d) / (SOFTNESS_M / HALO_UNIT_M))
        probs = torch.sigmoid(torch.stack(logits, -1)).float()
        if part_mask is not None:
            probs = probs * part_mask
        occ = probs.amax(-1)
        return (occ, probs) if return_parts else occ


def write_bad_files(tmp_path: Path, kp: np.ndarray) -> dict[str, tuple[str, str]]:
    """Write broken keypoint files into ``tmp_path``: name -> (file, message pattern)."""
    np.save(tmp_path / "shape.npy", np.zeros((20, 3)))
    nan = kp.copy()
    nan[7, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    (tmp_path / "empty.npy").write_bytes(b"")
    np.save(tmp_path / "full.npy", kp)
    (tmp_path / "trunc.npy").write_bytes((tmp_path / "full.npy").read_bytes()[:200])
    (tmp_path / "garbage.json").write_text('{"keypoints": [[0, 1, 2], ')
    (tmp_path / "nokey.json").write_text('{"points": []}')
    np.savetxt(tmp_path / "short.txt", kp[:20])
    (tmp_path / "words.txt").write_text("wrist 0 0 0\n")
    (tmp_path / "kp.csv.gz").write_bytes(b"xx")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return {
        "shape": ("shape.npy", r"shape \[21, 3\] or \[N, 21, 3\].*got \[20, 3\]"),
        "nan": ("nan.npy", r"NaN or inf \(first: joint 7\)"),
        "empty": ("empty.npy", "empty file"),
        "trunc": ("trunc.npy", "truncated"),
        "garbage": ("garbage.json", "invalid JSON"),
        "nokey": ("nokey.json", 'no "keypoints" key'),
        "short": ("short.txt", "not a multiple of 21"),
        "words": ("words.txt", "not numbers"),
        "suffix": ("kp.csv.gz", "unsupported file type"),
        "pickle": ("obj.npy", "pickled"),
        "missing": ("nope.npy", "no such file"),
    }


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys, *args: object) -> tuple[int, str, str]:
    """Run ``halohand *args`` in-process; returns (exit status, stdout, stderr)."""
    from halohand.apps import cli

    monkeypatch.setattr(sys, "argv", ["halohand", *map(str, args)])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err
