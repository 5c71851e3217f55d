"""End-to-end check of ``halohand view`` in headless Chromium; saves a screenshot.

1. writes a two-frame sequence of part-coloured GLB hands with skeletons (the embedded
   hand model, posed like ``halohand demo``; with ``--reconstruct``, instead the shipped
   network via ``halohand reconstruct`` on keypoints sampled from the same model);
2. starts ``halohand view DIR --no-browser --port 0`` and reads the URL it prints;
3. opens the page with ``scripts/viewer_screenshot.mjs`` (node + puppeteer-core, Chromium
   from ``@sparticuz/chromium`` or ``--chromium``/``$HALOHAND_CHROMIUM``/a system one);
4. checks the page reported ready with no JS or HTTP errors and that the screenshot shows a
   hand: enough non-background pixels, and the thumb/index/middle/ring/pinky part hues.

Set-up (once, no root): ``make viewer-install`` (npm install into ``.viewer-test/``).
Run: ``make viewer-test`` or ``.venv/bin/python scripts/test_viewer_headless.py``.
Exit status 0 when every check passes, 1 when one fails, 3 when no browser is set up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEPS = ROOT / ".viewer-test"
SHOT_JS = ROOT / "scripts" / "viewer_screenshot.mjs"
BACKGROUND = (0xF3, 0xF4, 0xF6)  # scene.background in viewer.js
SYSTEM_CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FINGERS = ("thumb", "index", "middle", "ring", "pinky")


def find_browser(deps: Path = DEPS) -> tuple[list[str], str | None, str]:
    """(node command, Chromium path or None for @sparticuz/chromium, reason if unusable)."""
    node = shutil.which("node")
    if node is None:
        return [], None, "node is not installed"
    if not (deps / "node_modules" / "puppeteer-core").is_dir():
        return [], None, f"puppeteer-core is not installed in {deps} (run `make viewer-install`)"
    chromium = os.environ.get("HALOHAND_CHROMIUM")
    if chromium:
        if not Path(chromium).is_file():
            return [], None, f"$HALOHAND_CHROMIUM={chromium} is not a file"
        return [node], chromium, ""
    if (deps / "node_modules" / "@sparticuz" / "chromium").is_dir():
        return [node], None, ""
    for name in SYSTEM_CHROMIUMS:
        found = shutil.which(name)
        if found:
            return [node], found, ""
    return [], None, "no Chromium: neither @sparticuz/chromium in .viewer-test nor a system one"


def write_demo_frames(folder: Path) -> None:
    """Two posed hands as ``seq_0000.glb``, ``seq_0001.glb`` (metres, with skeletons)."""
    import trimesh

    from halohand.apps.export import export_mesh, part_vertex_colors
    from halohand.handmodel.prior import PosePrior
    from halohand.handmodel.webxr import default_model

    model = default_model()
    prior = PosePrior()
    for i, gesture in enumerate(["spread", "pinch"]):
        hand = model.pose(prior.gesture(gesture))
        colors = part_vertex_colors(hand.part_labels)
        mesh = trimesh.Trimesh(hand.vertices, hand.faces, vertex_colors=colors, process=False)
        export_mesh(mesh, folder / f"seq_{i:04d}.glb", keypoints=hand.keypoints)


def write_reconstructed_frames(folder: Path) -> None:
    """``halohand reconstruct`` (shipped weights, low resolution) on two sampled hands."""
    from halohand.handmodel.prior import PosePrior
    from halohand.handmodel.webxr import default_model

    model = default_model()
    prior = PosePrior()
    kp = np.stack([model.pose(prior.gesture(g)).keypoints for g in ("spread", "pinch")])
    np.save(folder / "seq.npy", kp)
    cmd = [str(ROOT / ".venv" / "bin" / "halohand"), "reconstruct", str(folder / "seq.npy")]
    cmd += ["--out-dir", str(folder / "meshes"), "--ext", "glb", "--resolution", "96"]
    subprocess.run(cmd, check=True)


def start_viewer(folder: Path) -> tuple[subprocess.Popen[str], str]:
    """Start ``halohand view`` on a free port; returns the process and the URL it prints."""
    cmd = [str(ROOT / ".venv" / "bin" / "halohand"), "view", str(folder)]
    cmd += ["--no-browser", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "halohand view: N frames at http://... (Ctrl+C to stop)"
    url = next((w for w in line.split() if w.startswith("http://")), None)
    if url is None:
        proc.kill()
        _, err = proc.communicate()
        raise RuntimeError(f"halohand view did not print a URL: {line!r} {err.strip()!r}")
    return proc, url


def _hue_distance(a: np.ndarray, b: float) -> np.ndarray:
    d = np.abs(a - b) % 1.0
    return np.minimum(d, 1.0 - d)


def check_image(path: Path) -> tuple[list[str], dict[str, float]]:
    """Failures (empty when the screenshot shows a part-coloured hand) and the measures."""
    from matplotlib.colors import rgb_to_hsv
    from PIL import Image

    from halohand.apps.render import PART_COLORS
    from halohand.skeleton import PART_NAMES

    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
    bg = np.array(BACKGROUND) / 255.0
    foreground = np.abs(img - bg).max(-1) > 0.06
    stats = {"foreground": float(foreground.mean())}
    fails = []
    if stats["foreground"] < 0.03:
        fails.append(f"only {stats['foreground']:.1%} of pixels differ from the background")
    # Shading changes brightness, not hue: look for each finger's hue among saturated pixels.
    hsv = rgb_to_hsv(img)
    saturated = foreground & (hsv[..., 1] > 0.25) & (hsv[..., 2] > 0.15)
    for finger in FINGERS:
        # each finger's proximal segment; its other two segments share the hue
        hue = float(rgb_to_hsv(PART_COLORS[PART_NAMES.index(f"{finger}1")])[0])
        share = float((saturated & (_hue_distance(hsv[..., 0], hue) < 0.03)).mean())
        stats[finger] = share
    seen = [f for f in FINGERS if stats[f] > 0.001]
    if len(seen) < 4:
        fails.append(f"part colours of only {seen or 'no'} fingers are visible (need 4 of 5)")
    return fails, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "viewer_screenshot.png")
    parser.add_argument("--chromium", help="Chromium binary (default: see find_browser)")
    parser.add_argument("--reconstruct", action="store_true", help="use the shipped network")
    args = parser.parse_args(argv)
    if args.chromium:
        os.environ["HALOHAND_CHROMIUM"] = args.chromium
    node, chromium, reason = find_browser()
    if reason:
        print(f"viewer-test: cannot run: {reason}", file=sys.stderr)
        return 3
    with tempfile.TemporaryDirectory(prefix="halohand-view-") as tmp:
        folder = Path(tmp)
        if args.reconstruct:
            write_reconstructed_frames(folder)
            folder = folder / "meshes"
        else:
            write_demo_frames(folder)
        proc, url = start_viewer(folder)
        try:
            shot = folder / "shot.png"
            cmd = [*node, str(SHOT_JS), url, str(shot), "--deps", str(DEPS)]
            if chromium:
                cmd += ["--chromium", chromium]
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        if run.returncode != 0 or not shot.exists():
            print(f"viewer-test: browser run failed:\n{run.stdout}{run.stderr}", file=sys.stderr)
            return 1
        report = json.loads(run.stdout.strip().splitlines()[-1])
        fails, stats = check_image(shot)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, args.out)
    if report["state"] != "ready":
        fails.append(f"page state is {report['state']!r}, not 'ready'")
    fails += [f"page error: {e}" for e in report["errors"]]
    measures = ", ".join(f"{k} {v:.2%}" for k, v in stats.items())
    print(f"viewer-test: {report['chromium']}; {report['title']!r}; {measures}; saved {args.out}")
    for fail in fails:
        print(f"viewer-test: FAIL {fail}", file=sys.stderr)
    print("viewer-test: " + ("failed" if fails else "passed"))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
