"""Cost of the filled signed-distance grid (``GraspObject.sdf_grid(..., fill_enclosed=True)``,
``objects/enclosed.py``) against the plain grid of the same object, built alternately.

Objects: five hollow cups of the ``wide`` split, a solid mug (nothing enclosed), the six
real household meshes and a 20 cm open bowl built here (4 mm wall, 8 cm deep), each at 64^3
(the pose-space refinement's grid) and the bowl also at 128^3. Per object: the median build
time of each grid over ``--repeats`` fresh copies (the grids are cached per object), and the
enclosed cells.

    PYTHONPATH=src .venv/bin/python benchmarks/speed/bench_enclosed_fill.py \\
        --json benchmarks/results/speed/bench_enclosed_fill.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit  # noqa: E402


def _bowl():  # noqa: ANN202
    import numpy as np

    from halohand.objects import registry as reg

    r, h, wall, bottom = 0.10, 0.08, 0.004, 0.005

    def sdf(q: np.ndarray) -> np.ndarray:
        outer = reg._capped_cylinder_sdf(q, r, 0.0, h)
        cavity = reg._capped_cylinder_sdf(q, r - wall, bottom, h + 1.0)
        return np.maximum(outer, -cavity)

    lo, hi = np.array([-0.11, -0.11, -0.01]), np.array([0.11, 0.11, 0.09])
    return reg.GraspObject("bowl_20cm", "mesh", {}, reg._sdf_solid(sdf, lo, hi, 0.002))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    from halohand.grasp.synthesis import SDF_MARGIN_M
    from halohand.objects.registry import GraspObject, load_object, object_ids

    torch.set_num_threads(1)
    begin()
    objects = [load_object(o) for o in ("cup_0", "cup_1", "cup_2", "cup_3", "cup_4", "mug_0")]
    objects += [load_object(o) for o in object_ids("real")]
    cases = [(o, 64) for o in objects] + [(_bowl(), 64)]
    cases.append((cases[-1][0], 128))
    rows = []
    for obj, res in cases:
        times: dict[str, list[float]] = {"plain": [], "filled": []}
        for _ in range(args.repeats):
            for fill in (False, True):  # alternating, each on a fresh copy (no cache)
                fresh = GraspObject(obj.object_id, obj.kind, obj.params, obj.mesh)
                t0 = time.perf_counter()
                grid = fresh.sdf_grid(res, SDF_MARGIN_M, fill_enclosed=fill)
                times["filled" if fill else "plain"].append(time.perf_counter() - t0)
                if fill:
                    plain = fresh.sdf_grid(res, SDF_MARGIN_M)
                    filled_cells = int(((grid.values < 0) & (plain.values >= 0)).sum())
        row = {
            "object": obj.object_id,
            "resolution": res,
            "plain_s": statistics.median(times["plain"]),
            "filled_s": statistics.median(times["filled"]),
            "enclosed_cells": filled_cells,
        }
        print(f"{row['object']:12s} {res:4d}^3 plain {row['plain_s']:.2f} s, filled "
              f"{row['filled_s']:.2f} s, {filled_cells} cells filled", flush=True)  # fmt: skip
        rows.append(row)
    emit({"repeats": args.repeats, "rows": rows}, args.json, indent=1)


if __name__ == "__main__":
    main()
