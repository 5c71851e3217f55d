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
def test_keypoint_file(tmp_path, monkeypatch, capsys, caplog, entry) -> None:
    """One keypoint file through ``reconstruct``, ``occupancy`` and ``check``."""
    path = _input(entry)
    out = tmp_path / "meshes"
    code, stdout, err = _run(
        monkeypatch, capsys, caplog, "reconstruct", path, "--out-dir", out, "--resolution", "16"
    )
    _assert_outcome(entry, "reconstruct", code, err, [out])
    if code == 0:
        assert sorted(out.iterdir()) and "wrote" in stdout

    occ_out = tmp_path / "sub" / "occ.npy"
    points = POINTS
    if _expect(entry, "occupancy") == 0:
        # query points in the hand's own units, around it
        from halohand.apps.keypoint_io import load_keypoints

        points = tmp_path / "pts.npy"
        np.save(points, load_keypoints(path).keypoints.reshape(-1, 3)[:50])
    code, _, err = _run(monkeypatch, capsys, caplog, "occupancy", path, points, "--out", occ_out)
    _assert_outcome(entry, "occupancy", code, err, [occ_out.parent])
    if code == 0:
        occ = np.load(occ_out)
        assert occ.dtype == np.float32 and np.isfinite(occ).all()

    report = tmp_path / "report.json"
    code, stdout, err = _run(monkeypatch, capsys, caplog, "check", path, "--json", report)
    _assert_outcome(entry, "check", code, err, [report])
    if code == 0:
        doc = json.loads(report.read_text())
        assert doc["file"] == str(path) and "plausible" in stdout


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


def test_a_path_too_long_for_the_system_is_one_line(tmp_path, monkeypatch, capsys,
                                                    caplog) -> None:  # fmt: skip
    long_name = tmp_path / ("a" * 300 + ".npy")
    code, _, err = _run(monkeypatch, capsys, caplog, "check", long_name)
    assert code == 2 and err.count("\n") == 1 and "File name too long" in err, err
    out = tmp_path / ("x" * 300) / "meshes"
    code, _, err = _run(monkeypatch, capsys, caplog, "reconstruct",
                        REPO / "examples/hand_right.npy", "--out-dir", out)  # fmt: skip
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "..." in err  # the long name is shortened in the message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("device", ["mps", "meta", "tpu", "cuda:x", ""])
@pytest.mark.parametrize("command", ["reconstruct", "occupancy"])
def test_an_unknown_device_is_refused_before_any_warning(tmp_path, monkeypatch, capsys, caplog,
                                                         device, command) -> None:  # fmt: skip
    hand = CORPUS / "keypoints/mirrored_left_hand.npy"  # valid, with a warning
    args = {
        "reconstruct": ["reconstruct", hand, "--out-dir", tmp_path / "o", "--resolution", "8"],
        "occupancy": ["occupancy", hand, POINTS, "--out", tmp_path / "o.npy"],
    }[command]
    code, _, err = _run(monkeypatch, capsys, caplog, *args, "--device", device)
    assert code == 2 and err.count("\n") == 1 and "--device" in err, err
    assert "corrupt" not in err and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["reconstruct", "occupancy"])
def test_a_bad_checkpoint_error_is_not_preceded_by_a_warning(tmp_path, monkeypatch, capsys,
                                                             caplog, command) -> None:  # fmt: skip
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x00" * 64)
    hand = CORPUS / "keypoints/mirrored_left_hand.npy"
    args = {
        "reconstruct": ["reconstruct", hand, "--out-dir", tmp_path / "o", "--resolution", "8"],
        "occupancy": ["occupancy", hand, POINTS, "--out", tmp_path / "o.npy"],
    }[command]
    code, _, err = _run(monkeypatch, capsys, caplog, *args, "--checkpoint", bad)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


@pytest.mark.parametrize("resolution", ["0", "7", "1025", "100000"])
def test_grasp_resolution_is_checked_before_any_work(tmp_path, monkeypatch, capsys, caplog,
                                                     resolution) -> None:  # fmt: skip
    import halohand.grasp.generate as generate

    monkeypatch.setattr(generate.GraspGenerator, "pretrained", None)  # must not be reached
    for args in (
        ["grasp", "examples/box_mm.stl", "--out-dir", tmp_path / "g"],
        ["grasp", "evaluate", "--objects", "box_4", "--json", tmp_path / "e.json"],
    ):
        code, _, err = _run(monkeypatch, capsys, caplog, *args, "--n", "1", "--resolution",
                            resolution)  # fmt: skip
        assert code == 2 and err.count("\n") == 1 and "8..1024" in err, err
    assert list(tmp_path.iterdir()) == []


def test_grasp_evaluate_checks_its_outputs_first_and_writes_json(tmp_path, monkeypatch, capsys,
                                                                 caplog) -> None:  # fmt: skip
    monkeypatch.chdir(REPO)
    (tmp_path / "blocker").write_text("keep")
    common = ["grasp", "evaluate", "--objects", "box_4", "--n", "1", "--resolution", "8",
              "--candidates", "1", "--no-progress"]  # fmt: skip
    code, _, err = _run(monkeypatch, capsys, caplog, *common, "--json", tmp_path / "e.json",
                        "--sheet", tmp_path / "blocker" / "s.png")  # fmt: skip
    assert code == 2 and "is a file, not a folder" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
    (tmp_path / "e").mkdir()
    code, _, err = _run(monkeypatch, capsys, caplog, *common, "--json", tmp_path / "e")
    assert code == 2 and "is a folder" in err and list((tmp_path / "e").iterdir()) == []
    # one grasp: no diversity to measure; the JSON says null, not NaN (which is not JSON)
    code, stdout, err = _run(monkeypatch, capsys, caplog, *common, "--json", tmp_path / "e.json")
    assert code == 0, err
    text = (tmp_path / "e.json").read_text()
    assert "NaN" not in text and "NaN" not in stdout
    assert json.loads(text)["mean"]["diversity_entropy"] is None


@pytest.mark.parametrize(
    ("option", "match"),
    [
        (["--box", "x"], "--box"),
        (["--coarse-resolution", "3"], "power of two"),
        (["--coarse-resolution", "0"], "power of two"),
        (["--resolution", "2000"], "8..1024"),
        (["--threshold", "nan"], "--threshold"),
        (["--limit", "0"], "--limit"),
        (["--split", "dev"], "--split"),
        (["--device", "mps"], "--device"),
    ],
)
def test_evaluate_checks_its_options_before_making_the_mesh_folder(
    tmp_path, monkeypatch, capsys, caplog, option, match
) -> None:
    code, _, err = _run(
        monkeypatch, capsys, caplog, "evaluate", "--checkpoint",
        REPO / "src/halohand/weights/halo_default.safetensors", "--data", tmp_path / "data",
        "--json", tmp_path / "out" / "e.json", "--mesh-dir", tmp_path / "out" / "meshes", *option,
    )  # fmt: skip
    assert code == 2 and match in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_an_output_folder_without_write_permission_is_refused_first(
    tmp_path, monkeypatch, capsys, caplog
) -> None:
    """A read-only folder (as a user, not root, meets it) is named before any work."""
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access

    def access(path, mode, **kw) -> bool:  # noqa: ANN001 - os.access's signature
        return not (Path(path) == locked and mode & os.W_OK) and real_access(path, mode, **kw)

    monkeypatch.setattr(os, "access", access)
    hand = REPO / "examples/hand_right.npy"
    for args in (
        ["reconstruct", hand, "--out-dir", locked / "meshes"],
        ["reconstruct", hand, "--out-dir", locked],
        ["occupancy", hand, POINTS, "--out", locked / "o.npy"],
        ["check", hand, "--json", locked / "r.json"],
        ["check", hand, "--fix-skeleton", locked / "sub" / "f.npy"],
        ["grasp", "examples/box_mm.stl", "--out-dir", locked / "g"],
        ["grasp", "evaluate", "--objects", "box_4", "--json", locked / "e.json"],
        ["demo", "--out-dir", locked / "demo"],
    ):
        code, _, err = _run(monkeypatch, capsys, caplog, *args)
        assert code == 2 and "permission denied" in err and err.count("\n") == 1, (args, err)
    assert list(locked.iterdir()) == []


@pytest.fixture
def _no_serving(monkeypatch):
    """``halohand view`` serves until Ctrl+C: here the serve loop stops at once."""
    from halohand.apps.viewer import server

    def serve(self) -> None:  # noqa: ANN001
        raise KeyboardInterrupt

    monkeypatch.setattr(server.ViewerServer, "serve_forever", serve)


@pytest.mark.parametrize("entry", _entries("meshes/"), ids=lambda e: e["file"])
def test_mesh_file_view(monkeypatch, capsys, caplog, _no_serving, entry) -> None:
    """The viewer reads .glb/.ply/.obj itself: every corpus mesh is shown or refused in one
    line (faces beyond the vertices were an IndexError traceback)."""
    code, _, err = _run(monkeypatch, capsys, caplog, "view", _input(entry), "--no-browser",
                        "--port", "0")  # fmt: skip
    lines = err.strip().splitlines()
    assert code in (0, 2) and "Traceback" not in err, err
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    else:
        assert all(line.startswith("warning: ") for line in lines), err
    if entry["file"] == "meshes/faces_out_of_range.ply":
        assert code == 2 and "vertices the file does not have" in err


@pytest.mark.parametrize("units", ["auto", "m", "mm"])
def test_mesh_reading_raises_no_warning(units) -> None:
    """Coordinates near the float limit or a flat closed mesh: one error, no numpy warning
    (trimesh's reader and mass properties warned)."""
    from halohand.core.errors import HalohandInputError
    from halohand.objects.registry import object_from_mesh

    for name in ("box_1e300.stl", "zero_height_box.obj", "ascii_stl_nan.stl"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(HalohandInputError):
                object_from_mesh(CORPUS / "meshes" / name, units=units)


def test_a_file_name_with_a_newline_stays_one_whole_line(tmp_path, monkeypatch, capsys,
                                                         caplog) -> None:  # fmt: skip
    odd = tmp_path / "left\nhand.npy"
    np.save(odd, np.zeros((20, 3)))
    code, _, err = _run(monkeypatch, capsys, caplog, "check", odd)
    assert code == 2 and err.count("\n") == 1, err
    assert "left\\nhand.npy" in err and "got [20, 3]" in err  # the whole message, escaped
    hand = REPO / "examples/hand_right.npy"
    code, _, err = _run(monkeypatch, capsys, caplog, "reconstruct", hand,
                        "--out-dir", tmp_path / ("c" * 300 + "a\nb") / "o")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "a\\nb" in err, err


def test_the_keypoint_readers_raise_input_errors_for_unusable_paths(tmp_path) -> None:
    """A name the system refuses (too long, under a file) is an input error, not OSError."""
    from halohand.apps.keypoint_io import load_keypoints, load_points
    from halohand.core.errors import HalohandInputError

    (tmp_path / "file").write_text("x")
    for path in (tmp_path / ("a" * 300 + ".npy"), tmp_path / "file" / "kp.npy"):
        for read in (load_keypoints, load_points):
            with pytest.raises(HalohandInputError, match="cannot read"):
                read(path)


@pytest.mark.parametrize(
    ("option", "match"),
    [
        (["--json", "{tmp}/" + "x" * 300 + "/c.json"], "File name too long"),
        (["--json", "{tmp}/blocker/c.json"], "is a file, not a folder"),
        (["--out", "{tmp}/blocker/c.safetensors"], "is a file, not a folder"),
        (["--resolution", "4"], "8..1024"),
    ],
)
def test_calibrate_checks_its_outputs_before_the_work(tmp_path, monkeypatch, capsys, caplog,
                                                       option, match) -> None:  # fmt: skip
    """A --json that cannot be written failed after the calibrated model was saved."""
    import halohand.evaluation.calibrate as calibrate

    monkeypatch.setattr(calibrate, "calibrate", None)  # must not be reached
    (tmp_path / "blocker").write_text("keep")
    option = [o.replace("{tmp}", str(tmp_path)) for o in option]
    args = {"--out": str(tmp_path / "out" / "c.safetensors")}
    args.update(dict(zip(option[::2], option[1::2], strict=True)))
    code, _, err = _run(
        monkeypatch, capsys, caplog, "calibrate", "--checkpoint",
        REPO / "src/halohand/weights/halo_default.safetensors", "--data", tmp_path / "data",
        *[x for kv in args.items() for x in kv],
    )  # fmt: skip
    assert code == 2 and match in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
