"""Candidate selection and penetration probes, chosen on TRAINING objects (never the test set).

For a grasp-VAE model file, ``--n`` grasps on each of six training objects are generated
per setting ``K:PROBES:SHELL[:MODE[:CONTACT_MM]]`` and scored at 96^3 (intersection volume,
contact ratio, diversity):

- ``K`` samples per grasp, the lowest collision-and-contact energy kept
  (:func:`halohand.grasp.generate.select_grasps`); MODE ``pre`` (default) selects, then
  refines; ``post`` refines all candidates, then selects;
- ``PROBES`` penetration probes, a ``SHELL`` fraction of them under the surface
  (``1:256:0`` is the refinement as first shipped);
- ``CONTACT_MM``: the contact term's distance (default 7);
- then 10 refinement steps on the translation.

    .venv/bin/python benchmarks/studies/grasp_selection_tuning.py \
        runs/grasp_vae_hf/model.safetensors 1:256:0,1:512:0.5,4:512:0.5,8:512:0.5 \
        --json benchmarks/results/studies/grasp_selection_tuning_hf.json

The JSON is rewritten after every setting (an interrupted run keeps the finished ones).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import finish, write  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("settings")
    ap.add_argument("--json", default=None)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--objects", default="box_1,mug_1,torus_1,cylinder_1,bottle_1,capsule_1")
    args = ap.parse_args()

    import torch

    from halohand.grasp.evaluate import evaluate_grasps
    from halohand.grasp.generate import grasp_halo, refine_translation, select_grasps
    from halohand.grasp.vae import load_vae
    from halohand.objects.registry import load_object

    torch.set_num_threads(args.threads)
    halo = grasp_halo()
    vae, _ = load_vae(args.model)
    objs = [load_object(o) for o in args.objects.split(",")]
    keys = ("intersection_cm3", "contact_ratio", "penetration_mm", "gap_mm",
            "diversity_entropy", "cluster_size_cm", "generate_s_per_grasp")  # fmt: skip
    doc: dict = {"model": args.model, "objects": args.objects, "n": args.n, "settings": {}}
    for spec in args.settings.split(","):
        parts = spec.split(":")
        k, probes, shell = int(parts[0]), int(parts[1]), float(parts[2])
        post = len(parts) > 3 and parts[3] == "post"
        contact = float(parts[4]) if len(parts) > 4 else 7.0

        def source(obj, n, seed, k=k, probes=probes, shell=shell, post=post, contact=contact):
            t = time.perf_counter()
            cloud = torch.as_tensor(obj.surface_points(600, seed)[0] * 100.0,
                                    dtype=torch.float32)  # fmt: skip
            gen = torch.Generator().manual_seed(int(seed))
            with torch.no_grad():
                kp = vae.sample(cloud, n * k, generator=gen).double().numpy() / 100.0
            common = dict(probes=probes, seed=seed, shell_fraction=shell, contact_mm=contact)
            if post:
                kp = refine_translation(halo, kp, obj, **common)
            if k > 1:
                kp = select_grasps(halo, kp, obj, n, **common)
            if not post:
                kp = refine_translation(halo, kp, obj, **common)
            return kp, time.perf_counter() - t

        r = evaluate_grasps(source, objs, halo, n=args.n, resolution=96, progress=False)
        row = {key: round(r["mean"][key], 3) for key in keys}
        doc["settings"][spec] = row
        print(spec, row, flush=True)
        if args.json:
            write(doc, args.json, indent=2)
    print(finish(doc, indent=2, machine=False))


if __name__ == "__main__":
    main()
