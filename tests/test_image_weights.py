"""The vendored photo models (palm detector, hand landmarks) are the ones the vendoring
script pins, with their licence and notice, and ship as package data."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "src" / "halohand" / "weights" / "mediapipe"


def _manifest():
    spec = importlib.util.spec_from_file_location(
        "vendor_mediapipe", REPO / "scripts" / "vendor_mediapipe.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vendored_models_match_the_script_manifest() -> None:
    manifest = _manifest()
    assert set(manifest.FILES) == {"palm_detection_full.tflite", "hand_landmark_full.tflite"}
    for name, digest in manifest.FILES.items():
        assert hashlib.sha256((WEIGHTS / name).read_bytes()).hexdigest() == digest, name
    notice = (WEIGHTS / "README.md").read_text()
    assert manifest.VERSION in notice and manifest.TARBALL_SHA256 in notice
    assert all(digest in notice for digest in manifest.FILES.values())
    assert "Apache License" in (WEIGHTS / "LICENSE").read_text()


def test_vendored_models_are_package_data() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert '"weights/mediapipe/*"' in text


def test_packed_range_reads_the_loader_list() -> None:
    manifest = _manifest()
    loader = (
        '{"filename": "/a/handedness.txt", "start": 0, "end": 11}, '
        '{"filename": "/x/palm.tflite", "start": 11, "end": 2341291}'
    )
    assert manifest.packed_range(loader, "/x/palm.tflite") == (11, 2341291)


def test_loading_the_models_prints_nothing() -> None:
    import subprocess
    import sys

    code = (
        "from halohand.image.models import landmark_model, palm_model\n"
        "palm_model(); landmark_model()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""
