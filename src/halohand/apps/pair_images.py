"""Rendered images of two interacting hands with their ground truth: ``halohand data
pair-images`` (:func:`render_pair_split`), the images of the image-conditioned two-hand
model.

A scene is one pair of a ``halohand data pairs`` split (:mod:`halohand.data.pairs`: a right
and a left hand of independent identities, placed to touch without penetrating) seen from
``views`` random cameras (:func:`~halohand.apps.scene_render.random_camera`: the pair turned
by a uniformly random rotation, spanning 70-90 % of the image), drawn by
:func:`~halohand.apps.scene_render.render_meshes` (random light, everyday background,
defocus, sensor noise). Both hands are one person's: one skin tone of
:data:`halohand.apps.synthetic.SKIN_TONES` per pair, each hand varied by +-6 % per channel.

Written per pair ``i`` into ``OUT/<split>/p_00042.npz`` (atomically; a rerun with the same
settings skips finished pairs, the split's ``manifest.json`` refuses other settings), with
``V`` views:

* ``images [V, S, S, 3]`` uint8 sRGB; ``masks [V, S, S]`` uint8 (0 background, 1 right
  hand, 2 left hand; the front-most surface);
* ``intrinsics [V, 3, 3]`` (pixels); ``rotation [V, 3, 3]``, ``translation [V, 3]``
  (metres): pair frame -> camera frame (``x`` right, ``y`` down, ``z`` ahead);
* ``keypoints [2, 21, 3]`` (metres, the pair's frame, right then left, the project's
  order), ``interaction`` (its name), ``pair_index`` (into the split).

The pair's occupancy labels stay in its ``pairs`` shards: a pair's frame is the same in
both, so a model reads its points and labels there and its image here.

Determinism: pair ``i`` of a split draws from ``SeedSequence(seed, spawn_key=(PAIR_IMAGES_KEY,
split index, i))``, independent of the order of work and of the other pairs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from halohand.apps.scene_render import check_manifest, random_camera, render_meshes
from halohand.core.atomic import atomic_path
from halohand.core.errors import HalohandInputError

#: Format version of the written pairs (in the manifest).
PAIR_IMAGES_VERSION = 1
#: First element of every pair's seed spawn key (the renders' own stream).
PAIR_IMAGES_KEY = 42
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PairImagesConfig:
    """Settings of :func:`render_pair_split`."""

    views: int = 4
    size: int = 128
    seed: int = 0
    renderer: str = "auto"

    def __post_init__(self) -> None:
        if not 1 <= self.views <= 64:
            raise HalohandInputError(f"views must be 1-64, got {self.views}")
        if not 16 <= self.size <= 1024:
            raise HalohandInputError(f"size must be 16-1024 pixels, got {self.size}")


def render_pair(
    pair: dict[str, Any], config: PairImagesConfig, rng: np.random.Generator, renderer: Any
) -> dict[str, np.ndarray]:
    """The ``views`` renders of one pair (a :meth:`~halohand.data.shards.Shard.pair` dict):
    the arrays of the module docstring except ``pair_index``."""
    from halohand.apps.synthetic import SKIN_TONES

    (v_right, f_right), (v_left, f_left) = pair["meshes"]
    tone = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    skins = [np.clip(tone * rng.uniform(0.94, 1.06, 3), 0.0, 1.0) for _ in range(2)]
    both = np.concatenate([v_right, v_left])
    views: dict[str, list[np.ndarray]] = {
        k: [] for k in ("images", "masks", "intrinsics", "rotation", "translation")
    }
    for _ in range(config.views):
        rot, trans, k = random_camera(rng, both, config.size)
        meshes = [
            (v_right @ rot.T + trans, f_right, skins[0]),
            (v_left @ rot.T + trans, f_left, skins[1]),
        ]
        image, mask = render_meshes(renderer, meshes, k, config.size, rng)
        for key, val in zip(views, (image, mask, k, rot, trans), strict=True):
            views[key].append(val)
    return {
        **{k: np.stack(v) for k, v in views.items()},
        "keypoints": np.asarray(pair["keypoints"], dtype=np.float64),
        "interaction": np.array(str(pair["interaction"])),
    }


def render_pair_split(
    pairs_dir: str | Path,
    split: str,
    out: str | Path,
    config: PairImagesConfig | None = None,
    limit: int | None = None,
    log: Any = None,
) -> dict[str, Any]:
    """Render the pairs of one split of ``pairs_dir`` (``halohand data pairs`` output) into
    ``out/<split>`` (module docstring); resumable.

    Args:
        pairs_dir: the pair dataset's folder.
        split: ``train``, ``val`` or ``test``.
        out: output folder (one sub-folder per split).
        config: :class:`PairImagesConfig`.
        limit: render only the first ``limit`` pairs of the split (all: ``None``).
        log: called with a progress line per rendered pair.

    Returns:
        ``{"split", "pairs", "made", "skipped", "renderer", "seconds"}``.

    Raises:
        HalohandInputError: not a pair dataset, an unknown split, a folder rendered with
            other settings.
    """
    from halohand.apps.synthetic import make_renderer
    from halohand.data import constants as C
    from halohand.data.dataset import PairDataset

    cfg = config or PairImagesConfig()
    if split not in C.SPLITS:
        raise HalohandInputError(f"split must be one of {', '.join(C.SPLITS)}, got {split!r}")
    data = PairDataset(pairs_dir, split)
    n = len(data) if limit is None else min(len(data), int(limit))
    folder = Path(out) / split
    folder.mkdir(parents=True, exist_ok=True)
    renderer, name = make_renderer(cfg.renderer, cfg.size)
    settings = {
        **asdict(cfg),
        "renderer_used": name,
        "split": split,
        "version": PAIR_IMAGES_VERSION,
        "pairs_dir": str(Path(pairs_dir).resolve()),
    }
    check_manifest(folder / MANIFEST, settings)
    t0, made, skipped = time.perf_counter(), 0, 0
    for i in range(n):
        path = folder / f"p_{i:05d}.npz"
        if path.exists():
            skipped += 1
            continue
        key = (PAIR_IMAGES_KEY, C.SPLITS.index(split), i)
        rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=key))
        doc = render_pair(data.pair(i), cfg, rng, renderer)
        doc["pair_index"] = np.int64(i)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **doc)
        made += 1
        if log is not None:
            log(f"{split} pair {i} ({doc['interaction']}) {time.perf_counter() - t0:.0f} s")
    return {
        "split": split,
        "pairs": n,
        "made": made,
        "skipped": skipped,
        "renderer": name,
        "seconds": round(time.perf_counter() - t0, 1),
    }
