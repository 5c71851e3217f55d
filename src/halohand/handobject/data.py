"""Rendered hand-object splits (written by :mod:`halohand.apps.handobject_data`) as tensors,
and batches in the frame the models work in: the camera's axes, origin at the true wrist.

Per view the batch holds the image (resized to the model's size, ``K`` scaled with it), the
root (wrist, camera frame), the root-relative joints and object pose, points near each
true surface (the paper's training points), signed-distance samples, the object's model
points and box corners, and the segmentation mask at the fine decoder's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from halohand.core.errors import HalohandInputError

__all__ = ["HOIData", "load_hoi"]

#: Points closer than this (metres) to a true surface are its "near" training points.
NEAR_M = 0.02


@dataclass
class HOIData:
    """One split in memory. Views ``N`` index grasps ``G`` through ``grasp``."""

    images: Tensor  #: [N, 3, S, S] uint8
    masks: Tensor  #: [N, S/4, S/4] int64 at the segmentation head's size
    intrinsics: Tensor  #: [N, 3, 3] for size S
    rotation: Tensor  #: [N, 3, 3] grasp frame -> camera
    translation: Tensor  #: [N, 3]
    grasp: Tensor  #: [N] int64
    keypoints: Tensor  #: [G, 21, 3] grasp frame
    sdf_points: Tensor  #: [G, M, 3]
    sdf_hand: Tensor  #: [G, M]
    sdf_object: Tensor  #: [G, M]
    object_points: Tensor  #: [G, P, 3] object frame
    object_corners: Tensor  #: [G, 8, 3]
    object_ids: list[str]  #: [G]

    def __len__(self) -> int:
        return len(self.images)

    def batch(
        self, idx: Tensor, n_sdf: int = 0, k_near: int = 0, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Views ``idx`` in root-relative camera coordinates (float32). ``n_sdf`` random
        signed-distance samples and ``k_near`` random near-surface points of each kind per
        view (drawn with ``generator``)."""
        g = self.grasp[idx]
        rot, trans = self.rotation[idx], self.translation[idx]
        kp = self.keypoints[g] @ rot.transpose(1, 2) + trans[:, None]
        root = kp[:, 0]
        out = {
            "images": self.images[idx].float() / 255.0,
            "masks": self.masks[idx],
            "intrinsics": self.intrinsics[idx],
            "root": root,
            "joints": kp - root[:, None],
            "object_rotation": rot,
            "object_translation": trans - root,
            "object_model": self.object_points[g],
            "object_corners": self.object_corners[g],
        }

        def to_cam(p: Tensor) -> Tensor:
            return p @ rot.transpose(1, 2) + (trans - root)[:, None]

        m = self.sdf_points.shape[1]
        if n_sdf:
            j = torch.randint(m, (len(idx), n_sdf), generator=generator)
            rows = g[:, None]
            out["sdf_points"] = to_cam(self.sdf_points[rows, j])
            out["sdf_hand"] = self.sdf_hand[rows, j]
            out["sdf_object"] = self.sdf_object[rows, j]
        if k_near:
            for name, d in (("hand_near", self.sdf_hand), ("object_near", self.sdf_object)):
                near = (d[g].abs() < NEAR_M).float() + 1e-6  # never all zero
                j = torch.multinomial(near, k_near, replacement=True, generator=generator)
                out[name] = to_cam(self.sdf_points[g[:, None], j])
        return out


def load_hoi(split_dir: str | Path, image_size: int, seg_stride: int = 4) -> HOIData:
    """Read a split folder's shards; images resized (area) to ``image_size``."""
    paths = sorted((Path(split_dir) / "shards").glob("g_*.npz"))
    if not paths:
        raise HalohandInputError(f"no hand-object shards under {split_dir}")
    cols: dict[str, list[np.ndarray]] = {}
    for gi, p in enumerate(paths):
        with np.load(p) as z:
            v = len(z["images"])
            for k in ("images", "masks", "intrinsics", "rotation", "translation"):
                cols.setdefault(k, []).append(z[k])
            cols.setdefault("grasp", []).append(np.full(v, gi))
            for k in (
                "keypoints",
                "sdf_points",
                "sdf_hand",
                "sdf_object",
                "object_points",
                "object_corners",
            ):
                cols.setdefault(k, []).append(z[k][None])
            cols.setdefault("object_ids", []).append(np.array([str(z["object_id"])]))
    arr = {k: np.concatenate(v) for k, v in cols.items()}
    src = arr["images"].shape[1]
    images = torch.from_numpy(arr["images"]).permute(0, 3, 1, 2)
    k = torch.from_numpy(arr["intrinsics"]).float()
    if src != image_size:
        images = F.interpolate(images.float(), size=(image_size,) * 2, mode="area")
        images = images.round().clamp(0, 255).to(torch.uint8)
        s = image_size / src
        k = k.clone()
        k[:, :2] *= s  # pixel edges scale with the image (principal point at S/2 stays there)
    masks = torch.from_numpy(arr["masks"]).long()
    seg = image_size // seg_stride
    # nearest, sampled at the centres of the coarse pixels
    idx = ((torch.arange(seg) + 0.5) * src / seg).long()
    masks = masks[:, idx][:, :, idx]
    f32 = lambda name: torch.from_numpy(arr[name]).float()  # noqa: E731
    return HOIData(
        images=images.contiguous(),
        masks=masks.contiguous(),
        intrinsics=k,
        rotation=f32("rotation"),
        translation=f32("translation"),
        grasp=torch.from_numpy(arr["grasp"]).long(),
        keypoints=f32("keypoints"),
        sdf_points=f32("sdf_points"),
        sdf_hand=f32("sdf_hand"),
        sdf_object=f32("sdf_object"),
        object_points=f32("object_points"),
        object_corners=f32("object_corners"),
        object_ids=arr["object_ids"].tolist(),
    )
