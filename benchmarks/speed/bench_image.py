"""Photo path speed: seconds per photo and the share of each stage, and the install size
the photo path adds.

Per photo (``examples/photos`` by default) and round: decode (``load_photo``: file to
upright RGB), detect (palm detector passes), landmarks (landmark model, two looks per
hand), placement (camera-frame translation and snapping), mesh (``HALO.reconstruct`` per
hand at ``--resolution``) and overlay (meshes drawn over the photo). The models are loaded
and run once before the rounds (first-call costs are reported apart). Install size: the
TFLite runtime's distribution and the dependencies it alone brings (on disk, from their
installed file lists) and the vendored models. One JSON document, printed (and written
with ``--json``), with the machine (``benchmarks/_report.py``):

    .venv/bin/python benchmarks/speed/bench_image.py [--rounds 5] [--resolution 128]
        [--threads 1] [--json OUT] [PHOTO ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import REPO, begin, emit, repo_path  # noqa: E402

#: The runtime's distribution and the dependencies only it brings into the environment.
RUNTIME_DISTS = ("ai-edge-litert", "flatbuffers", "ml_dtypes", "protobuf", "backports.strenum")
STAGES = ("decode", "detect", "landmarks", "placement", "fit", "mesh", "overlay")


def dist_size_mb(name: str) -> float | None:
    """Megabytes on disk of an installed distribution's files (``None``: not installed)."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    total = 0
    for f in dist.files or []:
        path = Path(dist.locate_file(f))
        if path.is_file():
            total += path.stat().st_size
    return round(total / 1e6, 2)


class StageClock:
    """Seconds per stage, accumulated by wrapping module functions."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def stage(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t

    def wrap(self, module, attr: str, name: str) -> None:
        fn = getattr(module, attr)

        def timed(*args, **kwargs):
            with self.stage(name):
                return fn(*args, **kwargs)

        setattr(module, attr, timed)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", nargs="*", type=Path, help="Photos (default: examples/photos).")
    ap.add_argument("--rounds", type=int, default=5, help="Rounds (medians over them).")
    ap.add_argument("--resolution", type=int, default=128, help="Mesh lattice (CLI default).")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads.")
    ap.add_argument("--json", type=Path, default=None, help="Also write the report here.")
    args = ap.parse_args(argv)

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    from halohand.apps.render import overlay_meshes
    from halohand.image import find, from_image, load_photo, photo
    from halohand.image.models import NUM_THREADS, landmark_model, model_path, palm_model
    from halohand.inference.halo import HALO

    torch.set_num_threads(args.threads)
    photos = args.photos or sorted(
        p for p in (REPO / "examples" / "photos").iterdir() if p.suffix in (".jpg", ".png")
    )
    t = time.perf_counter()
    palm_model(), landmark_model()
    tflite_load_s = time.perf_counter() - t
    t = time.perf_counter()
    first = from_image(photos[0])
    first_photo_s = time.perf_counter() - t
    model = HALO.pretrained()
    for hand in first.hands:  # warm-up
        model.reconstruct(hand.keypoints, side=hand.side, units="m", resolution=16)

    clock = StageClock()
    clock.wrap(find, "detect_palms", "detect")
    clock.wrap(find, "hand_landmarks", "landmarks")
    for attr in ("solve_translation", "snap_to_rays", "reprojection_px"):
        clock.wrap(photo, attr, "placement")
    clock.wrap(photo, "fit_landmarks", "fit")
    begin()

    samples: dict[str, dict[str, list[float]]] = {
        repo_path(p): {s: [] for s in (*STAGES, "total")} for p in photos
    }
    hands: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for path in photos:
            clock.seconds.clear()
            t0 = time.perf_counter()
            with clock.stage("decode"):
                decoded = load_photo(path)
            result = from_image(decoded)
            with clock.stage("mesh"):
                meshes = result.meshes(model, args.resolution)
            with clock.stage("overlay"):
                overlay_meshes(decoded.rgb, meshes, result.camera.intrinsics)
            total = time.perf_counter() - t0
            key = repo_path(path)
            for s in STAGES:
                samples[key][s].append(clock.seconds.get(s, 0.0))
            samples[key]["total"].append(total)
            hands[key] = [h.side for h in result.hands]

    per_photo = {}
    for key, stages in samples.items():
        med = {s: statistics.median(v) for s, v in stages.items()}
        per_photo[key] = {
            "hands": hands[key],
            "median_s": {s: round(v, 4) for s, v in med.items()},
            "share": {s: round(med[s] / med["total"], 3) for s in STAGES},
            "image_path_s": round(
                sum(med[s] for s in ("decode", "detect", "landmarks", "placement")), 4
            ),  # fmt: skip
        }
    totals = [statistics.median(v["total"]) for v in samples.values()]
    image_only = [v["image_path_s"] for v in per_photo.values()]
    weights = [model_path(n) for n in ("palm_detection_full.tflite", "hand_landmark_full.tflite")]
    sizes = {name: dist_size_mb(name) for name in RUNTIME_DISTS}
    report = {
        "benchmark": "bench_image",
        "rounds": args.rounds,
        "resolution": args.resolution,
        "tflite_threads": NUM_THREADS,
        "median_s_per_photo": round(statistics.median(totals), 4),
        "median_image_path_s_per_photo": round(statistics.median(image_only), 4),
        "image_path_note": "decode + detect + landmarks + placement: photo to placed keypoints",
        "first_call": {
            "tflite_models_load_s": round(tflite_load_s, 4),
            "first_photo_s": round(first_photo_s, 4),
        },
        "photos": per_photo,
        "install_mb": {
            "distributions": sizes,
            "runtime_total": round(sum(v for v in sizes.values() if v), 2),
            "vendored_models": round(sum(p.stat().st_size for p in weights) / 1e6, 2),
        },
        "samples_s": samples,
    }
    emit(report, args.json)
    return report


if __name__ == "__main__":
    main()
