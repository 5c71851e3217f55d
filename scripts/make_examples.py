"""Write the example inputs the README's commands use (``examples/``), reproducibly.

    .venv/bin/python scripts/make_examples.py

* ``hand_right.npy``: one right hand, ``[21, 3]`` metres, OpenPose order (a demo key pose);
* ``hand_left_mm.json``: one left hand in millimetres with its side and units recorded;
* ``sequence.json``: eight frames of the demo's key-pose animation (``{"keypoints": ...}``);
* ``points.npy``: 2,000 query points around the right hand (metres, seed 0);
* ``box_mm.stl``: a 50 x 30 x 20 mm box, in millimetres, as a CAD tool would save it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import trimesh

from halohand.core.atomic import write_bytes_atomic, write_text_atomic
from halohand.handmodel.keyposes import interpolate_sequence, load_key_poses
from halohand.handmodel.pose import HandPose
from halohand.handmodel.webxr import default_model
from halohand.skeleton import mirror

OUT = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    poses = load_key_poses()
    right = np.round(poses[0].keypoints, 6)
    with open(OUT / "hand_right.npy", "wb") as fh:
        np.save(fh, right)
    left_mm = np.round(mirror(poses[3].keypoints) * 1000.0, 3)
    doc = {"side": "left", "units": "mm", "keypoints": left_mm.tolist()}
    write_text_atomic(OUT / "hand_left_mm.json", json.dumps(doc) + "\n")
    model = default_model()
    frames = interpolate_sequence(poses, 8)
    seq = np.stack([model.pose(HandPose.from_array(f.angles)).keypoints for f in frames])
    write_text_atomic(
        OUT / "sequence.json", json.dumps({"keypoints": np.round(seq, 6).tolist()}) + "\n"
    )
    rng = np.random.default_rng(0)
    lo, hi = right.min(0) - 0.02, right.max(0) + 0.02
    with open(OUT / "points.npy", "wb") as fh:
        np.save(fh, np.round(rng.uniform(lo, hi, size=(2000, 3)), 6))
    box = trimesh.creation.box((50.0, 30.0, 20.0))
    write_bytes_atomic(OUT / "box_mm.stl", box.export(file_type="stl_ascii").encode())
    print(f"wrote the examples to {OUT}")


if __name__ == "__main__":
    main()
