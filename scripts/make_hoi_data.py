"""Render the hand-object splits of the HOISDF study (:mod:`halohand.apps.handobject_data`).

Splits, from two grasp-engine outputs (``halohand grasp synthesize``):

* ``train``: the accepted grasps on the train objects except the last ``--heldout-per-object``
  of each object, ``--views`` cameras each;
* ``heldout_scenes``: those last grasps of each train object (grasps never trained on, the
  objects seen), ``--heldout-views`` new cameras each;
* ``heldout_objects``: the grasps on the test objects (never trained on), at most
  ``--test-per-object`` per object, ``--heldout-views`` cameras each.

    halohand grasp synthesize --objects train --n-per-object 4 --seed 2100 --side right \\
        --batch-size 16 --workers 1 --out /tmp/hoi/grasps_train
    halohand grasp synthesize --objects test --n-per-object 4 --seed 2101 --side right \\
        --batch-size 16 --workers 1 --out /tmp/hoi/grasps_test
    python scripts/make_hoi_data.py --train-grasps /tmp/hoi/grasps_train \\
        --test-grasps /tmp/hoi/grasps_test --out /tmp/hoi/data

Resumable: a rerun skips finished shards.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from halohand.apps.handobject_data import HOIDataConfig, generate_split  # noqa: E402
from halohand.grasp.synthesis import load_grasps  # noqa: E402


def split_indices(object_ids: np.ndarray, last: int) -> tuple[list[int], list[int]]:
    """Indices of all but the last ``last`` grasps of each object, and of those last ones."""
    keep: list[int] = []
    held: list[int] = []
    for oid in dict.fromkeys(object_ids.tolist()):
        idx = np.flatnonzero(object_ids == oid).tolist()
        cut = max(len(idx) - last, 0)
        keep += idx[:cut]
        held += idx[cut:]
    return keep, held


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-grasps", type=Path, required=True)
    parser.add_argument("--test-grasps", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--heldout-views", type=int, default=4)
    parser.add_argument("--heldout-per-object", type=int, default=2)
    parser.add_argument("--test-per-object", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--renderer", default="auto")
    parser.add_argument("--splits", default="train,heldout_scenes,heldout_objects")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    wanted = args.splits.split(",")
    jobs = []
    if "train" in wanted or "heldout_scenes" in wanted:
        train, held = split_indices(
            load_grasps(args.train_grasps)["object_id"], args.heldout_per_object
        )
        jobs += [
            ("train", args.train_grasps, train, args.views),
            ("heldout_scenes", args.train_grasps, held, args.heldout_views),
        ]
    if "heldout_objects" in wanted:
        test_ids = load_grasps(args.test_grasps)["object_id"]
        test = [
            i
            for oid in dict.fromkeys(test_ids.tolist())
            for i in np.flatnonzero(test_ids == oid)[: args.test_per_object].tolist()
        ]
        jobs.append(("heldout_objects", args.test_grasps, test, args.heldout_views))
    jobs = [j for j in jobs if j[0] in wanted]
    base = dict(size=args.size, samples=args.samples, seed=args.seed, renderer=args.renderer)
    t0 = time.perf_counter()
    summary = []
    for split, grasp_dir, idx, views in jobs:
        cfg = HOIDataConfig(views=views, **base)
        res = generate_split(
            grasp_dir, args.out / split, split, idx, cfg, log=lambda m: print(m, flush=True)
        )
        summary.append({**res, "views": views, "images": len(idx) * views})
        print(json.dumps(summary[-1]), flush=True)
    print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
