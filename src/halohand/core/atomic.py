"""Atomic file writes: a temp file in the destination folder, fsync, then ``os.replace``.

A reader (or a crash) sees either the previous file or the complete new one, never a
partial file; on error the temp file is removed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def remove_temporaries(folder: str | os.PathLike[str]) -> None:
    """Remove the temp files (``.<name>.<random>.tmp``, as :func:`atomic_path` and the shard
    writer name them) that a killed writer left in ``folder``, not in its subfolders. A temp
    file is only renamed into place when complete, so a leftover holds nothing; call it only
    where no other process may be writing (under the folder's lock, or before a resumed job
    starts its writers)."""
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``path``; when the block succeeds it replaces ``path``.

    For libraries that write to a path themselves (safetensors, image writers).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb", **kwargs: Any) -> Iterator[IO]:
    """Open a temp file beside ``path`` for writing; on success it replaces ``path``."""
    if not any(m in mode for m in "wax") or "r" in mode.replace("+", ""):
        raise ValueError(f"atomic_open is for writing, got mode {mode!r}")
    # The temp file already exists, so exclusive/append modes become plain writes.
    write_mode = mode.replace("x", "w").replace("a", "w")
    with atomic_path(path) as tmp, open(tmp, write_mode, **kwargs) as fh:
        yield fh


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (newlines written as given)."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
