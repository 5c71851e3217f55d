"""HALO.occupancy without gradients: the chunked query it used vs the sparse one, in points/s.

Usage::

    .venv/bin/python benchmarks/speed/bench_occupancy.py [--checkpoint FILE] [--hands 4]
        [--points 200000] [--rounds 5] [--threads 2] [--agreement-hands 16]
        [--agreement-points 200000] [--memory-points 1000000,10000000] [--seed 0]
        [--json OUT]

Query points are uniform in each hand's box (the keypoints' bounding cube + 4 cm, as for
meshes); hands are sampled from the embedded hand model (``--seed``; every third one a
left hand), in metres. Configurations, alternating in one process (the order reversed
every round, one warm-up call each first):

* ``chunked`` (baseline): what ``HALO.occupancy`` ran before, the chunked, differentiable
  query (:func:`halohand.inference.query.query_occupancy`: 4096 points per network call
  with part supports, part probabilities collected) under ``torch.no_grad``, at
  ``--threads`` torch threads;
* ``chunked_1thread``: the same at one torch thread (OpenMP's share of the baseline);
* ``sparse`` (candidate): ``HALO.occupancy(points, keypoints)``, the path users call:
  :func:`halohand.inference.query.sparse_occupancy` in ``--threads`` worker threads;
* ``sparse_1worker``: the same in one thread.

Reported per configuration: median (and min) seconds per call of ``--points`` points of
one hand, and points/s per hand from the median; the ratio of every median (and of every
minimum: steadier on a shared machine) to the baseline's; the (point, part) pairs one call
sends through the network (first hand), and the compute floor of a call: those pairs'
FLOP at the best float32 matmul rate of this process (``floor_s_per_call``,
``ratio_to_floor`` = median / floor). Peak memory: each
configuration once more in its own subprocess on each of ``--memory-points`` points, as the
resident set's peak during the call above the resident set before it (Linux; the input
points exist before the call, the output is made in it). Agreement, on
``--agreement-hands`` other hands x ``--agreement-points`` points, uniform in the box and
(as many again) within ~1 cm of the bones: each query against the dense evaluation
(every part at every point through the unfolded network, then the network's part
supports, float32), as max |difference| and decisions at the model's ``iso_level`` (with
how far from the level the dense value is where they differ), and the sparse query
against the chunked one; plus the shipped ``DEFAULT_SKIP_RADII_M`` on top of the
supports (``HALO(skip_radii=True)``), which HALO does not use by default. With the
machine and a matmul calibration before and after (``benchmarks/_report.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit, matmul_gflops, repo_path  # noqa: E402

CONFIGS = ("chunked", "chunked_1thread", "sparse", "sparse_1worker")
PADDING_M = 0.04


def _hands(n: int, seed: int) -> list[tuple[np.ndarray, str]]:
    from halohand.handmodel.webxr import WebXRHandSource

    rng = np.random.default_rng(seed)
    source = WebXRHandSource()
    out = []
    for i in range(n):
        side = "left" if i % 3 == 2 else "right"
        out.append((np.asarray(source.sample(rng, side=side).keypoints, np.float64), side))
    return out


def _uniform(kp: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``[n, 3]`` float64 points uniform in the hand's box, filled in blocks (the peak
    memory of the set-up stays that of the array)."""
    from halohand.inference.halo import keypoint_box

    lo, hi = keypoint_box(kp, PADDING_M)
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3))
    for s in range(0, n, 1 << 18):
        block = out[s : s + (1 << 18)]
        block[:] = rng.uniform(lo, hi, size=block.shape)
    return out


def _near_bones(kp: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Points within ~1 cm of the skeleton (where the surface and the part borders are)."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 21, (2, n))
    t = rng.uniform(0, 1, (n, 1))
    return kp[a] + t * (kp[b] - kp[a]) + rng.normal(0, 0.01, (n, 3))


def _query(config: str, model, kp: np.ndarray, side: str, points: np.ndarray, threads: int):  # noqa: ANN001
    """One call of ``config``: ``[N]`` float32 occupancy."""
    from halohand.fields import hand_conditioning
    from halohand.inference.query import query_occupancy

    torch.set_num_threads(1 if config.endswith(("_1thread", "_1worker")) else threads)
    if config.startswith("sparse"):
        return model.occupancy(points, kp, side=side, units="m")
    with torch.no_grad():
        hands = hand_conditioning(torch.as_tensor(kp)[None], side=side)
        occ, _ = query_occupancy(
            model.network, hands, torch.as_tensor(points)[None],
            chunk_size=model.chunk_size, skip_radii=model.skip_radii,
        )  # fmt: skip
    return occ[0]


def _dense(net, kp: np.ndarray, side: str, points: np.ndarray, chunk: int = 16_384):  # noqa: ANN001
    """Every part at every point (unfolded network), then the network's supports."""
    from halohand.fields import hand_conditioning, part_inputs, skip_mask
    from halohand.fields.skipping import effective_radii

    radii = effective_radii(net)
    out = []
    with torch.no_grad():
        hands = hand_conditioning(torch.as_tensor(kp)[None], side=side)
        for s in range(0, len(points), chunk):
            pts = torch.as_tensor(points[s : s + chunk])[None]
            canon, code = part_inputs(hands.to_halo_frame(pts), hands.part_matrices)
            logits = net.part_logits(
                canon, code, hands.bone_lengths, canonical_keypoints=hands.canonical_keypoints
            )
            if radii is not None:
                support = skip_mask(pts.float(), hands.keypoints.float(), radii)
                logits = logits.masked_fill(~support, float("-inf"))
            out.append(torch.sigmoid(logits.amax(-1))[0])
    return torch.cat(out)


def _agreement(model, skip_model, hands, n: int, seed: int, threads: int) -> dict:  # noqa: ANN001
    level = model.iso_level
    sets: dict[str, dict[str, list]] = {}
    for i, (kp, side) in enumerate(hands):
        for name, pts in (
            ("uniform_in_box", _uniform(kp, n, seed + 1000 + i)),
            ("near_bones", _near_bones(kp, n, seed + 2000 + i)),
        ):
            dense = _dense(model.network, kp, side, pts)
            got = {
                "chunked": _query("chunked_1thread", model, kp, side, pts, threads),
                "sparse": _query("sparse", model, kp, side, pts, threads),
            }
            torch.set_num_threads(threads)
            got["sparse_default_skip_radii"] = skip_model.occupancy(pts, kp, side=side, units="m")
            acc = sets.setdefault(name, {})
            for key, occ in got.items():
                diff = (occ - dense).abs()
                flipped = (occ >= level) != (dense >= level)
                # how close to the level the dense value is where a decision differs
                margin = float((dense[flipped] - level).abs().max()) if flipped.any() else 0.0
                acc.setdefault(key, []).append(
                    (float(diff.max()), int(flipped.sum()), float(diff.mean()), margin)
                )
            vs = (got["sparse"] - got["chunked"]).abs().max()
            acc.setdefault("sparse_vs_chunked_max_abs", []).append(float(vs))
            same = (got["sparse"] >= level) != (got["chunked"] >= level)
            acc.setdefault("sparse_vs_chunked_decisions_differing", []).append(int(same.sum()))
            acc.setdefault("points_inside", []).append(int((dense >= level).sum()))
            acc.setdefault("points_within_0.1_of_level", []).append(
                int(((dense - level).abs() < 0.1).sum())
            )
    out: dict = {"iso_level": level, "hands": len(hands), "points_per_hand_per_set": n}
    for name, acc in sets.items():
        res: dict = {
            "points": n * len(hands),
            "points_inside": int(sum(acc.pop("points_inside"))),
            "points_within_0.1_of_level": int(sum(acc.pop("points_within_0.1_of_level"))),
            "sparse_vs_chunked_max_abs": max(acc.pop("sparse_vs_chunked_max_abs")),
            "sparse_vs_chunked_decisions_differing": int(
                sum(acc.pop("sparse_vs_chunked_decisions_differing"))
            ),
        }
        for key, rows in acc.items():
            res[f"{key}_vs_dense"] = {
                "max_abs": max(r[0] for r in rows),
                "mean_abs": float(np.mean([r[2] for r in rows])),
                "decisions_differing": int(sum(r[1] for r in rows)),
                "dense_distance_to_level_where_differing_max": max(r[3] for r in rows),
            }
        out[name] = res
    return out


def _network_pairs(config: str, model, kp: np.ndarray, side: str, points: np.ndarray,  # noqa: ANN001
                   threads: int) -> int:  # fmt: skip
    """(point, part) pairs the folded network evaluates in one call of ``config``."""
    cls = type(model.network)
    original = cls.folded_logits
    count = [0]

    def counted(self, pts, *a, **k):  # noqa: ANN001, ANN002, ANN003
        count[0] += int(pts.shape[0])
        return original(self, pts, *a, **k)

    cls.folded_logits = counted
    try:
        _query(config, model, kp, side, points, threads)
    finally:
        cls.folded_logits = original
    return count[0]


def _status_mb(field: str) -> float:
    """A ``VmRSS`` / ``VmHWM`` line of ``/proc/self/status`` in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no {field} in /proc/self/status")


def _memory_worker(args: argparse.Namespace) -> dict:
    """One call of a configuration on ``--memory-points`` points: the resident set's peak
    during the call above the resident set before it (the kernel's high-water mark is
    reset just before the call, Linux >= 4.0)."""
    from halohand.inference.halo import HALO

    torch.set_num_threads(args.threads)
    model = HALO.pretrained(args.checkpoint) if args.checkpoint else HALO.pretrained()
    kp, side = _hands(1, args.seed + 99)[0]
    _query(args.memory_worker, model, kp, side, _uniform(kp, 50_000, 0), args.threads)
    n = int(args.memory_points)
    pts = _uniform(kp, n, 1)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set
    before = _status_mb("VmRSS")
    occ = _query(args.memory_worker, model, kp, side, pts, args.threads)
    peak = _status_mb("VmHWM")
    assert occ.shape == (n,)
    return {
        "points": n,
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_above_rss_before_mb": round(peak - before, 1),
        "output_mb": round(occ.numel() * occ.element_size() / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="model file (default: shipped)")
    parser.add_argument("--hands", type=int, default=4, help="hands timed per round")
    parser.add_argument("--points", type=int, default=200_000, help="points per timed call")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--agreement-hands", type=int, default=16)
    parser.add_argument("--agreement-points", type=int, default=200_000)
    parser.add_argument(
        "--memory-points", default="1000000,10000000", help="point counts of the memory runs"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        print(json.dumps(_memory_worker(args)))
        return

    from halohand.inference.halo import HALO

    torch.set_num_threads(args.threads)
    load = HALO.pretrained if args.checkpoint is None else HALO.from_checkpoint
    model = load() if args.checkpoint is None else load(args.checkpoint)
    skip_model = (
        load(skip_radii=True) if args.checkpoint is None else load(args.checkpoint, skip_radii=True)
    )
    hands = _hands(args.hands, args.seed)
    points = [_uniform(kp, args.points, args.seed + i) for i, (kp, _) in enumerate(hands)]
    begin()
    times: dict[str, list[float]] = {c: [] for c in CONFIGS}
    for config in CONFIGS:  # warm-up
        _query(config, model, *hands[0], points[0][:20_000], args.threads)
    for rnd in range(args.rounds):
        for config in CONFIGS if rnd % 2 == 0 else CONFIGS[::-1]:
            for (kp, side), pts in zip(hands, points, strict=True):
                t0 = time.perf_counter()
                _query(config, model, kp, side, pts, args.threads)
                times[config].append(time.perf_counter() - t0)
    torch.set_num_threads(args.threads)
    base = statistics.median(times["chunked"])
    base_min = min(times["chunked"])
    timing = {}
    for config, ts in times.items():
        med = statistics.median(ts)
        timing[config] = {
            "s_per_call_median": med,
            "s_per_call_min": min(ts),
            "points_per_s_per_hand": args.points / med,
            "points_per_s_per_hand_best": args.points / min(ts),
            "speed_ratio_to_chunked": base / med,
            "speed_ratio_to_chunked_of_minima": base_min / min(ts),
            "calls": len(ts),
        }
    # The compute floor of a call: its network FLOP (25,088 per pair for 4 x 64) at the best
    # float32 matmul rate of this process and thread count.
    widths = [3, *model.network.config.hidden, 1]
    flop_per_pair = 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    rate = max(matmul_gflops(1024, 1.0), matmul_gflops(2048, 1.0))
    for config, row in timing.items():
        pairs = _network_pairs(config, model, *hands[0], points[0], args.threads)
        torch.set_num_threads(args.threads)
        if pairs:
            row["network_pairs_per_call"] = pairs
            row["floor_s_per_call"] = pairs * flop_per_pair / (rate * 1e9)
            row["ratio_to_floor"] = row["s_per_call_median"] / row["floor_s_per_call"]
    memory: dict[str, list[dict]] = {}
    for size in [int(x) for x in args.memory_points.split(",")]:
        for config in CONFIGS:
            cmd = [
                sys.executable, __file__, "--memory-worker", config, "--memory-points",
                str(size), "--threads", str(args.threads), "--seed", str(args.seed),
            ]  # fmt: skip
            if args.checkpoint:
                cmd += ["--checkpoint", args.checkpoint]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.exit(f"memory run of {config} failed:\n{proc.stderr}")
            memory.setdefault(config, []).append(json.loads(proc.stdout.strip().splitlines()[-1]))
    agreement_hands = _hands(args.agreement_hands, args.seed + 1)
    agreement = _agreement(
        model, skip_model, agreement_hands, args.agreement_points, args.seed, args.threads
    )
    report = {
        "benchmark": "occupancy_points_per_s",
        "checkpoint": repo_path(args.checkpoint) if args.checkpoint else "shipped",
        "points_per_call": args.points,
        "box": f"keypoints' bounding cube + {PADDING_M * 100:g} cm, uniform",
        "hands_timed": args.hands,
        "rounds": args.rounds,
        "threads": args.threads,
        "floor_matmul_gflops_best": rate,
        "timing": timing,
        "peak_memory": memory,
        "agreement": agreement,
    }
    emit(report, args.json, indent=2)


if __name__ == "__main__":
    main()
