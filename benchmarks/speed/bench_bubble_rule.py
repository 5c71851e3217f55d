"""What marching cubes' bubble and speck rules cost: ``HALO.reconstruct`` with the rules on
and off, the same hand back to back, alternating the order.

Usage::

    .venv/bin/python benchmarks/speed/bench_bubble_rule.py [--hands 8] [--rounds 5]
        [--threads 2] [--json OUT]

The rules (``halohand.inference.extract._enclosed_points``, called twice by
``mesh_from_grid``) find the outside lattice points enclosed by inside face neighbours
(bubbles), then the inside points enclosed by outside ones (specks), before marching
cubes; "off" replaces it with a function that finds none. Hands from the embedded hand model
(``bench_occupancy``'s sampler, seed 0), 256^3. Reported: median seconds per hand of each
arm and the median over hands and rounds of on / off for the same hand and round (the
figure to read on a machine whose speed drifts), and how many meshes the rule changed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # speed/: the shared hand sampler
from bench_occupancy import _hands  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hands", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    import torch

    import halohand.inference.extract as extract
    from halohand.inference.halo import HALO

    torch.set_num_threads(args.threads)
    begin()
    model = HALO.pretrained()
    rule = extract._enclosed_points

    def none_found(inside: np.ndarray, count: np.ndarray, specks: bool = False) -> np.ndarray:
        return np.zeros(0, dtype=np.int64)

    arms = {"on": rule, "off": none_found}
    hands = _hands(args.hands, 0)
    for kp, side in hands[:2]:  # warm-up
        model.reconstruct(kp, side=side)
    times: dict[str, list[float]] = {"on": [], "off": []}
    ratios, changed = [], 0
    try:
        for rnd in range(args.rounds):
            for kp, side in hands:
                took, faces = {}, {}
                for arm in ("on", "off") if rnd % 2 == 0 else ("off", "on"):
                    extract._enclosed_points = arms[arm]
                    t = time.perf_counter()
                    mesh = model.reconstruct(kp, side=side)
                    took[arm] = time.perf_counter() - t
                    faces[arm] = len(mesh.faces)
                for arm in took:
                    times[arm].append(took[arm])
                ratios.append(took["on"] / took["off"])
                changed += rnd == 0 and faces["on"] != faces["off"]
    finally:
        extract._enclosed_points = rule
    report = {
        "benchmark": "bench_bubble_rule",
        "hands": args.hands,
        "rounds": args.rounds,
        "threads": args.threads,
        "resolution": 256,
        "s_per_hand_median": {arm: statistics.median(v) for arm, v in times.items()},
        "on_over_off_per_hand_median": statistics.median(ratios),
        "meshes_changed_by_the_rule": int(changed),
    }
    emit(report, args.json)
    return report


if __name__ == "__main__":
    main()
