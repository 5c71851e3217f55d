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
        if before != threads:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)
