"""Topology of reconstructed hands: how many bodies, how large the extra ones, which genus.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/studies/topology.py [--hands 60]
        [--resolution 256] [--checkpoint FILE] [--touching merge|apart] [--joined hand|all]
        [--json benchmarks/results/studies/topology.json]

Meshes of ``HALO.reconstruct`` (the shipped model, or ``--checkpoint``) at the default
resolution, of

* ``own``: ``--hands`` hands drawn from the embedded hand model's priors
  (``WebXRHandSource().sample``, every third a left hand) from ``SeedSequence(--seed)``,
  a stream no training data uses;
* ``real``: the 85 real HO3D-derived frames of ``../shared/reference`` (reference data,
  never shipped; skipped when absent), read with ``convention="auto"``.

``--touching apart`` keeps touching parts apart (:mod:`halohand.inference.touching`);
with ``--joined all`` every part joins every other, so nothing is taken apart and only the
extraction's refinement of the cells where parts that are not adjacent meet remains (are
the merged meshes' tunnels contacts of the field, or of the coarse lattice?).

Per set: meshes with more than one body, the extra bodies' signed volumes
(negative: a bubble inside the hand), the main body's genus (tunnels), meshes whose Euler
characteristic is 2 although they have several bodies, and the time of
:func:`halohand.inference.bodies.body_stats`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report

from _reference import REAL_FRAMES  # noqa: E402
from _report import emit, repo_path  # noqa: E402


def _own_hands(n: int, seed: int) -> list[tuple[np.ndarray, str]]:
    from halohand.handmodel.webxr import WebXRHandSource

    source = WebXRHandSource()
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    out = []
    for i in range(n):
        side = "left" if i % 3 == 2 else "right"
        out.append((np.asarray(source.sample(rng, side=side).keypoints, np.float64), side))
    return out


def _score(  # noqa: ANN001
    halo, hands: list[tuple[np.ndarray, str]], resolution: int, convention: str, touching: str
) -> dict:
    from halohand.inference.bodies import body_stats

    rows = []
    for kp, side in hands:
        mesh = halo.reconstruct(
            kp, side=side, units="m", resolution=resolution, convention=convention,
            touching=touching,
        )  # fmt: skip
        t = time.perf_counter()
        stats = body_stats(mesh)
        spent = time.perf_counter() - t
        rows.append({
            "bodies": stats.count,
            "extra_volumes_cm3": [float(v * 1e6) for v in stats.volumes[1:]],
            "main_volume_cm3": float(stats.volumes[0] * 1e6),
            "main_genus": int(stats.genus[0]),
            "euler": int(mesh.euler_number),
            "body_stats_s": spent,
        })  # fmt: skip
    extra = [v for r in rows for v in r["extra_volumes_cm3"]]
    return {
        "meshes": len(rows),
        "meshes_with_several_bodies": sum(r["bodies"] > 1 for r in rows),
        "extra_bodies": len(extra),
        "extra_body_volume_cm3": (
            {"max": max(extra), "median": float(np.median(extra)), "min": min(extra)}
            if extra else None
        ),
        "main_body_genus_above_0": sum(r["main_genus"] > 0 for r in rows),
        "euler_2_with_several_bodies": sum(r["euler"] == 2 and r["bodies"] > 1 for r in rows),
        "main_volume_cm3": {
            "min": min(r["main_volume_cm3"] for r in rows),
            "max": max(r["main_volume_cm3"] for r in rows),
        },
        "body_stats_ms_median": float(np.median([r["body_stats_s"] for r in rows]) * 1e3),
        "per_mesh": rows,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hands", type=int, default=60)
    parser.add_argument("--seed", type=int, default=31337)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--checkpoint", default=None, help="model file (default: shipped)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--touching", choices=("merge", "apart"), default="merge")
    parser.add_argument("--joined", choices=("hand", "all"), default="hand")
    args = parser.parse_args(argv)

    from halohand.inference.halo import HALO

    halo = HALO.pretrained(args.checkpoint)
    touching = args.touching
    if args.touching == "apart" and args.joined == "all":
        from halohand.inference.touching import PartContacts
        from halohand.skeleton import ADJACENT_PARTS

        touching = PartContacts(np.ones_like(ADJACENT_PARTS), ADJACENT_PARTS)
    t0 = time.perf_counter()
    sets = {"own": (_own_hands(args.hands, args.seed), "rig")}
    if REAL_FRAMES.exists():
        frames = np.load(REAL_FRAMES).astype(np.float64)
        sets["real"] = ([(f, "right") for f in frames], "auto")
    else:
        print(f"real frames skipped: {REAL_FRAMES} is absent")
    report: dict = {
        "study": "topology", "resolution": args.resolution, "touching": args.touching,
        "joined": args.joined,
    }  # fmt: skip
    if args.checkpoint:
        report["checkpoint"] = repo_path(args.checkpoint)
    for name, (hands, convention) in sets.items():
        report[name] = _score(halo, hands, args.resolution, convention, touching)
        print(name, {k: v for k, v in report[name].items() if k != "per_mesh"})
    report["seconds"] = time.perf_counter() - t0
    emit(report, args.json)
    return report


if __name__ == "__main__":
    main()
