"""Worker processes of ``halohand data generate`` end with the generating process, even
when it is killed with SIGKILL (no chance to clean up)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (by parent pid, read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_die_with_a_killed_generator(tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "halohand", "data", "generate", "--out", str(tmp_path / "d"),
        "--n-train", "200", "--source", "toy", "--workers", "2", "--seed", "1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 3:  # forkserver + 2 workers
            time.sleep(0.2)
            workers = _descendants(proc.pid)
            assert proc.poll() is None, "generation ended before its workers were seen"
        assert len(workers) >= 3, f"workers did not start: {workers}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.2)
        left = sorted(p for p in workers if _alive(p))
        assert left == [], f"processes left running after the generator was killed: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
