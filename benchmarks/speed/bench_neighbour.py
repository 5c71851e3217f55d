"""The hot paths quiet and next to one CPU-bound neighbour process: slowdown per path, for
the code before the thread changes (baseline) and now (candidate), in one run.

Usage::

    .venv/bin/python benchmarks/speed/bench_neighbour.py [--rounds 3] [--repeats 2]
        [--threads 2] [--resolution 128] [--paths occupancy_forward,...] [--json OUT]

Paths (the shipped HALO model; hands from the embedded hand model, metres):

* ``occupancy_forward``: ``HALO.occupancy`` on 2e5 points uniform in the hand's box;
* ``occupancy_grad``: the same with points and keypoints requiring grad, forward and
  backward of ``occ.sum()`` (network parameters frozen, as in refinement);
* ``reconstruct``: ``HALO.reconstruct`` at ``--resolution`` (128 keeps the run short);
* ``grasp_refine``: ``generate_grasps`` sampling 4 grasps of ``box_4`` (no
  refinement there), ``refine_translation`` of the 4 (5 steps), ``select_grasps`` of 2;
* ``grasp_refine_pose``: ``generate_grasps`` of one grasp of ``box_4`` refined in pose
  space (``refine_pose``; 200 steps instead of 800 to keep the run short);
* ``train_steps``: 2 ``Trainer.train_step`` calls (the method itself, on a trainer stub)
  of a network with the shipped configuration, 4 hands x 2048 points (half uniform in the
  box, half near the bones).

Modes, alternating within each condition:

* ``baseline``: the code before this change: differentiable occupancy through
  :func:`~halohand.inference.query.query_occupancy` (``HALO._query`` without
  ``sparse_query``), grasp sampling, refinement and selection and training steps at
  ``--threads`` OpenMP threads (without their ``torch_threads`` / ``fair_threads``
  choice); forward occupancy and extraction are unchanged;
* ``candidate``: the code as it is.

Conditions alternate every round (the order reversed every other round): ``quiet``, and
next to each of ``--neighbours``, one unpinned CPU-bound process started 0.5 s before the
timings and killed after them: ``python`` (``while True: pass``), ``numpy`` (a loop of
256 x 256 matrix products on one BLAS thread), ``numpy_all_cores`` (the same at NumPy's
default BLAS threads, one per core: as many busy threads as cores, more than one
neighbour's worth) and ``torch_all_cores`` (torch's in-place multiply of 2^18 floats in a
loop, OpenMP threads on every core, as another torch job runs). Reported per path and
mode: the median seconds per condition and ``slowdown_<neighbour>`` = its median / the
quiet median; ``acceptance``: every candidate slowdown next to a one-thread neighbour <=
2.5. The mean number of other processes' runnable threads during each phase
(``/proc/loadavg`` less this process's, every 20 ms; the neighbour counts) says whether a
phase had company from outside; a phase with more than ``--max-company`` beyond its
neighbour's threads (1, or the cores for an all-core one) is redone, up to ``--retries``
times (the last try is kept whatever it saw). ``OMP_WAIT_POLICY`` as the process got it
is recorded (the ``halohand`` command sets ``PASSIVE``; ``--json
benchmarks/results/speed/bench_neighbour_passive.json`` with it set). With the machine and
a matmul calibration before and after (``benchmarks/_report.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_occupancy's point sets
from _report import begin, emit  # noqa: E402
from bench_occupancy import _hands, _near_bones, _uniform  # noqa: E402

PATHS = (
    "occupancy_forward", "occupancy_grad", "reconstruct", "grasp_refine", "grasp_refine_pose",
    "train_steps",
)  # fmt: skip
MODES = ("baseline", "candidate")
LIMIT = 2.5


@contextlib.contextmanager
def _mode(mode: str) -> Iterator[None]:
    """The code of ``mode``: the baseline swaps today's changes for the code before them."""
    if mode == "candidate":
        yield
        return
    from halohand.grasp import generate
    from halohand.inference import halo as halo_module
    from halohand.training.trainer import Trainer

    saved = (halo_module.can_query_sparse_grad, Trainer.train_step, generate.torch_threads)
    halo_module.can_query_sparse_grad = lambda *a, **k: False
    Trainer.train_step = Trainer._train_step  # its body, at the process's threads
    generate.torch_threads = lambda threads: contextlib.nullcontext()
    try:
        yield
    finally:
        halo_module.can_query_sparse_grad, Trainer.train_step, generate.torch_threads = saved


def _others_running() -> int:
    """Runnable threads of other processes now."""
    with open("/proc/loadavg", encoding="ascii") as f:
        running = int(f.read().split()[3].split("/")[0])
    own = 0
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/stat") as f:
            own += f.read().rsplit(")", 1)[1].split()[0] == "R"
    return max(0, running - own)


def _paths(args: argparse.Namespace) -> dict[str, Callable[[], object]]:
    from halohand.fields import OccupancyNetwork, skip_mask
    from halohand.grasp.generate import (
        generate_grasps,
        grasp_halo,
        refine_translation,
        select_grasps,
        shipped_model_path,
    )
    from halohand.grasp.pose_refine import PoseRefineConfig
    from halohand.grasp.vae import load_vae
    from halohand.inference.halo import HALO
    from halohand.objects.registry import load_object
    from halohand.training.config import TrainConfig
    from halohand.training.trainer import Trainer, _Query

    model = HALO.pretrained()
    for p in model.network.parameters():
        p.requires_grad_(False)
    (kp, side), (kp2, side2) = _hands(2, args.seed)
    pts = torch.as_tensor(_uniform(kp, 200_000, args.seed))
    kpt = torch.as_tensor(kp)

    def forward() -> object:
        return model.occupancy(pts, kpt, side=side, units="m")

    def grad() -> object:
        p = pts.clone().requires_grad_(True)
        k = kpt.clone().requires_grad_(True)
        model.occupancy(p, k, side=side, units="m").sum().backward()
        return p.grad

    def reconstruct() -> object:
        return model.reconstruct(kp2, side2, units="m", resolution=args.resolution)

    vae, _ = load_vae(str(shipped_model_path()))
    halo = grasp_halo()
    obj = load_object("box_4")
    vae.eval()

    def grasp() -> object:
        gs = generate_grasps(vae, obj, 4, 0, halo=halo)  # the sampling only
        kp_r = refine_translation(halo, gs.keypoints, obj, steps=5)
        return select_grasps(halo, kp_r, obj, 2)

    def grasp_pose() -> object:
        return generate_grasps(vae, obj, 1, 0, refine=True, halo=halo, refine_pose=True,
                               pose_config=PoseRefineConfig(steps=200)).keypoints  # fmt: skip

    net = OccupancyNetwork(model.network.config)
    trainer = Trainer.__new__(Trainer)
    trainer.model_config = net.config
    trainer.net = net
    trainer.query = _Query(net)
    trainer.optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    trainer.run_state = types.SimpleNamespace(set_lr=lambda opt: None)
    trainer.schedule = types.SimpleNamespace(weight=0.0)
    trainer.dist = types.SimpleNamespace(enabled=False)
    trainer.device = torch.device("cpu")
    trainer.micro_batch = 1
    trainer.cfg = TrainConfig()  # the step reads its loss settings (tip weighting off: 1.0)
    hands = _hands(4, args.seed + 7)
    kps = torch.as_tensor(np.stack([h[0] for h in hands])).float()
    points = torch.as_tensor(
        np.stack(
            [
                np.concatenate([_uniform(h[0], 1024, i), _near_bones(h[0], 1024, i)])
                for i, h in enumerate(hands)
            ]
        )
    ).float()
    with torch.no_grad():  # a stand-in target: the supports' union
        radii = net.config.part_radii_m
        inside = skip_mask(points, kps, radii).any(-1).float() if radii else None
    batch = {
        "keypoints": kps,
        "side": torch.tensor([h[1] == "left" for h in hands]),
        "part_transforms": torch.eye(4).expand(4, 16, 4, 4).clone(),
        "bone_lengths": torch.zeros(4, 16),
        "points": points,
        "occupancies": inside if inside is not None else torch.zeros(points.shape[:2]),
    }

    def train() -> object:
        for _ in range(2):
            trainer.train_step(batch)
        return None

    every = {
        "occupancy_forward": forward,
        "occupancy_grad": grad,
        "reconstruct": reconstruct,
        "grasp_refine": grasp,
        "grasp_refine_pose": grasp_pose,
        "train_steps": train,
    }
    return {name: every[name] for name in args.paths.split(",")}


_MATMUL = "import numpy as np\na = np.random.default_rng(0).random((256, 256))\nwhile True: a @ a"
_ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
#: The neighbours, ``(code, environment, threads)``: a pure-Python busy loop, a NumPy
#: matmul loop on one BLAS thread, the same at NumPy's default threads (one per core,
#: spinning between products: as many busy threads as cores), and a torch loop of
#: parallel element-wise kernels at torch's default threads (another torch job).
NEIGHBOURS: dict[str, tuple[str, dict[str, str], str]] = {
    "python": ("while True: pass", {}, "1"),
    "numpy": (_MATMUL, _ONE_THREAD, "1"),
    "numpy_all_cores": (_MATMUL, {}, "BLAS default (one per core)"),
    "torch_all_cores": (
        "import torch\nx = torch.randn(1 << 18)\nwhile True: x.mul_(1.0)",
        {},
        "torch default (one OpenMP thread per core)",
    ),
}


@contextlib.contextmanager
def _condition(name: str, company: list[float]) -> Iterator[None]:
    """Run the block quiet or next to neighbour ``name``; append the mean number of other
    processes' runnable threads seen during it (sampled every 20 ms) to ``company``."""
    proc = None
    if name != "quiet":
        code, env, _ = NEIGHBOURS[name]
        proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **env})
        time.sleep(0.5)
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            samples.append(_others_running())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield
    finally:
        done.set()
        sampler.join()
        company.append(round(statistics.mean(samples), 2) if samples else float("nan"))
        if proc is not None:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="calls per path, mode, phase")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--neighbours", default=",".join(NEIGHBOURS))
    parser.add_argument(
        "--max-company", type=float, default=0.3,
        help="outside runnable threads (mean, beyond the neighbour's) that redo a phase",
    )  # fmt: skip
    parser.add_argument("--retries", type=int, default=3, help="redos of a phase at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    cores = len(os.sched_getaffinity(0))
    paths = _paths(args)
    conditions = ("quiet", *args.neighbours.split(","))
    begin()
    for fn in paths.values():  # warm-up
        for mode in MODES:
            with _mode(mode):
                fn()
    times: dict[str, dict[str, dict[str, list[float]]]] = {
        p: {m: {c: [] for c in conditions} for m in MODES} for p in paths
    }
    company: dict[str, list[float]] = {c: [] for c in conditions}
    redone: dict[str, int] = {c: 0 for c in conditions}
    for rnd in range(args.rounds):
        for cond in conditions if rnd % 2 == 0 else conditions[::-1]:
            # A phase with outside company (another job on the shared machine) is redone:
            # its times would measure that job, not the neighbour.
            expected = 0 if cond == "quiet" else (1 if NEIGHBOURS[cond][2] == "1" else cores)
            for attempt in range(args.retries + 1):
                phase: dict[tuple[str, str], list[float]] = {}
                seen: list[float] = []
                with _condition(cond, seen):
                    for name, fn in paths.items():
                        for mode in MODES if rnd % 2 == 0 else MODES[::-1]:
                            with _mode(mode):
                                for _ in range(args.repeats):
                                    t0 = time.perf_counter()
                                    fn()
                                    phase.setdefault((name, mode), []).append(
                                        time.perf_counter() - t0
                                    )
                if seen[0] <= expected + args.max_company or attempt == args.retries:
                    break
                redone[cond] += 1
            company[cond] += seen
            for (name, mode), ts in phase.items():
                times[name][mode][cond] += ts
    result: dict = {}
    worst = 0.0
    for name, modes in times.items():
        result[name] = {}
        for mode, conds in modes.items():
            med = {c: statistics.median(ts) for c, ts in conds.items()}
            row: dict = {f"{c}_s_median": m for c, m in med.items()}
            for c in conditions[1:]:
                row[f"slowdown_{c}"] = med[c] / med["quiet"]
                if mode == "candidate" and NEIGHBOURS[c][2] == "1":
                    worst = max(worst, med[c] / med["quiet"])
            row["seconds"] = conds
            result[name][mode] = row
        base, cand = result[name]["baseline"], result[name]["candidate"]
        result[name]["candidate_speedup"] = {
            c: base[f"{c}_s_median"] / cand[f"{c}_s_median"] for c in conditions
        }
    report = {
        "benchmark": "neighbour_slowdown",
        "neighbours": {
            c: f"one unpinned `python -c` process: {NEIGHBOURS[c]!r}" for c in conditions[1:]
        },  # fmt: skip
        "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (libgomp's default)"),
        "rounds": args.rounds,
        "repeats": args.repeats,
        "resolution": args.resolution,
        "limit": LIMIT,
        "candidate_worst_slowdown_one_thread_neighbours": worst,
        "acceptance_candidate_slowdown_within_limit": worst <= LIMIT,
        "other_processes_runnable_threads_mean_per_phase": company,
        "phases_redone_for_outside_company": redone,
        "max_company": args.max_company,
        "paths": result,
    }
    emit(report, args.json, indent=2)


if __name__ == "__main__":
    main()
