"""Keypoints -> mesh: dense grid vs hierarchical extraction, query throughput, peak memory.

Usage::

    .venv/bin/python benchmarks/speed/bench_extraction.py [--checkpoint FILE] [--hands 5]
        [--resolution 256] [--threads 2] [--rounds 1] [--baseline-rev REV] [--json OUT]

For the first ``--hands`` test hands of ``--data`` (default ``data/webxr_s0``; without it,
hands sampled from the embedded hand model with ``--seed``), each configuration runs in its
own subprocess (so peak memory is its own) on the same model and hands:

* ``dense``: every lattice point of the ``(R+1)^3`` grid evaluated, then marching cubes;
* ``hierarchical``: the library's default path (``HALO.reconstruct``): coarse 32^3 lattice,
  refinement near the surface, part supports / skipping, marching cubes, part colours;
* ``hierarchical_allparts``: the same with every part (within its support) evaluated on
  every level, instead of the parts near the max one level before
  (``HALO(part_candidates=None)``);
* ``hierarchical_nocolor``: the default without part colours;
* ``sequence``: all ``--hands`` hands in one ``HALO.reconstruct`` call (a batch or a
  sequence of frames), seconds per hand of each of three calls;
* with ``--baseline-rev REV``: ``baseline_REV``, the ``hierarchical`` configuration of the
  library at git revision ``REV`` (its ``src`` extracted with ``git archive``, timed by
  this script), on the same hands in the same run; ``per_hand_time_over_baseline_median``
  pairs each hand's time with the baseline's for the same hand and round.

``--rounds N`` repeats every configuration N times, alternating the order, and pools the
per-hand times (a shared 2-core machine drifts by tens of per cent within minutes).

Reported per configuration: median (and minimum) seconds per hand (keypoints -> watertight
mesh, after one warm-up hand; hierarchical configurations are timed on the plain library
call, and a second, instrumented call per hand gives the other figures), occupancy queries
per hand, query throughput (queries / seconds spent evaluating the lattice), peak resident
memory (``ru_maxrss``, including the instrumented call's full grid) and whether every mesh
is watertight, and the (point, part) pairs the network evaluated with their FLOP
(``gflop_per_hand_mean``). The compute floor of a hand is those FLOP at the best float32
matmul rate the main process measures (1024^2 and 2048^2, 1 s each, ``--threads``
threads): ``floor_s_per_hand`` and ``ratio_to_floor`` (median / floor) stand beside every
configuration that counted its pairs. The hierarchical grid is also compared with the dense one: the
fraction of lattice points on a different side of the model's mesh level, and the symmetric
Chamfer-L1 (mm) between the two meshes. Prints one JSON object (and writes it with
``--json``), with the machine and a matmul calibration before and after the rounds
(``benchmarks/_report.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import REPO, begin, emit, matmul_gflops, repo_path  # noqa: E402


def _hands(data: str | None, n: int, seed: int) -> list[tuple[np.ndarray, str]]:
    if data and Path(data).is_dir():
        from halohand.data.dataset import OccupancyDataset

        ds = OccupancyDataset(data, "test", n_points=16, n_surface=1, seed=0)
        out = []
        for i in range(min(n, len(ds))):
            item = ds[i]
            side = "left" if int(item["side"]) else "right"
            out.append((item["keypoints"].numpy().astype(np.float64), side))
        return out
    from halohand.handmodel.webxr import WebXRHandSource

    rng = np.random.default_rng(seed)
    source = WebXRHandSource()
    return [(source.sample(rng, side="right").keypoints, "right") for _ in range(n)]


def _instrumented(model, kp: np.ndarray, side: str, res: int, colors: bool):  # noqa: ANN001
    """One reconstruction with the lattice evaluation wrapped: ``([seconds in the network,
    queries], queries per level, the full (R+1)^3 grid)``."""
    lib = _library()
    extract = lib["extract"]
    # The grid function HALO.meshes calls: lattice_grid (a result object) since the package
    # restructure, evaluate_grid (a tuple) before.
    name = "lattice_grid" if hasattr(lib["halo"], "lattice_grid") else "evaluate_grid"
    holders = [m for m in (extract, lib["package"], lib["halo"]) if hasattr(m, name)]

    spent = [0.0, 0, 0]
    captured: list[np.ndarray] = []
    level_sizes: list[int] = []
    original = extract._evaluate
    original_grid = getattr(extract, name)
    network_class = type(model.network)
    original_logits = getattr(network_class, "folded_logits", None)

    def counted(self, points, *a, **k):  # noqa: ANN001, ANN002, ANN003
        spent[2] += int(points.shape[0])  # (point, part) pairs through the network
        return original_logits(self, points, *a, **k)

    def timed(fn, points, *a, **k):  # noqa: ANN001, ANN002, ANN003
        t = time.perf_counter()
        out = original(fn, points, *a, **k)
        spent[0] += time.perf_counter() - t
        spent[1] += len(points)
        level_sizes.append(len(points))
        return out

    def grid(*a, **k):  # noqa: ANN002, ANN003
        out = original_grid(*a, **k)
        values, stats = (out.values, out.stats) if hasattr(out, "values") else out[:2]
        # A cropped grid goes back into the full lattice (all outside beyond it).
        full = np.zeros((res + 1,) * 3, dtype=np.float32)
        start = getattr(stats, "start", (0, 0, 0))
        full[tuple(slice(s, s + m) for s, m in zip(start, values.shape, strict=True))] = values
        captured.append(full)
        return out

    extract._evaluate = timed
    for holder in holders:  # every namespace that calls it by name
        setattr(holder, name, grid)
    if original_logits is not None:
        network_class.folded_logits = counted
    try:
        model.reconstruct(kp, side=side, units="m", resolution=res, colors=colors)
    finally:
        extract._evaluate = original
        if original_logits is not None:
            network_class.folded_logits = original_logits
        for holder in holders:
            setattr(holder, name, original_grid)
    return spent, level_sizes, captured[0]


def _library() -> dict:
    """The modules this script times, in the package layout of the library it runs on (a
    ``--baseline-rev`` before the package restructure had them under other names)."""
    import importlib

    try:
        halo = importlib.import_module("halohand.inference.halo")
        extract = importlib.import_module("halohand.inference.extract")
        package = importlib.import_module("halohand.inference")
        query = importlib.import_module("halohand.inference.query")
        box = halo.keypoint_box
    except (ImportError, AttributeError):  # the layout before halohand.inference existed
        halo = importlib.import_module("halohand.api")
        extract = importlib.import_module("halohand.meshing.extract")
        package = importlib.import_module("halohand.meshing")
        query = importlib.import_module("halohand.model.inference")
        box = halo._hand_box
    return {"halo": halo, "extract": extract, "package": package, "query": query, "box": box}


def _worker(args: argparse.Namespace) -> dict:
    import torch

    lib = _library()
    evaluate_grid, mesh_from_grid = lib["extract"].evaluate_grid, lib["extract"].mesh_from_grid
    HALO, coarse_resolution_for = lib["halo"].HALO, lib["halo"].coarse_resolution_for  # noqa: N806
    occupancy_from_keypoints = lib["query"].occupancy_from_keypoints
    _hand_box = lib["box"]

    torch.set_num_threads(args.threads)
    model = HALO.pretrained(args.checkpoint) if args.checkpoint else HALO.pretrained()
    if args.config == "hierarchical_allparts":
        model.part_candidates = None
    hands = _hands(args.data, args.hands, args.seed)
    res = args.resolution
    level = getattr(model, "iso_level", 0.5)
    times, queries, fn_time, watertight, pairs = [], [], [], [], []
    levels: list[list[int]] = []
    grids: list[np.ndarray] = []
    meshes = []
    if args.config == "sequence":
        return _sequence(model, hands, res, args.config)
    for i, (kp, side) in enumerate([hands[0], *hands]):  # the first run warms up
        warm = i == 0
        if args.config == "dense":
            t0 = time.perf_counter()
            prepared = model.prepare(kp, side=side, units="m")
            hand = prepared.conditioning
            bmin, bmax = _hand_box(prepared.keypoints[0] * prepared.scale, model.padding_m)
            spent = [0.0, 0]

            def fn(p: np.ndarray, hand=hand, spent=spent) -> np.ndarray:
                t = time.perf_counter()
                pt = torch.from_numpy(np.ascontiguousarray(p)).to(torch.float64)
                occ = occupancy_from_keypoints(model.network, hand, pt[None])[0]
                spent[0] += time.perf_counter() - t
                spent[1] += len(p)
                return occ.float().numpy()

            values, stats = evaluate_grid(fn, bmin, bmax, res, threshold=level, hierarchical=False)
            mesh = mesh_from_grid(values, bmin, bmax, level)
            dt = time.perf_counter() - t0
        else:
            # Timed on the library alone; the statistics come from a second, instrumented
            # pass (wrapping the lattice evaluation and filling a full grid for the
            # comparison with dense added ~0.03 s to every hand; docs/RESULTS.md).
            colors = args.config != "hierarchical_nocolor"
            t0 = time.perf_counter()
            mesh = model.reconstruct(kp, side=side, units="m", resolution=res, colors=colors)
            dt = time.perf_counter() - t0
            if not warm:
                spent, level_sizes, values = _instrumented(model, kp, side, res, colors)
        if warm:
            continue
        times.append(dt)
        if args.config != "dense":
            levels.append(level_sizes)
        queries.append(spent[1])
        fn_time.append(spent[0])
        if args.config != "dense":
            pairs.append(spent[2])
        watertight.append(bool(mesh.is_watertight) and len(mesh.faces) > 0)
        grids.append(values >= level)
        meshes.append(np.asarray(mesh.vertices, dtype=np.float64))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out_dir = Path(args.scratch)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out_dir / f"{args.config}.npz",
        **{f"grid{i}": g for i, g in enumerate(grids)},
        **{f"verts{i}": v for i, v in enumerate(meshes)},
    )
    return {
        "config": args.config,
        "coarse_resolution": coarse_resolution_for(res) if args.config != "dense" else res,
        "s_per_hand_median": statistics.median(times),
        "s_per_hand_all": times,
        "queries_per_hand_mean": float(np.mean(queries)),
        "queries_per_level_mean": (
            np.mean(levels, axis=0).tolist()
            if levels and len({len(x) for x in levels}) == 1
            else None
        ),
        "queries_per_s": float(np.sum(queries) / max(np.sum(fn_time), 1e-9)),
        "network_pairs_per_hand_mean": float(np.mean(pairs)) if pairs else None,
        "gflop_per_hand_mean": (
            float(np.mean(pairs)) * _flop_per_pair(model.network) / 1e9 if pairs else None
        ),
        "share_of_time_in_occupancy": float(np.sum(fn_time) / np.sum(times)),
        "peak_rss_mb": peak_mb,
        "all_watertight": all(watertight),
    }


def _flop_per_pair(network) -> int:  # noqa: ANN001
    """Multiply-adds x 2 of one (point, part) pair through the folded part MLP: the first
    layer sees the point's own inputs (3 coordinates, plus grid features and any other
    point features; the context is folded into its bias), then the hidden and output
    layers (25,088 for 4 x 64 on coordinates alone, 26,112 with 8 grid features). A grid's
    lookup (8 vertices read per point) is gather work, not counted."""
    widths = [network.config.point_features, *network.config.hidden, 1]
    return 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))


def _sequence(model, hands: list, res: int, config: str) -> dict:  # noqa: ANN001
    """All hands in one ``HALO.reconstruct`` call (a sequence), three times after a
    warm-up: seconds per hand of each call."""
    kp = np.stack([h[0] for h in hands])
    sides = [h[1] for h in hands]
    model.reconstruct(kp[:2], side=sides[:2], units="m", resolution=res)
    times, watertight = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        meshes = model.reconstruct(kp, side=sides, units="m", resolution=res)
        times.append((time.perf_counter() - t0) / len(hands))
        watertight += [bool(m.is_watertight) and len(m.faces) > 0 for m in meshes]
    return {
        "config": config,
        "s_per_hand_median": statistics.median(times),
        "s_per_hand_all": times,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "all_watertight": all(watertight),
        "queries_per_s": None,
    }


def _checkout(rev: str, where: Path) -> Path:
    """The repository at ``rev`` as plain files (``git archive``), for a same-run baseline."""
    import shutil
    import tarfile
    from io import BytesIO

    tar = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "src", "benchmarks"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    with tarfile.open(fileobj=BytesIO(tar)) as archive:
        archive.extractall(where, filter="data")
    return where


def _pool_rounds(rounds: list[dict]) -> dict:
    """One configuration's result over its rounds: times pooled, the rest from round 0."""
    out = dict(rounds[0])
    times = [t for r in rounds for t in r["s_per_hand_all"]]
    out["s_per_hand_all"] = times
    out["s_per_hand_median"] = statistics.median(times)
    out["s_per_hand_min"] = min(times)
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rounds)
    if rounds[0].get("queries_per_s") is not None:
        out["queries_per_s"] = statistics.median(r["queries_per_s"] for r in rounds)
    out["all_watertight"] = all(r["all_watertight"] for r in rounds)
    return out


def _compare(scratch: Path, hands: int) -> dict:
    from scipy.spatial import cKDTree

    dense = np.load(scratch / "dense.npz")
    hier = np.load(scratch / "hierarchical.npz")
    flips, chamfer = [], []
    for i in range(hands):
        a, b = dense[f"grid{i}"], hier[f"grid{i}"]
        flips.append(float((a != b).mean()))
        va, vb = dense[f"verts{i}"], hier[f"verts{i}"]
        if len(va) and len(vb):
            d_ab = cKDTree(vb).query(va)[0].mean()
            d_ba = cKDTree(va).query(vb)[0].mean()
            chamfer.append(float(0.5 * (d_ab + d_ba) * 1000.0))
    return {
        "lattice_points_on_other_side_mean": float(np.mean(flips)),
        "lattice_points_on_other_side_max": float(np.max(flips)),
        "chamfer_l1_dense_vs_hierarchical_mm_mean": float(np.mean(chamfer)) if chamfer else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="model file (default: shipped)")
    parser.add_argument("--data", default="data/webxr_s0", help="data folder (test split)")
    parser.add_argument("--hands", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", default="dense,hierarchical,hierarchical_nocolor")
    parser.add_argument(
        "--scratch", default=str(Path(tempfile.gettempdir()) / "halohand_bench_extraction")
    )
    parser.add_argument(
        "--baseline-rev", default=None,
        help="also time the default path of this git revision (its own code, same hands)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1, help="alternating repetitions")
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", dest="config", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.config:
        print(json.dumps(_worker(args)))
        return
    import torch

    torch.set_num_threads(args.threads)
    begin()
    configs = args.configs.split(",")
    jobs: list[tuple[str, str, Path, dict[str, str]]] = []
    for config in configs:
        jobs.append((config, config, Path(__file__), {}))
    if args.baseline_rev:
        tree = _checkout(args.baseline_rev, Path(args.scratch) / "baseline_tree")
        # This script, timing the library of that revision.
        env = {"PYTHONPATH": str(tree / "src")}
        jobs.append((f"baseline_{args.baseline_rev}", "hierarchical", Path(__file__), env))
    runs: dict[str, list[dict]] = {name: [] for name, *_ in jobs}
    for rnd in range(args.rounds):
        # Alternate the order between rounds so slow phases of a shared machine do not
        # all fall on one configuration.
        for name, config, script, env in jobs if rnd % 2 == 0 else jobs[::-1]:
            scratch = Path(args.scratch) / ("baseline" if name != config else "current")
            cmd = [sys.executable, str(script), "--worker", config, "--hands",
                   str(args.hands), "--seed", str(args.seed), "--resolution",
                   str(args.resolution), "--threads", str(args.threads), "--scratch",
                   str(scratch), "--data", args.data]  # fmt: skip
            if args.checkpoint:
                cmd += ["--checkpoint", args.checkpoint]
            proc = subprocess.run(
                cmd, capture_output=True, text=True, check=False, env={**os.environ, **env}
            )
            if proc.returncode != 0:
                sys.exit(f"{name} failed:\n{proc.stderr}")
            runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"round {rnd}: {name}: {runs[name][-1]['s_per_hand_median']:.3f} s/hand",
                  file=sys.stderr)  # fmt: skip
    results = {name: _pool_rounds(r) for name, r in runs.items()}
    report = {
        "benchmark": "bench_extraction",
        "machine": {"threads": args.threads},
        "checkpoint": repo_path(args.checkpoint) if args.checkpoint else "shipped",
        "hands": args.hands,
        "rounds": args.rounds,
        "baseline_rev": args.baseline_rev,
        "resolution": args.resolution,
        "configs": results,
    }
    if "dense" in results and "hierarchical" in results:
        report["hierarchical_vs_dense"] = _compare(Path(args.scratch) / "current", args.hands)
        report["speedup_hierarchical_over_dense"] = (
            results["dense"]["s_per_hand_median"] / results["hierarchical"]["s_per_hand_median"]
        )
    # The compute floor: the network's FLOP per hand at the best matmul rate this process
    # measures (float32, the same threads), beside every configuration that counted them.
    rate = max(matmul_gflops(1024, 1.0), matmul_gflops(2048, 1.0))
    report["floor"] = {"matmul_gflops_best": rate}
    for result in results.values():
        gflop = result.get("gflop_per_hand_mean")
        if gflop:
            floor_s = gflop / rate
            result["floor_s_per_hand"] = floor_s
            result["ratio_to_floor"] = result["s_per_hand_median"] / floor_s
    if "sequence" in results and "hierarchical" in results:
        seq, one = results["sequence"], results["hierarchical"]
        seq["floor_s_per_hand"] = one.get("floor_s_per_hand")
        if one.get("floor_s_per_hand"):
            seq["ratio_to_floor"] = seq["s_per_hand_median"] / one["floor_s_per_hand"]
        report["sequence_over_single_per_hand"] = (
            seq["s_per_hand_median"] / one["s_per_hand_median"]
        )
    base = f"baseline_{args.baseline_rev}"
    if base in results and "hierarchical" in results:
        report["speedup_hierarchical_over_baseline"] = (
            results[base]["s_per_hand_median"] / results["hierarchical"]["s_per_hand_median"]
        )
        # The same hand in the same round, this library over the baseline: free of the
        # 2x spread between hands that the pooled medians carry.
        paired = [
            now / before
            for r_now, r_before in zip(runs["hierarchical"], runs[base], strict=True)
            for now, before in zip(r_now["s_per_hand_all"], r_before["s_per_hand_all"], strict=True)
        ]
        report["per_hand_time_over_baseline_median"] = statistics.median(paired)
    emit(report, args.json)


if __name__ == "__main__":
    main()
