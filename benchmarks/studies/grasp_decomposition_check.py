"""Do the simulator's convex parts of concave objects stay out of their empty space?

For the hollow and handled objects of ``grasp_stability.py`` (built at run time), and any
registry ids given, :func:`halohand.grasp.stability.convex_parts` is timed, and 20,000
uniform points in the object's bounding box are kept where they are outside the object,
inside its convex hull and more than 3 mm from its surface: the cup's cavity, the hole of a
handle, the bowl of a glass. Reported: how many of those fall inside some convex part (a
part that bridges a concavity would hold the object where it has no material).

    .venv/bin/python benchmarks/studies/grasp_decomposition_check.py \
        --json benchmarks/results/studies/grasp_decomposition_check.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
sys.path.insert(0, str(Path(__file__).resolve().parent))  # grasp_stability's objects
from _report import RESULTS, emit  # noqa: E402


def _inside_hull(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    from scipy.spatial import ConvexHull

    eq = ConvexHull(vertices).equations
    return (points @ eq[:, :3].T + eq[:, 3] <= 1e-12).all(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(RESULTS / "studies" / "grasp_decomposition_check.json"))
    ap.add_argument("--new", default="new_mug,new_glass,new_banana")
    ap.add_argument("--objects", default="mug_4,torus_4,bottle_4")
    args = ap.parse_args()

    from grasp_stability import new_objects

    from halohand.grasp.stability import convex_parts
    from halohand.objects.registry import load_objects, object_from_mesh

    built = new_objects()
    objs = [object_from_mesh(built[k], units="m", object_id=k) for k in args.new.split(",") if k]
    objs += load_objects(args.objects) if args.objects else []
    rows = {}
    for obj in objs:
        t = time.perf_counter()
        parts = convex_parts(obj)
        seconds = time.perf_counter() - t
        lo, hi = obj.mesh.bounds
        q = np.random.default_rng(0).uniform(lo, hi, (20000, 3))
        empty = (
            ~obj.contains(q)
            & (np.abs(obj.signed_distance(q)) > 0.003)
            & _inside_hull(q, obj.vertices)
        )
        q = q[empty]
        filled = np.zeros(len(q), dtype=bool)
        for p in parts:
            filled |= _inside_hull(q, p)
        ratio = obj.mesh.volume / obj.mesh.convex_hull.volume  # >= 0.97: simulated as its hull
        rows[obj.object_id] = {"volume_over_hull": round(float(ratio), 3),
                               "parts": len(parts), "seconds": round(seconds, 1),
                               "empty_points": int(len(q)),
                               "inside_a_part": int(filled.sum())}  # fmt: skip
        print(obj.object_id, rows[obj.object_id], flush=True)
    emit({"objects": rows}, args.json, indent=1)


if __name__ == "__main__":
    main()
