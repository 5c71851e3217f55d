"""Each part's box in its canonical frame, from training data: the ``grid_bounds`` of a
network with feature grids (``[model] grid_resolution``, ``docs/model.md``).

Usage::

    .venv/bin/python benchmarks/studies/part_grid_bounds.py --data data/webxr_s0
        --config configs/experiments/fourier/control.toml [--hands 120] [--percentile 0.5]
        [--margin-mm 3] [--frame palm|bone] [--json OUT]

Every ``--hands``-th training hand's near-surface query points (the data's own, within
millimetres of the skin, where a grid's detail matters) are mapped into each part's
canonical frame by the keypoint pipeline the network uses (``network_inputs``) and then
into the coordinates the grids read (``halohand.fields.grids.grid_maps`` of ``--frame``:
palm lengths, each finger bone's frame with the along-bone axis in the bone's length, or
each finger's frame with its joints at 0, 1, 2, 3 along it);
the pairs inside the part supports of ``--config``'s ``[model] part_radii_m`` count. Per
part and axis the box runs from the ``--percentile`` to the ``100 - percentile``
percentile, widened by ``--margin-mm`` (at the mean palm or bone length of the axis);
points outside read the nearest face's features. Prints the ``grid_bounds`` list (part by
part: lower x, y, z then upper x, y, z) for a TOML ``[model]`` table, and the boxes' sizes
in millimetres at the mean lengths.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402


def main() -> None:
    from halohand.core.units import HALO_UNIT_M
    from halohand.data.dataset import OccupancyDataset
    from halohand.fields.grids import GRID_FRAMES, grid_maps
    from halohand.fields.inputs import network_inputs
    from halohand.fields.occupancy import OccupancyConfig, part_inputs
    from halohand.fields.skipping import skip_mask

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--config", required=True, help="a training TOML with part_radii_m")
    ap.add_argument("--hands", type=int, default=120)
    ap.add_argument("--percentile", type=float, default=0.5)
    ap.add_argument("--margin-mm", type=float, default=3.0)
    ap.add_argument("--frame", choices=GRID_FRAMES, default="palm")
    ap.add_argument("--json")
    args = ap.parse_args()

    with open(args.config, "rb") as f:
        radii = tuple(tomllib.load(f)["model"]["part_radii_m"])
    config = OccupancyConfig(part_radii_m=radii)
    data = OccupancyDataset(args.data, "train", n_points=None, n_surface=1, seed=0)
    step = max(1, len(data) // args.hands)
    per_part: list[list[np.ndarray]] = [[] for _ in radii]
    units: list[np.ndarray] = []  # [K, 3] metres per grid unit, per hand
    for index in range(0, step * args.hands, step):
        item = data[index]
        near = ~item["point_is_uniform"]
        points_m = item["points"][near][None]
        keypoints = item["keypoints"][None]
        inputs = network_inputs(
            config, keypoints, item["side"][None], item["part_transforms"][None],
            item["bone_lengths"][None],
        )  # fmt: skip
        canon, _ = part_inputs(inputs.points(points_m), inputs.part_matrices)
        # the grids' coordinates
        lengths = inputs.bone_lengths.double()
        maps = grid_maps(lengths, args.frame, inputs.canonical_keypoints.double())
        canon = maps.apply(canon.double())[0].float()
        # metres per grid unit of each axis (along a bent finger: its first bone's length)
        units.append((HALO_UNIT_M / maps.linear[0].norm(dim=-1)).numpy())
        mask = skip_mask(points_m.float(), keypoints.float(), radii)[0]
        for k in range(len(radii)):
            per_part[k].append(canon[mask[:, k], k].numpy())
    # margins and sizes in mm at the mean length of each part's axes
    unit_mm = np.mean(units, axis=0) * 1000.0  # [K, 3]
    bounds, sizes, counts = [], [], []
    for k, pairs in enumerate(per_part):
        x = np.concatenate(pairs)
        margin = args.margin_mm / unit_mm[k]
        lower = np.percentile(x, args.percentile, axis=0) - margin
        upper = np.percentile(x, 100.0 - args.percentile, axis=0) + margin
        bounds += [*lower.tolist(), *upper.tolist()]
        sizes.append(((upper - lower) * unit_mm[k]).round(1).tolist())
        counts.append(len(x))
    report = {
        "study": "part_grid_bounds",
        "data": args.data,
        "hands": args.hands,
        "percentile": args.percentile,
        "margin_mm": args.margin_mm,
        "frame": args.frame,
        "grid_unit_mean_mm": unit_mm.round(2).tolist(),
        "pairs_per_part": counts,
        "box_size_mm": sizes,
        "grid_bounds": [round(v, 5) for v in bounds],
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()
