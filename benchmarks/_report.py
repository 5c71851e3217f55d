"""Shared tail of the benchmark scripts: the machine a result was measured on, and the JSON
report itself (printed, and written atomically with repository-relative paths).

Every script that writes JSON ends with :func:`emit`; it adds a ``machine`` block (CPU model,
cores, torch threads, torch / numpy / Python versions, git revision, load average and a
float32 matmul calibration in GFLOP/s measured in the same process) and a ``command`` (the
script, relative to the repository root, and its arguments). Speed benchmarks also call
:func:`begin` once their thread count is set, so the calibration and the load average are
taken both before and after the timings: on a shared machine a change between the two says
the timings moved for reasons of their own.

The scripts live one folder below this module (``benchmarks/speed/``,
``benchmarks/studies/``, ``benchmarks/figures/``) and put ``benchmarks/`` on ``sys.path``
before importing it, so ``python benchmarks/speed/x.py`` and ``benchmarks/run.py`` both work.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: The repository root (``benchmarks/..``): result files name paths relative to it.
REPO = Path(__file__).resolve().parents[1]
#: Where ``benchmarks/run.py`` writes results by default: ``RESULTS / <kind> / <name>.json``.
RESULTS = REPO / "benchmarks" / "results"

_START: dict[str, Any] = {}


def repo_path(path: str | Path) -> str:
    """``path`` relative to the repository root when it lies below it (so a result file
    names the same file in any clone), else as given."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(REPO))
    except (ValueError, OSError):
        return str(path)


#: Former name of :func:`repo_path` (relative to the working directory, which is the
#: repository root for every documented command).
display_path = repo_path


def command_line(argv: list[str] | None = None) -> str:
    """The running script (repository-relative) and its arguments, as one string."""
    argv = sys.argv if argv is None else argv
    return " ".join([repo_path(argv[0]), *argv[1:]])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_revision() -> str | None:
    """``HEAD`` of the repository, with ``+dirty`` when tracked files differ from it."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")


def matmul_gflops(n: int = 1024, seconds: float = 0.3) -> float:
    """Calibration: float32 ``n x n`` matmul throughput (GFLOP/s, the best of the repeats
    that fit in about ``seconds``) at the current torch thread count."""
    import torch

    a = torch.randn(n, n, generator=torch.Generator().manual_seed(0))
    b = torch.randn(n, n, generator=torch.Generator().manual_seed(1))
    torch.mm(a, b)  # warm-up
    best, deadline, repeats = float("inf"), time.perf_counter() + seconds, 0
    while repeats < 3 or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
        repeats += 1
    return round(2.0 * n**3 / best / 1e9, 2)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def begin() -> None:
    """Take the calibration and the load average before the timings (speed benchmarks: call
    it after setting the torch thread count)."""
    _START.update(matmul_gflops=matmul_gflops(), load=_load())


def machine_info() -> dict[str, Any]:
    """The machine, the software and the calibration now (and at :func:`begin`, if called)."""
    import numpy as np
    import torch

    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count()
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_available": available,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_revision": _git_revision(),
    }
    if _START:
        info["matmul_gflops_before"] = _START["matmul_gflops"]
        info["matmul_gflops_after"] = matmul_gflops()
        info["load_average_1min_before_after"] = [_START["load"], _load()]
    else:
        info["matmul_gflops"] = matmul_gflops()
        info["load_average_1min"] = _load()
    return info


def relative_paths(value: Any) -> Any:
    """``value`` with the repository root cut from every string (``/abs/repo/x`` -> ``x``,
    ``/abs/repo`` -> ``.``) and the temporary folder shown as ``<tmp>``, in nested dicts
    and lists."""
    if isinstance(value, str):
        root = re.escape(str(REPO))
        out = re.sub(rf"{root}{re.escape(os.sep)}", "", value)
        out = re.sub(rf"{root}(?![\w.-])", ".", out)
        tmp = tempfile.gettempdir()
        return out.replace(f"{tmp}{os.sep}", "<tmp>/") if tmp not in ("", os.sep) else out
    if isinstance(value, dict):
        return {k: relative_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [relative_paths(v) for v in value]
    return value


def finish(report: dict, indent: int = 1, machine: bool = True, allow_nan: bool = True) -> str:
    """The JSON text of ``report`` as result files hold it: with ``command`` (unless
    present) and, with ``machine``, the ``machine`` block (merged into the script's own, if
    any); every path below the repository root relative to it."""
    report = dict(report)
    report.setdefault("command", command_line())
    if machine:
        own = report.get("machine")
        own = own if isinstance(own, dict) else {} if own is None else {"description": own}
        stale = ("matmul_gflops", "load_average")  # of an earlier run (a merged document)
        own = {k: v for k, v in own.items() if not k.startswith(stale)}
        report["machine"] = {**own, **machine_info()}
    return json.dumps(relative_paths(report), indent=indent, allow_nan=allow_nan)


def write(report: dict, path: str | Path, **kwargs: Any) -> str:
    """Write :func:`finish` of ``report`` to ``path`` atomically (a crash never leaves a
    half-written result file; missing folders are made); returns the text."""
    from halohand.core.atomic import write_text_atomic

    text = finish(report, **kwargs)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text + "\n")
    return text


def emit(report: dict, path: str | Path | None, **kwargs: Any) -> None:
    """Print :func:`finish` of ``report`` on stdout and, with ``path``, :func:`write` the
    same text there (keywords: ``indent``, ``machine``, ``allow_nan``)."""
    print(write(report, path, **kwargs) if path else finish(report, **kwargs))
