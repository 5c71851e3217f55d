"""Refinement of generated grasps in the hand model's pose space, with the data engine's energy.

HALO-VAE's keypoints are a few millimetres off where touching and penetrating differ, and the
paper's refinement moves only the translation. This refinement moves the fingers too:

1. the rigged hand model is fitted to each sample's 21 keypoints
   (:func:`~halohand.fitting.template_fit.fit_templates`: joint angles, bone lengths, palm
   width, size, placement);
2. each sample gets the grasp type, among those the object's geometry allows
   (:func:`~halohand.grasp.taxonomy.choose_types`), whose contact points lie closest to the
   object's surface on the fitted hand (mean absolute signed distance): the sample decides
   how it holds the object, the geometry what is reasonable;
3. each fitted hand is moved rigidly out of the object (``separate_cm``: a wall through
   the palm is otherwise pushed from both faces and stays);
4. the taxonomy engine's energy (:func:`~halohand.grasp.synthesis.optimise_starts`: the
   type's pads on the surface, no penetration either way, force closure, pose prior; the
   space the object encloses, a cup's inside, counts as solid with ``fill_enclosed``) is
   minimised from there for ``steps`` Adam steps, identity fixed, and likewise from
   ``engine_starts`` placements of the same type by the data engine; the lowest final
   energy is the sample's result (on a plate the fitted hand lies on top, where a rim pinch
   cannot close).

The output is the optimised hand's keypoints (rig convention, metres, object frame) and the
engine's own measures of each sample; nothing is filtered or selected (one output per
sample). :func:`~halohand.grasp.generate.generate_grasps` then moves the keypoints until
HALO's surface of them leaves the object (``halo_steps``): the rig and HALO differ by a few
millimetres where the fingers press.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from halohand.core.errors import HalohandInputError
from halohand.fitting.template_fit import FitConfig, fit_templates
from halohand.grasp import taxonomy as tx
from halohand.grasp.synthesis import (
    EnergyWeights,
    GraspStarts,
    SynthesisConfig,
    optimise_starts,
)
from halohand.handmodel.torch_model import TorchHandModel
from halohand.objects.registry import GraspObject

__all__ = ["PoseRefineConfig", "refine_poses"]


@dataclass(frozen=True)
class PoseRefineConfig:
    """Settings of :func:`refine_poses`.

    Attributes:
        steps: Adam steps of the engine's energy; lr: its peak step (cosine decay).
        fit_iterations: Adam steps of the template fit to the sample's keypoints.
        object_points: object surface points of the object-in-hand term.
        press_mm: depth the pads are asked to press into the surface (the engine's).
        min_contacts: only grasp types with at least this many contact points (2: all;
            3 leaves out the two-point pinches; 4 keeps the power wrap and the spherical
            grasp, where the object's geometry allows them, else every allowed type).
        force_closure: weight of the engine's force-closure term (the engine's is 1).
        separate_cm / fill_enclosed: the engine's options
            (:class:`~halohand.grasp.synthesis.SynthesisConfig`): each fitted hand is first
            moved rigidly out of the object, up to this far; the hand keeps out of the space
            the object encloses (a cup's inside).
        engine_starts: per sample, this many more starts of its grasp type placed by the data
            engine from the object's geometry (:func:`~halohand.grasp.taxonomy.place_starts`,
            the sample's identity) are optimised beside the fitted hand, and the one of
            lowest final energy is the sample's output (multi-start optimisation of one
            sample; no simulator or metric chooses). 0: the fitted hand alone.
        anchor: weight of an articulation prior centred on each sample's own fitted joint
            angles (:attr:`~halohand.grasp.synthesis.EnergyWeights.anchor`; the engine
            starts of a sample share its anchor), so the refined hand keeps more of the
            sample's articulation; 0: none.
        halo_steps / halo_step_mm: then, in :func:`~halohand.grasp.generate.generate_grasps`,
            steps of :func:`~halohand.grasp.generate.clear_penetration` (HALO's surface out of
            the object; each moves a hand's keypoints ``halo_step_mm`` together); 0: none.

    The defaults were chosen on the validation objects (``docs/grasp.md``, "Refinement in
    the hand model's pose space"): 800 steps, 4 contacts and force closure x5 took the
    human-plausible share of single samples there from 0.25 (250 steps, every type, x1) to
    0.55-0.59 over two seeds; 3,000 object points (600 before) left that unchanged and took
    the wide split's thin-walled training cups from 2 to 5 of 40. Then (seed 0): moving the
    fitted hands out first (``separate_cm=10``) 0.54 -> 0.59 (cups 5 -> 8 of 40); keeping out
    of the space the object encloses (``fill_enclosed``) took the cups to 16 of 40; HALO's
    surface out of the object (``halo_steps=20``) 0.59 -> 0.73, cups 16 -> 22 of 40; one
    engine-placed start beside each fitted hand (``engine_starts=1``) 0.73 -> 0.88, and on
    four plates of the wide split and four small boxes (2-3 cm thick) 0.16 -> 0.72.
    """

    steps: int = 800
    lr: float = 0.02
    fit_iterations: int = 150
    object_points: int = 3000
    press_mm: float = 3.0
    min_contacts: int = 4
    force_closure: float = 5.0
    separate_cm: float = 10.0
    fill_enclosed: bool = True
    halo_steps: int = 20
    halo_step_mm: float = 0.5
    engine_starts: int = 1
    anchor: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.fit_iterations < 1 or self.object_points < 1:
            raise HalohandInputError("steps, fit_iterations and object_points must be >= 1")
        if not self.lr > 0:
            raise HalohandInputError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.press_mm <= 10:
            raise HalohandInputError(f"press_mm must be in [0, 10], got {self.press_mm}")
        if not 0 <= self.engine_starts <= 8:
            raise HalohandInputError(f"engine_starts must be in 0..8, got {self.engine_starts}")
        if self.halo_steps < 0 or not self.halo_step_mm > 0:
            raise HalohandInputError("halo_steps must be >= 0 and halo_step_mm positive")
        if not 0 <= self.anchor <= 1e4:
            raise HalohandInputError(f"anchor must be in [0, 1e4], got {self.anchor}")
        if not 2 <= self.min_contacts <= 6:
            raise HalohandInputError(f"min_contacts must be in 2..6, got {self.min_contacts}")


def refine_poses(
    obj: GraspObject,
    keypoints: np.ndarray,
    seed: int = 0,
    config: PoseRefineConfig | None = None,
) -> dict[str, Any]:
    """Refine right-hand grasps of ``obj`` in the hand model's pose space.

    Args:
        obj: the object (its frame, metres).
        keypoints: ``[n, 21, 3]`` right-hand keypoints (metres, object frame, project
            order), e.g. HALO-VAE samples.
        seed: seeds the object points of the object-in-hand term.
        config: :class:`PoseRefineConfig`.

    Returns:
        :func:`~halohand.grasp.synthesis.optimise_starts`'s arrays over the ``n`` samples
        (``keypoints [n, 21, 3]`` float32 metres, ``grasp_type``, the engine's measures;
        ``accepted`` is its filter without the simulator) plus ``fit_error_mm [n]``: the
        template fit's mean keypoint error, and with ``engine_starts`` ``engine_start [n]``
        bool: the output came from an engine-placed start.
    """
    cfg = PoseRefineConfig() if config is None else config
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (21, 3) or len(kp) == 0:
        raise HalohandInputError(f"keypoints must be [n, 21, 3], got {list(kp.shape)}")
    fits = fit_templates(
        kp, "right", FitConfig(iterations=cfg.fit_iterations, starts=("mean",), with_mesh=True)
    )
    verts = np.stack([f.vertices for f in fits])
    shares = tx.choose_types(tx.analyse(obj))
    allowed = [
        tx.TYPE_NAMES.index(t)
        for t in shares
        if len(tx.GRASP_TYPES[t].contacts) >= cfg.min_contacts
    ] or [tx.TYPE_NAMES.index(t) for t in shares]  # none left: every allowed type
    types = _closest_types(obj, verts, allowed)
    pts, _ = obj.surface_points(cfg.object_points, seed=seed)
    angles = np.stack([f.pose.as_array() for f in fits])
    anchor = angles.copy()
    rotation = np.stack([f.rotation for f in fits])
    translation = np.stack([f.translation for f in fits])
    factors = np.stack([f.identity.length_factors for f in fits])
    width = np.array([f.identity.palm_width for f in fits])
    length = np.array([f.identity.hand_length for f in fits])
    n, k = len(fits), cfg.engine_starts
    if k:
        # Each sample's type and identity, placed k more times from the object's geometry.
        rep = np.repeat(np.arange(n), k)
        model = TorchHandModel()
        f_t, w_t = torch.tensor(factors[rep]), torch.tensor(width[rep])
        a, r, t = tx.place_starts(
            obj, types[rep], np.random.default_rng(seed), model, f_t, w_t,
            model.scale_for_hand_length(torch.tensor(length[rep]), f_t, w_t), "right",
            length[rep],
        )  # fmt: skip
        pick = np.concatenate([np.arange(n), rep])
        angles = np.concatenate([angles, a])
        rotation, translation = np.concatenate([rotation, r]), np.concatenate([translation, t])
        factors, width, length, types = factors[pick], width[pick], length[pick], types[pick]
        anchor = anchor[pick]
    starts = GraspStarts(
        angles=angles, rotation=rotation, translation=translation, length_factors=factors,
        palm_width=width, hand_length=length,
        power=np.array([tx.GRASP_TYPES[tx.TYPE_NAMES[t]].power for t in types]),
        types=types, object_points=pts, anchor_angles=anchor if cfg.anchor > 0 else None,
    )  # fmt: skip
    engine = SynthesisConfig(
        steps=cfg.steps, lr=cfg.lr, taxonomy=True, max_penetration_mm=5.0,
        finger_capsules=True, stability_filter=False, press_mm=cfg.press_mm,
        weights=EnergyWeights(force_closure=cfg.force_closure, anchor=cfg.anchor),
        separate_cm=cfg.separate_cm,
        fill_enclosed=cfg.fill_enclosed,
    )  # fmt: skip
    out = optimise_starts(obj, starts, "right", engine)
    if k:
        # Per sample, the start of lowest final energy (sample i's rows: i, then n + i*k ...).
        rows = np.concatenate([np.arange(n)[:, None], n + np.arange(n * k).reshape(n, k)], 1)
        best = rows[np.arange(n), out["energy"][rows].argmin(1)]
        out = {key: (v[best] if np.ndim(v) and len(v) == n * (1 + k) else v)
               for key, v in out.items()}  # fmt: skip
        out["engine_start"] = best >= n
    out["fit_error_mm"] = np.array([f.keypoint_error_mm for f in fits])
    return out


def _closest_types(obj: GraspObject, verts: np.ndarray, allowed: list[int]) -> np.ndarray:
    """``[n]`` type index per posed template ``[n, V, 3]``: of the ``allowed`` types, the one
    whose contact points are nearest the surface (mean absolute signed distance)."""
    cverts = tx.contact_vertices()
    names = list(cverts)
    n = len(verts)
    d = obj.signed_distance(verts[:, [cverts[c] for c in names]].reshape(-1, 3))
    d = np.abs(d.reshape(n, len(names)))
    cost = np.stack(
        [
            d[:, [names.index(c) for c in tx.GRASP_TYPES[tx.TYPE_NAMES[t]].contacts]].mean(1)
            for t in allowed
        ],
        1,
    )
    return np.asarray(allowed)[cost.argmin(1)]
