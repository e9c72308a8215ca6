"""Every core for the memory-bound passes: split a pass over the batch across threads.

BLAS already runs the matrix products on every core. The passes between them --
col2im's scatter, max-pool's routing, Adam, im2col's copy -- are NumPy ufuncs
and copies on one core, unless we split them. NumPy releases the GIL inside
those loops, so plain Python threads each working on a slice of the batch run
them in parallel::

    images 0..24  -> main thread    col2im(dcols[0:25],  into dx[0:25])
    images 25..49 -> worker thread  col2im(dcols[25:50], into dx[25:50])

Every image is computed by exactly the same operations in the same order as
without threads, so the numbers do not change by a bit; each slice writes only
its own part of the output, so the threads never touch the same memory.

The threads run *between* the matrix products, never during one, so they do
not fight with BLAS's own threads for the cores.

How many threads: the CPUs this process may run on, at most 8 (``taskset -c 0``
gives one: everything runs inline, no thread is started), or ``NPCNN_THREADS``
when set, or :func:`set_threads`. A pass is cut into at most one part per
32,768 elements. Arrays of another library (CuPy) are never split.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

MIN_ELEMENTS = 1 << 15  # elements per part at least: handing work to a thread costs ~20-50 us
MAX_DEFAULT_THREADS = 8  # memory-bound passes stop scaling long before: more only adds hand-offs

_pool = None  # the worker threads, started on first use
_threads = None  # None: decide from the environment on first use
_here = threading.local()  # .worker is True in the pool's own threads
_starting = threading.Lock()  # two threads splitting at once start one pool


def _mark_worker() -> None:
    _here.worker = True


def _default_threads() -> int:
    text = os.environ.get("NPCNN_THREADS", "").strip()
    if text:
        value = int(text) if text.lstrip("+").isdigit() else 0
        if value < 1:
            raise ValueError(f"NPCNN_THREADS must be an int >= 1, got {text!r}")
        return value
    try:
        cpus = len(os.sched_getaffinity(0))  # the CPUs we may run on (taskset, cgroups)
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_DEFAULT_THREADS)


def get_threads() -> int:
    """How many threads the fast tier splits its memory-bound passes over."""
    global _threads
    if _threads is None:
        _threads = _default_threads()
    return _threads


def set_threads(n: int) -> None:
    """Use ``n`` threads (1: no threads at all) from now on."""
    global _pool, _threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be an int >= 1, got {n!r}")
    if n == _threads:
        return
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    _threads = n


def _forget_pool_after_fork() -> None:
    """A forked child inherits the pool object but not its threads: start afresh."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def split_batch(work, n: int, elements: int, xp=np) -> None:
    """Call ``work(lo, hi)`` on consecutive parts of ``range(n)`` that together
    cover it, in parallel, and return when all are done.

    ``xp`` is the array module of the data: anything but NumPy (CuPy: the GPU
    runs the work) is never split.

    ``elements`` is the size of the whole pass: it gets at most one part per
    ``MIN_ELEMENTS`` (a small pass runs inline as ``work(0, n)``). The calling
    thread does the first part itself. An exception raised by any part is
    raised here, after every part finished; so is a Ctrl-C: no part is still
    writing into the arrays when this returns or raises. Called from one of
    the pool's own threads, it runs inline (waiting there for the pool could
    wait forever).
    """
    global _pool
    parts = min(get_threads(), n, elements // MIN_ELEMENTS)
    if parts <= 1 or xp is not np or getattr(_here, "worker", False):
        work(0, n)
        return
    with _starting:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                get_threads() - 1, thread_name_prefix="npcnn", initializer=_mark_worker
            )
        pool = _pool
    cuts = [n * p // parts for p in range(parts + 1)]
    futures = [pool.submit(work, lo, hi) for lo, hi in zip(cuts[1:-1], cuts[2:])]
    try:
        work(cuts[0], cuts[1])
    finally:
        _wait_for_all(futures)
    for future in futures:
        if future.exception() is not None:
            raise future.exception()


def _wait_for_all(futures) -> None:
    """Wait until every part is done, even through Ctrl-C (re-raised afterwards)."""
    interrupted = False
    while True:
        try:
            wait(futures)
            break
        except KeyboardInterrupt:
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt
