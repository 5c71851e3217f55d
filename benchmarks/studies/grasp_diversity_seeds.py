"""How much HALO's diversity entropy of a set of grasps depends on the k-means start, and
which objects fill its largest clusters.

Reads the ``.npz`` that ``grasp_stability.py --keypoints`` writes (each method's generated
keypoints and object ids) and reports per method: the entropy and cluster size of the
harness (``grasp.metrics.diversity``, k = 20, seed 0 of its k-means: the reference
protocol's 20 runs, lowest distortion kept), the same over ``--seeds`` seeds (median,
minimum, maximum), and for seed 0 the cluster sizes with the objects in the three largest
clusters. Results written before stop 39 used one k-means++ run per seed instead.

    .venv/bin/python benchmarks/studies/grasp_diversity_seeds.py \\
        benchmarks/results/studies/grasp_pose_refine4_test.keypoints.npz \\
        --json benchmarks/results/studies/grasp_pose_refine4_test_diversity.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit, repo_path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("keypoints", help="An .npz of grasp_stability.py --keypoints.")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from halohand.grasp.metrics import diversity_features, kmeans_clusters, kmeans_diversity

    data = np.load(args.keypoints)
    methods = sorted({k.rsplit("/", 1)[0] for k in data.files})
    out = {}
    for m in methods:
        kp = data[f"{m}/keypoints"].astype(np.float64)
        objects = data[f"{m}/object"].astype(str)
        x = diversity_features(kp)  # what grasp.metrics.diversity clusters
        runs = [kmeans_diversity(x, k=20, seed=s) for s in range(args.seeds)]
        entropies = [e for e, _ in runs]
        # The harness's clustering (seed 0), to see what fills the largest clusters.
        labels, _ = kmeans_clusters(x, 20, seed=0)
        counts = np.bincount(labels, minlength=20)
        largest = []
        for c in np.argsort(-counts, kind="stable")[:3]:
            ids, n = np.unique(objects[labels == c], return_counts=True)
            mix = {str(i): int(k) for i, k in zip(ids, n, strict=True)}
            largest.append({"size": int(counts[c]), "objects": mix})
        out[m] = {
            "grasps": len(kp),
            "entropy_seed0": runs[0][0],
            "cluster_size_cm_seed0": runs[0][1],
            "entropy_seeds_median": statistics.median(entropies),
            "entropy_seeds_min": min(entropies),
            "entropy_seeds_max": max(entropies),
            "cluster_counts_seed0": sorted(counts.tolist(), reverse=True),
            "largest_clusters_seed0": largest,
        }
        print(f"{m}: entropy {runs[0][0]:.3f} (seed 0), over {args.seeds} seeds median "
              f"{statistics.median(entropies):.3f} [{min(entropies):.3f}, {max(entropies):.3f}]; "
              f"clusters {out[m]['cluster_counts_seed0']}", flush=True)  # fmt: skip
    emit({"benchmark": "grasp_diversity_seeds", "keypoints": repo_path(args.keypoints),
          "k": 20, "seeds": args.seeds, "methods": out}, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
