"""Benchmark the data engine: hands/second for 1 and 2 workers, where the time goes, label
agreement of the inside test with two independent methods, and storage per hand.

Prints one JSON object (and writes it to ``--json PATH`` if given):

* ``throughput``: per worker count (and round: ``--rounds N`` repeats the worker counts,
  alternating their order), wall seconds and hands/s of ``generate`` (process start-up
  included), with the per-hand split into posing (the source), sampling and inside test;
* ``labels``: on ``--label-hands`` hands, agreement of the stored labels (fast winding number
  >= 0.5) with embree ray parity (trimesh ``contains``) and with libigl's exact winding
  number, the seconds per hand of each method, and the winding numbers where parity disagrees;
* ``quantization``: label flips and coordinate error if near-surface points were stored as
  float16 metres, versus the int16 10-um grid used (labels of both against the float64 points);
* bytes per hand of the shards (in ``throughput``);
* the machine (``benchmarks/_report.py``): load average and matmul calibration before and
  after, since the timings are wall-clock on a shared machine.

    .venv/bin/python benchmarks/speed/bench_data.py [--source webxr|toy] [--hands 8]
        [--label-hands 8] [--rounds 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit  # noqa: E402


def _source(name: str):  # noqa: ANN202 - a factory
    if name == "toy":
        from halohand.handmodel.toy import ToyHandSource

        return ToyHandSource
    from functools import partial

    from halohand.handmodel import make_source

    return partial(make_source, name)


def throughput(name: str, hands: int, workers: int, tmp: Path, rnd: int = 0) -> dict:
    from halohand.data.engine import generate

    out = tmp / f"r{rnd}_w{workers}"
    t0 = time.perf_counter()
    report = generate(
        out,
        {"train": hands},
        seed=0,
        source=_source(name),
        workers=workers,
        hands_per_shard=4,
        progress=False,
    )
    wall = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in out.rglob("*.npz"))
    return {
        "workers": workers,
        "round": rnd,
        "hands": hands,
        "wall_s": round(wall, 3),
        "hands_per_s": round(hands / wall, 3),
        "per_hand_s": {k: round(v / hands, 4) for k, v in report.timings.items()},
        "bytes_per_hand": size // hands,
        "hands_outside_box": report.hands_outside_box,
    }


def labels(name: str, hands: int) -> dict:
    import igl
    import trimesh

    from halohand.data.engine import dequantize, make_hand

    source = _source(name)()
    totals = {"fast_winding_s": 0.0, "embree_parity_s": 0.0, "exact_winding_s": 0.0}
    n_points = dis_parity = dis_exact = 0
    parity_disagreement_winding = []
    for index in range(hands):
        arrays, timings = make_hand(source, 0, "train", index, "right" if index % 2 else "left")
        v, f = arrays["mesh_vertices"], arrays["mesh_faces"].astype(np.int64)
        pts = dequantize(np.concatenate([arrays["points_uniform"], arrays["points_near"]]))
        occ = np.unpackbits(np.concatenate([arrays["occ_uniform"], arrays["occ_near"]]))
        occ = occ.astype(bool)
        totals["fast_winding_s"] += timings["inside_s"]
        t0 = time.perf_counter()
        parity = trimesh.Trimesh(v, f, process=False).contains(pts)
        totals["embree_parity_s"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        exact = igl.winding_number(v, f, pts) >= 0.5
        totals["exact_winding_s"] += time.perf_counter() - t0
        n_points += len(pts)
        bad = parity != occ
        dis_parity += int(bad.sum())
        dis_exact += int((exact != occ).sum())
        if bad.any():
            parity_disagreement_winding += np.round(igl.winding_number(v, f, pts[bad]), 2).tolist()
    values, counts = np.unique(parity_disagreement_winding, return_counts=True)
    return {
        "hands": hands,
        "points": n_points,
        "agreement_embree_parity_pct": round(100 * (1 - dis_parity / n_points), 4),
        "agreement_exact_winding_pct": round(100 * (1 - dis_exact / n_points), 4),
        "seconds_per_hand": {k: round(v / hands, 3) for k, v in totals.items()},
        "winding_number_where_parity_disagrees": {
            str(v): int(c) for v, c in zip(values, counts, strict=True)
        },
    }


def quantization(name: str, hands: int) -> dict:
    """Label flips if near-surface points were stored as float16 metres instead of the
    int16 10-um grid, against labels of the unrounded float64 points."""
    from halohand.data import constants as C
    from halohand.data.engine import dequantize, inside, quantize, sample_surface

    source = _source(name)()
    rng = np.random.default_rng(0)
    flips = {"float16": 0, "int16_10um": 0}
    err = {"float16": 0.0, "int16_10um": 0.0}
    n = 0
    for index in range(hands):
        hand = source.sample(rng)
        v, f = np.asarray(hand.vertices), np.asarray(hand.faces)
        surf, _, _ = sample_surface(v, f, C.NUM_NEAR_POINTS, rng)
        pts = surf + rng.normal(0.0, C.NEAR_SURFACE_SIGMA_M, surf.shape)
        ref = inside(v, f, pts)
        for key, stored in (
            ("float16", pts.astype(np.float16).astype(np.float64)),
            ("int16_10um", dequantize(quantize(pts))),
        ):
            flips[key] += int((inside(v, f, stored) != ref).sum())
            err[key] = max(err[key], float(np.abs(stored - pts).max()))
        n += len(pts)
        del index
    return {
        "hands": hands,
        "near_points": n,
        "label_flips_pct": {k: round(100 * c / n, 4) for k, c in flips.items()},
        "max_coordinate_error_mm": {k: round(1e3 * e, 4) for k, e in err.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="webxr", help="webxr (default), mano or toy")
    parser.add_argument("--hands", type=int, default=8, help="hands per throughput run")
    parser.add_argument("--label-hands", type=int, default=8, help="hands for label agreement")
    parser.add_argument("--quant-hands", type=int, default=2, help="hands for the dtype check")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=1, help="alternating throughput rounds")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()

    begin()
    result: dict = {"source": args.source}
    with tempfile.TemporaryDirectory() as tmp:
        result["throughput"] = [
            throughput(args.source, args.hands, w, Path(tmp), rnd)
            for rnd in range(args.rounds)
            for w in (args.workers if rnd % 2 == 0 else args.workers[::-1])
        ]
    if args.label_hands:
        result["labels"] = labels(args.source, args.label_hands)
    if args.quant_hands:
        result["quantization"] = quantization(args.source, args.quant_hands)
    emit(result, args.json, indent=2)


if __name__ == "__main__":
    main()
