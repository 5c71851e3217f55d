"""Worker threads for CPU inference: batches in parallel, one torch thread each.

Torch releases the GIL inside its kernels, and two streams of small GEMMs use two cores
better than one stream split by OpenMP (``benchmarks/speed/bench_extraction.py``,
``benchmarks/speed/bench_occupancy.py``): on a shared 2-core machine, OpenMP's workers
mostly wait on each other over kernels of a few microseconds. The pools live as long as
the process (new threads would each start their own OpenMP team), and torch runs one
intra-op thread while they work, so the streams do not oversubscribe the cores.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_POOLS: dict[int, ThreadPoolExecutor] = {}
# Reentrant: a torch_threads block may call run_batches (and nest torch_threads) in the
# same thread.
_POOL_LOCK = threading.RLock()
#: ``inside`` is set in a thread while it runs items of :func:`run_batches`.
_STATE = threading.local()


def _pool(workers: int) -> ThreadPoolExecutor:
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="halohand-worker")
    return _POOLS[workers]


def run_batches(
    fn: Callable[[T], object], items: Iterable[T], workers: int = 1, *, one_thread: bool = False
) -> None:
    """Call ``fn`` on every item, in ``workers`` threads (one torch thread each) when there
    are several items; ``fn`` must be thread-safe (torch kernels on separate outputs are).

    With ``one_thread``, items run on one torch thread even in the caller's thread (for work
    made of small kernels, where OpenMP's threads mostly wait on each other).

    The first exception raised by ``fn`` propagates once every item has run.
    """
    items = list(items)
    threaded = workers > 1 and len(items) > 1
    if getattr(_STATE, "inside", False) or (not threaded and not one_thread):
        # Nested in another run_batches (e.g. an occupancy query inside an extraction's
        # occupancy function): that one holds the lock and set the threads already.
        for item in items:
            fn(item)
        return
    import torch

    # The thread count is process-wide: calls from several user threads take turns here,
    # so none of them restores another's setting.
    with _POOL_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            if threaded:
                list(_pool(workers).map(lambda item: _inside(fn, item), items))
            else:
                for item in items:
                    _inside(fn, item)
        finally:
            torch.set_num_threads(before)


def _inside(fn: Callable[[T], object], item: T) -> None:
    """``fn(item)`` with this thread marked as running items of :func:`run_batches`."""
    outer = getattr(_STATE, "inside", False)
    _STATE.inside = True
    try:
        fn(item)
    finally:
        _STATE.inside = outer


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block on ``threads`` torch (OpenMP) threads, then restore the setting.

    For work made of small kernels (autograd over a small MLP, optimization loops): with
    two OpenMP threads on a shared 2-core machine, one CPU-bound neighbour process makes
    every parallel region wait for the descheduled thread, and such loops slow down 3-10x
    (``benchmarks/speed/bench_neighbour.py``); on one thread they lose at most their fair
    share of the cores.

    The thread count is process-wide: blocks in several user threads take turns (a lock,
    reentrant, shared with :func:`run_batches`), so none restores another's setting.
    Inside items of :func:`run_batches` (already on one thread) it does nothing.
    """
    if getattr(_STATE, "inside", False):
        yield
        return
    import torch

    with _POOL_LOCK:
        before = torch.get_num_threads()
        outer = getattr(_STATE, "outer", None)
        _STATE.outer = outer or before
        if before != threads:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            _STATE.outer = outer
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)


def worker_count() -> int:
    """Worker threads for :func:`run_batches` by default: the torch thread count, or inside
    a :func:`torch_threads` block, the count outside it (the block's kernels run on fewer
    threads; batches of points in workers still use every core)."""
    import torch

    return getattr(_STATE, "outer", None) or torch.get_num_threads()


def fair_threads(wanted: int) -> int:
    """Torch threads for a block of small kernels that leave busy neighbours their share:
    ``wanted`` while the allowed cores have room for them besides the other processes'
    threads running now, else as many as do (at least 1).

    Reads the kernel's instantaneous count of runnable threads (``/proc/loadavg``; the load
    average trails a neighbour by a minute) less this process's own (``/proc/self/task``:
    OpenMP threads still spinning after a parallel region are not neighbours), ~50 us.
    Where these cannot be read (not Linux), ``wanted``.
    """
    return max(1, min(wanted, _free_cpus() or wanted))


def _free_cpus() -> int | None:
    """Allowed cores less the runnable threads of other processes, or None if unknown."""
    try:
        cpus = len(os.sched_getaffinity(0))
        with open("/proc/loadavg", encoding="ascii") as f:
            running = int(f.read().split()[3].split("/")[0])
        own = 0
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/stat", encoding="ascii") as f:
                    own += f.read().rsplit(")", 1)[1].split()[0] == "R"
            except OSError:  # the thread ended meanwhile
                continue
    except (AttributeError, OSError, ValueError, IndexError):
        return None
    return max(1, cpus - max(0, running - own))
