"""Grasps for an object from a trained HALO-VAE: sampling, refinement, HALO meshes, figures.

Frames and units: the object (a :class:`~halohand.grasp.objects.GraspObject`, metres,
centred) defines the frame; keypoints come back in metres in that frame, right hands.

Refinement (the paper's post-hoc step): ``steps`` Adam steps (step size ``lr_m``, cosine
decay over the steps) on one global translation per hand, keypoints otherwise fixed,
minimising the interpenetration loss of training (HALO occupancy at points inside the
object, where above 0.5) plus a contact term that keeps the hand on the object: the squared
distance (cm) by which the nearest finger keypoint (distal joints and tips) lies farther
than ``contact_mm`` from the object's surface (the engine's grasps have it at ~6 mm).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    import trimesh

    from halohand.api import HALO
    from halohand.grasp.objects import GraspObject
    from halohand.grasp.vae import GraspVAE

__all__ = [
    "GraspGenerator",
    "GraspSet",
    "generate_grasps",
    "grasp_scene",
    "refine_translation",
    "render_grasps",
]

#: Keypoints whose distance to the object pulls the hand during refinement: the distal
#: joints and tips of the five fingers (project order).
CONTACT_KEYPOINTS = (3, 4, 7, 8, 11, 12, 15, 16, 19, 20)


@dataclass
class GraspSet:
    """Generated grasps for one object.

    Attributes:
        keypoints: ``[n, 21, 3]`` metres, object frame, right hands.
        meshes: HALO meshes of the hands (metres), when requested.
        seconds: wall time per stage (``sample``, ``refine``, ``meshes``).
        object: the object they grasp.
    """

    keypoints: np.ndarray
    meshes: list[trimesh.Trimesh] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    object: GraspObject | None = None


def _surface_distance(points: torch.Tensor, surface: torch.Tensor) -> torch.Tensor:
    """Distance ``[..., K]`` from ``[..., K, 3]`` points to the nearest of ``[S, 3]`` samples."""
    return torch.cdist(points.reshape(-1, 3), surface).min(-1).values.reshape(points.shape[:-1])


def refine_translation(
    halo: HALO,
    keypoints_m: np.ndarray,
    obj: GraspObject,
    steps: int = 10,
    lr_m: float = 8e-3,
    interior: int = 256,
    contact_mm: float = 7.0,
    seed: int = 0,
) -> np.ndarray:
    """Shift each hand (``[n, 21, 3]`` metres) to remove collision and keep contact."""
    from halohand.grasp.vae_train import interior_points, interpenetration

    kp = torch.as_tensor(np.asarray(keypoints_m), dtype=torch.float64) * 100.0  # cm
    inner = torch.as_tensor(interior_points(obj, interior, seed), dtype=torch.float64) * 100.0
    surface = torch.as_tensor(obj.surface_points(2000, seed)[0], dtype=torch.float64) * 100.0
    shift = torch.zeros(len(kp), 1, 3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([shift], lr=lr_m * 100.0)
    for p in halo.network.parameters():
        p.requires_grad_(False)
    tips = list(CONTACT_KEYPOINTS)
    for k in range(steps):
        # Large first moves to leave a deep collision, then settle (cosine decay to zero).
        opt.param_groups[0]["lr"] = lr_m * 100.0 * 0.5 * (1.0 + math.cos(math.pi * k / steps))
        moved = kp + shift
        pen = interpenetration(halo, moved, inner.expand(len(kp), -1, -1))
        gap = _surface_distance(moved[:, tips], surface).min(-1).values - contact_mm / 10.0
        loss = (4.0 * pen + gap.clamp_min(0.0).pow(2)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return ((kp + shift.detach()) / 100.0).numpy()


def generate_grasps(
    vae: GraspVAE,
    obj: GraspObject,
    n: int = 20,
    seed: int = 0,
    *,
    refine: bool = False,
    halo: HALO | None = None,
    meshes: bool = False,
    resolution: int = 128,
    refine_steps: int = 10,
) -> GraspSet:
    """Sample ``n`` grasps of ``obj``; optionally refine them and mesh them with HALO."""
    from halohand.errors import HalohandInputError

    if n < 1:
        raise HalohandInputError(f"n must be >= 1, got {n}")
    if (refine or meshes) and halo is None:
        from halohand.api import HALO

        halo = HALO.pretrained()
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    cloud = torch.as_tensor(obj.surface_points(600, seed)[0] * 100.0, dtype=torch.float32)
    gen = torch.Generator().manual_seed(int(seed))
    vae.eval()
    kp = vae.sample(cloud, n, generator=gen).double().numpy() / 100.0
    seconds["sample"] = time.perf_counter() - t
    if refine:
        t = time.perf_counter()
        kp = refine_translation(halo, kp, obj, steps=refine_steps, seed=seed)
        seconds["refine"] = time.perf_counter() - t
    out = GraspSet(keypoints=kp, seconds=seconds, object=obj)
    if meshes:
        t = time.perf_counter()
        out.meshes = halo.reconstruct_batch(kp, "right", "m", resolution=resolution)
        seconds["meshes"] = time.perf_counter() - t
    return out


def grasp_scene(hand: trimesh.Trimesh, obj: GraspObject) -> trimesh.Trimesh:
    """One coloured mesh of a hand and the object (grey-blue), for rendering and export."""
    import trimesh

    obj_mesh = obj.mesh.copy()
    obj_mesh.visual.vertex_colors = np.tile([150, 165, 185, 255], (len(obj_mesh.vertices), 1))
    hand = hand.copy()
    if not hasattr(hand.visual, "vertex_colors") or len(hand.visual.vertex_colors) == 0:
        hand.visual.vertex_colors = np.tile([224, 172, 142, 255], (len(hand.vertices), 1))
    return trimesh.util.concatenate([obj_mesh, hand])


def render_grasps(
    scenes: list[tuple[trimesh.Trimesh, GraspObject]],
    path: str,
    columns: int = 5,
    tile: int = 256,
    labels: list[str] | None = None,
) -> None:
    """Contact sheet of hand + object renders (PNG, written atomically)."""
    from halohand.atomic import atomic_path
    from halohand.render import draw_text, gradient_background, image_grid, render_mesh, save_png

    # The objects stand along +z; the renderer's camera takes +y as up.
    z_up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    background = gradient_background((tile, tile))
    images: list[Any] = []
    for i, (hand, obj) in enumerate(scenes):
        scene = grasp_scene(hand, obj)
        colors = np.asarray(scene.visual.vertex_colors)[:, :3] / 255.0
        v = np.asarray(scene.vertices) @ z_up.T
        img = render_mesh(
            v, scene.faces, colors, size=(tile, tile), view=(30.0, 20.0),
            center=0.5 * (v.min(0) + v.max(0)), background=background,
        )  # fmt: skip
        if labels:
            img = draw_text(img, labels[i], (6, 4), size=12)
        images.append(img)
    with atomic_path(path) as tmp:
        save_png(str(tmp), image_grid(images, columns=min(columns, len(images))))


class GraspGenerator:
    """Grasps for any object in a few lines: a trained HALO-VAE plus the HALO model.

    >>> gen = GraspGenerator.pretrained()
    >>> grasps = gen.generate("mug.obj", n=20, refine=True)   # GraspSet, metres
    >>> grasps.meshes[0].export("grasp_00.ply")
    """

    def __init__(self, vae: GraspVAE, halo: HALO | None = None) -> None:
        self.vae = vae.eval()
        self._halo = halo

    @classmethod
    def pretrained(cls) -> GraspGenerator:
        """The shipped grasp model (``weights/grasp_vae.safetensors``); no network access."""
        from halohand.api import pretrained_path
        from halohand.errors import HalohandInputError

        halo_path = pretrained_path()
        path = None if halo_path is None else halo_path.parent / "grasp_vae.safetensors"
        if path is None or not path.is_file():
            raise HalohandInputError("this install ships no grasp model: use from_file(PATH)")
        return cls.from_file(path)

    @classmethod
    def from_file(cls, path: str | Path) -> GraspGenerator:
        """A model written by ``halohand grasp train`` (``model.safetensors``)."""
        from halohand.grasp.vae import load_vae

        return cls(load_vae(path)[0])

    @property
    def halo(self) -> HALO:
        if self._halo is None:
            from halohand.api import HALO

            self._halo = HALO.pretrained()
        return self._halo

    def generate(
        self,
        obj: GraspObject | str | Path | trimesh.Trimesh,
        n: int = 20,
        seed: int = 0,
        *,
        refine: bool = True,
        meshes: bool = True,
        resolution: int = 96,
        units: str = "auto",
    ) -> GraspSet:
        """``n`` right-hand grasps of ``obj``: a registry id, a mesh file, a trimesh or a
        :class:`~halohand.grasp.objects.GraspObject`.

        Keypoints and meshes are in metres in the object's centred frame
        (``GraspSet.object``; add ``object.offset_m`` for the input file's frame).
        """
        from halohand.grasp import objects

        if not isinstance(obj, objects.GraspObject):
            if isinstance(obj, str) and Path(obj).suffix == "" and not Path(obj).exists():
                obj = objects.load_object(obj)
            else:
                obj = objects.object_from_mesh(obj, units=units)
        gs = generate_grasps(self.vae, obj, n, seed, refine=refine, halo=self.halo,
                             meshes=meshes, resolution=resolution)  # fmt: skip
        gs.object = obj
        return gs
