"""Occupancy-query throughput for one hand: per-part Python loop vs batched parts vs skipping.

Usage::

    .venv/bin/python benchmarks/speed/bench_model.py [--points 16384] [--repeats 5]
        [--threads 1] [--json OUT]

Uses the released HALO checkpoint and a real pose from ``../shared/reference/halo-original``
when present (so part skipping is measured on a trained model), otherwise random weights
and a synthetic hand (skipping statistics are then only indicative). Prints one JSON object
(and writes it with ``--json``), with the machine and a matmul calibration before and after
the timings (``benchmarks/_report.py``).

Methods (all on the same weights, float32, no autograd):

* ``loop``: 16 separate ``nn.Linear`` stacks called in a Python loop, as the original code;
* ``batched``: :class:`halohand.fields.OccupancyNetwork` dense (all parts, one op per layer);
* ``batched_skip``: the same with part skipping (``DEFAULT_SKIP_RADII_M``): the inference
  path with part transforms folded into the first layer and one GEMM per part and layer;
* ``batched_skip_unfolded``: part skipping through the differentiable masked path (per-block
  weight copies), which served inference before the folded path.

Point sets (metres, around the hand): ``near_surface`` (bones + 1 cm noise),
``uniform_hand`` (keypoint box + 3 cm), ``mise_box`` (the +-22 cm generation box),
``training_mix`` (50 % mise_box + 50 % near_surface, like HALO's training points).
Throughput is points per second, the best of ``repeats`` interleaved runs (the machine is
shared, so the best run is the least disturbed one).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from halohand.fields import (
    DEFAULT_SKIP_RADII_M,
    OccupancyNetwork,
    hand_conditioning,
    skip_mask,
)
from halohand.fields.skipping import PART_SEGMENTS
from halohand.inference.query import occupancy_from_keypoints

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _reference import ORIGINAL_CHECKPOINT, REAL_FRAMES  # noqa: E402
from _report import begin, emit  # noqa: E402


class LoopModel(nn.Module):
    """The original layout: one ``nn.Sequential``-like stack per part, run in a Python loop."""

    def __init__(self, model: OccupancyNetwork) -> None:
        super().__init__()
        self.src = model
        k = model.num_parts
        self.parts = nn.ModuleList()
        for i in range(k):
            layers = nn.ModuleList()
            for layer in model.mlp.layers:
                lin = nn.Linear(layer.in_features, layer.out_features)
                lin.weight.data.copy_(layer.weight.data[i].T)
                lin.bias.data.copy_(layer.bias.data[i])
                layers.append(lin)
            self.parts.append(layers)
        self.proj = nn.ModuleList()
        for i in range(k):
            lin = nn.Linear(3 * k, model.config.pose_projection_size)
            lin.weight.data.copy_(model.pose_projection.weight.data[i].T)
            lin.bias.data.copy_(model.pose_projection.bias.data[i])
            self.proj.append(lin)

    def forward(self, points: Tensor, mats: Tensor, lengths: Tensor) -> Tensor:
        b, n = points.shape[:2]
        rot, trans = mats[..., :3, :3].float(), mats[..., :3, 3].float()
        theta = trans.reshape(b, -1)
        code = self.src.bone_encoder(lengths.float())
        best = None
        for k, layers in enumerate(self.parts):
            x = torch.einsum("bij,bnj->bni", rot[:, k], points.float()) + trans[:, None, k]
            ctx = torch.cat([lengths[:, k, None].float(), code, self.proj[k](theta)], -1)
            h = torch.cat([x, ctx[:, None].expand(b, n, -1)], -1)
            h = F.leaky_relu(layers[0](h), 0.1)
            for lin in layers[1:-1]:
                h = F.leaky_relu(lin(h) + h, 0.1)
            p = torch.sigmoid(layers[-1](h)[..., 0])
            best = p if best is None else torch.maximum(best, p)
        assert best is not None
        return best


def _hand() -> tuple[Tensor, OccupancyNetwork, str]:
    ckpt, poses = ORIGINAL_CHECKPOINT, REAL_FRAMES
    if ckpt.is_file() and poses.is_file():
        from halohand.inference.original import load_original_checkpoint

        kp = torch.from_numpy(np.load(poses)[0]).double()[None]
        return kp, load_original_checkpoint(ckpt), "released HALO checkpoint, real pose 0"
    from halohand.canonical import skeleton_from_angles

    lengths = torch.tensor(
        [0.035, 0.035, 0.03, 0.025, 0.09, 0.045, 0.025, 0.02, 0.09, 0.05, 0.03, 0.022,
         0.085, 0.045, 0.028, 0.022, 0.08, 0.035, 0.02, 0.02], dtype=torch.float64,
    )  # fmt: skip
    kp = skeleton_from_angles(torch.full((15,), 0.4, dtype=torch.float64),
                              torch.zeros(15, dtype=torch.float64), lengths)[None]  # fmt: skip
    torch.manual_seed(0)
    return kp, OccupancyNetwork().eval(), "random weights, synthetic hand (reference absent)"


def _point_sets(kp: Tensor, n: int, seed: int = 0) -> dict[str, Tensor]:
    g = np.random.default_rng(seed)
    k = kp[0].numpy()
    seg = PART_SEGMENTS[g.integers(0, len(PART_SEGMENTS), n)]
    t = g.uniform(0, 1, (n, 1))
    near = k[seg[:, 0]] * (1 - t) + k[seg[:, 1]] * t + g.normal(0, 0.01, (n, 3))
    lo, hi = k.min(0) - 0.03, k.max(0) + 0.03
    uniform = g.uniform(lo, hi, (n, 3))
    box = k[0] + g.uniform(-0.22, 0.22, (n, 3))
    mix = np.concatenate([box[: n // 2], near[: n - n // 2]])
    sets = {"near_surface": near, "uniform_hand": uniform, "mise_box": box, "training_mix": mix}
    return {name: torch.from_numpy(v)[None] for name, v in sets.items()}


def _best_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time per function; runs are interleaved so load changes hit all alike."""
    for fn in fns.values():
        fn()  # warm-up
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=16384)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--loop-chunk", type=int, default=4096, help="points per loop call")
    ap.add_argument("--json", "--out", dest="json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    begin()

    kp, model, source = _hand()
    model = model.float().eval()
    loop = LoopModel(model).eval()
    hands = hand_conditioning(kp)
    results: dict[str, object] = {
        "source": source,
        "points_per_set": args.points,
        "chunk_size": {
            "loop": args.loop_chunk,
            "batched": 1024,
            "batched_skip": 4096,
            "batched_skip_unfolded": 4096,
        },
        "threads": args.threads,
        "repeats": args.repeats,
        "sets": {},
    }
    sets: dict[str, dict[str, object]] = {}
    with torch.no_grad():
        for name, pts in _point_sets(kp, args.points).items():
            p_halo = hands.to_halo_frame(pts)

            def run_loop(p_halo: Tensor = p_halo) -> None:
                c = args.loop_chunk
                for s in range(0, p_halo.shape[1], c):
                    loop(p_halo[:, s : s + c], hands.part_matrices, hands.bone_lengths)

            def run_dense(pts: Tensor = pts) -> Tensor:
                return occupancy_from_keypoints(model, hands, pts)

            def run_skip(pts: Tensor = pts) -> Tensor:
                return occupancy_from_keypoints(model, hands, pts, skip_radii=True)

            def run_skip_unfolded(pts: Tensor = pts) -> Tensor:
                # the masked path that copies part weights per 128-row block (the
                # differentiable one, used for inference before the folded path)
                model._can_fold = lambda *a: False  # type: ignore[method-assign]
                try:
                    return occupancy_from_keypoints(model, hands, pts, skip_radii=True)
                finally:
                    del model._can_fold

            fns = {
                "loop": run_loop, "batched": run_dense, "batched_skip": run_skip,
                "batched_skip_unfolded": run_skip_unfolded,
            }  # fmt: skip
            times = _best_times(fns, args.repeats)
            full, skipped = run_dense(), run_skip()
            mask = skip_mask(pts.float(), kp.float(), DEFAULT_SKIP_RADII_M)
            err = (full - skipped).abs()
            near = full >= 0.05
            agree = ((full >= 0.5) == (skipped >= 0.5)).float().mean().item()
            sets[name] = {
                "points_per_s": {m: round(pts.shape[1] / t) for m, t in times.items()},
                "speedup_batched_vs_loop": round(times["loop"] / times["batched"], 2),
                "speedup_skip_vs_batched": round(times["batched"] / times["batched_skip"], 2),
                "speedup_folded_vs_unfolded_skip": round(
                    times["batched_skip_unfolded"] / times["batched_skip"], 2
                ),
                "evaluated_pair_fraction": round(mask.float().mean().item(), 4),
                "points_with_no_part": round((~mask.any(-1)).float().mean().item(), 4),
                "skip_decision_agreement": agree,
                "skip_max_abs_error_where_occ_ge_0.05": err[near].max().item() if near.any() else 0,
                "skip_max_abs_error": err.max().item(),
                "inside_fraction": (full >= 0.5).float().mean().item(),
            }  # fmt: skip
    results["sets"] = sets
    emit(results, args.json, indent=2)
    return results


if __name__ == "__main__":
    main()
