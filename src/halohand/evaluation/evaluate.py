"""``halohand evaluate``: meshes from a trained model, scored against the data's ground truth.

Per hand of a split (spec ``halo-model-training-eval.md`` section 4):

1. **Mesh.** The project's hierarchical extraction (:func:`halohand.inference.extract_mesh`,
   level ``threshold`` in probability, by default the model's ``iso_level``: 0.5 unless
   calibrated) over a cube around the hand: by default (``box="keypoints"``) centred on the
   keypoints' bounding box, side = its longest extent + 2 x ``padding_m`` (4 cm: the ground-
   truth surface reaches up to ~2.7 cm past the keypoint box at the wrist), i.e. ~0.28 m, so
   resolution 256 gives ~1.1 mm voxels. ``box="data"`` uses the data's uniform-point cube
   (+-0.22 m around the wrist, the original's 1.1-unit box; 1.7 mm voxels at 256). A surface
   predicted outside the box is cut off (the grid is closed by padding).
2. **IoU** of the mesh's inside (generalized winding number, :func:`halohand.inference.contains`)
   vs the labels, on the hand's 100k uniform points (``iou_uniform``) and on the mixed set
   of 100k uniform + 100k near-surface points (``iou_mixed``; the original's validation and
   evaluation IoU, 0.9358 for the released model, is of this kind).
3. **Chamfer-L1** = 1/2 (completeness + accuracy), unsquared nearest-neighbour distances
   between 100k area-uniform samples of the predicted mesh and the 100k ground-truth surface
   samples (:func:`halohand.evaluation.mesh_metrics`). Reported in mm (x1000 of metres),
   metres, and HALO units (metres / 0.4, the unit of the original's ``eval_meshes.csv``; mm =
   400 x that value). Chamfer-L2 in mm^2. **Normal consistency** with orientation ignored.

An empty mesh counts IoU 0; its Chamfer / normal values are left empty and excluded from the
means (``empty_meshes`` counts them). Outputs are written atomically: a JSON with the means,
settings and per-hand rows, and a per-hand CSV ending in a ``mean`` row.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from halohand.core.atomic import write_text_atomic
from halohand.core.device import select_device
from halohand.core.errors import HalohandInputError
from halohand.core.units import HALO_UNIT_M
from halohand.data import constants as C
from halohand.data.dataset import OccupancyDataset
from halohand.data.engine import verify
from halohand.evaluation.metrics import iou, mesh_metrics
from halohand.fields.inputs import network_inputs
from halohand.fields.io import load_any_model
from halohand.inference.bodies import body_stats
from halohand.inference.extract import extract_mesh
from halohand.inference.halo import HALO, keypoint_box, prepare_hands, touching_contacts
from halohand.inference.query import query_occupancy
from halohand.objects.inside import contains

__all__ = ["CSV_COLUMNS", "evaluate", "hand_box"]

#: Per-hand columns of the CSV (and keys of the JSON rows).
CSV_COLUMNS = (
    "hand", "hand_index", "side", "iou_uniform", "iou_mixed", "chamfer_l1_mm", "chamfer_l1_m",
    "chamfer_l1_halo", "chamfer_l2_mm2", "normal_consistency", "vertices", "faces",
    "watertight", "mesh_s", "metrics_s", "seconds",
)  # fmt: skip
_MEAN_KEYS = (
    "iou_uniform", "iou_mixed", "chamfer_l1_mm", "chamfer_l1_m", "chamfer_l1_halo",
    "chamfer_l2_mm2", "normal_consistency", "mesh_s", "metrics_s", "seconds",
)  # fmt: skip
DEFAULT_PADDING_M = 0.04


@torch.no_grad()
def predict_points(
    net: torch.nn.Module,
    model_config: Any,
    item: dict[str, torch.Tensor],
    points_m: torch.Tensor,
    device: torch.device,
    chunk: int | None = None,
) -> torch.Tensor:
    """Occupancy probability ``[N]`` of one data hand at ``points_m`` ``[N, 3]`` (metres).

    ``item`` is a dataset item (``keypoints``, ``side``, ``part_transforms``,
    ``bone_lengths``); works for both transform sources, through the one query loop
    (:func:`~halohand.inference.query.query_occupancy`). ``chunk``: points per network
    call (default 4096 on CPU, where small chunks stay in cache; 131072 on CUDA).
    """
    if chunk is None:
        chunk = 131_072 if device.type == "cuda" else 4096
    inputs = network_inputs(
        model_config, item["keypoints"][None].to(device), item["side"].reshape(1).to(device),
        item["part_transforms"][None].to(device), item["bone_lengths"][None].to(device),
    )  # fmt: skip
    occ, _ = query_occupancy(
        net, inputs, points_m[None].to(device), chunk_size=chunk, return_parts=False
    )
    return occ[0]


def hand_box(
    keypoints_m: np.ndarray, box: str = "keypoints", padding_m: float = DEFAULT_PADDING_M
) -> tuple[np.ndarray, np.ndarray]:
    """Extraction cube ``(bmin [3], bmax [3])`` in metres (hand frame); see module docstring."""
    if box == "data":
        h = C.BOX_HALF_SIDE_M
        return np.full(3, -h), np.full(3, h)
    if box != "keypoints":
        raise HalohandInputError(f"unknown box {box!r}; expected 'keypoints' or 'data'")
    return keypoint_box(keypoints_m, padding_m)


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def evaluate(
    checkpoint: str | os.PathLike[str],
    data: str | os.PathLike[str],
    split: str = "test",
    json_out: str | os.PathLike[str] | None = None,
    csv_out: str | os.PathLike[str] | None = None,
    resolution: int = 256,
    coarse_resolution: int = 32,
    limit: int | None = None,
    box: str = "keypoints",
    padding_m: float = DEFAULT_PADDING_M,
    n_samples: int = 100_000,
    device: str = "auto",
    mesh_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    chunk: int | None = None,
    threshold: float | None = None,
    keypoint_convention: str = "rig",
    touching: str = "merge",
) -> dict[str, Any]:
    """Evaluate a model on the hands of a split; see the module docstring.

    Args:
        checkpoint: ``*.safetensors`` model or a training ``checkpoint.pt``.
        data: data folder (``halohand data generate --out``).
        split: ``train``, ``val`` or ``test``.
        json_out: summary JSON path (optional); ``csv_out``: per-hand CSV path (default:
            ``json_out`` with suffix ``.csv``).
        resolution / coarse_resolution: extraction lattice cells per axis (final / first
            level; the ratio must be a power of two).
        limit: evaluate only the first ``limit`` hands.
        box / padding_m: extraction cube (:func:`hand_box`).
        n_samples: surface samples on the predicted mesh for Chamfer / normals.
        device: ``auto`` (cuda if available), ``cpu`` or ``cuda[:N]``.
        mesh_dir: also write each predicted mesh as ``<mesh_dir>/hand_<i>.ply`` (metres).
        chunk: query points per network call (default: 4096 on CPU, 131072 on CUDA).
        threshold: iso-level of the extracted surface, in probability (0 < t < 1); default:
            the model's ``iso_level`` (0.5 unless calibrated).
        keypoint_convention: the keypoints the model is given: ``"rig"`` (the data's tip
            joints) or ``"mano"`` (each fingertip on the skin at the end of the finger, as
            MANO-based datasets place it; :func:`~halohand.handmodel.skin_tips.
            skin_tip_keypoints`), read as ``convention="mano"`` through ``HALO.meshes``
            (keypoint-driven models only).
        touching: where parts that are not joined touch, ``"merge"`` or keep them
            ``"apart"`` (:meth:`~halohand.inference.halo.HALO.meshes`; keypoint-driven
            models only).

    Returns:
        The JSON document (``mean``, ``per_hand``, settings).
    """
    if resolution < 2 or coarse_resolution < 1:
        raise HalohandInputError("resolution must be >= 2 and coarse resolution >= 1")
    if keypoint_convention not in ("rig", "mano"):
        raise HalohandInputError(
            f"unknown keypoint convention {keypoint_convention!r}; expected rig, mano"
        )
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise HalohandInputError(f"threshold must be in (0, 1), got {threshold}")
    kept_apart = touching_contacts(touching) is not None
    if limit is not None and limit < 1:
        raise HalohandInputError(f"--limit must be >= 1, got {limit}")
    dev = select_device(device)
    net = load_any_model(checkpoint, dev)
    mcfg = net.config
    if threshold is None:
        threshold = float(getattr(mcfg, "iso_level", 0.5))
    # Every shard of the split is checked (hashes, CRCs) before the long meshing starts,
    # so a damaged file fails in seconds instead of after minutes of work.
    verify(data, splits=[split])
    ds = OccupancyDataset(data, split, n_points=1, n_surface=1, seed=0)
    n = len(ds) if limit is None else min(limit, len(ds))
    if n == 0:
        raise HalohandInputError(f"{data}: the {split} split holds no hands")
    if mesh_dir is not None:
        Path(mesh_dir).mkdir(parents=True, exist_ok=True)
    # Keypoint-driven models are meshed by HALO.meshes (what users call); models on
    # ground-truth transforms (baselines) and the data box use the plain extraction.
    halo = None
    if mcfg.transforms == "keypoints" and box == "keypoints":
        halo = HALO(net, chunk_size=chunk, padding_m=padding_m)
        halo.iso_level = float(threshold)
    elif kept_apart:
        raise HalohandInputError("touching parts are kept apart by HALO's keypoint path only")
    elif keypoint_convention != "rig":
        raise HalohandInputError(
            "skin-tip keypoints are read through HALO's keypoint path: they need a "
            "keypoint-driven model and the keypoint box"
        )

    rows: list[dict[str, Any]] = []
    for i in tqdm(range(n), desc=f"evaluate {split}", disable=not progress, file=sys.stderr):
        t0 = time.perf_counter()
        item = ds[i]
        hand = ds.hand(i)

        if halo is not None:  # the shipped path: HALO.meshes, as users call it
            # named, not detected: the data's keypoints are the rig's whatever their
            # proportions (toy hands)
            skin = keypoint_convention == "mano"
            prepared = prepare_hands(
                ds.keypoints(i, skin_tips=skin), hand["side"], "m", device=dev,
                convention=keypoint_convention, native=halo.native,
            )  # fmt: skip
            mesh = next(halo.meshes(prepared, resolution, colors=False,
                                    coarse_resolution=coarse_resolution,
                                    touching=touching))  # fmt: skip
        else:

            def occupancy(points: np.ndarray, item: dict[str, torch.Tensor] = item) -> np.ndarray:
                p = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
                return predict_points(net, mcfg, item, p, dev, chunk).cpu().numpy()

            bmin, bmax = hand_box(hand["keypoints"], box, padding_m)
            mesh = extract_mesh(occupancy, bmin, bmax, resolution, coarse_resolution, threshold)
        t1 = time.perf_counter()
        pts_all = np.concatenate([hand["points_uniform"], hand["points_near"]])
        occ_all = np.concatenate([hand["occ_uniform"], hand["occ_near"]])
        m = mesh_metrics(
            mesh, pts_all, occ_all, hand["pointcloud"], hand["pointcloud_normals"], n_samples
        )
        empty = len(mesh.faces) == 0
        bodies = body_stats(mesh)
        if empty:
            iou_u = iou(np.zeros(len(hand["occ_uniform"]), bool), hand["occ_uniform"])
        else:
            inside = contains(mesh.vertices, mesh.faces, hand["points_uniform"])
            iou_u = iou(inside, hand["occ_uniform"])
        t2 = time.perf_counter()
        if mesh_dir is not None and not empty:
            mesh.export(Path(mesh_dir) / f"hand_{i:05d}.ply")
        nan = float("nan")
        rows.append({
            "hand": i,
            "hand_index": int(hand["hand_index"]),
            "side": hand["side"],
            "iou_uniform": float(iou_u),
            "iou_mixed": float(m.iou),
            "chamfer_l1_mm": nan if empty else m.chamfer_l1 * 1000.0,
            "chamfer_l1_m": nan if empty else m.chamfer_l1,
            "chamfer_l1_halo": nan if empty else m.chamfer_l1 / HALO_UNIT_M,
            "chamfer_l2_mm2": nan if empty else m.chamfer_l2 * 1e6,
            "normal_consistency": nan if empty else m.normal_consistency,
            "vertices": len(mesh.vertices),
            "faces": len(mesh.faces),
            "watertight": bool(mesh.is_watertight) if not empty else False,
            # topology: connected bodies and the largest one's genus (tunnels)
            "bodies": bodies.count,
            "genus": int(bodies.genus[0]) if bodies.count else -1,
            "mesh_s": t1 - t0,
            "metrics_s": t2 - t1,
            "seconds": t2 - t0,
        })  # fmt: skip

    mean: dict[str, Any] = {}
    for key in _MEAN_KEYS:
        vals = np.array([r[key] for r in rows], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        mean[key] = float(vals.mean()) if len(vals) else None
    mean["watertight_fraction"] = float(np.mean([r["watertight"] for r in rows]))
    mean["one_body_genus_0_fraction"] = float(
        np.mean([r["bodies"] == 1 and r["genus"] == 0 for r in rows])
    )
    doc: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "data": str(data),
        "split": split,
        "hands": n,
        "empty_meshes": int(sum(r["faces"] == 0 for r in rows)),
        "variant": mcfg.variant,
        "transforms": mcfg.transforms,
        "keypoint_convention": keypoint_convention,
        "touching": touching,
        "extraction": {
            "resolution": resolution,
            "coarse_resolution": coarse_resolution,
            "threshold": threshold,
            "box": box,
            "padding_m": padding_m if box == "keypoints" else None,
        },  # fmt: skip
        "surface_samples": n_samples,
        "device": str(dev),
        "units": {
            "chamfer_l1_mm": "millimetres (1000 x metres)",
            "chamfer_l1_m": "metres",
            "chamfer_l1_halo": "HALO units = metres / 0.4 (the original's eval_meshes.csv unit)",
            "chamfer_l2_mm2": "square millimetres",
            "iou_mixed": "100k uniform + 100k near-surface points",
            "iou_uniform": "100k uniform points in the +-0.22 m cube",
            "seconds": "wall time per hand (mesh_s: extraction, metrics_s: metrics)",
        },
        "mean": mean,
        "per_hand": [{k: _nan_to_none(v) for k, v in r.items()} for r in rows],
    }
    if json_out is not None:
        write_text_atomic(Path(json_out), json.dumps(doc, indent=1, allow_nan=False) + "\n")
        if csv_out is None:
            csv_out = Path(json_out).with_suffix(".csv")
    if csv_out is not None:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow(["" if _nan_to_none(r[c]) is None else r[c] for c in CSV_COLUMNS])
        writer.writerow(
            ["mean", "", ""]
            + ["" if mean.get(c) is None else mean[c] for c in CSV_COLUMNS[3:10]]
            + ["", "", mean["watertight_fraction"]]
            + [mean[c] for c in CSV_COLUMNS[13:]]
        )
        write_text_atomic(Path(csv_out), buf.getvalue())
    return doc
