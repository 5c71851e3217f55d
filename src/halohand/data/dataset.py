"""Reading generated data: shard loading and a PyTorch dataset over a split.

>>> ds = OccupancyDataset("data/hands", "train")          # doctest: +SKIP
>>> item = ds[0]   # dict of tensors, see OccupancyDataset.__getitem__

Shards are memory-mapped (see :mod:`halohand.data.shards`): an item reads only the rows it
draws, and a small LRU of open shards bounds the number of mappings. A corrupt, truncated or
foreign shard raises :class:`~halohand.core.errors.CorruptFileError` naming the file.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from halohand.core.errors import CorruptFileError, HalohandInputError
from halohand.data import constants as C
from halohand.data.shards import Shard, open_shard
from halohand.handmodel.skin_tips import skin_tip_keypoints

__all__ = ["OccupancyDataset", "PairDataset", "load_shard", "read_manifest"]


def load_shard(path: str | os.PathLike[str], verify: bool = False) -> Shard:
    """Open and validate one shard (keys, dtypes, shapes, metadata; CRCs if ``verify``).

    Raises:
        CorruptFileError: naming the file.
    """
    return open_shard(path, verify=verify)


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``manifest.json`` of a data folder (``CorruptFileError`` if unreadable)."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise HalohandInputError(f"{root}: no manifest.json; not a halohand data folder")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"{path}: unreadable data manifest ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != C.FORMAT_NAME:
        raise CorruptFileError(f"{path}: not a halohand data manifest")
    return doc


def _gather_bits(packed: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Bits ``idx`` of a ``np.packbits`` array (big bit order), without unpacking it all."""
    return (packed[idx >> 3] >> (7 - (idx & 7)).astype(np.uint8)) & 1


def _draw_points(
    arrays: dict[str, np.ndarray], seed: int | None, epoch: int, index: int, n_points: int | None
) -> tuple[np.random.Generator, np.ndarray, np.ndarray]:
    """The item's generator (from ``(seed, epoch, index)``; fresh entropy without a seed)
    and the sorted indices of its uniform and near-surface points: all of them, or
    ``n_points`` drawn with replacement, half near the surface."""
    if seed is None:
        rng = np.random.default_rng()
    else:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(epoch, index)))
    nu, nn = arrays["points_uniform"].shape[1], arrays["points_near"].shape[1]
    if n_points is None:
        return rng, np.arange(nu), np.arange(nn)
    half = n_points // 2
    iu = np.sort(rng.integers(0, nu, n_points - half))
    inear = np.sort(rng.integers(0, nn, half))
    return rng, iu, inear


class OccupancyDataset(Dataset):
    """Hands of one split, as the trainer consumes them (spec section 2).

    Each item draws, **with replacement**, ``n_points`` query points (half from the uniform
    pool, half from the near-surface pool, like the original's 50/50 mixed pool) and
    ``n_surface`` labelled surface samples. With ``n_points=None`` an item holds all points
    (uniform first), for validation IoU.

    Args:
        root: the folder given to ``halohand data generate --out``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        n_points: query points per item (default 2048), or ``None`` for all.
        n_surface: labelled surface samples per item (default 2000), or ``None`` for all.
        seed: ``None`` draws fresh subsamples every time (training); an int makes item ``i``
            of epoch ``e`` (see :meth:`set_epoch`) reproducible.
        cache_shards: how many shards stay mapped at once.
        verify: check every shard's CRCs when first opened (reads the whole file).
        keypoint_convention: where the items' fingertip keypoints are: ``"rig"`` (the stored
            tip joints), ``"mano"`` (on the skin at the end of each finger, as MANO-based
            datasets and MediaPipe place them; :func:`~halohand.handmodel.skin_tips.
            skin_tip_keypoints` on the stored mesh) or ``"mixed"`` (each item one of the two,
            drawn from ``(seed, epoch, index)`` with its own generator, so the points drawn
            are those of a ``"rig"`` dataset with the same seed).
    """

    #: Values of ``keypoint_convention``.
    KEYPOINT_CONVENTIONS = ("rig", "mano", "mixed")

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        n_points: int | None = C.QUERY_SUBSAMPLE,
        n_surface: int | None = C.SURFACE_SUBSAMPLE,
        seed: int | None = None,
        cache_shards: int = 4,
        verify: bool = False,
        keypoint_convention: str = "rig",
    ) -> None:
        if keypoint_convention not in self.KEYPOINT_CONVENTIONS:
            raise HalohandInputError(
                f"unknown keypoint convention {keypoint_convention!r}; expected "
                f"{', '.join(self.KEYPOINT_CONVENTIONS)}"
            )
        if split not in C.SPLITS:
            raise HalohandInputError(f"unknown split {split!r}; expected {', '.join(C.SPLITS)}")
        for name, n in (("n_points", n_points), ("n_surface", n_surface)):
            if n is not None and n < 1:
                raise HalohandInputError(f"{name} must be >= 1 or None, got {n}")
        self.root = Path(root)
        self.split = split
        self.n_points = n_points
        self.n_surface = n_surface
        self.seed = seed
        self.epoch = 0
        self.verify = verify
        self.cache_shards = max(1, cache_shards)
        self.keypoint_convention = keypoint_convention
        self._skin_tips: dict[int, np.ndarray] = {}
        manifest = read_manifest(self.root)
        if not manifest.get("complete"):
            raise HalohandInputError(
                f"{self.root}: generation has not finished (manifest incomplete); "
                "rerun 'halohand data generate' with the same settings"
            )
        kind = manifest.get("kind", "hands")
        if kind != self.kind:
            reader = "PairDataset" if kind == "pairs" else "OccupancyDataset"
            raise HalohandInputError(f"{self.root} holds {kind}: read it with {reader}")
        entries = [e for e in manifest["shards"] if e["file"].startswith(f"{split}/")]
        self.files = [self.root / e["file"] for e in entries]
        counts = [int(e["hands"]) for e in entries]
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._cache: OrderedDict[int, Shard] = OrderedDict()

    #: The dataset kind this reader reads (``manifest.json``'s ``kind``; absent = hands).
    kind = "hands"

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers started by spawn get a copy without the mapped shards (pickling a
        # memmap would copy its data); they reopen what they need.
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        return state

    def __len__(self) -> int:
        return int(self._starts[-1])

    def set_epoch(self, epoch: int) -> None:
        """Change the subsamples drawn with a fixed ``seed`` (one set per epoch)."""
        self.epoch = int(epoch)

    def shard(self, number: int) -> Shard:
        """Shard ``number`` of this split, opened (and validated) on first use."""
        if number in self._cache:
            self._cache.move_to_end(number)
            return self._cache[number]
        shard = open_shard(self.files[number], verify=self.verify)
        expected = int(self._starts[number + 1] - self._starts[number])
        if shard.meta["split"] != self.split or shard.num_hands != expected:
            raise CorruptFileError(
                f"{self.files[number]}: holds {shard.num_hands} {shard.meta['split']} hands, "
                f"the manifest says {expected} {self.split} hands"
            )
        self._cache[number] = shard
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return shard

    def locate(self, index: int) -> tuple[Shard, int]:
        """(shard, row) of item ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} hands")
        number = int(np.searchsorted(self._starts, index, side="right") - 1)
        return self.shard(number), int(index - self._starts[number])

    def hand(self, index: int) -> dict[str, Any]:
        """Everything stored about hand ``index``, decoded (see :meth:`Shard.hand`)."""
        shard, k = self.locate(index)
        return shard.hand(k)

    def skin_tips(self, index: int) -> bool:
        """Whether item ``index`` of the current epoch has its tips on the skin."""
        if self.keypoint_convention != "mixed":
            return self.keypoint_convention == "mano"
        if self.seed is None:
            return bool(np.random.default_rng().random() < 0.5)
        seq = np.random.SeedSequence(self.seed, spawn_key=(self.epoch, index, 1))
        return bool(np.random.default_rng(seq).random() < 0.5)

    def keypoints(self, index: int, skin_tips: bool = False) -> np.ndarray:
        """``[21, 3]`` float64 keypoints of hand ``index`` (metres, hand frame), the tips on
        the skin if ``skin_tips`` (computed once per hand from its stored mesh)."""
        shard, k = self.locate(index)
        if not skin_tips:
            return np.asarray(shard.arrays["keypoints"][k], dtype=np.float64)
        if index not in self._skin_tips:
            v, f = shard.mesh(k)
            self._skin_tips[index] = skin_tip_keypoints(v, f, shard.arrays["keypoints"][k])
        return self._skin_tips[index]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """One hand.

        Returns:
            ``points`` [N, 3] float32 metres (hand frame, wrist at origin);
            ``occupancies`` [N] float32 in {0, 1};
            ``point_is_uniform`` [N] bool (from the uniform pool, else near-surface);
            ``surface_points`` [S, 3] float32 metres; ``surface_labels`` [S] int64 (0..15);
            ``keypoints`` [21, 3], ``part_transforms`` [16, 4, 4] (posed -> canonical,
            metres), ``bone_lengths`` [16]: float32; ``side`` int64 (0 right, 1 left);
            ``index`` int64.
        """
        shard, k = self.locate(index)
        a = shard.arrays
        rng, iu, inear = _draw_points(a, self.seed, self.epoch, index, self.n_points)
        q = np.float32(shard.meta["constants"]["coord_quantum_m"])
        points = np.concatenate([a["points_uniform"][k][iu], a["points_near"][k][inear]]).astype(
            np.float32
        )
        occ = np.concatenate(
            [_gather_bits(a["occ_uniform"][k], iu), _gather_bits(a["occ_near"][k], inear)]
        )
        ns = a["surface_points"].shape[1]
        isurf = np.arange(ns) if self.n_surface is None else rng.integers(0, ns, self.n_surface)
        # The order of points is not random: uniform first. Shuffle one permutation so
        # consumers that slice batches see a mix.
        perm = rng.permutation(len(points)) if self.n_points is not None else np.arange(len(points))
        is_uniform = np.arange(len(points)) < len(iu)
        return {
            "points": torch.from_numpy(points[perm] * q),
            "occupancies": torch.from_numpy(occ[perm].astype(np.float32)),
            "point_is_uniform": torch.from_numpy(is_uniform[perm]),
            "surface_points": torch.from_numpy(np.asarray(a["surface_points"][k][isurf])),
            "surface_labels": torch.from_numpy(a["surface_labels"][k][isurf].astype(np.int64)),
            "keypoints": torch.from_numpy(
                self.keypoints(index, self.skin_tips(index)).astype(np.float32)
            ),
            "part_transforms": torch.from_numpy(
                np.asarray(a["part_transforms"][k], dtype=np.float32)
            ),
            "bone_lengths": torch.from_numpy(np.asarray(a["bone_lengths"][k], dtype=np.float32)),
            "side": torch.tensor(int(a["side"][k]), dtype=torch.int64),
            "index": torch.tensor(index, dtype=torch.int64),
        }


class PairDataset(OccupancyDataset):
    """Two-hand pairs of one split (``halohand data pairs``; :mod:`halohand.data.pairs`).

    Each item draws ``n_points`` shared query points with replacement (half uniform in the
    pair's box, half near either hand's surface) and gives each hand's label there. Same
    arguments as :class:`OccupancyDataset` (``n_surface`` is unused: pairs store no
    labelled surface samples).
    """

    kind = "pairs"

    def pair(self, index: int) -> dict[str, Any]:
        """Everything stored about pair ``index``, decoded (see :meth:`Shard.pair`)."""
        shard, k = self.locate(index)
        return shard.pair(k)

    def hand(self, index: int) -> dict[str, Any]:
        raise HalohandInputError("a PairDataset holds pairs: use pair(index)")

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """One pair.

        Returns:
            ``points`` [N, 3] float32 metres (the pair's frame, origin at its box centre);
            ``occupancies`` [2, N] float32 in {0, 1} (right, left);
            ``point_is_uniform`` [N] bool;
            ``keypoints`` [2, 21, 3], ``part_transforms`` [2, 16, 4, 4] (posed ->
            canonical, metres), ``bone_lengths`` [2, 16]: float32 (right, left);
            ``interaction`` int64 (index into ``halohand.data.constants.PAIR_INTERACTIONS``);
            ``index`` int64.
        """
        shard, k = self.locate(index)
        a = shard.arrays
        rng, iu, inear = _draw_points(a, self.seed, self.epoch, index, self.n_points)
        q = np.float32(shard.meta["constants"]["coord_quantum_m"])
        points = np.concatenate([a["points_uniform"][k][iu], a["points_near"][k][inear]])
        occ = np.stack(
            [
                np.concatenate(
                    [
                        _gather_bits(a["occ_uniform"][k][h], iu),
                        _gather_bits(a["occ_near"][k][h], inear),
                    ]
                )  # fmt: skip
                for h in range(2)
            ]
        )
        perm = rng.permutation(len(points)) if self.n_points is not None else np.arange(len(points))
        is_uniform = np.arange(len(points)) < len(iu)
        f32 = np.float32
        return {
            "points": torch.from_numpy(points[perm].astype(f32) * q),
            "occupancies": torch.from_numpy(occ[:, perm].astype(f32)),
            "point_is_uniform": torch.from_numpy(is_uniform[perm]),
            "keypoints": torch.from_numpy(np.asarray(a["keypoints"][k], dtype=f32)),
            "part_transforms": torch.from_numpy(np.asarray(a["part_transforms"][k], dtype=f32)),
            "bone_lengths": torch.from_numpy(np.asarray(a["bone_lengths"][k], dtype=f32)),
            "interaction": torch.tensor(int(a["interaction"][k]), dtype=torch.int64),
            "index": torch.tensor(index, dtype=torch.int64),
        }
