"""Refinement step size and contact distance, chosen on TRAINING objects (never the test set).

For a grasp-VAE model file, 8 grasps on each of six training objects are refined with each
``STEP_MM:CONTACT_MM`` setting (10 steps, 256 uniform interior probes as in the first
refinement) and scored at 96^3 (candidate selection and the shell probes:
``grasp_selection_tuning.py``). One line per setting on stderr, one JSON document on stdout
(and in ``--json``):

    .venv/bin/python benchmarks/studies/grasp_refine_tuning.py runs/grasp_vae/model.safetensors \
        0:7,4:7,8:7,12:7 [--json OUT]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("settings", help="STEP_MM:CONTACT_MM,...")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    from halohand.grasp.evaluate import evaluate_grasps
    from halohand.grasp.generate import generate_grasps, grasp_halo, refine_translation
    from halohand.grasp.vae import load_vae
    from halohand.objects.registry import load_object

    torch.set_num_threads(1)
    halo = grasp_halo()
    model = load_vae(args.model)[0].eval()
    ids = ["box_1", "mug_1", "torus_1", "cylinder_1", "bottle_1", "capsule_1"]
    objs = [load_object(o) for o in ids]
    raw = {o.object_id: generate_grasps(model, o, 8, i).keypoints for i, o in enumerate(objs)}
    keys = ("intersection_cm3", "contact_ratio", "penetration_mm", "gap_mm")
    doc: dict = {"model": args.model, "objects": ids, "n": 8, "settings": {}}
    for spec in args.settings.split(","):
        step_mm, contact_mm = map(float, spec.split(":"))

        def source(obj, n, seed, s=step_mm, c=contact_mm):
            # The probes of the first refinement: 256 uniform interior points.
            kp = refine_translation(halo, raw[obj.object_id], obj, steps=10, lr_m=s * 1e-3,
                                    contact_mm=c, probes=256, shell_fraction=0.0)  # fmt: skip
            return kp, 0.0

        r = evaluate_grasps(source, objs, halo, n=8, resolution=96, progress=False)
        doc["settings"][spec] = {k: round(r["mean"][k], 3) for k in keys}
        print(step_mm, contact_mm, doc["settings"][spec], file=sys.stderr)
    emit(doc, args.json, indent=2)


if __name__ == "__main__":
    main()
