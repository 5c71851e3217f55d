"""The command line starts without the heavy libraries (see ``halohand.apps.cli``).

``halohand --help`` and usage errors build the whole command tree, so importing the CLI
package must not load torch, trimesh or scipy (seconds), nor numpy (a tenth of a second,
a quarter of what ``--help`` may take); commands load them when they run. Constants
the option declarations show but cannot import (their modules are heavy) are pinned to
their sources here.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest
import typer.main

from halohand.apps.cli import app
from halohand.apps.cli import options as opts
from halohand.apps.cli import train as train_cli
from halohand.core.errors import HalohandInputError

HEAVY = ("torch", "trimesh", "scipy", "numpy")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=ENV, timeout=120
    )


def test_cli_import_loads_no_heavy_module() -> None:
    code = (
        "import halohand.apps.cli, sys; "
        f"print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))"
    )
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert ast.literal_eval(proc.stdout.strip()) == []


@pytest.mark.parametrize("module", ["halohand", "halohand.apps.cli"])
def test_python_m_runs_the_cli(module: str) -> None:
    proc = _python("-m", module, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "reconstruct" in proc.stdout and "grasp" in proc.stdout
    proc = _python("-m", module, "reconstruct")  # a usage error: one line, exit 2
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Missing argument 'KP...'"), lines
    assert "Traceback" not in proc.stderr


def _defaults(group, path: str) -> dict[str, object]:
    """``{option: default}`` of the command at ``path`` (``"grasp sample"``)."""
    cmd = group
    for name in path.split():
        cmd = cmd.commands[name]
    return {opt: p.default for p in cmd.params for opt in p.opts}


def test_shared_options_keep_each_commands_default() -> None:
    group = typer.main.get_command(app)
    assert _defaults(group, "reconstruct")["--device"] == "cpu"
    assert _defaults(group, "evaluate")["--device"] == "auto"
    assert _defaults(group, "reconstruct")["--resolution"] == 256
    assert _defaults(group, "grasp sample")["--resolution"] == 96
    assert _defaults(group, "grasp evaluate")["--resolution"] == 128
    assert _defaults(group, "train")["--progress"] is None
    assert _defaults(group, "evaluate")["--progress"] is True
    assert _defaults(group, "calibrate")["--levels"] == train_cli.CALIBRATION_LEVELS


def test_constants_match_their_heavy_sources() -> None:
    from halohand.apps.export import EXTENSIONS
    from halohand.evaluation.calibrate import DEFAULT_LEVELS
    from halohand.inference.halo import _check_resolution

    assert opts.MESH_EXTENSIONS == EXTENSIONS
    assert train_cli.CALIBRATION_LEVELS == ",".join(f"{x:g}" for x in DEFAULT_LEVELS)
    low, high = opts.RESOLUTION_RANGE
    for value in (low, high):
        assert opts.check_resolution(value) == _check_resolution(value)
    for value in (low - 1, high + 1):
        with pytest.raises(HalohandInputError) as light:
            opts.check_resolution(value)
        with pytest.raises(HalohandInputError) as heavy:
            _check_resolution(value)
        assert str(light.value) == str(heavy.value)
