"""Do sampled grasps keep a human hand's size? Hand length of HALO-VAE samples per decoder.

Hand length = wrist -> middle MCP -> PIP -> DIP -> tip along the keypoints (the identity
prior draws 15-22 cm for the training grasps). For each model: percentiles over ``--n``
prior samples on each test object (the seeds of ``halohand grasp evaluate``), and the
length decoded from ``z = 0`` (the prior's mode) on each object.

    .venv/bin/python benchmarks/studies/grasp_hand_length.py \
        --json benchmarks/results/studies/grasp_hand_length.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402


def hand_length(kp):  # [N, 21, 3] -> [N]
    import numpy as np

    chain = kp[:, [0, 9, 10, 11, 12]]
    return np.linalg.norm(np.diff(chain, axis=1), axis=-1).sum(-1)


def percentiles(values, pct: list[int]) -> dict[str, float]:
    import numpy as np

    return {f"p{p}": round(float(np.percentile(values, p)), 2) for p in pct}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="vae=runs/grasp_vae_hf/model.safetensors,"
                    "plain=runs/grasp_vae/model.safetensors,"
                    "pose=runs/grasp_vae_pose/model.safetensors")  # fmt: skip
    ap.add_argument("--engine", default="data/grasps_r48")
    ap.add_argument("--objects", default="test")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import numpy as np
    import torch

    from halohand.grasp.generate import generate_grasps
    from halohand.grasp.synthesis import load_grasps
    from halohand.grasp.vae import load_vae
    from halohand.objects.registry import load_objects

    torch.set_num_threads(1)
    objs = load_objects(args.objects)
    doc: dict = {"n": args.n, "objects": [o.object_id for o in objs], "models": {}}
    pct = [5, 50, 95]
    if Path(args.engine).exists():
        lengths = hand_length(load_grasps(args.engine)["keypoints"].astype(np.float64))
        doc["engine_training_grasps_cm"] = percentiles(lengths * 100, pct)
    for spec in args.models.split(","):
        name, path = spec.split("=")
        if not Path(path).exists():
            print(f"skip {name}: {path} missing")
            continue
        vae, _ = load_vae(path)
        samples, modes = [], []
        for i, obj in enumerate(objs):
            samples.append(generate_grasps(vae, obj, args.n, i).keypoints)
            cloud = torch.as_tensor(obj.surface_points(600, i)[0] * 100.0, dtype=torch.float32)
            with torch.no_grad():
                code = vae.encode_object(cloud[None])
                kp0 = vae.decode(torch.zeros(1, vae.config.latent), code).double().numpy() / 100
            modes.append(float(hand_length(kp0)[0]))
        lengths = hand_length(np.concatenate(samples)) * 100
        doc["models"][name] = {
            "path": path,
            "samples_cm": percentiles(lengths, pct),
            "z0_cm": [round(m * 100, 2) for m in modes],
        }
        print(name, doc["models"][name])
    emit(doc, args.json, indent=2)


if __name__ == "__main__":
    main()
