"""benchmarks/run.py: it lists every benchmark script, each has a docstring, the JSON-writing
kinds take ``--json``, and one tiny speed benchmark runs end to end through it (a few
seconds) with the machine block and repository-relative paths in its result."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

BENCH = REPO / "benchmarks"
KINDS = ("speed", "studies", "figures")


def _scripts() -> dict[str, tuple[str, Path]]:
    """``{name: (kind, path)}`` of every script in the kind folders."""
    out: dict[str, tuple[str, Path]] = {}
    for kind in KINDS:
        for path in sorted((BENCH / kind).glob("*.py")):
            if not path.name.startswith("_"):
                assert path.stem not in out, f"{path.stem} in two kind folders"
                out[path.stem] = (kind, path)
    return out


def _runner(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / "run.py"), *args],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


def test_no_benchmark_script_left_outside_the_kind_folders() -> None:
    loose = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_"))
    assert loose == ["run.py"]
    assert not list(BENCH.glob("*.json")), "results belong under benchmarks/results/<kind>/"


def test_list_shows_every_script_with_its_kind_and_description() -> None:
    proc = _runner("list")
    assert proc.returncode == 0, proc.stderr
    listed = {}
    for line in proc.stdout.splitlines():
        name, kind, description = line.split(maxsplit=2)
        listed[name] = (kind, description)
    scripts = _scripts()
    assert set(listed) == set(scripts)
    for name, (kind, _) in scripts.items():
        assert listed[name][0] == kind
        assert listed[name][1].strip()


@pytest.mark.parametrize("name", sorted(_scripts()))
def test_every_benchmark_has_a_docstring_and_runs_alone(name: str) -> None:
    kind, path = _scripts()[name]
    source = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source))
    assert doc and doc.split("\n\n")[0].strip(), f"{path} has no module docstring"
    if kind != "figures":
        assert '"--json"' in source, f"{path} takes no --json (run.py passes one)"
    if "_report" in source or "_scoring" in source:
        # Run as `python benchmarks/<kind>/x.py`, the helpers one folder up must be found.
        assert "sys.path.insert(0, str(Path(__file__).resolve().parents[1]))" in source or (
            "parents[1]" in source and "sys.path" in source
        )


def test_run_writes_to_the_results_folder_by_default() -> None:
    proc = _runner("run", "fit_gap", "--dry-run", "--", "--hands", "2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.split() == [
        "benchmarks/studies/fit_gap.py", "--hands", "2",
        "--json", "benchmarks/results/studies/fit_gap.json",
    ]  # fmt: skip
    proc = _runner("run", "fit_gap", "--dry-run", "--", "--json", "elsewhere.json")
    assert proc.stderr.split().count("--json") == 1
    proc = _runner("run", "hand_grid", "--dry-run")
    assert "--json" not in proc.stderr
    assert _runner("run", "no_such_benchmark").returncode != 0


def test_stored_results_name_no_absolute_paths() -> None:
    for path in sorted((BENCH / "results").rglob("*.json")):
        text = path.read_text(encoding="utf-8")
        for needle in (str(REPO), "/tmp/", "/home/"):
            assert needle not in text, f"{path.relative_to(REPO)} names {needle}"


@pytest.mark.slow
def test_tiny_speed_benchmark_through_the_runner(tmp_path: Path) -> None:
    out = tmp_path / "bench_canonical.json"
    proc = _runner(
        "run", "bench_canonical", "--",
        "--batch", "4", "--repeats", "1", "--threads", "1", "--json", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert set(report["results"]) == {
        "float32/forward", "float32/forward_backward",
        "float64/forward", "float64/forward_backward",
    }  # fmt: skip
    machine = report["machine"]
    for key in ("cpu_model", "cores", "torch_threads", "torch", "numpy", "git_revision"):
        assert key in machine
    assert machine["torch_threads"] == 1
    assert machine["matmul_gflops_before"] > 0 and machine["matmul_gflops_after"] > 0
    assert report["command"].startswith("benchmarks/speed/bench_canonical.py ")
    assert str(REPO) not in out.read_text()
