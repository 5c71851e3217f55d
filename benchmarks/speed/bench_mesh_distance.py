"""Signed distance to a mesh queried repeatedly: ``igl.signed_distance`` (baseline, builds
its AABB tree on every call) against ``interaction.MeshDistance`` (tree built once, the
pseudonormal sign in numpy), as an optimisation loop queries it.

Meshes: a box (12 faces), a registry mug (15k faces), a HALO hand (the shipped model,
``spread`` gesture, resolution 256) and an 82k-face icosphere; per mesh the one-off build
time of ``MeshDistance`` and the min over repeats of one query of 10 and of 6000 points.

    PYTHONPATH=src .venv/bin/python benchmarks/speed/bench_mesh_distance.py \
        --json benchmarks/results/speed/bench_mesh_distance.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit  # noqa: E402


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def igl_distance(p, v, f):
    import igl

    return igl.signed_distance(p, v, f, sign_type=igl.SIGNED_DISTANCE_TYPE_PSEUDONORMAL)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import numpy as np
    import trimesh

    from halohand.handmodel.prior import PosePrior
    from halohand.handmodel.webxr import default_model
    from halohand.inference.halo import HALO
    from halohand.interaction import MeshDistance
    from halohand.objects.registry import load_object

    kp = np.asarray(default_model().pose(PosePrior().gesture("spread")).keypoints, np.float64)
    meshes = {
        "box": trimesh.creation.box(extents=(0.04, 0.06, 0.08)),
        "mug_0": load_object("mug_0").mesh,
        "halo_hand_256": HALO.pretrained().reconstruct(kp, units="m", colors=False),
        "icosphere_6": trimesh.creation.icosphere(subdivisions=6, radius=0.05),
    }
    begin()
    rows = []
    for name, mesh in meshes.items():
        v = np.ascontiguousarray(mesh.vertices, dtype=np.float64)
        f = np.ascontiguousarray(mesh.faces, dtype=np.int64)
        centre, size = mesh.bounds.mean(0), float(np.ptp(mesh.bounds, axis=0).max())
        t0 = time.perf_counter()
        cached = MeshDistance(v, f)
        row = {"mesh": name, "faces": len(f), "build_s": round(time.perf_counter() - t0, 4)}
        for n in (10, 6000):
            p = centre + np.random.default_rng(0).normal(size=(n, 3)) * size / 2
            base = best(lambda p=p, v=v, f=f: igl_distance(p, v, f), args.repeats)
            cand = best(lambda p=p, c=cached: c.query(p), args.repeats)
            want = igl_distance(p, v, f)
            row[f"query{n}"] = {
                "igl_ms": round(base * 1e3, 3),
                "cached_ms": round(cand * 1e3, 3),
                "speedup": round(base / cand, 1),
                "max_abs_diff_m": float(np.abs(cached.query(p)[0] - want).max()),
            }
        rows.append(row)
        print(row, flush=True)
    emit({"repeats": args.repeats, "meshes": rows}, args.json, indent=1)


if __name__ == "__main__":
    main()
