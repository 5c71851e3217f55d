"""``halohand demo``: the main job on the embedded default hand model.

Poses the shipped WebXR hand in every gesture of the pose prior plus a few random hands
from the priors (identity and pose), and writes, atomically, into ``--out-dir``:

* ``hands/<name>.ply``: watertight posed meshes in metres with part colours;
* ``hands/<name>_keypoints.json``: the 21 keypoints (project order, metres);
* ``gestures.png`` and ``samples.png``: shaded, part-coloured renderings in a grid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from halohand.atomic import atomic_path, write_bytes_atomic


def _export_hand(hand, out: Path, name: str) -> np.ndarray:
    """Write one posed hand (PLY + keypoints JSON); return its per-vertex colours."""
    import trimesh

    from halohand.render import PART_COLORS

    colors = PART_COLORS[hand.part_labels]
    mesh = trimesh.Trimesh(
        hand.vertices,
        hand.faces,
        vertex_colors=(np.c_[colors, np.ones(len(colors))] * 255).astype(np.uint8),
        process=False,
    )
    write_bytes_atomic(out / f"{name}.ply", mesh.export(file_type="ply"))
    doc = {
        "order": "openpose",
        "units": "m",
        "side": hand.side,
        "keypoints": np.round(hand.keypoints, 6).tolist(),
    }
    write_bytes_atomic(out / f"{name}_keypoints.json", json.dumps(doc, indent=1).encode())
    return colors


def demo(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for the outputs.")] = Path(
        "output"
    ),
    samples: Annotated[
        int, typer.Option("--samples", min=0, max=64, help="Random hands from the priors.")
    ] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random hands.")] = 0,
) -> None:
    """Pose the embedded hand in every gesture and a few random hands; export and render."""
    from tqdm import tqdm

    from halohand.handmodel.prior import GESTURES, PosePrior
    from halohand.handmodel.webxr import WebXRHandSource, default_model
    from halohand.render import image_grid, render_mesh, save_png

    model = default_model()
    prior = PosePrior()
    source = WebXRHandSource(model=model)
    rng = np.random.default_rng(seed)
    jobs = [(f"gesture_{name}", lambda n=name: model.pose(prior.gesture(n))) for name in GESTURES]
    jobs += [
        (f"sample_{i:02d}", lambda s=side: source.sample(rng, side=s))
        for i, side in enumerate(["right", "left"] * (samples // 2) + ["right"] * (samples % 2))
    ]
    hands_dir = out_dir / "hands"
    images: dict[str, list[np.ndarray]] = {"gestures": [], "samples": []}
    for name, make in tqdm(jobs, desc="demo", unit="hand"):
        hand = make()
        colors = _export_hand(hand, hands_dir, name)
        img = render_mesh(hand.vertices, hand.faces, colors, size=(240, 240), extent=0.24)
        images["gestures" if name.startswith("gesture") else "samples"].append(img)
    for key, imgs in images.items():
        if imgs:
            with atomic_path(out_dir / f"{key}.png") as tmp:
                save_png(str(tmp), image_grid(imgs, columns=min(6, len(imgs))))
    typer.echo(f"wrote {len(jobs)} hands to {hands_dir} and renderings to {out_dir}")
