"""Shared tail of the benchmark scripts: print the JSON report, and write it atomically."""

from __future__ import annotations

import json
from pathlib import Path


def emit(report: dict, path: str | Path | None, indent: int = 1) -> None:
    """Print ``report`` as JSON on stdout and, with ``path``, write the same text there
    atomically (a crash never leaves a half-written result file)."""
    from halohand.core.atomic import write_text_atomic

    text = json.dumps(report, indent=indent)
    print(text)
    if path:
        write_text_atomic(path, text + "\n")


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it (so a result file
    names the same file in any clone), else as given."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
