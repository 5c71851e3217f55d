"""Test hands meshed by two models, each surface coloured by its signed distance to the truth.

Usage::

    .venv/bin/python benchmarks/figures/girth_sheet.py --a CKPT --b CKPT --data DIR
        --hands 17,0,36,6 [--label-a A] [--label-b B] --out OUT.png

One row per test hand (``--hands``: indices into the data's test split): the ground-truth
mesh (skin colour), then model A's and model B's meshes (``HALO.reconstruct`` at 256^3,
the keypoints of the data) seen from the palm side, each vertex coloured by its signed
distance to the true surface: blue inside it, grey on it, red outside it, full colour at
1 mm. A hand too thin all over is blue everywhere, one too thick red.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from halohand import HALO
from halohand.apps.render import image_grid, render_mesh, save_png
from halohand.core.atomic import atomic_path
from halohand.data.dataset import OccupancyDataset
from halohand.interaction.object_field import MeshDistance, mesh_signed_distance

_BLUE = np.array([0.15, 0.35, 0.9])
_GREY = np.array([0.82, 0.82, 0.82])
_RED = np.array([0.9, 0.2, 0.15])


def distance_colours(signed_mm: np.ndarray, full_mm: float = 1.0) -> np.ndarray:
    """``[V]`` signed distances (mm, + outside) -> ``[V, 3]`` sRGB: grey at 0, blue inside
    and red outside, saturated at ``full_mm``."""
    t = np.clip(np.asarray(signed_mm) / full_mm, -1.0, 1.0)[:, None]
    return np.where(t < 0, _GREY + (-t) * (_BLUE - _GREY), _GREY + t * (_RED - _GREY))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True)
    parser.add_argument("--b", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--hands", required=True, help="test-split indices, comma-separated")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    models = [HALO.from_checkpoint(args.a), HALO.from_checkpoint(args.b)]
    ds = OccupancyDataset(args.data, "test", n_points=None, n_surface=None)
    tiles = []
    for i in (int(s) for s in args.hands.split(",")):
        hand = ds.hand(i)
        truth = MeshDistance(hand["mesh_vertices"], hand["mesh_faces"])
        view = {"size": (260, 260), "center": hand["keypoints"].mean(0), "extent": 0.22}
        tiles.append(render_mesh(hand["mesh_vertices"], hand["mesh_faces"], **view))
        for model in models:
            mesh = model.reconstruct(hand["keypoints"], side=str(hand["side"]), units="m")
            verts = np.asarray(mesh.vertices)
            sd = mesh_signed_distance(torch.as_tensor(verts), truth).numpy() * 1000.0
            print(f"hand {i}: median signed distance {np.median(sd):+.2f} mm", flush=True)
            tiles.append(render_mesh(verts, mesh.faces, distance_colours(sd), **view))
    with atomic_path(args.out) as tmp:
        save_png(str(tmp), image_grid(tiles, columns=3))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
