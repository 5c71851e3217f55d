"""Rendered hand-object scenes with ground truth for image-based hand-object pose models
(HOISDF, :mod:`halohand.handobject`): ``halohand data hoi`` (:func:`render_study`).

A scene is one accepted grasp of the grasp engine (``halohand grasp synthesize``: a right
hand's pose parameters in the frame of a centred registry object) seen from one random
camera. Per grasp, ``--views`` cameras: the whole grasp (hand and object together) turned by
a uniformly random rotation, placed in front of a pinhole camera of random field of view so
that hand and object span 70-90 % of the image, its centre within 6 % of the image centre;
lit by a random key light and ambient light, the hand in a skin tone of
:data:`halohand.apps.synthetic.SKIN_TONES`, the object in a random colour, over a
background of :func:`halohand.apps.synthetic.background`, and a little sensor noise.
Rendered by the EGL renderer of :mod:`halohand.apps.synthetic` (numpy rasteriser where EGL
does not start; the manifest says which ran).

Signed-distance samples are drawn once per grasp in its own frame (distances do not change
under the rigid camera transform): ``--samples`` points, a quarter each near the hand
surface (surface points + Gaussian noise of 5 mm and 20 mm), near the object surface
(likewise), a quarter uniform in a cube of half-side :data:`VOLUME_HALF_M` about the wrist,
each with its exact signed distance (metres, positive outside) to the hand mesh (distance
from libigl's tree, sign from the winding number: the skinned hand mesh need not be
watertight) and to the object mesh (libigl's pseudonormal sign; registry meshes are
watertight).

Written per grasp ``g`` into ``OUT/shards/g_00042.npz`` (atomically; a rerun with the same
settings skips finished shards and the manifest refuses other settings), with ``V`` views:

* ``images [V, S, S, 3]`` uint8 sRGB; ``masks [V, S, S]`` uint8 (0 background, 1 hand,
  2 object; the front-most surface);
* ``intrinsics [V, 3, 3]`` (pixels); ``rotation [V, 3, 3]``, ``translation [V, 3]`` (metres):
  grasp frame -> camera frame (``x`` right, ``y`` down, ``z`` ahead), which is also the
  object's pose in the camera (registry objects are centred in the grasp frame);
* ``keypoints [21, 3]`` (metres, grasp frame, the project's order, wrist first),
  ``hand_vertices [1159, 3]`` and ``hand_faces``;
* ``sdf_points [N, 3]``, ``sdf_hand [N]``, ``sdf_object [N]`` (metres, grasp frame);
* ``object_points [P, 3]`` (surface samples, object frame) and ``object_corners [8, 3]``
  (its axis-aligned box), for the object metrics;
* ``object_id``, ``grasp_index`` (into the grasp engine's accepted grasps), ``split``.

Determinism: grasp ``g`` of a split draws from ``SeedSequence(seed, spawn_key=(HOI_KEY,
split_key, g))``, independent of the order of work and of the other grasps.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from halohand.core.atomic import atomic_path, write_text_atomic
from halohand.core.errors import HalohandInputError

__all__ = [
    "HOI_VERSION",
    "VOLUME_HALF_M",
    "HOIDataConfig",
    "generate_split",
    "grasp_geometry",
    "load_split",
    "render_study",
    "sdf_samples",
    "split_indices",
    "study_jobs",
]

#: Format version of the rendered hand-object sets.
HOI_VERSION = 1
#: Spawn key that separates these seeds from other generators'.
HOI_KEY = 21
#: Half side (metres) of the cube about the wrist that the models work in: hand and grasped
#: object lie within ~0.25 m of the wrist, mostly within 0.2 m.
VOLUME_HALF_M = 0.2
MANIFEST = "manifest.json"
SPLIT_KEYS = {"train": 0, "heldout_scenes": 1, "heldout_objects": 2, "test": 3}
#: The HOISDF study's splits (:func:`study_jobs`).
SPLITS = ("train", "heldout_scenes", "heldout_objects")


@dataclass(frozen=True)
class HOIDataConfig:
    """Settings of one rendered split (all recorded in its manifest)."""

    size: int = 128  #: image side, pixels
    views: int = 8  #: cameras per grasp
    samples: int = 4096  #: signed-distance samples per grasp
    object_points: int = 1000  #: object surface samples for ADD-S
    seed: int = 0
    renderer: str = "auto"


def grasp_geometry(grasps: dict[str, np.ndarray], i: int, model: Any) -> dict[str, np.ndarray]:
    """Hand keypoints ``[21, 3]``, mesh ``vertices [V, 3]`` / ``faces [F, 3]`` (metres, the
    grasp's object frame) of accepted grasp ``i`` of :func:`halohand.grasp.synthesis.load_grasps`,
    posed by ``model`` (a :class:`~halohand.handmodel.torch_model.TorchHandModel`)."""
    import torch

    names = ("angles", "length_factors", "palm_width", "hand_length", "global_rot", "translation")
    g = {k: torch.as_tensor(np.asarray(grasps[k][i : i + 1])) for k in names}
    side = str(grasps["side"][i])
    scale = model.scale_for_hand_length(g["hand_length"], g["length_factors"], g["palm_width"])
    out = model(
        g["angles"],
        g["length_factors"],
        g["palm_width"],
        scale,
        side=side,
        global_rot=g["global_rot"],
        translation=g["translation"],
        with_vertices=True,
    )
    return {
        "keypoints": out.keypoints[0].numpy(),
        "vertices": out.vertices[0].numpy(),
        "faces": model.mesh_faces(side),
    }


def _near_surface(
    vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``[n, 3]`` area-uniform surface points, half moved by N(0, 5 mm), half by N(0, 20 mm)."""
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    face = rng.choice(len(faces), size=n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    t = tri[face]
    pts = t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])
    sigma = np.where(np.arange(n) < n // 2, 0.005, 0.02)[:, None]
    return pts + sigma * rng.standard_normal((n, 3))


def hand_signed_distance(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``[N]`` signed distance (metres, positive outside) of ``[N, 3]`` points to a hand mesh:
    the exact distance to its triangles, negative where the winding number is >= 0.5."""
    from halohand.interaction.object_field import MeshDistance
    from halohand.objects.inside import contains

    d = np.abs(MeshDistance(vertices, faces).query(points)[0])
    return np.where(contains(vertices, faces, points), -d, d)


def sdf_samples(
    hand: dict[str, np.ndarray], obj: Any, n: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """``n`` signed-distance samples of one grasp (see the module docstring): ``points
    [n, 3]``, ``hand [n]``, ``object [n]`` (metres, positive outside)."""
    q = n // 4
    wrist = hand["keypoints"][0]
    pts = np.concatenate(
        [
            _near_surface(hand["vertices"], hand["faces"], q, rng),
            _near_surface(obj.vertices, obj.faces, q, rng),
            wrist + rng.uniform(-VOLUME_HALF_M, VOLUME_HALF_M, (n - 2 * q, 3)),
        ]
    )
    return {
        "points": pts,
        "hand": hand_signed_distance(hand["vertices"], hand["faces"], pts),
        "object": obj.signed_distance(pts),
    }


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rotation (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@dataclass(frozen=True)
class _Light:
    """What :meth:`halohand.apps.synthetic.EGLRenderer.render` reads of a scene."""

    light_dir: np.ndarray
    light_rgb: np.ndarray
    ambient: float


def _camera(
    rng: np.random.Generator, points: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotation, translation and ``K`` that show ``points`` (grasp frame) spanning 70-90 %
    of a ``size`` image from a uniformly random direction."""
    rot = _random_rotation(rng)
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


def _render(
    renderer: Any,
    hand_v: np.ndarray,
    hand_f: np.ndarray,
    obj_v: np.ndarray,
    obj_f: np.ndarray,
    k: np.ndarray,
    size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """``(image [S, S, 3] uint8, mask [S, S] uint8)`` of a hand and an object (camera frame)."""
    from halohand.apps.render import (
        linear_to_srgb,
        render_camera_layer,
        srgb_to_linear,
        to_uint8,
        vertex_normals,
    )
    from halohand.apps.synthetic import SKIN_TONES, background

    skin = np.clip(SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.94, 1.06, 3), 0, 1)
    colour = rng.uniform(0.05, 0.95, 3)
    light = rng.normal(size=3)
    light[2] = -abs(light[2]) - 0.3  # from the camera's side
    lights = _Light(
        light_dir=light / np.linalg.norm(light),
        light_rgb=np.array([1.0, 0.97, 0.92]) * rng.uniform(0.7, 1.2) * rng.uniform(0.9, 1.1, 3),
        ambient=float(rng.uniform(0.15, 0.45)),
    )
    bg_kind, bg_seed = int(rng.integers(4)), int(rng.integers(2**31))
    defocus = float(rng.uniform(0.0, 4.0) * size / 512)
    noise = float(rng.uniform(0.0, 0.02))
    verts = np.concatenate([hand_v, obj_v])
    faces = np.concatenate([hand_f, obj_f + len(hand_v)])
    normals = np.concatenate([vertex_normals(hand_v, hand_f), vertex_normals(obj_v, obj_f)])
    colors = np.concatenate(
        [
            np.broadcast_to(srgb_to_linear(skin), hand_v.shape),
            np.broadcast_to(srgb_to_linear(colour), obj_v.shape),
        ]
    )
    ids = np.r_[np.ones(len(hand_v)), 2 * np.ones(len(obj_v))]
    if renderer is not None:
        rgb, alpha, mask = renderer.render(verts, normals, colors, ids, faces, k, lights)
    else:
        # numpy fallback: its own studio lighting; the mask from a render in id colours
        rgb, alpha = render_camera_layer(verts, faces, k, (size, size), linear_to_srgb(colors), 2)
        id_rgb = np.zeros_like(colors)
        id_rgb[: len(hand_v), 0] = 1.0
        id_rgb[len(hand_v) :, 1] = 1.0
        idc, ida = render_camera_layer(verts, faces, k, (size, size), id_rgb, 1)
        mask = np.where(ida > 0.5, np.where(idc[..., 0] > idc[..., 1], 1, 2), 0).astype(np.uint8)
    bg = background(bg_kind, size, bg_seed, defocus)
    lin = bg * (1.0 - alpha[..., None]) + rgb
    srgb = linear_to_srgb(np.clip(lin, 0.0, 1.0)) + noise * rng.standard_normal(lin.shape)
    return to_uint8(srgb), mask.astype(np.uint8)


def _check_manifest(out: Path, settings: dict[str, Any]) -> None:
    path = out / MANIFEST
    if path.exists():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(settings)):
            raise HalohandInputError(
                f"{out} holds a split made with other settings; use a new --out"
            )
    else:
        write_text_atomic(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")


def generate_split(
    grasp_dir: str | Path,
    out: str | Path,
    split: str,
    indices: list[int],
    config: HOIDataConfig,
    log: Any = None,
) -> dict[str, Any]:
    """Render grasps ``indices`` (into :func:`~halohand.grasp.synthesis.load_grasps` of
    ``grasp_dir``) into ``out`` (see the module docstring); resumable. Returns a summary."""
    import time

    from halohand.apps.synthetic import make_renderer
    from halohand.grasp.synthesis import load_grasps
    from halohand.handmodel.torch_model import TorchHandModel
    from halohand.objects.registry import load_object

    if split not in SPLIT_KEYS:
        raise HalohandInputError(f"split must be one of {', '.join(SPLIT_KEYS)}, got {split!r}")
    if config.views < 1 or config.size < 16 or config.samples < 8:
        raise HalohandInputError("views >= 1, size >= 16 and samples >= 8 are needed")
    grasps = load_grasps(grasp_dir)
    if indices and (min(indices) < 0 or max(indices) >= len(grasps["accepted"])):
        raise HalohandInputError(f"grasp indices out of range 0..{len(grasps['accepted']) - 1}")
    out = Path(out)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    renderer, name = make_renderer(config.renderer, config.size)
    settings = {
        **asdict(config),
        "renderer_used": name,
        "split": split,
        "version": HOI_VERSION,
        "grasp_dir": str(Path(grasp_dir).resolve()),
        "indices": list(map(int, indices)),
    }
    _check_manifest(out, settings)
    model = TorchHandModel()
    t0, made = time.perf_counter(), 0
    for g in indices:
        path = out / "shards" / f"g_{g:05d}.npz"
        if path.exists():
            continue
        rng = np.random.default_rng(
            np.random.SeedSequence(config.seed, spawn_key=(HOI_KEY, SPLIT_KEYS[split], g))
        )
        obj = load_object(str(grasps["object_id"][g]))
        hand = grasp_geometry(grasps, g, model)
        sdf = sdf_samples(hand, obj, config.samples, rng)
        surf = np.concatenate([hand["vertices"], obj.vertices])
        views: dict[str, list[np.ndarray]] = {
            k: [] for k in ("images", "masks", "intrinsics", "rotation", "translation")
        }
        for _ in range(config.views):
            rot, trans, k = _camera(rng, surf, config.size)
            image, mask = _render(
                renderer,
                hand["vertices"] @ rot.T + trans,
                hand["faces"],
                obj.vertices @ rot.T + trans,
                obj.faces,
                k,
                config.size,
                rng,
            )
            for key, val in zip(views, (image, mask, k, rot, trans), strict=True):
                views[key].append(val)
        lo, hi = obj.mesh.bounds
        corners = np.array(
            [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )
        doc = {
            **{k: np.stack(v) for k, v in views.items()},
            "keypoints": hand["keypoints"],
            "hand_vertices": hand["vertices"],
            "hand_faces": hand["faces"],
            "sdf_points": sdf["points"],
            "sdf_hand": sdf["hand"],
            "sdf_object": sdf["object"],
            "object_points": obj.surface_points(config.object_points, seed=0)[0],
            "object_corners": corners,
            "object_id": np.array(str(grasps["object_id"][g])),
            "grasp_index": np.int64(g),
            "split": np.array(split),
        }
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **doc)
        made += 1
        if log is not None:
            log(f"{split} grasp {g} ({doc['object_id']}) {time.perf_counter() - t0:.0f} s")
    return {
        "split": split,
        "grasps": len(indices),
        "made": made,
        "renderer": name,
        "seconds": time.perf_counter() - t0,
    }


def load_split(out: str | Path) -> list[dict[str, np.ndarray]]:
    """The shards of a rendered split, in grasp order (one dict per grasp)."""
    paths = sorted((Path(out) / "shards").glob("g_*.npz"))
    if not paths:
        raise HalohandInputError(f"no hand-object shards under {out}")
    return [dict(np.load(p)) for p in paths]


def split_indices(object_ids: np.ndarray, last: int) -> tuple[list[int], list[int]]:
    """Indices of all but the last ``last`` grasps of each object, and of those last ones
    (objects in order of first appearance)."""
    keep: list[int] = []
    held: list[int] = []
    for oid in dict.fromkeys(object_ids.tolist()):
        idx = np.flatnonzero(object_ids == oid).tolist()
        cut = max(len(idx) - last, 0)
        keep += idx[:cut]
        held += idx[cut:]
    return keep, held


def study_jobs(
    train_grasps: str | Path | None,
    test_grasps: str | Path | None,
    splits: tuple[str, ...] = SPLITS,
    views: int = 8,
    heldout_views: int = 4,
    heldout_per_object: int = 2,
    test_per_object: int = 8,
) -> list[tuple[str, Path, list[int], int]]:
    """The HOISDF study's splits as ``(split, grasp folder, grasp indices, views)``:

    * ``train``: the accepted grasps of ``train_grasps`` except the last
      ``heldout_per_object`` of each object, ``views`` cameras each;
    * ``heldout_scenes``: those last grasps of each train object (grasps never trained on,
      objects seen), ``heldout_views`` new cameras each;
    * ``heldout_objects``: the grasps of ``test_grasps`` (objects never trained on), at most
      ``test_per_object`` per object, ``heldout_views`` cameras each.
    """
    from halohand.grasp.synthesis import load_grasps

    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits:
        raise HalohandInputError(f"splits must be among {', '.join(SPLITS)}, got {splits}")
    jobs = []
    if {"train", "heldout_scenes"} & set(splits):
        if train_grasps is None:
            raise HalohandInputError("the train and held-out scene splits need --train-grasps")
        train, held = split_indices(load_grasps(train_grasps)["object_id"], heldout_per_object)
        jobs += [
            ("train", Path(train_grasps), train, views),
            ("heldout_scenes", Path(train_grasps), held, heldout_views),
        ]
    if "heldout_objects" in splits:
        if test_grasps is None:
            raise HalohandInputError("the held-out object split needs --test-grasps")
        ids = load_grasps(test_grasps)["object_id"]
        test = [
            i
            for oid in dict.fromkeys(ids.tolist())
            for i in np.flatnonzero(ids == oid)[:test_per_object].tolist()
        ]
        jobs.append(("heldout_objects", Path(test_grasps), test, heldout_views))
    return [j for j in jobs if j[0] in splits]


def render_study(
    out: str | Path,
    jobs: list[tuple[str, Path, list[int], int]],
    config: HOIDataConfig,
    log: Any = None,
) -> list[dict[str, Any]]:
    """Render each job of :func:`study_jobs` into ``out/<split>`` (``config.views`` is each
    job's own); resumable. Returns one summary per split."""
    from dataclasses import replace

    summary = []
    for split, grasp_dir, idx, views in jobs:
        res = generate_split(
            grasp_dir, Path(out) / split, split, idx, replace(config, views=views), log=log
        )
        summary.append({**res, "views": views, "images": len(idx) * views})
    return summary
