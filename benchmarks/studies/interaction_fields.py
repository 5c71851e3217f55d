"""Errors of the interaction fields: HALO hand distances and gridded object distances
against exact mesh distances, near the surface, plus the keypoint-gradient checks.

Hand field (the shipped model): for each hand (library gestures and prior samples), the
reference is the exact signed distance to the mesh HALO extracts at resolution 256; query
points are area-uniform surface samples pushed along the face normal by U(-12, 12) mm.
Reported per band ``|d_ref| < 2 / 5 / 10 mm``: the first-order estimate (default clamp 5
mm, and unclamped) and the mesh method on a cheaper 128 extraction. Gradient checks: the
network normal at each closest point against the mesh's closest-point direction (the two
gradients the mesh method combines), and the keypoint gradient of one joint (tips,
a PIP) against central differences of re-extracted meshes (``eps`` = 1 mm).

Object field: registry objects, the grid (``GraspObject.sdf_grid``, 64 and 128 per axis,
5 cm margin) against the exact distance at points within +-10 mm of the surface; query
times of both.

    PYTHONPATH=src .venv/bin/python benchmarks/studies/interaction_fields.py \
        --json benchmarks/results/studies/interaction_fields.json \
        --figure docs/interaction_sdf_slice.png
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import emit  # noqa: E402

BANDS_MM = (2.0, 5.0, 10.0)


def band_stats(err_m, ref_m) -> dict:
    import numpy as np

    out = {}
    for b in BANDS_MM:
        m = np.abs(ref_m) < b / 1e3
        e = np.abs(err_m[m]) * 1e3
        out[f"{b:g}mm"] = {
            "n": int(m.sum()),
            "mean_mm": round(float(e.mean()), 4),
            "p50_mm": round(float(np.percentile(e, 50)), 4),
            "p95_mm": round(float(np.percentile(e, 95)), 4),
            "max_mm": round(float(e.max()), 4),
        }
    return out


def near_surface(mesh, n: int, band: float, seed: int):
    import numpy as np
    import trimesh

    pts, face = trimesh.sample.sample_surface(mesh, n, seed=seed)
    off = np.random.default_rng(seed).uniform(-band, band, (n, 1))
    return pts + off * np.asarray(mesh.face_normals)[face]


def pooled(per_item: list[dict], key: str) -> dict:
    """Band stats pooled over items (n-weighted means, max of maxima, mean of p95s)."""
    import numpy as np

    out = {}
    for b in per_item[0][key]:
        rows = [it[key][b] for it in per_item]
        n = np.array([r["n"] for r in rows])
        out[b] = {
            "n": int(n.sum()),
            "mean_mm": round(
                float(sum(r["mean_mm"] * k for r, k in zip(rows, n, strict=True)) / n.sum()), 4
            ),
            "p95_mm_mean_over_items": round(float(np.mean([r["p95_mm"] for r in rows])), 4),
            "max_mm": round(float(max(r["max_mm"] for r in rows)), 4),
        }
    return out


def hand_study(args) -> dict:
    import numpy as np
    import torch

    from halohand.handmodel.prior import PosePrior
    from halohand.handmodel.webxr import WebXRHandSource, default_model
    from halohand.inference.halo import HALO
    from halohand.interaction import HandField
    from halohand.interaction.object_field import closest_points

    model = HALO.pretrained()
    prior, hand_model = PosePrior(), default_model()
    hands = [(g, hand_model.pose(prior.gesture(g)).keypoints) for g in args.gestures]
    rng = np.random.default_rng(args.seed)
    source = WebXRHandSource()
    hands += [(f"sample{i}", source.sample(rng, "right").keypoints) for i in range(args.samples)]
    rows = []
    fd_rows = []
    for name, kp in hands:
        kp = np.asarray(kp, dtype=np.float64)
        t0 = time.perf_counter()
        ref = model.reconstruct(kp, units="m", resolution=256, colors=False)
        t_mesh256 = time.perf_counter() - t0
        v, f = np.asarray(ref.vertices), np.asarray(ref.faces)
        x = near_surface(ref, args.points, 0.012, seed=args.seed)
        d_ref, closest, _ = closest_points(x, v, f)
        row = {"hand": name, "vertices_256": len(v), "extract_256_s": round(t_mesh256, 3)}
        # First-order estimate, as shipped (clamp 5 mm) and unclamped; timed with the
        # backward pass to the keypoints.
        k = torch.tensor(kp, requires_grad=True)
        fo = HandField(model, k, method="first_order")
        t0 = time.perf_counter()
        d_fo = fo(torch.tensor(x))
        d_fo.sum().backward()
        row["first_order_query_backward_s"] = round(time.perf_counter() - t0, 3)
        d_fo = d_fo.detach().numpy()
        d_fo_free = HandField(model, kp, method="first_order", clamp=1.0)(torch.tensor(x)).numpy()
        d_fo_2 = HandField(model, kp, method="first_order", clamp=0.002)(torch.tensor(x)).numpy()
        row["first_order"] = band_stats(d_fo - d_ref, d_ref)
        row["first_order_clamp2mm"] = band_stats(d_fo_2 - d_ref, d_ref)
        row["first_order_unclamped"] = band_stats(d_fo_free - d_ref, d_ref)
        near = np.abs(d_ref) < 0.005
        row["first_order_sign_agreement_5mm"] = round(
            float(np.mean(np.sign(d_fo_free[near]) == np.sign(d_ref[near]))), 4
        )
        # The mesh method on a cheaper extraction.
        t0 = time.perf_counter()
        m128 = model.reconstruct(kp, units="m", resolution=128, colors=False)
        row["extract_128_s"] = round(time.perf_counter() - t0, 3)
        d128 = closest_points(x, m128.vertices, m128.faces)[0]
        row["mesh_128"] = band_stats(d128 - d_ref, d_ref)
        # Mesh method: value = mesh distance; its two gradients (network normal at the
        # closest point for the keypoints, closest-point direction for the points).
        field = HandField(model, torch.tensor(kp, requires_grad=True), mesh=ref)
        t0 = time.perf_counter()
        xt = torch.tensor(x, requires_grad=True)
        d_mesh = field(xt)
        d_mesh.sum().backward()
        row["mesh_query_backward_s"] = round(time.perf_counter() - t0, 3)
        sel = np.abs(d_ref) > 1e-6
        logit, g = field._logit(torch.tensor(closest[sel]))
        n_net = (-g / g.norm(dim=-1, keepdim=True)).numpy()
        n_mesh = (x[sel] - closest[sel]) / d_ref[sel, None]
        cos = (n_net * n_mesh).sum(1)
        row["normal_cos"] = {
            "mean": round(float(cos.mean()), 4),
            "p5": round(float(np.percentile(cos, 5)), 4),
            "angle_p50_deg": round(float(np.degrees(np.median(np.arccos(np.clip(cos, -1, 1))))), 2),
        }
        rows.append(row)
        if name in args.fd_hands:
            fd_rows += keypoint_fd(model, kp, name, args)
        print(name, row["first_order"]["2mm"], row["mesh_128"]["2mm"], flush=True)
    summary = {
        "first_order": pooled(rows, "first_order"),
        "first_order_clamp2mm": pooled(rows, "first_order_clamp2mm"),
        "first_order_unclamped": pooled(rows, "first_order_unclamped"),
        "mesh_128_vs_256": pooled(rows, "mesh_128"),
    }
    fd_summary = {}
    for method in ("mesh", "first_order"):
        r = [x for x in fd_rows if x["method"] == method]
        fd_summary[method] = {
            "pairs": len(r),
            "median_rel_err": round(float(np.median([x["median_rel_err"] for x in r])), 4),
            "mean_corr": round(float(np.mean([x["corr"] for x in r])), 4),
        }
    return {
        "hands": rows,
        "summary": summary,
        "keypoint_fd": fd_rows,
        "keypoint_fd_summary": fd_summary,
    }


def keypoint_fd(model, kp, name: str, args) -> list[dict]:
    """Gradient of the distance w.r.t. one joint along a random direction, autograd against
    central differences (mesh method: of re-extracted meshes; first order: of the
    estimate itself)."""
    import numpy as np
    import torch

    from halohand.interaction import HandField
    from halohand.interaction.object_field import closest_points

    rng = np.random.default_rng(args.seed + 1)
    ref = model.reconstruct(kp, units="m", resolution=256, colors=False)
    out = []
    eps = args.fd_eps
    for joint in args.fd_joints:
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        x = near_surface(ref, 4000, 0.004, seed=args.seed + joint)
        x = x[np.linalg.norm(x - kp[joint], axis=1) < 0.025][: args.fd_points]
        kp_p, kp_m = kp.copy(), kp.copy()
        kp_p[joint] += eps * u
        kp_m[joint] -= eps * u
        for method in ("mesh", "first_order"):
            k = torch.tensor(kp, requires_grad=True)
            field = HandField(model, k, method=method, mesh=ref if method == "mesh" else None)
            auto = []
            for xi in x:
                (g,) = torch.autograd.grad(field(torch.tensor(xi[None])).sum(), k)
                auto.append(float(g[joint].numpy() @ u))
            auto = np.array(auto)
            if method == "mesh":
                mp = model.reconstruct(kp_p, units="m", resolution=256, colors=False)
                mm = model.reconstruct(kp_m, units="m", resolution=256, colors=False)
                dp = closest_points(x, mp.vertices, mp.faces)[0]
                dm = closest_points(x, mm.vertices, mm.faces)[0]
            else:
                dp = HandField(model, kp_p, method=method)(torch.tensor(x)).numpy()
                dm = HandField(model, kp_m, method=method)(torch.tensor(x)).numpy()
            fd = (dp - dm) / (2 * eps)
            scale = np.maximum(np.abs(fd), 0.05)  # relative error, floored at 0.05 m/m
            out.append({
                "hand": name, "joint": int(joint), "method": method, "points": len(x),
                "median_rel_err": round(float(np.median(np.abs(auto - fd) / scale)), 4),
                "corr": round(float(np.corrcoef(auto, fd)[0, 1]), 4),
                "mean_abs_fd": round(float(np.abs(fd).mean()), 4),
            })  # fmt: skip
    return out


def object_study(args) -> dict:
    import torch

    from halohand.interaction import ObjectField
    from halohand.objects.registry import load_object

    rows = []
    for oid in args.objects:
        obj = load_object(oid)
        x = near_surface(obj.mesh, args.points, 0.01, seed=args.seed)
        xt = torch.tensor(x)
        exact = ObjectField(obj)
        t0 = time.perf_counter()
        d_ref = exact(xt).numpy()
        row = {"object": oid, "faces": len(obj.faces), "exact_query_s": time.perf_counter() - t0}
        for res in args.grid_resolutions:
            grid = ObjectField(obj, "grid", resolution=res)
            t0 = time.perf_counter()
            grid.local(xt[:1])  # builds (and caches) the grid
            row[f"grid{res}_build_s"] = round(time.perf_counter() - t0, 3)
            xg = xt.clone().requires_grad_(True)
            t0 = time.perf_counter()
            d = grid(xg)
            d.sum().backward()
            row[f"grid{res}_query_backward_s"] = round(time.perf_counter() - t0, 4)
            row[f"grid{res}"] = band_stats(d.detach().numpy() - d_ref, d_ref)
            row[f"grid{res}_step_mm"] = round(
                float(((obj.mesh.bounds[1] - obj.mesh.bounds[0]).max() + 0.1) / (res - 1)) * 1e3, 3
            )
        row["exact_query_s"] = round(row["exact_query_s"], 4)
        rows.append(row)
        print(oid, row[f"grid{args.grid_resolutions[0]}"]["2mm"], flush=True)
    summary = {f"grid{r}": pooled(rows, f"grid{r}") for r in args.grid_resolutions}
    return {"objects": rows, "summary": summary, "points_per_object": args.points}


def figure(path: str, seed: int) -> None:
    """Slice through a hand: the exact distance to HALO's mesh, the first-order estimate
    and their difference (mm)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from halohand.handmodel.prior import PosePrior
    from halohand.handmodel.webxr import default_model
    from halohand.inference.halo import HALO
    from halohand.interaction import HandField
    from halohand.interaction.object_field import closest_points

    model = HALO.pretrained()
    kp = np.asarray(default_model().pose(PosePrior().gesture("spread")).keypoints, np.float64)
    mesh = model.reconstruct(kp, units="m", resolution=256, colors=False)
    # The plane through the wrist and the index and pinky knuckles (the palm plane).
    o = kp[[0, 5, 17]].mean(0)
    e1 = kp[9] - kp[0]
    e1 /= np.linalg.norm(e1)
    n = np.cross(kp[5] - kp[0], kp[17] - kp[0])
    n /= np.linalg.norm(n)
    e2 = np.cross(n, e1)
    s = np.linspace(-0.1, 0.12, 220)
    t = np.linspace(-0.1, 0.1, 200)
    S, T = np.meshgrid(s, t)
    pts = o + S[..., None] * e1 + T[..., None] * e2
    d_ref = closest_points(pts.reshape(-1, 3), mesh.vertices, mesh.faces)[0].reshape(S.shape)
    fo = HandField(model, kp, method="first_order", clamp=0.02)
    d_fo = fo(torch.tensor(pts.reshape(-1, 3))).numpy().reshape(S.shape)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.6))
    ext = [s[0] * 1e3, s[-1] * 1e3, t[0] * 1e3, t[-1] * 1e3]
    lim = 20
    for a, d, title in ((ax[0], d_ref, "exact distance to HALO's mesh (256)"),
                        (ax[1], d_fo, "first-order estimate (clamp 20 mm)")):  # fmt: skip
        im = a.imshow(np.clip(d * 1e3, -lim, lim), origin="lower", extent=ext, cmap="RdBu",
                      vmin=-lim, vmax=lim)  # fmt: skip
        a.contour(S * 1e3, T * 1e3, d_ref * 1e3, levels=[0], colors="k", linewidths=0.8)
        a.set_title(title)
        a.set_xlabel("mm along wrist -> middle knuckle")
        fig.colorbar(im, ax=a, label="signed distance (mm)")
    err = np.abs(d_fo - d_ref) * 1e3
    im = ax[2].imshow(np.clip(err, 0, 5), origin="lower", extent=ext, cmap="magma", vmin=0, vmax=5)
    ax[2].contour(S * 1e3, T * 1e3, d_ref * 1e3, levels=[-5, -2, 0, 2, 5], colors="w",
                  linewidths=0.6)  # fmt: skip
    ax[2].set_title("|first order - exact| (mm)\ncontours: exact distance 0, +-2, +-5 mm")
    fig.colorbar(im, ax=ax[2], label="mm")
    fig.suptitle("Palm plane of the 'spread' hand, shipped HALO model")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print("wrote", path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--figure", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--points", type=int, default=6000)
    ap.add_argument("--gestures", nargs="*", default=["spread", "fist", "pinch", "ok", "cylinder"])
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--fd-hands", nargs="*", default=["spread", "fist", "sample0"])
    ap.add_argument("--fd-joints", nargs="*", type=int, default=[4, 8, 10, 20])
    ap.add_argument("--fd-points", type=int, default=30)
    ap.add_argument("--fd-eps", type=float, default=0.001)
    ap.add_argument("--objects", nargs="*", default=[
        "sphere_0", "box_0", "cylinder_0", "capsule_0", "bottle_0", "mug_0", "torus_0",
        "real_can", "real_lemon",
    ])  # fmt: skip
    ap.add_argument("--grid-resolutions", nargs="*", type=int, default=[64, 128])
    args = ap.parse_args()

    import torch

    torch.manual_seed(args.seed)
    doc = {"bands_mm": list(BANDS_MM), "objects": object_study(args), "hand": hand_study(args)}
    if args.figure:
        figure(args.figure, args.seed)
    emit(doc, args.json, indent=1)


if __name__ == "__main__":
    main()
