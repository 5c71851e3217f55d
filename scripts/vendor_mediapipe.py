"""Rebuild ``src/halohand/weights/mediapipe/``: the pretrained palm detector and hand landmark
model (TFLite, Apache-2.0) that ``halohand.image`` runs on photos.

Both come from one pinned npm package, ``@mediapipe/hands``: its tarball (``npm pack``) is
checked against :data:`TARBALL_SHA256`; ``hand_landmark_full.tflite`` is a file of the
package, ``palm_detection_full.tflite`` a byte range of its packed assets
(``hands_solution_packed_assets.data``), read off the offsets its loader script lists. Each
written file is checked against :data:`FILES`; ``tests/test_image_weights.py`` checks the
shipped files against the same manifest. Needs npm and the npm registry (build time only:
nothing is downloaded at run time).

Usage: python scripts/vendor_mediapipe.py [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@mediapipe/hands"
VERSION = "0.4.1675469240"
#: sha256 of the tarball ``npm pack @mediapipe/hands@VERSION`` fetches.
TARBALL_SHA256 = "bdd5be939c60cbd72a49f4b6141407683cf2a67263598e1a44757d70b3dfcb8a"
#: The vendored files and their sha256.
FILES = {
    "palm_detection_full.tflite": "2f25e740121983f68ffc05f99991d524dc0ea812134f6316a26125816941ee85",  # noqa: E501
    "hand_landmark_full.tflite": "8c026882c9ec059ce0f8e75266bee5a9a23c341a40e0000df755374d3d1b9b68",
}
#: Where each file comes from: a file of the package, or (packed assets, name in the loader).
PACKED_ASSETS = "hands_solution_packed_assets.data"
PACKED_LOADER = "hands_solution_packed_assets_loader.js"
PACKED_NAME = "/third_party/mediapipe/modules/palm_detection/palm_detection_full.tflite"
#: The Apache-2.0 text as Debian ships it (the npm package states the licence in
#: package.json but carries no licence file).
APACHE_TEXT = Path("/usr/share/common-licenses/Apache-2.0")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "halohand" / "weights" / "mediapipe"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def packed_range(loader_js: str, name: str) -> tuple[int, int]:
    """``(start, end)`` byte offsets of ``name`` in the packed assets, from the loader's
    file list (``{"filename": ..., "start": ..., "end": ...}`` entries)."""
    pattern = r'"filename":\s*"' + re.escape(name) + r'",\s*"start":\s*(\d+),\s*"end":\s*(\d+)'
    match = re.search(pattern, loader_js)
    if match is None:
        raise SystemExit(f"{PACKED_LOADER} lists no {name}")
    return int(match.group(1)), int(match.group(2))


def fetch_tarball(work: Path) -> Path:
    out = subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent", "--pack-destination", str(work)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    tarball = work / out.stdout.strip().splitlines()[-1]
    digest = sha256(tarball.read_bytes())
    if digest != TARBALL_SHA256:
        raise SystemExit(f"{tarball.name}: sha256 {digest}, expected {TARBALL_SHA256}")
    return tarball


def extract(tarball: Path) -> dict[str, bytes]:
    """The vendored files' bytes, cut from the package."""
    with tarfile.open(tarball) as tar:

        def member(name: str) -> bytes:
            fh = tar.extractfile(f"package/{name}")
            if fh is None:
                raise SystemExit(f"the package has no {name}")
            return fh.read()

        loader = member(PACKED_LOADER).decode("utf-8")
        start, end = packed_range(loader, PACKED_NAME)
        packed = member(PACKED_ASSETS)
        files = {
            "palm_detection_full.tflite": packed[start:end],
            "hand_landmark_full.tflite": member("hand_landmark_full.tflite"),
        }
    for name, data in files.items():
        if sha256(data) != FILES[name]:
            raise SystemExit(f"{name}: sha256 {sha256(data)}, expected {FILES[name]}")
    return files


def notice() -> str:
    rows = "\n".join(f"| {name} | {digest} |" for name, digest in FILES.items())
    return f"""# Pretrained hand models (Apache-2.0)

Two TFLite models that `halohand.image` runs on photos: a palm detector and a hand landmark
model (21 keypoints in pixels and in metres, presence and handedness). Licensed under the
Apache License 2.0 (text in LICENSE beside this file); not covered by halohand's MIT licence.

Source: the npm package `{PACKAGE}` version {VERSION} (licence "Apache-2.0" in its
package.json), tarball sha256 `{TARBALL_SHA256}`.
`hand_landmark_full.tflite` is the package's file of that name, unchanged;
`palm_detection_full.tflite` is the byte range of `{PACKED_ASSETS}` that
`{PACKED_LOADER}` lists as `{PACKED_NAME}`, unchanged.
Rebuilt by `scripts/vendor_mediapipe.py`.

| file | sha256 |
|---|---|
{rows}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = extract(fetch_tarball(Path(tmp)))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
    (args.out / "LICENSE").write_text(APACHE_TEXT.read_text())
    (args.out / "README.md").write_text(notice())
    for name in sorted(p.name for p in args.out.iterdir()):
        print(f"{args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
