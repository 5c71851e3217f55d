"""Why the canonicalization layer keeps G and the local frames in the autograd graph.

The reference HALO code detaches the global normalization ``G`` and the transported local
frames. This script builds that variant from the library source at run time (two
``.detach()`` insertions, asserted to apply) and compares, on the same hands:

* the keypoint gradients of two losses (a query-point loss through ``M_k G`` and a loss on
  the matrices and canonical joints) against the complete gradient of the library;
* forward+backward time of both variants (interleaved, min and median).

Prints JSON (and writes it with ``--json``). ``relative_difference`` is
``|g_detached - g_complete| / |g_complete|`` per hand.

    .venv/bin/python benchmarks/studies/canonical_detach_gradients.py [--hands 64]
        [--repeats 15] [--json OUT]
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import statistics
import sys
import time
from pathlib import Path

import torch

# The package re-exports the function ``canonicalize``, which shadows the submodule of the
# same name as an attribute; fetch the module itself.
complete = importlib.import_module("halohand.canonical.canonicalize")

BENCHMARKS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(BENCHMARKS), str(BENCHMARKS / "speed")]  # _report; bench_canonical
from _report import emit  # noqa: E402
from bench_canonical import make_batch  # noqa: E402

_PATCHES = (
    (
        "rot_g = torch.stack([x_axis, y_axis, z_axis], dim=-2)",
        "rot_g = torch.stack([x_axis, y_axis, z_axis], dim=-2).detach()",
    ),
    (
        "local = _mv(chain.transpose(-1, -2) @ f1, e[:, level])",
        "local = _mv((chain.transpose(-1, -2) @ f1).detach(), e[:, level])",
    ),
)


def detached_module():
    """The library module with G and the transported frames detached, as in the reference."""
    source = inspect.getsource(complete)
    for old, new in _PATCHES:
        if source.count(old) != 1:
            raise SystemExit(f"patch target not found once in canonicalize.py: {old!r}")
        source = source.replace(old, new)
    spec = importlib.util.spec_from_loader("halohand_canonical_detached", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    exec(compile(source, "canonicalize_detached.py", "exec"), module.__dict__)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hands", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    detached = detached_module()
    f64 = torch.float64

    kp = make_batch(args.hands, f64, seed=1)
    g = torch.Generator().manual_seed(2)
    points = kp.mean(1, keepdim=True) + 0.05 * torch.randn(
        args.hands, 100, 3, generator=g, dtype=f64
    )

    def gradient(layer, loss_name: str) -> torch.Tensor:
        x = kp.clone().requires_grad_(True)
        c = layer.canonicalize(x)
        if loss_name == "query_points":
            loss = complete.points_to_part_frames(c, points).square().sum()
        else:
            loss = (
                c.bone_transforms[..., :3, :].square().sum() + c.canonical_keypoints.square().sum()
            )
        loss.backward()
        return x.grad

    differences = {}
    for loss_name in ("query_points", "matrices_and_joints"):
        full, cut = gradient(complete, loss_name), gradient(detached, loss_name)
        rel = (cut - full).norm(dim=(-2, -1)) / full.norm(dim=(-2, -1))
        differences[loss_name] = {
            "relative_difference_median": round(float(rel.median()), 4),
            "relative_difference_max": round(float(rel.max()), 4),
        }

    big = make_batch(args.batch, f64)
    times: dict[str, list[float]] = {"complete": [], "detached": []}
    for i in range(args.repeats + 2):
        for name, layer in (("complete", complete), ("detached", detached)):
            x = big.clone().requires_grad_(True)
            t0 = time.perf_counter()
            c = layer.canonicalize(x)
            (c.part_transforms.sum() + c.canonical_keypoints.sum()).backward()
            if i >= 2:  # warm-up
                times[name].append(time.perf_counter() - t0)
    report = {
        "hands_for_gradients": args.hands,
        "gradient_vs_complete": differences,
        "forward_backward_ms_float64": {
            name: {
                "batch": args.batch,
                "min": round(min(t) * 1e3, 2),
                "median": round(statistics.median(t) * 1e3, 2),
            }
            for name, t in times.items()
        },
        "torch_threads": torch.get_num_threads(),
    }
    emit(report, args.json, indent=2)


if __name__ == "__main__":
    main()
