"""The part grids' trilinear lookup, the gather work the extraction adds for a grid model:
the library's lookup against two alternatives, on the shipped model's table.

Usage::

    .venv/bin/python benchmarks/speed/bench_grid_lookup.py [--rows 200000] [--rounds 5]
        [--threads 1] [--seed 0] [--reconstruct-hands 0] [--json OUT]

Rows are random cells of random parts, sorted by part as the extraction sends them. Three
ways of reading them, alternating in one process (the order reversed every round, one
warm-up call each first), all at ``--threads`` torch threads:

* ``grid_sample`` (the library: :func:`halohand.fields.grids.trilinear`): the 16 grids as one
  ``[1, C, K V, V, V]`` volume, a channels-last view of the table, read by ``grid_sample``;
* ``grid_sample_contiguous``: the same call on a channels-first contiguous copy of that
  volume (made once, outside the timing: what a cached inference copy would cost per call);
* ``gather``: eight ``index_select`` of table rows weighted by the trilinear fractions;
* ``embedding_bag`` (the library's inference lookup since stop 49:
  :func:`halohand.fields.grids.trilinear_gathered`): each row a bag of its cell's eight
  table rows (int32 indices), summed with the trilinear weights by ``embedding_bag``.

``backward``: forward and backward (of the features' squared sum, in the table and the
cells, as in training) of ``grid_sample`` and ``embedding_bag`` (why training keeps
``grid_sample``).

With ``--reconstruct-hands N``, ``HALO.reconstruct`` of the shipped model (256^3, default
settings) on the first ``N`` test hands of ``data/webxr_thick15_s0`` (sampled hands
without it) with the library's inference lookup and with ``grid_sample`` swapped in for
it, one after the other on each hand in alternating order, ``--rounds`` times at
``--threads``: what the lookup's speed is worth end to end (``reconstruct``: medians and
the median of the per-hand ratios, ``grid_sample`` over the library).

Reported per way: median and minimum milliseconds per call, nanoseconds per row, the ratio
to ``grid_sample`` (of medians), and the largest difference of its features from the
library's; with the machine and a matmul calibration (``benchmarks/_report.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit  # noqa: E402


def _grid_sample(
    volume: torch.Tensor, cells: torch.Tensor, part: torch.Tensor, r: int
) -> torch.Tensor:
    """``trilinear``'s call on a given volume ``[1, C, K V, V, V]``."""
    v = r + 1
    parts = volume.shape[2] // v
    u = cells.clamp(0.0, float(r))
    depth = 2.0 / (parts * v - 1)
    axes = torch.tensor([2.0 / (v - 1), 2.0 / (v - 1), depth], dtype=u.dtype)
    grid = torch.addcmul(torch.full_like(axes, -1.0), u.flip(-1), axes)
    grid[:, 2].add_(part.to(u.dtype), alpha=v * depth)
    out = F.grid_sample(
        volume, grid.view(1, 1, 1, -1, 3), mode="bilinear", padding_mode="border",
        align_corners=True,
    )  # fmt: skip
    return out.view(volume.shape[1], -1).T


def _gather(table: torch.Tensor, cells: torch.Tensor, part: torch.Tensor, r: int) -> torch.Tensor:
    """Trilinear interpolation by eight row gathers of the ``[K V^3, C]`` table."""
    v = r + 1
    u = cells.clamp(0.0, float(r))
    base = u.floor().clamp_(max=r - 1)
    f = u - base
    i = base.to(torch.int64)
    first = ((part * v + i[:, 0]) * v + i[:, 1]) * v + i[:, 2]
    fx, fy, fz = f.unbind(1)
    out = None
    for dx, wx in ((0, 1 - fx), (1, fx)):
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dz, wz in ((0, 1 - fz), (1, fz)):
                rows = table.index_select(0, first + (dx * v * v + dy * v + dz))
                w = (wx * wy * wz)[:, None]
                out = rows * w if out is None else out.addcmul_(rows, w)
    assert out is not None
    return out


def _alternate(ways: dict, rounds: int) -> dict[str, list[float]]:
    """Seconds of each way per round, the order reversed every round."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    for rnd in range(rounds):
        for name in ways if rnd % 2 == 0 else list(ways)[::-1]:
            t0 = time.perf_counter()
            ways[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def _backward(way, table: torch.Tensor, cells: torch.Tensor, part, r: int):
    """A training step's lookup: forward and backward in the table and the cells."""

    def step() -> None:
        t, c = table.detach().requires_grad_(), cells.detach().requires_grad_()
        (way(t, c, part, r) ** 2).sum().backward()

    return step


def _reconstruct(hands: int, rounds: int) -> dict:
    """``HALO.reconstruct`` with the library's inference lookup and with ``grid_sample``."""
    import halohand.fields.grids as grids_module
    from halohand.inference.halo import HALO

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # speed/: bench_extraction
    from bench_extraction import _hands

    model = HALO.pretrained()
    library = grids_module.trilinear_gathered
    keypoints = _hands("data/webxr_thick15_s0", hands, 0)
    lookups = {"library": library, "grid_sample": grids_module.trilinear}
    times: dict[str, list[float]] = {name: [] for name in lookups}
    try:
        for name in lookups:  # warm-up
            grids_module.trilinear_gathered = lookups[name]
            model.reconstruct(keypoints[0][0], side=keypoints[0][1], units="m")
        for rnd in range(rounds):
            for i, (kp, side) in enumerate(keypoints):
                order = list(lookups) if (rnd + i) % 2 == 0 else list(lookups)[::-1]
                for name in order:
                    grids_module.trilinear_gathered = lookups[name]
                    t0 = time.perf_counter()
                    model.reconstruct(kp, side=side, units="m")
                    times[name].append(time.perf_counter() - t0)
    finally:
        grids_module.trilinear_gathered = library
    ratios = [g / b for g, b in zip(times["grid_sample"], times["library"], strict=True)]
    return {
        "hands": len(keypoints),
        "median_s_per_hand": {name: statistics.median(ts) for name, ts in times.items()},
        "grid_sample_over_library_per_hand_median": statistics.median(ratios),
        "quartiles": [float(q) for q in np.quantile(ratios, [0.25, 0.75])],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reconstruct-hands", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from halohand.fields.grids import trilinear, trilinear_gathered
    from halohand.fields.io import load_any_model
    from halohand.inference.halo import pretrained_path

    torch.set_num_threads(args.threads)
    grids = load_any_model(pretrained_path()).grids
    if grids is None:
        sys.exit("the shipped model has no grids")
    table = grids.table.detach()
    r, k = grids.resolution, grids.num_parts
    v = r + 1
    gen = torch.Generator().manual_seed(args.seed)
    cells = torch.rand(args.rows, 3, generator=gen) * r
    part = torch.randint(0, k, (args.rows,), generator=gen).sort().values
    channels_last = table.view(k * v, v, v, -1).permute(3, 0, 1, 2).unsqueeze(0)
    contiguous = channels_last.contiguous()
    ways = {
        "grid_sample": lambda: trilinear(table, cells, part, r),
        "grid_sample_contiguous": lambda: _grid_sample(contiguous, cells, part, r),
        "gather": lambda: _gather(table, cells, part, r),
        "embedding_bag": lambda: trilinear_gathered(table, cells, part, r),
    }
    reference = ways["grid_sample"]()
    differences = {name: float((fn() - reference).abs().max()) for name, fn in ways.items()}
    backward = {
        "grid_sample": _backward(trilinear, table, cells, part, r),
        "embedding_bag": _backward(trilinear_gathered, table, cells, part, r),
    }
    for step in backward.values():  # warm-up
        step()
    begin()
    times = _alternate(ways, args.rounds)
    backward_times = _alternate(backward, args.rounds)
    base = statistics.median(times["grid_sample"])
    report = {
        "benchmark": "grid_lookup",
        "rows": args.rows,
        "rounds": args.rounds,
        "threads": args.threads,
        "grid": {"parts": k, "resolution": r, "channels": int(table.shape[1])},
        "ways": {
            name: {
                "ms_per_call_median": 1e3 * statistics.median(ts),
                "ms_per_call_min": 1e3 * min(ts),
                "ns_per_row_median": 1e9 * statistics.median(ts) / args.rows,
                "time_ratio_to_grid_sample": statistics.median(ts) / base,
                "max_abs_difference_from_grid_sample": differences[name],
            }
            for name, ts in times.items()
        },
        "backward": {
            name: {
                "ms_per_step_median": 1e3 * statistics.median(ts),
                "time_ratio_to_grid_sample": statistics.median(ts)
                / statistics.median(backward_times["grid_sample"]),
            }
            for name, ts in backward_times.items()
        },
    }
    if args.reconstruct_hands:
        report["reconstruct"] = _reconstruct(args.reconstruct_hands, args.rounds)
    emit(report, args.json, indent=2)


if __name__ == "__main__":
    main()
