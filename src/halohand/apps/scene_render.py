"""Photo-like renders of a few meshes seen by a random camera, with a mask per mesh.

The training scenes of the image-based models (hands holding objects,
:mod:`halohand.apps.handobject_data`; two interacting hands,
:mod:`halohand.apps.pair_images`) are drawn the same way: the whole scene turned by a
uniformly random rotation in front of a pinhole camera of random field of view
(:func:`random_camera`), lit by a random key and ambient light, over a background of
:func:`halohand.apps.synthetic.background` with a little defocus and sensor noise
(:func:`render_meshes`). The EGL renderer of :mod:`halohand.apps.synthetic` draws them; the
project's numpy rasteriser stands in where EGL does not start (its own studio lighting).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from halohand.core.atomic import write_text_atomic
from halohand.core.errors import HalohandInputError

#: Most meshes one render can tell apart in its mask on the numpy fallback (one colour
#: channel each).
MAX_MESHES = 3


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation ``[3, 3]`` (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@dataclass(frozen=True)
class SceneLight:
    """What :meth:`halohand.apps.synthetic.EGLRenderer.render` reads of a scene."""

    light_dir: np.ndarray
    light_rgb: np.ndarray
    ambient: float


def random_camera(
    rng: np.random.Generator, points: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A camera that sees ``points`` from a uniformly random direction.

    Args:
        rng: the scene's generator.
        points: ``[N, 3]`` metres, the scene's frame (e.g. every vertex of its meshes).
        size: image side in pixels.

    Returns:
        ``rotation [3, 3]`` and ``translation [3]`` (scene -> camera frame: ``x`` right,
        ``y`` down, ``z`` ahead) and intrinsics ``K [3, 3]`` (pixels): the points span 70-90 %
        of the image, their box centre within 6 % of the image centre, field of view 40-60
        degrees.
    """
    rot = random_rotation(rng)
    fov = np.radians(rng.uniform(40.0, 60.0))
    focal = 0.5 * size / np.tan(0.5 * fov)
    k = np.array([[focal, 0.0, size / 2.0], [0.0, focal, size / 2.0], [0.0, 0.0, 1.0]])
    p = points @ rot.T
    mid = 0.5 * (p.min(0) + p.max(0))
    extent = np.ptp(p[:, :2], axis=0).max()
    span = rng.uniform(0.7, 0.9)
    # depth of the nearest face of the box so that its extent spans `span` of the image
    depth = focal * extent / (span * size) + 0.5 * np.ptp(p[:, 2])
    centre_px = size / 2.0 + rng.uniform(-0.06, 0.06, 2) * size
    ray = np.array([(centre_px[0] - k[0, 2]) / focal, (centre_px[1] - k[1, 2]) / focal, 1.0])
    return rot, depth * ray - mid, k


def render_meshes(
    renderer: Any,
    meshes: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    k: np.ndarray,
    size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Render meshes in the camera frame over a random background.

    Args:
        renderer: from :func:`halohand.apps.synthetic.make_renderer` (``None``: the numpy
            rasteriser).
        meshes: one to :data:`MAX_MESHES` ``(vertices [V, 3] metres in the camera frame,
            faces [F, 3], sRGB colour [3] in 0..1)``.
        k: ``[3, 3]`` intrinsics (pixels).
        size: image side in pixels.
        rng: draws the light, the background, its defocus and the sensor noise (in that
            order).

    Returns:
        ``image [S, S, 3]`` uint8 sRGB and ``mask [S, S]`` uint8: 0 background, ``i + 1``
        where mesh ``i`` is the front-most surface.
    """
    from halohand.apps.render import (
        linear_to_srgb,
        render_camera_layer,
        srgb_to_linear,
        to_uint8,
        vertex_normals,
    )
    from halohand.apps.synthetic import background

    if not 1 <= len(meshes) <= MAX_MESHES:
        raise ValueError(f"render_meshes takes 1 to {MAX_MESHES} meshes, got {len(meshes)}")
    light = rng.normal(size=3)
    light[2] = -abs(light[2]) - 0.3  # from the camera's side
    lights = SceneLight(
        light_dir=light / np.linalg.norm(light),
        light_rgb=np.array([1.0, 0.97, 0.92]) * rng.uniform(0.7, 1.2) * rng.uniform(0.9, 1.1, 3),
        ambient=float(rng.uniform(0.15, 0.45)),
    )
    bg_kind, bg_seed = int(rng.integers(4)), int(rng.integers(2**31))
    defocus = float(rng.uniform(0.0, 4.0) * size / 512)
    noise = float(rng.uniform(0.0, 0.02))
    starts = np.cumsum([0] + [len(v) for v, _, _ in meshes])
    verts = np.concatenate([v for v, _, _ in meshes])
    faces = np.concatenate([f + s for (_, f, _), s in zip(meshes, starts, strict=False)])
    normals = np.concatenate([vertex_normals(v, f) for v, f, _ in meshes])
    colors = np.concatenate(
        [np.broadcast_to(srgb_to_linear(np.asarray(c)), v.shape) for v, _, c in meshes]
    )
    ids = np.concatenate([np.full(len(v), i + 1.0) for i, (v, _, _) in enumerate(meshes)])
    if renderer is not None:
        rgb, alpha, mask = renderer.render(verts, normals, colors, ids, faces, k, lights)
    else:
        # numpy fallback: its own studio lighting; the mask from a render in one colour
        # channel per mesh (where channels tie, the later mesh: the order of earlier releases)
        rgb, alpha = render_camera_layer(verts, faces, k, (size, size), linear_to_srgb(colors), 2)
        id_rgb = np.zeros_like(colors)
        for i in range(len(meshes)):
            id_rgb[starts[i] : starts[i + 1], i] = 1.0
        idc, ida = render_camera_layer(verts, faces, k, (size, size), id_rgb, 1)
        n = len(meshes)
        last_max = n - np.argmax(idc[..., n - 1 :: -1], axis=-1)
        mask = np.where(ida > 0.5, last_max, 0).astype(np.uint8)
    bg = background(bg_kind, size, bg_seed, defocus)
    lin = bg * (1.0 - alpha[..., None]) + rgb
    srgb = linear_to_srgb(np.clip(lin, 0.0, 1.0)) + noise * rng.standard_normal(lin.shape)
    return to_uint8(srgb), mask.astype(np.uint8)


def check_manifest(path: Path, settings: dict[str, Any]) -> None:
    """Write a rendered split's settings to ``path`` once; a later run (resuming into the same
    folder) must bring the same settings, else a one-line error: its shards would mix."""
    if path.exists():
        if json.loads(path.read_text()) != json.loads(json.dumps(settings)):
            raise HalohandInputError(
                f"{path.parent} holds a split made with other settings; use a new --out"
            )
    else:
        write_text_atomic(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")
