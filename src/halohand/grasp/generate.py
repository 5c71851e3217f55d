"""Grasps for an object from a trained HALO-VAE: sampling, refinement, HALO meshes, figures.

Frames and units: the object (a :class:`~halohand.objects.registry.GraspObject`, metres,
centred, a user mesh turned to its principal frame unless ``orient="keep"``) defines the
frame; keypoints come back in metres in that frame, right hands
(:meth:`GraspSet.file_keypoints`: in the input file's frame and units).

Refinement (the paper's post-hoc step): ``steps`` Adam steps (step size ``lr_m``, cosine
decay over the steps) on one global translation per hand, keypoints otherwise fixed,
minimising :func:`grasp_energy`: the interpenetration loss of training (HALO occupancy at
probe points inside the object, where above 0.5) plus a contact term that keeps the hand on
the object: the squared distance (cm) by which the nearest finger keypoint (distal joints
and tips) lies farther than ``contact_mm`` from the object's surface.

Selection (``candidates`` > 1): several samples per grasp are refined and the one of lowest
energy is kept (:func:`select_grasps`). Translation alone cannot free fingers that close
through the object; another sample of the same posterior usually can.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from halohand.core.errors import HalohandInputError
from halohand.core.schedule import cosine
from halohand.grasp.energies import interior_points, interpenetration, valid_hands
from halohand.grasp.pose_refine import PoseRefineConfig, refine_poses
from halohand.grasp.vae import load_vae
from halohand.inference.halo import HALO, pretrained_path
from halohand.inference.threads import fair_threads, torch_threads
from halohand.objects import registry as objects

if TYPE_CHECKING:
    import trimesh

    from halohand.grasp.vae import GraspVAE
    from halohand.inference.halo import HALO
    from halohand.objects.registry import GraspObject

__all__ = [
    "GraspGenerator",
    "GraspSet",
    "clear_penetration",
    "generate_grasps",
    "grasp_scene",
    "refine_translation",
    "shipped_model_path",
]

#: Keypoints whose distance to the object pulls the hand during refinement: the distal
#: joints and tips of the five fingers (project order).
CONTACT_KEYPOINTS = (3, 4, 7, 8, 11, 12, 15, 16, 19, 20)

#: The contact term's distance (mm) from those keypoints to the surface. The engine's
#: accepted grasps have their nearest one at 4.9-7.2 mm (p10-p90, median 6.0;
#: ``benchmarks/studies/grasp_contact_distance.py``); 5.5 mm was chosen on training objects with
#: ``benchmarks/studies/grasp_selection_tuning.py``.
DEFAULT_CONTACT_MM = 5.5

#: Grasps and samples per grasp in one call of :func:`generate_grasps` at most: keeps one
#: call's memory bounded (a grasp's mesh is ~1 MB; every sample is refined).
MAX_GRASPS_PER_CALL = 1000
MAX_CANDIDATES = 64


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

    def file_keypoints(self) -> np.ndarray:
        """``[n, 21, 3]`` keypoints in the object file's frame and units
        (:meth:`GraspObject.to_file_frame`: turned back, moved back, rescaled)."""
        if self.object is None:
            raise HalohandInputError("these grasps have no object to map back to")
        return self.object.to_file_frame(self.keypoints)

    def file_meshes(self) -> list[trimesh.Trimesh]:
        """The hand meshes in the object file's frame and units (copies)."""
        if self.object is None:
            raise HalohandInputError("these grasps have no object to map back to")
        out = []
        for mesh in self.meshes:
            m = mesh.copy()
            m.vertices = self.object.to_file_frame(np.asarray(m.vertices))
            out.append(m)
        return out


def _surface_distance(points: torch.Tensor, surface: torch.Tensor) -> torch.Tensor:
    """Distance ``[..., K]`` from ``[..., K, 3]`` points to the nearest of ``[S, 3]`` samples."""
    return torch.cdist(points.reshape(-1, 3), surface).min(-1).values.reshape(points.shape[:-1])


def penetration_probes(
    obj: GraspObject,
    n: int = 512,
    seed: int = 0,
    shell_mm: float = 20.0,
    shell_fraction: float = 0.5,
) -> np.ndarray:
    """``[n, 3]`` points (metres) inside ``obj`` where a hand's occupancy means collision.

    ``1 - shell_fraction`` of them are uniform in the volume (the training loss's points),
    the rest lie in a shell under the surface (depth uniform in ``(0, shell_mm)``), where a
    closing finger enters first and which uniform points sample sparsely on large objects.
    """

    key = ("probes", n, seed, shell_mm, shell_fraction)
    if key not in obj._cache:
        rng = np.random.default_rng(seed)
        shell: list[np.ndarray] = []
        want = int(round(n * shell_fraction))
        have = 0
        for k in range(50 if want else 0):
            pts, normals = obj.surface_points(2 * want, seed + 1 + k)
            cand = pts - normals * rng.uniform(0.0, shell_mm * 1e-3, (len(pts), 1))
            shell.append(cand[obj.contains(cand)])
            have += len(shell[-1])
            if have >= want:
                break
        uniform = interior_points(obj, n - want, seed) if n > want else np.zeros((0, 3))
        obj._cache[key] = np.concatenate([uniform, *shell])[:n]
    return obj._cache[key]


def grasp_energy(
    halo: HALO,
    keypoints_cm: torch.Tensor,
    probes_cm: torch.Tensor,
    surface_cm: torch.Tensor,
    contact_mm: float = DEFAULT_CONTACT_MM,
) -> torch.Tensor:
    """``[B]`` collision plus contact energy of ``[B, 21, 3]`` hands (cm, object frame).

    ``4 *`` the interpenetration loss (HALO occupancy above 0.5 at the ``[P, 3]`` probes,
    averaged) plus the squared distance (cm) by which the nearest finger keypoint lies
    farther than ``contact_mm`` from the ``[S, 3]`` surface samples. Differentiable in the
    keypoints.
    """

    pen = interpenetration(halo, keypoints_cm, probes_cm.expand(len(keypoints_cm), -1, -1))
    tips = list(CONTACT_KEYPOINTS)
    gap = _surface_distance(keypoints_cm[:, tips], surface_cm).min(-1).values
    return 4.0 * pen + (gap - contact_mm / 10.0).clamp_min(0.0).pow(2)


def _object_tensors(
    obj: GraspObject, probes: int, seed: int, shell_fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Penetration probes and surface samples of ``obj`` in cm (float64), cached on ``obj``
    (refinement and selection use the same ones)."""
    key = ("energy_tensors", probes, seed, shell_fraction)
    if key not in obj._cache:
        inner = penetration_probes(obj, probes, seed, shell_fraction=shell_fraction)
        surface = obj.surface_points(2000, seed)[0]
        obj._cache[key] = (
            torch.as_tensor(inner, dtype=torch.float64) * 100.0,
            torch.as_tensor(surface, dtype=torch.float64) * 100.0,
        )
    return obj._cache[key]


def _adam_step(
    param: torch.Tensor,
    grad: torch.Tensor,
    moments: tuple[torch.Tensor, torch.Tensor],
    step: int,
    lr: float,
) -> None:
    """One in-place Adam update (betas 0.9 / 0.999, eps 1e-8) of ``param``; ``step`` from 0.

    Written out because constructing ``torch.optim.Adam`` imports ``torch._dynamo``, about
    2 s of a command's start-up, for a 10-step loop on one tensor.
    """
    m1, m2 = moments
    m1.mul_(0.9).add_(grad, alpha=0.1)
    m2.mul_(0.999).addcmul_(grad, grad, value=0.001)
    denom = (m2 / (1.0 - 0.999 ** (step + 1))).sqrt_().add_(1e-8)
    param.addcdiv_(m1, denom, value=-lr / (1.0 - 0.9 ** (step + 1)))


def refine_translation(
    halo: HALO,
    keypoints_m: np.ndarray,
    obj: GraspObject,
    steps: int = 10,
    lr_m: float = 8e-3,
    probes: int = 512,
    contact_mm: float = DEFAULT_CONTACT_MM,
    seed: int = 0,
    shell_fraction: float = 0.5,
) -> np.ndarray:
    """Shift each hand (``[n, 21, 3]`` metres) to remove collision and keep contact."""
    kp = torch.as_tensor(np.asarray(keypoints_m), dtype=torch.float64) * 100.0  # cm
    inner, surface = _object_tensors(obj, probes, seed, shell_fraction)
    shift = torch.zeros(len(kp), 1, 3, dtype=torch.float64, requires_grad=True)
    for p in halo.network.parameters():
        p.requires_grad_(False)
    moments = (torch.zeros_like(shift), torch.zeros_like(shift))
    threads = torch.get_num_threads()
    for k in range(steps):
        # Large first moves to leave a deep collision, then settle (cosine decay to zero).
        lr = cosine(k, steps, lr_m * 100.0, 0.0)
        # Small kernels: next to a busy process, two OpenMP threads stall (the contact
        # term's cdist backward, 1.3 ms on one thread, took 96 ms on two); fair_threads
        # looks again every step.
        with torch_threads(fair_threads(threads)):
            loss = grasp_energy(halo, kp + shift, inner, surface, contact_mm).sum()
            (grad,) = torch.autograd.grad(loss, shift)
        with torch.no_grad():
            _adam_step(shift, grad, moments, k, lr)
    return ((kp + shift.detach()) / 100.0).numpy()


def clear_penetration(
    halo: HALO,
    keypoints_m: np.ndarray,
    obj: GraspObject,
    steps: int = 20,
    step_mm: float = 0.5,
    probes: int = 2000,
    shell_mm: float = 8.0,
    seed: int = 0,
) -> np.ndarray:
    """Move the keypoints of ``[n, 21, 3]`` hands (metres, object frame) until HALO's surface
    leaves the object; returns ``[n, 21, 3]`` float64 metres.

    Each of ``steps`` steps follows the gradient of HALO's interpenetration (occupancy above
    0.5 at ``probes`` points in a ``shell_mm`` shell under the surface), normalised per hand so
    that its 21 keypoints move ``step_mm`` together (Euclidean norm), the ones nearest the
    collision most. A hand that does not collide does not move. The pose-space refinement
    optimises the rig's mesh, and HALO's surface of the same keypoints lies up to several
    millimetres deeper where fingers press on the object: this is the last step there.
    """
    kp = torch.as_tensor(np.asarray(keypoints_m), dtype=torch.float64) * 100.0  # cm
    inner = penetration_probes(obj, probes, seed, shell_mm=shell_mm, shell_fraction=1.0)
    inner_cm = torch.as_tensor(inner, dtype=torch.float64)[None] * 100.0
    shift = torch.zeros_like(kp, requires_grad=True)
    for p in halo.network.parameters():
        p.requires_grad_(False)
    threads = torch.get_num_threads()
    for _ in range(steps):
        with torch_threads(fair_threads(threads)):
            loss = interpenetration(halo, kp + shift, inner_cm.expand(len(kp), -1, -1)).sum()
            (grad,) = torch.autograd.grad(loss, shift)
        norm = torch.linalg.vector_norm(grad.flatten(1), dim=1)[:, None, None]
        if not (norm > 0).any():
            break
        with torch.no_grad():
            shift -= step_mm / 10.0 * torch.where(norm > 0, grad / norm.clamp_min(1e-30), 0.0)
    return ((kp + shift.detach()) / 100.0).numpy()


def select_grasps(
    halo: HALO,
    keypoints_m: np.ndarray,
    obj: GraspObject,
    n: int,
    probes: int = 512,
    contact_mm: float = DEFAULT_CONTACT_MM,
    seed: int = 0,
    shell_fraction: float = 0.5,
) -> np.ndarray:
    """Best of each group: ``[n * k, 21, 3]`` candidates (metres) -> ``[n, 21, 3]``.

    Candidate ``i`` belongs to group ``i % n``; each group keeps its lowest
    :func:`grasp_energy`. Groups of independent samples keep the selected grasps
    independent of one another, so selection trades little diversity. Hands with a
    degenerate bone are never chosen over a valid one.
    """

    kp = torch.as_tensor(np.asarray(keypoints_m), dtype=torch.float64) * 100.0
    k = len(kp) // n
    inner, surface = _object_tensors(obj, probes, seed, shell_fraction)
    with torch.no_grad(), torch_threads(fair_threads(torch.get_num_threads())):
        energy = grasp_energy(halo, kp, inner, surface, contact_mm)
    energy = torch.where(valid_hands(kp), energy, torch.inf)
    best = energy[: n * k].reshape(k, n).argmin(0)
    return np.asarray(keypoints_m)[best.numpy() * n + np.arange(n)]


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
    candidates: int = 1,
    contact_mm: float = DEFAULT_CONTACT_MM,
    refine_pose: bool = False,
    pose_config: PoseRefineConfig | None = None,
) -> GraspSet:
    """Sample ``n`` grasps of ``obj``; optionally refine, select and mesh them with HALO.

    ``candidates`` > 1 draws that many samples per grasp, refines all of them (when
    ``refine``) and keeps, per grasp, the one of lowest collision-and-contact energy
    (:func:`select_grasps`). ``contact_mm``: the contact term's distance (refinement and
    selection). ``refine_pose``: after the translation refinement, each sample is refined in
    the hand model's pose space (:func:`~halohand.grasp.pose_refine.refine_poses`: fingers,
    placement) and then HALO's surface moved out of the object (:func:`clear_penetration`,
    ``pose_config.halo_steps``); ~4-5 s per sample on one thread, before any selection, with
    ``pose_config`` (default settings if ``None``).
    """

    if not 1 <= n <= MAX_GRASPS_PER_CALL:
        raise HalohandInputError(
            f"n must be 1..{MAX_GRASPS_PER_CALL:,} per call, got {n:,}; for more grasps call "
            "again with another seed (each seed gives other grasps)"
        )
    if not 1 <= candidates <= MAX_CANDIDATES:
        raise HalohandInputError(f"candidates must be 1..{MAX_CANDIDATES}, got {candidates:,}")
    if (refine or meshes or candidates > 1) and halo is None:
        halo = grasp_halo()
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    cloud = torch.as_tensor(obj.surface_points(600, seed)[0] * 100.0, dtype=torch.float32)
    gen = torch.Generator().manual_seed(int(seed))
    vae.eval()
    with torch_threads(fair_threads(torch.get_num_threads())):  # small kernels, as below
        kp = vae.sample(cloud, n * candidates, generator=gen).double().numpy() / 100.0
    seconds["sample"] = time.perf_counter() - t
    if refine:
        t = time.perf_counter()
        kp = refine_translation(halo, kp, obj, steps=refine_steps, contact_mm=contact_mm,
                                seed=seed)  # fmt: skip
        seconds["refine"] = time.perf_counter() - t
    if refine_pose:
        t = time.perf_counter()
        pcfg = PoseRefineConfig() if pose_config is None else pose_config
        # At two OpenMP threads one busy neighbour process made it 3.0-3.7x slower than
        # quiet; with the fair choice 1.06-1.08x, the same quiet
        # (benchmarks/results/speed/bench_neighbour_pose_refine.json).
        with torch_threads(fair_threads(torch.get_num_threads())):
            kp = refine_poses(obj, kp, seed=seed, config=pcfg)["keypoints"].astype(np.float64)
        if pcfg.halo_steps:
            if halo is None:
                halo = grasp_halo()
            kp = clear_penetration(halo, kp, obj, steps=pcfg.halo_steps,
                                   step_mm=pcfg.halo_step_mm, seed=seed)  # fmt: skip
        seconds["refine_pose"] = time.perf_counter() - t
    if candidates > 1:
        t = time.perf_counter()
        kp = select_grasps(halo, kp, obj, n, contact_mm=contact_mm, seed=seed)
        seconds["select"] = time.perf_counter() - t
    out = GraspSet(keypoints=kp, seconds=seconds, object=obj)
    if meshes:
        t = time.perf_counter()
        out.meshes = halo.reconstruct_batch(
            kp, "right", "m", resolution=resolution, convention="rig"
        )
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


def shipped_model_path() -> Path:
    """The shipped grasp VAE, ``weights/grasp_vae.safetensors`` beside the HALO weights.

    Raises:
        HalohandInputError: this install ships none.
    """

    halo_path = pretrained_path()
    path = None if halo_path is None else halo_path.parent / "grasp_vae.safetensors"
    if path is None or not path.is_file():
        raise HalohandInputError("this install ships no grasp model: pass a model file")
    return path


def grasp_halo(device: str = "cpu") -> HALO:
    """The HALO model the shipped grasp model goes with: ``weights/halo_grasp.safetensors``.

    The grasp VAE's interpenetration loss, its refinement and selection were trained and
    tuned against this HALO (the default HALO of that time, first training cycle, sha256
    ``11ccd9c5...``), so grasp generation and the grasp figures keep it when the default
    reconstruction model (``HALO.pretrained()``) is retrained.

    Raises:
        HalohandInputError: this install ships none.
    """

    path = shipped_model_path().parent / "halo_grasp.safetensors"
    if not path.is_file():
        raise HalohandInputError("this install ships no HALO model for grasps")
    return HALO.from_checkpoint(path, device=device)


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
        """The shipped grasp model (:func:`shipped_model_path`); no network access."""
        return cls.from_file(shipped_model_path())

    @classmethod
    def from_file(cls, path: str | Path) -> GraspGenerator:
        """A model written by ``halohand grasp train`` (``model.safetensors``)."""

        return cls(load_vae(path)[0])

    @property
    def halo(self) -> HALO:
        if self._halo is None:
            self._halo = grasp_halo()
        return self._halo

    def generate(
        self,
        obj: GraspObject | str | Path | trimesh.Trimesh,
        n: int = 20,
        seed: int = 0,
        *,
        refine: bool = True,
        candidates: int = 4,
        refine_pose: bool = False,
        meshes: bool = True,
        resolution: int = 96,
        units: str = "auto",
        orient: str = "principal",
    ) -> GraspSet:
        """``n`` right-hand grasps of ``obj``: a registry id, a mesh file, a trimesh or a
        :class:`~halohand.objects.registry.GraspObject`.

        ``candidates`` samples per grasp are refined and the one of lowest collision and
        contact energy is kept (:func:`generate_grasps`); ``refine_pose`` also refines each
        sample's fingers and placement with the data engine's energy
        (:mod:`~halohand.grasp.pose_refine`). Keypoints and meshes are in metres
        in the object's centred frame (``GraspSet.object``); a mesh is first turned to its
        principal frame (``orient="principal"``, the default; ``"keep"``: its own axes), as
        the training objects stand. :meth:`GraspSet.file_keypoints` and
        :meth:`GraspSet.file_meshes` give them in the input file's frame and units.
        """

        if not isinstance(obj, objects.GraspObject):
            obj = objects.object_from_spec(obj, units=units, orient=orient)
        return generate_grasps(self.vae, obj, n, seed, refine=refine, halo=self.halo,
                               meshes=meshes, resolution=resolution,
                               candidates=candidates, refine_pose=refine_pose)  # fmt: skip
