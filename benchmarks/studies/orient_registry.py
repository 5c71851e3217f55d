"""Does the principal-frame rule (``objects.orient``) fit the frame the grasp model was
trained in? Every registry shape (procedural and real) is read as a user mesh
(``object_from_mesh(..., orient="principal")``) and compared with the registry object: the
largest distance (mm) between the two surfaces, both ways. Near 0 means the rule leaves the
object in its registry frame (up to its symmetries); the six new objects of
``grasp_stability.py`` are listed with their extents before and after.

    .venv/bin/python benchmarks/studies/orient_registry.py \
        --json benchmarks/results/studies/orient_registry.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
sys.path.insert(0, str(Path(__file__).resolve().parent))  # grasp_stability
from _report import RESULTS, write  # noqa: E402


def _gap_mm(a, b) -> float:  # noqa: ANN001 - trimeshes
    import igl

    def one(p, q) -> float:  # noqa: ANN001
        d = igl.signed_distance(np.asarray(p.vertices), np.asarray(q.vertices),
                                np.asarray(q.faces))[0]  # fmt: skip
        return float(np.abs(d).max())

    return 1000.0 * max(one(a, b), one(b, a))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=str(RESULTS / "studies" / "orient_registry.json"))
    args = ap.parse_args()

    from grasp_stability import new_objects

    from halohand.objects.registry import load_object, object_from_mesh, object_ids

    rows = []
    for oid in object_ids("all") + object_ids("real"):
        reg = load_object(oid)
        obj = object_from_mesh(reg.mesh, units="m", object_id=oid)
        gap = _gap_mm(obj.mesh, reg.mesh)
        rows.append({"object": oid, "gap_mm": round(gap, 3),
                     "extents_cm": [round(float(e) * 100, 2) for e in reg.mesh.extents],
                     "principal_extents_cm": [round(float(e) * 100, 2) for e in obj.mesh.extents],
                     "rotation": np.asarray(obj.rotation).round(4).tolist()})  # fmt: skip
        print(f"{oid:12s} {gap:7.2f} mm", flush=True)
    new = []
    for name, mesh in new_objects().items():
        obj = object_from_mesh(mesh, units="m", object_id=name)
        new.append({"object": name,
                    "extents_cm": [round(float(e) * 100, 2) for e in mesh.extents],
                    "principal_extents_cm": [round(float(e) * 100, 2) for e in obj.mesh.extents],
                    "rotation": np.asarray(obj.rotation).round(4).tolist()})  # fmt: skip
        print(f"{name:12s} {new[-1]['extents_cm']} -> {new[-1]['principal_extents_cm']}")
    procedural = [r for r in rows if not r["object"].startswith("real_")]
    summary = {
        "procedural_in_frame": sum(r["gap_mm"] < 1.5 for r in procedural),
        "procedural": len(procedural),
        "real_in_frame": sum(r["gap_mm"] < 1.5 for r in rows if r["object"].startswith("real_")),
        "threshold_mm": 1.5,
    }
    print(summary)
    write({"summary": summary, "registry": rows, "new_objects": new}, args.json, indent=1)


if __name__ == "__main__":
    main()
