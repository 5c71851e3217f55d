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

__all__ = ["grasp_verdict", "render_grasps"]

#: Label colours of :func:`grasp_verdict`: passes all checks / fails one.
PASS_COLOR = (20, 130, 40)
FAIL_COLOR = (190, 30, 30)


def grasp_verdict(record: dict, prefix: str = "") -> tuple[str, tuple[int, int, int]]:
    """Tile label and colour of one grasp record of :func:`~halohand.grasp.evaluate.
    evaluate_grasps`: ``PASS`` (human-plausible), or the failed checks: ``S`` unstable in
    the simulator, ``P`` penetration > 5 mm, ``O`` no thumb opposition. Without a
    stability result (no ``physics``) a grasp passing the other two reads ``ok``."""
    from halohand.grasp.metrics import MAX_PENETRATION_MM

    failed = [("S", not record["stable"])] if "stable" in record else []
    failed += [("P", record["max_penetration_mm"] > MAX_PENETRATION_MM),
               ("O", not record["opposition"])]  # fmt: skip
    bad = "".join(c for c, f in failed if f)
    name = f"{prefix}{record['index']:02d}"
    if bad:
        return f"{name} {bad}", FAIL_COLOR
    return f"{name} {'PASS' if 'stable' in record else 'ok'}", PASS_COLOR


def render_grasps(
    scenes: list[tuple[trimesh.Trimesh, GraspObject]],
    path: str,
    columns: int = 5,
    tile: int = 256,
    labels: list[str] | None = None,
    workers: int | None = None,
    label_colors: list[tuple[int, int, int]] | None = None,
) -> None:
    """Contact sheet of hand + object renders (PNG, written atomically).

    The tiles are rendered by ``workers`` threads (default: one per CPU core, at most 4):
    the rasterizer's array operations release the GIL. ``label_colors``: RGB per label
    (e.g. green for a grasp that passes a check, red for one that fails).
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
        if not labels:
            return img
        color = label_colors[i] if label_colors else (40, 40, 45)
        return draw_text(img, labels[i], (6, 4), size=12, color=color)

    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        images = list(pool.map(one, range(len(scenes))))
    with atomic_path(path) as tmp:
        save_png(str(tmp), image_grid(images, columns=min(columns, len(images))))
