"""The fuzz corpus (``tests/corpus/``, written by ``scripts/make_corpus.py``) through the CLI.

Every keypoint file goes through ``reconstruct``, ``occupancy`` and ``check``, every
query-point file through ``occupancy``, every mesh through ``grasp MESH`` and ``grasp
evaluate --objects MESH``, in process through :func:`halohand.apps.cli.main`. The manifest
says what each must end with: exit status 2 with exactly one ``error:`` line on stderr
(naming the problem), no traceback, no numpy warning and no output; or exit status 0 for an
input that is valid however odd it looks, with only ``warning:`` lines on stderr and the
outputs written. Below the corpus: regression tests for what the fuzz campaign found.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from halohand.apps import cli

CORPUS = REPO / "tests" / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
POINTS = REPO / "examples" / "points.npy"
HAND_MM = REPO / "examples" / "hand_left_mm.json"
#: The valid meshes sample a grasp and mesh it (about a second each): slow tests.
FAST_MESH_CODES = (2,)


def _input(entry: dict) -> Path:
    """The corpus path an entry stands for (a folder entry: the folder itself)."""
    path = CORPUS / entry["file"]
    return path.parent if path.name == "README" else path


def _expect(entry: dict, command: str) -> int:
    return int(entry["expect"].get(command, 2))


def _entries(prefix: str) -> list[dict]:
    return [e for e in MANIFEST if e["file"].startswith(prefix)]


def _run(monkeypatch, capsys, caplog, *args: object) -> tuple[int, str, str]:
    """``halohand *args`` in process: (status, stdout, stderr). Fails on a Python warning
    of the kind a user would see (numpy's RuntimeWarning, UserWarning) or a logged warning,
    which stderr under pytest would not show."""
    monkeypatch.setattr("sys.argv", ["halohand", *map(str, args)])
    caplog.set_level(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = 0
        try:
            cli.main()  # returns on success
        except SystemExit as exc:
            code = int(exc.code or 0)
    captured = capsys.readouterr()
    shown = [w for w in caught if issubclass(w.category, (RuntimeWarning, UserWarning))]
    assert not shown, [f"{w.category.__name__}: {w.message}" for w in shown]
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not logged, [r.getMessage() for r in logged]
    return code, captured.out, captured.err


def _assert_outcome(entry: dict, command: str, code: int, err: str, outputs: list[Path]) -> None:
    expected = _expect(entry, command)
    name = f"{entry['file']} ({entry['purpose']}) via {command}"
    assert code == expected, f"{name}: exit {code}, expected {expected}; stderr: {err!r}"
    assert "Traceback" not in err and "Warning:" not in err, f"{name}: {err!r}"
    lines = err.strip().splitlines()
    if expected == 2:
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{name}: {err!r}"
        assert entry.get("match", "") in lines[0], f"{name}: {lines[0]!r}"
        left = [str(p) for p in outputs if p.exists()]
        assert not left, f"{name}: left {left}"
    else:
        assert all(line.startswith("warning: ") for line in lines), f"{name}: {err!r}"


# ------------------------------------------------------------------ the corpus


def test_the_corpus_is_what_the_script_writes() -> None:
    """The checked-in files are those ``scripts/make_corpus.py`` writes, byte for byte."""
    spec = importlib.util.spec_from_file_location("make_corpus", REPO / "scripts/make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = module.build()
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file()}
    assert on_disk == set(files)
    changed = [n for n, data in files.items() if (CORPUS / n).read_bytes() != data]
    assert not changed
    assert sum(len(d) for d in files.values()) < 200 * 1024
    assert max(len(d) for n, d in files.items() if n not in ("manifest.json", "README.md")) < 8192


@pytest.mark.parametrize("entry", _entries("keypoints/"), ids=lambda e: e["file"])
def test_keypoint_file_reconstruct(tmp_path, monkeypatch, capsys, caplog, entry) -> None:
    out = tmp_path / "meshes"
    code, stdout, err = _run(
        monkeypatch, capsys, caplog, "reconstruct", _input(entry), "--out-dir", out,
        "--resolution", "16",
    )  # fmt: skip
    _assert_outcome(entry, "reconstruct", code, err, [out])
    if code == 0:
        assert sorted(out.iterdir()) and "wrote" in stdout


@pytest.mark.parametrize("entry", _entries("keypoints/"), ids=lambda e: e["file"])
def test_keypoint_file_occupancy(tmp_path, monkeypatch, capsys, caplog, entry) -> None:
    out = tmp_path / "sub" / "occ.npy"
    path = _input(entry)
    points = POINTS
    valid = _expect(entry, "occupancy") == 0
    if valid:
        # query points in the hand's own units, around it
        from halohand.apps.keypoint_io import load_keypoints

        kp = load_keypoints(path).keypoints
        points = tmp_path / "pts.npy"
        np.save(points, kp.reshape(-1, 3)[:50])
    code, _, err = _run(monkeypatch, capsys, caplog, "occupancy", path, points, "--out", out)
    _assert_outcome(entry, "occupancy", code, err, [out.parent])
    if valid:
        occ = np.load(out)
        assert occ.dtype == np.float32 and np.isfinite(occ).all()


@pytest.mark.parametrize("entry", _entries("keypoints/"), ids=lambda e: e["file"])
def test_keypoint_file_check(tmp_path, monkeypatch, capsys, caplog, entry) -> None:
    report = tmp_path / "report.json"
    code, stdout, err = _run(monkeypatch, capsys, caplog, "check", _input(entry), "--json", report)
    _assert_outcome(entry, "check", code, err, [report])
    if code == 0:
        doc = json.loads(report.read_text())
        assert doc["file"] == str(_input(entry)) and "plausible" in stdout


@pytest.mark.parametrize("entry", _entries("points/"), ids=lambda e: e["file"])
def test_points_file_occupancy(tmp_path, monkeypatch, capsys, caplog, entry) -> None:
    out = tmp_path / "occ.npy"
    hand = HAND_MM if "int64" in entry["file"] else REPO / "examples" / "hand_right.npy"
    code, _, err = _run(monkeypatch, capsys, caplog, "occupancy", hand, _input(entry),
                        "--out", out)  # fmt: skip
    _assert_outcome(entry, "occupancy", code, err, [out])
    if code == 0:
        assert np.load(out).shape == (len(np.load(_input(entry))),)


def _mesh_params() -> list:
    params = []
    for entry in _entries("meshes/"):
        slow = [] if _expect(entry, "sample") in FAST_MESH_CODES else [pytest.mark.slow]
        params.append(pytest.param(entry, id=entry["file"], marks=slow))
    return params


@pytest.mark.parametrize("entry", _mesh_params())
def test_mesh_file_grasp_sample(tmp_path, monkeypatch, capsys, caplog, entry) -> None:
    out = tmp_path / "grasps"
    code, stdout, err = _run(
        monkeypatch, capsys, caplog, "grasp", _input(entry), "--n", "1", "--out-dir", out,
        "--no-sheet", "--resolution", "16", "--candidates", "1",
    )  # fmt: skip
    _assert_outcome(entry, "sample", code, err, [out])
    if code == 0:
        assert (out / "keypoints.npy").exists() and (out / "grasp_00.ply").exists()


@pytest.mark.parametrize("entry", _mesh_params())
def test_mesh_file_grasp_evaluate(tmp_path, monkeypatch, capsys, caplog, entry) -> None:
    out = tmp_path / "eval.json"
    code, _, err = _run(
        monkeypatch, capsys, caplog, "grasp", "evaluate", "--objects", _input(entry),
        "--n", "1", "--resolution", "16", "--candidates", "1", "--no-progress", "--json", out,
    )  # fmt: skip
    _assert_outcome(entry, "evaluate", code, err, [out])
    if code == 0:
        json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["check", "tests/corpus/keypoints/bad_header.npy"], 2),
        (
            [
                "reconstruct",
                "tests/corpus/keypoints/bom.json",
                "--out-dir",
                "{tmp}/r",
                "--resolution",
                "8",
            ],
            0,
        ),  # fmt: skip
        (
            [
                "occupancy",
                "tests/corpus/keypoints/timedelta.npy",
                "examples/points.npy",
                "--out",
                "{tmp}/o.npy",
            ],
            2,
        ),  # fmt: skip
        (["grasp", "tests/corpus/meshes/box_1e300.stl", "--n", "1", "--out-dir", "{tmp}/g"], 2),
        (
            [
                "grasp",
                "tests/corpus/meshes/missing_mtl.obj",
                "--n",
                "1",
                "--out-dir",
                "{tmp}/g",
                "--no-sheet",
                "--resolution",
                "8",
                "--candidates",
                "1",
            ],
            0,
        ),  # fmt: skip
    ],
)
def test_corpus_through_the_entry_point(tmp_path, args, code) -> None:
    """The real command: exit status and stderr as a shell sees them (warnings, logging)."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "halohand", *args], cwd=REPO, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        assert list(tmp_path.iterdir()) == []
    else:
        assert all(line.startswith("warning: ") for line in lines), proc.stderr


# ------------------------------------------------------------------ campaign regressions


def test_degenerate_skeleton_hint_names_the_format_once(tmp_path, monkeypatch, capsys,
                                                        caplog) -> None:  # fmt: skip
    code, _, err = _run(monkeypatch, capsys, caplog, "reconstruct",
                        CORPUS / "keypoints/all_zero.npy", "--out-dir", tmp_path / "o")  # fmt: skip
    assert code == 2 and err.count("--format") == 1, err
