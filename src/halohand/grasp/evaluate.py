"""Grasp evaluation of HALO-VAE's Table 3 (``halohand grasp evaluate``).

Per object, ``n`` grasps (keypoints, metres, object frame) are meshed with HALO and scored
against the object mesh (:mod:`halohand.grasp.metrics`):

- intersection volume (cm^3, 1 mm voxels), mean over the grasps;
- contact ratio: fraction of grasps with a hand vertex inside the object;
- diversity over all grasps of all objects: entropy of a k = 20 k-means histogram of the
  canonicalized keypoints and the mean distance to the assigned centre (cm);
- time per grasp of the generator (sampling, refinement), and of HALO's meshes;
- beside the paper's: maximum penetration depth (mm), per-finger contact, thumb-finger
  opposition (:func:`~halohand.grasp.metrics.contact_checks`), and with ``physics`` the
  simulated six-direction stability (:mod:`halohand.grasp.stability`) and the share of
  human-plausible grasps (stable, penetration <= 5 mm, opposition).

The grasp source is either a trained VAE (sampled here) or the data engine's grasps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from halohand.core.errors import HalohandInputError
from halohand.grasp.energies import valid_hands
from halohand.grasp.generate import generate_grasps
from halohand.grasp.metrics import (
    FINGERS,
    MAX_PENETRATION_MM,
    contact_checks,
    diversity,
    human_plausible,
    intersection_volume,
    min_signed_distance,
)
from halohand.grasp.pose_refine import PoseRefineConfig
from halohand.grasp.stability import DIRECTION_NAMES, MAX_SHIFT_M, simulate_grasp
from halohand.grasp.synthesis import load_grasps
from halohand.grasp.vae import load_vae

if TYPE_CHECKING:
    from halohand.inference.halo import HALO
    from halohand.objects.registry import GraspObject

__all__ = ["engine_source", "evaluate_grasps", "vae_source"]

#: ``source(obj, n, seed) -> (keypoints [n, 21, 3] metres, seconds of generation)``.
GraspSource = Callable[["GraspObject", int, int], tuple[np.ndarray, float]]


def vae_source(
    model_path: str,
    refine: bool,
    halo: HALO,
    refine_steps: int = 10,
    candidates: int = 1,
    pose_config: PoseRefineConfig | None = None,
) -> GraspSource:
    """Sample from a saved VAE (:func:`~halohand.grasp.vae.load_vae`), optionally refined,
    best of ``candidates`` per grasp (:func:`~halohand.grasp.generate.generate_grasps`);
    with ``pose_config`` each sample is also refined in the hand model's pose space
    (:func:`~halohand.grasp.pose_refine.refine_poses`) with those settings."""

    vae, _ = load_vae(model_path)

    def source(obj: GraspObject, n: int, seed: int) -> tuple[np.ndarray, float]:
        gs = generate_grasps(vae, obj, n, seed, refine=refine, halo=halo,
                             refine_steps=refine_steps, candidates=candidates,
                             refine_pose=pose_config is not None,
                             pose_config=pose_config)  # fmt: skip
        return gs.keypoints, sum(gs.seconds.values())

    return source


def engine_source(grasps_dir: str) -> GraspSource:
    """Accepted right-hand grasps of the data engine (``halohand grasp synthesize``)."""

    g = load_grasps(grasps_dir)
    right = np.asarray(g["side"]).astype(str) == "right"
    ids = np.asarray(g["object_id"]).astype(str)[right]
    kp = np.asarray(g["keypoints"], dtype=np.float64)[right]
    # Generation cost: the engine's own accounting (compute seconds per accepted grasp).
    summary = Path(grasps_dir) / "summary.json"
    per_grasp = float("nan")
    if summary.is_file():
        per_grasp = float(json.loads(summary.read_text()).get("seconds_per_accepted", "nan"))

    def source(obj: GraspObject, n: int, seed: int) -> tuple[np.ndarray, float]:
        mine = kp[ids == obj.object_id]
        if len(mine) < n:
            raise HalohandInputError(
                f"{grasps_dir} has {len(mine)} accepted grasps of {obj.object_id}, need {n}"
            )
        return mine[:n], per_grasp * n

    return source


def evaluate_grasps(
    source: GraspSource,
    objects: list[GraspObject],
    halo: HALO,
    n: int = 20,
    seed: int = 0,
    resolution: int = 128,
    keep_meshes: int = 0,
    progress: bool = True,
    physics: bool = False,
) -> dict[str, Any]:
    """Score ``n`` grasps per object; returns per-object rows, means and kept meshes.

    ``keep_meshes``: per object, that many (hand mesh, object) pairs are returned under
    ``"scenes"`` for a contact sheet. ``physics``: also run the stability simulation
    (0.3-0.9 s per grasp here) and the human-plausible share. ``"grasps"`` holds one record per
    grasp (object, index, the checks), in the order of ``"scenes"`` within each object.
    """
    import torch
    from tqdm import tqdm

    rows, all_kp, scenes, records = [], [], [], []
    bar = tqdm(objects, desc="grasp evaluate", unit="object", disable=not progress)
    for i, obj in enumerate(bar):
        kp, gen_s = source(obj, n, seed + i)
        # A generated skeleton with a degenerate bone has no HALO surface: it is reported
        # as invalid and counts as a failed grasp (no contact, no volume).
        ok = valid_hands(torch.as_tensor(kp * 100.0)).numpy()
        t = time.perf_counter()
        meshes = (
            halo.reconstruct_batch(kp[ok], "right", "m", resolution=resolution, convention="rig")
            if ok.any()
            else []
        )
        mesh_s = time.perf_counter() - t
        # A skeleton HALO gives no surface (a far-off decoder output) fails the same way.
        has_surface = np.array([len(m.vertices) > 0 for m in meshes], dtype=bool)
        ok[np.flatnonzero(ok)[~has_surface]] = False
        meshes = [m for m, keep in zip(meshes, has_surface, strict=True) if keep]
        vol = [intersection_volume(m.vertices, m.faces, obj.vertices, obj.faces) for m in meshes]
        dmin = np.array([min_signed_distance(m.vertices, obj.vertices, obj.faces) for m in meshes])
        bad = int((~ok).sum())
        recs = _grasp_records(meshes, obj, physics)
        records.extend(recs)
        rows.append(
            {
                "object": obj.object_id,
                "invalid": bad,
                "intersection_cm3": float(np.sum(vol) / n),
                "intersection_max_cm3": float(np.max(vol, initial=0.0)),
                "contact_ratio": float(np.sum(dmin < 0.0) / n),
                "penetration_mm": float(np.mean(np.maximum(-dmin, 0.0)) * 1000.0)
                if len(dmin)
                else float("nan"),
                "gap_mm": float(np.mean(np.maximum(dmin, 0.0)) * 1000.0)
                if len(dmin)
                else float("nan"),
                "generate_s_per_grasp": gen_s / n,
                "mesh_s_per_grasp": mesh_s / max(len(meshes), 1),
                **_shares(recs, n, physics),
            }
        )
        all_kp.append(kp[ok])
        scenes.extend((m, obj) for m in meshes[:keep_meshes])
    kp = np.concatenate(all_kp)
    entropy = size = float("nan")  # undefined for fewer grasps than clusters
    if len(kp) >= 20:
        entropy, size = diversity(kp, "right", k=20, seed=seed)
    keys = [k for k in rows[0] if k != "object"]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    mean["intersection_max_cm3"] = float(np.max([r["intersection_max_cm3"] for r in rows]))
    mean["invalid"] = int(sum(r["invalid"] for r in rows))
    mean.update(diversity_entropy=entropy, cluster_size_cm=size, grasps=len(kp))
    return {
        "objects": rows, "mean": mean, "scenes": scenes, "keypoints": kp, "grasps": records,
    }  # fmt: skip


def _grasp_records(meshes: list[Any], obj: GraspObject, physics: bool) -> list[dict[str, Any]]:
    """Contact checks (and the stability test) of each meshed grasp of ``obj``."""
    out = []
    # Surface samples (~2-3 mm apart on a hand-sized object) for the object-in-hand depth.
    surface = np.concatenate([obj.surface_points(4000, 0)[0], obj.vertices])
    for i, m in enumerate(meshes):
        labels = m.vertex_attributes.get("part")
        if labels is None:
            raise HalohandInputError("grasp meshes need HALO part labels (colors=True)")
        c = contact_checks(m.vertices, m.faces, labels, obj.vertices, obj.faces, surface)
        rec: dict[str, Any] = {
            "object": obj.object_id,
            "index": i,
            "max_penetration_mm": c.max_penetration_mm,
            "hand_in_object_mm": c.hand_in_object_mm,
            "object_in_hand_mm": c.object_in_hand_mm,
            "touching": {f: bool(t) for f, t in zip(FINGERS, c.touching, strict=True)},
            "opposition": c.opposition,
        }
        if physics:
            st = simulate_grasp(m, obj)
            rec.update(
                stable=st.stable,
                shift_mm={d: float(x * 1000.0) for d, x in zip(DIRECTION_NAMES, st.shift_m,
                                                                 strict=True)},
                start_overlap_mm=st.start_overlap_mm,
                plausible=human_plausible(st.stable, c.max_penetration_mm, c.opposition),
            )  # fmt: skip
        out.append(rec)
    return out


def _shares(recs: list[dict[str, Any]], n: int, physics: bool) -> dict[str, float]:
    """Per-object shares over all ``n`` grasps (a grasp without a mesh fails every check)."""
    pen = np.array([r["max_penetration_mm"] for r in recs])
    out = {
        "max_penetration_mm": float(pen.mean()) if len(pen) else float("nan"),
        "penetration_ok": float(np.sum(pen <= MAX_PENETRATION_MM) / n),
        "opposition": float(sum(r["opposition"] for r in recs) / n),
    }
    for f in FINGERS:
        out[f"touch_{f}"] = float(sum(r["touching"][f] for r in recs) / n)
    if physics:
        out["stable"] = float(sum(r["stable"] for r in recs) / n)
        for d in DIRECTION_NAMES:
            holds = sum(r["shift_mm"][d] < MAX_SHIFT_M * 1000.0 for r in recs)
            out[f"holds_{d}"] = float(holds / n)
        out["plausible"] = float(sum(r["plausible"] for r in recs) / n)
    return out
