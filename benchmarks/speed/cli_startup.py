"""Start-up cost of the ``halohand`` command next to the work it does.

In one run, alternating within every round so that a busy machine slows all of them alike:

* ``halohand --help``;
* an argument error: ``halohand reconstruct`` with a keypoint file that does not exist
  (exit status 2, one line on stderr);
* a one-hand ``halohand reconstruct`` of the first shipped demo key pose
  (``halohand.handmodel.keyposes.load_key_poses()[0]``), written to a JSON keypoint file;
* ``HALO.reconstruct`` of the same hand in this process (model loaded once, before the
  rounds), the work the command wraps.

Every command is timed from spawn to exit (interpreter start included). Medians over
``--rounds`` rounds and every sample go into one JSON document, printed (and written with
``--json``), with the machine and a matmul calibration before and after the timings
(``benchmarks/_report.py``):

    .venv/bin/python benchmarks/speed/cli_startup.py [--rounds 5] [--resolution 256]
        [--threads 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _report
from _report import begin, emit  # noqa: E402


def halohand_command() -> list[str]:
    """The installed ``halohand`` script next to this interpreter, else ``python -m halohand``."""
    script = Path(sys.executable).parent / "halohand"
    if script.is_file():
        return [str(script)]
    found = shutil.which("halohand")
    return [found] if found else [sys.executable, "-m", "halohand"]


def timed_run(cmd: list[str], env: dict[str, str], expect: int) -> float:
    """Wall seconds of ``cmd`` from spawn to exit; raises for an exit status but ``expect``."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - t
    if proc.returncode != expect:
        raise RuntimeError(
            f"{' '.join(cmd)}: exit {proc.returncode} (expected {expect}): {proc.stderr.strip()}"
        )
    return wall


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="Rounds (medians over them).")
    ap.add_argument("--resolution", type=int, default=256, help="Extraction lattice (CLI default).")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads, both ways.")
    ap.add_argument("--json", type=Path, default=None, help="Also write the report here.")
    args = ap.parse_args(argv)

    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch, here and in children
    import torch

    from halohand.handmodel.keyposes import load_key_poses
    from halohand.inference.halo import HALO

    torch.set_num_threads(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONWARNINGS": "ignore"}
    pose = load_key_poses()[0]
    halohand = halohand_command()
    begin()

    with tempfile.TemporaryDirectory(prefix="cli_startup_") as tmp:
        kp_file = Path(tmp) / "hand.json"
        doc = {"order": "openpose", "units": "m", "side": pose.side,
               "keypoints": pose.keypoints.tolist()}  # fmt: skip
        kp_file.write_text(json.dumps(doc))
        out_dir = Path(tmp) / "out"
        reconstruct = [*halohand, "reconstruct", str(kp_file), "--out-dir", str(out_dir),
                       "--resolution", str(args.resolution)]  # fmt: skip
        missing = [*halohand, "reconstruct", str(Path(tmp) / "missing.npy"), "--out-dir",
                   str(out_dir)]  # fmt: skip
        commands = {
            "help": ([*halohand, "--help"], 0),
            "argument_error": (missing, 2),
            "cli_reconstruct": (reconstruct, 0),
        }

        t = time.perf_counter()
        model = HALO.pretrained()
        load_s = time.perf_counter() - t
        model.reconstruct(pose.keypoints, side=pose.side, units="m", resolution=16)  # warm-up

        samples: dict[str, list[float]] = {name: [] for name in [*commands, "in_process"]}
        faces = 0
        for _ in range(args.rounds):
            for name, (cmd, expect) in commands.items():
                samples[name].append(timed_run(cmd, env, expect))
            t = time.perf_counter()
            mesh = model.reconstruct(
                pose.keypoints, side=pose.side, units="m", resolution=args.resolution
            )
            samples["in_process"].append(time.perf_counter() - t)
            faces = len(mesh.faces)
        wrote = sorted(p.name for p in out_dir.iterdir())

    median = {name: round(statistics.median(v), 4) for name, v in samples.items()}
    report = {
        "benchmark": "cli_startup",
        "halohand": [Path(halohand[0]).name, *halohand[1:]],
        "hand": {"key_pose": pose.name, "side": pose.side, "units": "m"},
        "resolution": args.resolution,
        "rounds": args.rounds,
        "median_s": median,
        "cli_overhead_s": round(median["cli_reconstruct"] - median["in_process"], 4),
        "in_process_model_load_s": round(load_s, 4),
        "faces": faces,
        "cli_wrote": wrote,
        "samples_s": {name: [round(x, 4) for x in v] for name, v in samples.items()},
    }
    emit(report, args.json)
    return report


if __name__ == "__main__":
    main()
