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

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from halohand.apps.scene_render import check_manifest, random_camera, render_meshes
from halohand.core.atomic import atomic_path
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
    """``(image [S, S, 3] uint8, mask [S, S] uint8)`` of a hand (mask 1) in a skin tone and
    an object (mask 2) in a random colour, camera frame
    (:func:`~halohand.apps.scene_render.render_meshes`)."""
    from halohand.apps.synthetic import SKIN_TONES

    skin = np.clip(SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.94, 1.06, 3), 0, 1)
    colour = rng.uniform(0.05, 0.95, 3)
    return render_meshes(renderer, [(hand_v, hand_f, skin), (obj_v, obj_f, colour)], k, size, rng)


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
    check_manifest(out / MANIFEST, settings)
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
            rot, trans, k = random_camera(rng, surf, config.size)
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
