"""Per-part residual of HALO canonicalization on hands from the project's hand model.

For each sampled hand (``WebXRHandSource`` by default) the posed keypoints and the rest-pose
keypoints of the same identity are canonicalized. The vertices of part k (dominant skinning
label) of the posed mesh, mapped by ``M_k G`` of the posed hand, are compared with the same
vertices of the rest mesh mapped by ``M_k G`` of the rest hand. A perfectly rigid, twist-free
part gives 0; twist about the bone, skinning blends and keypoint/bone mismatch show up as
residual. As a baseline the script also reports the residual of the hand model's own
posed -> rest part transforms (``PosedHand.part_transforms``), which carry the twist.

Prints JSON with the per-part mean residual in millimetres (HALO part order), and writes it
with ``--json``.

    .venv/bin/python benchmarks/studies/canonical_residual.py [--hands 50] [--seed 0]
        [--side right] [--zero-twist] [--json OUT]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from halohand.canonical import canonicalize
from halohand.skeleton import PART_NAMES

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402


def _apply(m: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x @ m[:3, :3].T + m[:3, 3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hands", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--side", choices=("right", "left"), default="right")
    parser.add_argument(
        "--zero-twist",
        action="store_true",
        help="zero the sampled twist of every joint (HALO's frames are twist-free)",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from halohand.handmodel.webxr import WebXRHandSource

    source = WebXRHandSource()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    if args.zero_twist:
        from halohand.handmodel.pose import HandPose

        def draw():
            identity = source.identity_prior.sample(rng)
            angles = source.pose_prior.sample(rng, identity, source.model).as_array().copy()
            angles[:, 2] = 0.0  # twist column
            return source.model.pose(HandPose.from_array(angles), identity, args.side)

        hands = [draw() for _ in range(args.hands)]
    else:
        hands = [source.sample(rng, side=args.side) for _ in range(args.hands)]
    sample_s = time.perf_counter() - t0
    if any(h.rest_keypoints is None for h in hands):
        raise SystemExit("the hand source does not provide rest_keypoints")

    posed = canonicalize(torch.tensor(np.stack([h.keypoints for h in hands])), side=args.side)
    rest = canonicalize(torch.tensor(np.stack([h.rest_keypoints for h in hands])), side=args.side)
    to_posed = posed.part_transforms_from_input.numpy()  # [H, 16, 4, 4]
    to_rest = rest.part_transforms_from_input.numpy()

    halo = [[] for _ in PART_NAMES]
    model = [[] for _ in PART_NAMES]
    for i, h in enumerate(hands):
        for k in range(len(PART_NAMES)):
            sel = h.part_labels == k
            if not sel.any():
                continue
            a = _apply(to_posed[i, k], h.vertices[sel])
            b = _apply(to_rest[i, k], h.canonical_vertices[sel])
            halo[k].append(np.linalg.norm(a - b, axis=-1))
            c = _apply(h.part_transforms[k], h.vertices[sel])
            model[k].append(np.linalg.norm(c - h.canonical_vertices[sel], axis=-1))

    def summary(per_part: list[list[np.ndarray]]) -> dict:
        per = {
            n: round(float(np.concatenate(r).mean()) * 1e3, 3)
            for n, r in zip(PART_NAMES, per_part, strict=True)
            if r
        }
        everything = np.concatenate([np.concatenate(r) for r in per_part if r])
        return {
            "per_part_mean_mm": per,
            "all_vertices_mean_mm": round(float(everything.mean()) * 1e3, 3),
            "all_vertices_p95_mm": round(float(np.percentile(everything, 95)) * 1e3, 3),
        }

    report = {
        "source": "halohand.handmodel.webxr.WebXRHandSource",
        "hands": args.hands,
        "seed": args.seed,
        "side": args.side,
        "zero_twist": args.zero_twist,
        "vertices_per_part": {
            n: int(np.mean([(h.part_labels == k).sum() for h in hands]))
            for k, n in enumerate(PART_NAMES)
        },
        "halo_canonicalization": summary(halo),
        "baseline_model_part_transforms": summary(model),
        "mean_hand_length_mm": round(
            float(np.mean([posed.bone_lengths[i, 8:12].sum() for i in range(args.hands)])) * 1e3,
            2,
        ),
        "sampling_seconds": round(sample_s, 2),
    }
    emit(report, args.json, indent=2)


if __name__ == "__main__":
    main()
