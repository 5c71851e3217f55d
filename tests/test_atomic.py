"""Atomic writes leave either the old file or the complete new one."""

from __future__ import annotations

from pathlib import Path

import pytest

from halohand.core.atomic import atomic_open, atomic_path, write_bytes_atomic, write_text_atomic


def test_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.txt"
    write_text_atomic(target, "one\r\n")
    assert target.read_bytes() == b"one\r\n"
    write_bytes_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"three")
        assert target.read_bytes() == b"two"  # not visible before the block ends
    assert target.read_bytes() == b"three"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_failure_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(target, "wb") as fh:
        fh.write(b"partial")
        raise RuntimeError("crash")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("crash")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_rejects_read_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="writing"), atomic_open(tmp_path / "f", "rb"):
        pass
