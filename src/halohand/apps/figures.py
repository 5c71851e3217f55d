"""Figures of grasps: contact sheets of hand + object renders (numpy renderer)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import trimesh

from halohand.apps.render import draw_text, gradient_background, image_grid, render_mesh, save_png
from halohand.core.atomic import atomic_path
from halohand.grasp.generate import grasp_scene
from halohand.objects.registry import GraspObject

__all__ = ["render_grasps"]


def render_grasps(
    scenes: list[tuple[trimesh.Trimesh, GraspObject]],
    path: str,
    columns: int = 5,
    tile: int = 256,
    labels: list[str] | None = None,
    workers: int | None = None,
) -> None:
    """Contact sheet of hand + object renders (PNG, written atomically).

    The tiles are rendered by ``workers`` threads (default: one per CPU core, at most 4):
    the rasterizer's array operations release the GIL.
    """
    # The objects stand along +z; the renderer's camera takes +y as up.
    z_up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    background = gradient_background((tile, tile))

    def one(i: int) -> np.ndarray:
        hand, obj = scenes[i]
        scene = grasp_scene(hand, obj)
        colors = np.asarray(scene.visual.vertex_colors)[:, :3] / 255.0
        v = np.asarray(scene.vertices) @ z_up.T
        img = render_mesh(
            v, scene.faces, colors, size=(tile, tile), view=(30.0, 20.0),
            center=0.5 * (v.min(0) + v.max(0)), background=background,
        )  # fmt: skip
        return draw_text(img, labels[i], (6, 4), size=12) if labels else img

    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        images = list(pool.map(one, range(len(scenes))))
    with atomic_path(path) as tmp:
        save_png(str(tmp), image_grid(images, columns=min(columns, len(images))))
