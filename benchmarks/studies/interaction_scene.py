"""End to end on the shipped model: resolve a hand-object penetration with the interaction
fields' gradients, once through the object pose and once through the hand keypoints.

A HALO hand (library gesture ``flat`` by default; ``cylinder`` closes the fingers around
the ball) and a registry ball (``sphere_0``, radius 3.3 cm) pushed ``--push-mm`` into its
palm along the palm normal. The overlap energy ``compose.penetration_energy`` is summed over a
32^3 grid of the box where the two bounding boxes overlap (recomputed each step), and Adam
moves either the object (axis-angle and translation, exact object field, hand mesh field
fixed) or the 21 keypoints (mesh hand field re-extracted at resolution 128 every step,
object fixed), until the energy is zero or the steps run out. Before and after:
``plausibility_report`` (A-PD, M-PD, volume, contact) of the 256 meshes, and how far the
object or the keypoints moved.

    PYTHONPATH=src .venv/bin/python benchmarks/studies/interaction_scene.py \
        --json benchmarks/results/studies/interaction_scene.json
    PYTHONPATH=src .venv/bin/python benchmarks/studies/interaction_scene.py --gesture cylinder \
        --json benchmarks/results/studies/interaction_scene_cylinder.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402


def overlap_points(hand_mesh, obj_vertices, n: int, pad: float = 0.003):
    """Cell centres of the (padded) overlap of the two bounding boxes, or None."""
    import numpy as np
    import torch

    from halohand.interaction import grid_points

    bounds = torch.tensor(np.array(hand_mesh.bounds))
    lo = torch.maximum(bounds[0], obj_vertices.min(0).values) - pad
    hi = torch.minimum(bounds[1], obj_vertices.max(0).values) + pad
    if bool((hi <= lo).any()):
        return None, 0.0
    return grid_points(lo, hi, n)


def report(hand_mesh, obj_mesh) -> dict:
    from halohand.interaction import plausibility_report

    r = plausibility_report([hand_mesh], [obj_mesh], self_intersection_points=50_000)
    ho = r["hand_object"][0]
    keys = ("apd_mm", "mpd_mm", "volume_cm3", "contact_vertex_fraction", "min_distance_mm")
    out = {k: round(float(ho[k]), 4) for k in keys}
    out["contact_parts"] = ho.get("contact_parts", [])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--gesture", default="flat")
    ap.add_argument("--object", default="sphere_0")
    ap.add_argument("--push-mm", type=float, default=10.0)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--grid", type=int, default=32)
    args = ap.parse_args()

    import numpy as np
    import torch
    import trimesh

    from halohand.core.rotations import axis_angle_to_matrix
    from halohand.handmodel.prior import PosePrior
    from halohand.handmodel.webxr import default_model
    from halohand.inference.halo import HALO
    from halohand.interaction import HandField, ObjectField, penetration_energy
    from halohand.objects.registry import load_object

    torch.manual_seed(0)
    model = HALO.pretrained()
    kp0 = np.asarray(default_model().pose(PosePrior().gesture(args.gesture)).keypoints, np.float64)
    hand_mesh = model.reconstruct(kp0, units="m", resolution=256, colors=True)
    obj = load_object(args.object)
    # Put the object on the palm's grasping side, touching the palm surface, then push it
    # in by push_mm along the palm normal.
    palm = kp0[[0, 5, 9, 13, 17]].mean(0)
    normal = np.cross(kp0[5] - kp0[0], kp0[17] - kp0[0])
    normal /= np.linalg.norm(normal)
    if normal @ (kp0[[8, 12, 16]].mean(0) - palm) < 0:
        normal = -normal
    radius = float(np.abs(obj.vertices).max(0)[:2].max())  # a ball: its radius
    surf = ObjectField(hand_mesh)  # the hand mesh's own exact distance, to find its surface
    step = np.linspace(0.0, 0.06, 601)
    out_d = surf(torch.tensor(palm + step[:, None] * normal)).numpy()
    palm_surface = palm + step[np.argmax(out_d > 0)] * normal
    centre = palm_surface + (radius - args.push_mm / 1e3) * normal

    def world(rvec: np.ndarray, t: np.ndarray) -> trimesh.Trimesh:
        m = obj.mesh.copy()
        tf = np.eye(4)
        tf[:3, :3] = axis_angle_to_matrix(rvec)
        tf[:3, 3] = t
        m.apply_transform(tf)
        return m

    doc: dict = {"gesture": args.gesture, "object": args.object, "push_mm": args.push_mm}
    before = report(hand_mesh, world(np.zeros(3), centre))
    doc["before"] = before
    print("before", before, flush=True)

    # 1. Object pose, hand fixed.
    field_obj = ObjectField(obj)
    hand = HandField(model, torch.tensor(kp0), mesh=hand_mesh)
    rvec = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(centre, requires_grad=True)
    opt = torch.optim.Adam([{"params": [t], "lr": 5e-4}, {"params": [rvec], "lr": 1e-2}])
    verts = torch.as_tensor(obj.vertices)
    t0 = time.perf_counter()
    taken = 0
    for _ in range(args.steps):
        r = axis_angle_to_matrix(rvec)
        pts, cell = overlap_points(hand_mesh, (verts @ r.detach().T) + t.detach(), args.grid)
        if pts is None:
            break
        e = penetration_energy(hand, field_obj.posed(r, t), pts, cell)
        if float(e.detach()) == 0.0:
            break
        opt.zero_grad()
        e.backward()
        opt.step()
        taken += 1
    elapsed = time.perf_counter() - t0
    after = report(hand_mesh, world(rvec.detach().numpy(), t.detach().numpy()))
    doc["object_pose"] = {
        "steps": taken, "seconds": round(elapsed, 2),
        "moved_mm": round(float(np.linalg.norm(t.detach().numpy() - centre)) * 1e3, 3),
        "turned_deg": round(float(np.degrees(np.linalg.norm(rvec.detach().numpy()))), 3),
        "after": after,
    }  # fmt: skip
    print("object pose", doc["object_pose"], flush=True)

    # 2. Hand keypoints, object fixed (the hand mesh re-extracted every step).
    obj_posed = field_obj.posed(None, torch.tensor(centre))
    obj_world = torch.as_tensor(world(np.zeros(3), centre).vertices)
    kp = torch.tensor(kp0, requires_grad=True)
    opt = torch.optim.Adam([kp], lr=5e-4)
    t0 = time.perf_counter()
    taken = 0
    for _ in range(args.steps):
        hand = HandField(model, kp, resolution=128)
        pts, cell = overlap_points(hand.mesh, obj_world, args.grid)
        if pts is None:
            break
        e = penetration_energy(hand, obj_posed, pts, cell)
        if float(e.detach()) == 0.0:
            break
        opt.zero_grad()
        e.backward()
        opt.step()
        taken += 1
    elapsed = time.perf_counter() - t0
    kp1 = kp.detach().numpy()
    mesh1 = model.reconstruct(kp1, units="m", resolution=256, colors=True)
    doc["keypoints"] = {
        "steps": taken, "seconds": round(elapsed, 2),
        "mean_joint_move_mm": round(float(np.linalg.norm(kp1 - kp0, axis=1).mean()) * 1e3, 3),
        "max_joint_move_mm": round(float(np.linalg.norm(kp1 - kp0, axis=1).max()) * 1e3, 3),
        "after": report(mesh1, world(np.zeros(3), centre)),
    }  # fmt: skip
    print("keypoints", doc["keypoints"], flush=True)
    emit(doc, args.json, indent=1)


if __name__ == "__main__":
    main()
