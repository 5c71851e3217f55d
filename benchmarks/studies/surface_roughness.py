"""How rough reconstructed surfaces are: bends between neighbouring faces, model by model.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/studies/surface_roughness.py
        [--checkpoint NAME=FILE ...] [--hands 20] [--frames 0:85:4] [--resolution 256]
        [--sheet OUT.png] [--json OUT]

Every model (the shipped one as ``shipped``, then each ``--checkpoint``) reconstructs the
same hands at the same resolution:

* ``real``: frames of the 85 real HO3D-derived keypoint sets of ``../shared/reference``
  (reference data, never shipped; ``--frames`` start:stop:step), read with
  ``convention="auto"``;
* ``test``: the first ``--hands`` test hands of ``data/webxr_s0`` (skipped without it).

Per mesh: the mean and the 90th percentile of the angle between the normals of
neighbouring faces (degrees, weighted by the shared edge's length so that marching cubes'
small slivers do not dominate). A smooth surface meshed at one lattice step bends by a few
degrees between faces; ripples of a few millimetres add to it. Reported per model and set:
the medians over meshes, and against the first model the share of meshes that are
rougher (paired by hand). ``--sheet`` renders the first five real frames, one row per
model, for a person to look at.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report

from _reference import REAL_FRAMES  # noqa: E402
from _report import emit, repo_path  # noqa: E402


def bend_angles(mesh) -> tuple[float, float]:  # noqa: ANN001
    """Edge-length-weighted mean and 90th percentile of the angles (degrees) between the
    normals of faces sharing an edge."""
    angles = np.degrees(mesh.face_adjacency_angles)
    edges = mesh.vertices[mesh.face_adjacency_edges]
    weights = np.linalg.norm(edges[:, 0] - edges[:, 1], axis=1)
    order = np.argsort(angles)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    p90 = float(angles[order][np.searchsorted(cumulative, 0.9)])
    return float(np.average(angles, weights=weights)), p90


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", default=[], help="NAME=FILE")
    parser.add_argument("--hands", type=int, default=20)
    parser.add_argument("--frames", default="0:85:4")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--data", default="data/webxr_s0")
    parser.add_argument("--sheet", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    from halohand.inference.halo import HALO

    models = {"shipped": (HALO.pretrained(), "src/halohand/weights/halo_default.safetensors")}
    for item in args.checkpoint:
        name, _, path = item.partition("=")
        models[name] = (HALO.from_checkpoint(path), repo_path(path))
    sets: dict[str, list[tuple[np.ndarray, str, str]]] = {}
    if REAL_FRAMES.exists():
        frames = np.load(REAL_FRAMES).astype(np.float64)
        start, stop, step = (int(x) for x in args.frames.split(":"))
        sets["real"] = [(frames[i], "right", "auto") for i in range(start, stop, step)]
    if Path(args.data).exists() and args.hands > 0:
        from halohand.data.dataset import OccupancyDataset

        ds = OccupancyDataset(args.data, "test", n_points=None, n_surface=None)
        sets["test"] = [
            (np.asarray(ds.hand(i)["keypoints"]), str(ds.hand(i)["side"]), "rig")
            for i in range(min(args.hands, len(ds)))
        ]
    report: dict = {
        "study": "surface_roughness",
        "resolution": args.resolution,
        "models": {name: path for name, (_, path) in models.items()},
    }
    renders: dict[str, list] = {name: [] for name in models}
    for set_name, hands in sets.items():
        per_model: dict[str, list[tuple[float, float]]] = {}
        for name, (halo, _) in models.items():
            rows = []
            for i, (kp, side, convention) in enumerate(hands):
                mesh = halo.reconstruct(
                    kp, side=side, units="m", resolution=args.resolution, convention=convention
                )
                rows.append(bend_angles(mesh))
                if args.sheet and set_name == "real" and i < 5:
                    from halohand.apps.render import render_mesh

                    renders[name].append(
                        render_mesh(
                            mesh.vertices,
                            mesh.faces,
                            size=(300, 300),
                            center=kp.mean(0),
                            extent=0.2,
                        )  # fmt: skip
                    )
            per_model[name] = rows
        first = next(iter(per_model))
        report[set_name] = {
            name: {
                "meshes": len(rows),
                "bend_mean_deg_median": float(np.median([r[0] for r in rows])),
                "bend_p90_deg_median": float(np.median([r[1] for r in rows])),
                "rougher_than_first_share": float(
                    np.mean([r[0] > f[0] for r, f in zip(rows, per_model[first], strict=True)])
                ),
            }
            for name, rows in per_model.items()
        }
        print(set_name, report[set_name])
    if args.sheet:
        from halohand.apps.render import image_grid, save_png
        from halohand.core.atomic import atomic_path

        with atomic_path(args.sheet) as tmp:
            tiles = [tile for name in models for tile in renders[name]]
            save_png(str(tmp), image_grid(tiles, columns=len(renders["shipped"])))
        report["sheet"] = repo_path(args.sheet)
    emit(report, args.json)
    return report


if __name__ == "__main__":
    main()
