"""Pin the outputs of the product's main paths, for tests/test_regression.py.

Writes ``tests/regression/pinned.npz`` (meshes of ``HALO.reconstruct`` on fixed hands,
occupancy values and keypoint gradients at fixed points, refined grasp keypoints of a
fixed seed) and ``tests/regression/pinned_evaluate.json`` (``halohand evaluate`` on a
two-hand toy split). Run once before a refactor; the test then checks that the code
still reproduces these files::

    .venv/bin/python scripts/pin_regression.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from regression_cases import (  # noqa: E402
    evaluate_case,
    grasp_case,
    occupancy_case,
    reconstruct_case,
)

OUT = Path(__file__).resolve().parents[1] / "tests" / "regression"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    arrays.update(reconstruct_case())
    arrays.update(occupancy_case())
    arrays.update(grasp_case())
    np.savez_compressed(OUT / "pinned.npz", **arrays)
    doc = evaluate_case(OUT / "_eval_data")
    (OUT / "pinned_evaluate.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(arrays)} arrays and the evaluate JSON to {OUT}")


if __name__ == "__main__":
    main()
