"""How far the engine's accepted grasps keep their nearest finger keypoint from the surface.

For every accepted right-hand grasp of a grasp folder (``halohand grasp synthesize``), the
distance (mm) from the object surface to the nearest of the contact keypoints that
refinement pulls (``generate.CONTACT_KEYPOINTS``: distal joints and tips); percentiles as
JSON. The refinement's contact distance (``generate.DEFAULT_CONTACT_MM``) sits in this range.

    .venv/bin/python benchmarks/studies/grasp_contact_distance.py data/grasps_r48 \
        --json benchmarks/results/studies/grasp_contact_distance.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("grasps")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import numpy as np

    from halohand.grasp.generate import CONTACT_KEYPOINTS
    from halohand.grasp.synthesis import load_grasps
    from halohand.objects.registry import load_object

    g = load_grasps(args.grasps)
    right = np.asarray(g["side"]).astype(str) == "right"
    ids = np.asarray(g["object_id"]).astype(str)[right]
    kp = np.asarray(g["keypoints"], dtype=np.float64)[right][:, list(CONTACT_KEYPOINTS)]
    dist = []
    for oid in sorted(set(ids)):
        pts = kp[ids == oid]
        d = np.abs(load_object(oid).signed_distance(pts.reshape(-1, 3))).reshape(len(pts), -1)
        dist.append(d.min(1))
    mm = np.concatenate(dist) * 1000.0
    levels = (10, 25, 50, 75, 90)
    doc = {"grasps": args.grasps, "n": int(len(mm))}
    doc.update({f"p{q}": round(float(np.percentile(mm, q)), 2) for q in levels})
    emit(doc, args.json, indent=2)


if __name__ == "__main__":
    main()
