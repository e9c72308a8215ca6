"""The fast tier's threads: whole parts of the batch on every core, and the
memory-bound passes split across them.

Two ways to use the cores, for two kinds of work:

- :func:`run_parts`, data parallelism: a training batch (or a long inference)
  is cut into parts of a few dozen images, and each thread takes the next part
  and runs the *whole network* on it, forward or backward, with BLAS on one
  thread. The threads meet twice a step, not at every matrix product; a thread
  that the OS takes off its core (another program is busy) holds up nobody: the
  others take the parts it did not start. ``npcnn/fast/parallel.py`` uses it.
- :func:`split_batch`, below, for a single pass outside those parts (Adam,
  summing the parts' gradients).

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
when set, or :func:`set_threads`. A pass is cut into at most one piece per
32,768 elements and four per thread, taken in turn. Arrays of another library
(CuPy) are never split. Where the threads run while they share work:
``placement.py``.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

import numpy as np
from threadpoolctl import ThreadpoolController

from . import placement

MIN_ELEMENTS = 1 << 15  # elements per part at least: handing work to a thread costs ~20-50 us
PIECES = 4  # pieces per thread at most in split_batch: a paused thread leaves the rest to others
MAX_DEFAULT_THREADS = 8  # memory-bound passes stop scaling long before: more only adds hand-offs

_pool = None  # the worker threads, started on first use
_threads = None  # None: decide from the environment on first use
_here = threading.local()  # .worker is True in the pool's own threads
_starting = threading.Lock()  # two threads splitting at once start one pool


def _mark_worker() -> None:
    _here.worker = True
    placement.register_worker()


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
        placement.forget_workers()
    _threads = n


def _forget_pool_after_fork() -> None:
    """A forked child inherits the pool object but not its threads: start afresh."""
    global _pool
    _pool = None
    placement.forget_workers()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _worker_pool():
    """The pool of ``get_threads() - 1`` worker threads, started on first use."""
    global _pool
    with _starting:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                get_threads() - 1, thread_name_prefix="npcnn", initializer=_mark_worker
            )
        return _pool


def split_batch(work, n: int, elements: int, xp=np) -> None:
    """Call ``work(lo, hi)`` on consecutive pieces of ``range(n)`` that together
    cover it, in parallel, and return when all are done.

    ``xp`` is the array module of the data: anything but NumPy (CuPy: the GPU
    runs the work) is never split.

    ``elements`` is the size of the whole pass: it gets at most one piece per
    ``MIN_ELEMENTS`` (a small pass runs inline as ``work(0, n)``), and at most
    ``PIECES`` per thread: each thread takes the next piece nobody has started,
    so a thread the OS has paused leaves the rest to the others. An exception
    raised by any piece is raised here, after every started piece finished; so
    is a Ctrl-C: no piece is still writing into the arrays when this returns
    or raises. Called from one of the pool's own threads, it runs inline
    (waiting there for the pool could wait forever).
    """
    threads = get_threads()
    pieces = min(threads * PIECES, n, elements // MIN_ELEMENTS)
    if min(pieces, threads) <= 1 or xp is not np or getattr(_here, "worker", False):
        work(0, n)
        return
    cuts = [n * p // pieces for p in range(pieces + 1)]
    _share(lambda k, slot: work(cuts[k], cuts[k + 1]), pieces, min(threads, pieces))


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


# ---- data parallelism: whole parts of the batch on every thread -----------------


def run_parts(work, count: int) -> None:
    """Call ``work(part, slot)`` for every part in ``range(count)``, on up to
    ``get_threads()`` threads at once, and return when every part is done.

    Each thread (the caller included) takes the next part nobody has started,
    until none is left: a thread the OS has taken off its core leaves its share
    to the others instead of holding them up. ``slot`` (0 .. threads-1) names the
    thread running the part: work that needs scratch memory per thread keys it
    by ``slot``. Which thread runs a part never changes a number; where the
    result depends on the parts, it depends on ``count``, which the caller
    derives from the batch alone.

    While the parts run, BLAS runs on one thread (:func:`blas_on_one_thread`):
    the cores are already busy with parts, and BLAS's own threads would wait
    for each other at every matrix product (and a matrix product split over
    BLAS threads may round differently). An exception (Ctrl-C included) is
    raised after every started part has finished.
    """
    threads = min(get_threads(), count)
    if threads <= 1 or getattr(_here, "worker", False):
        with blas_on_one_thread():  # the same numbers as on several threads
            for part in range(count):
                work(part, 0)
        return
    with blas_on_one_thread(), inline_splits():
        _share(work, count, threads)


def _share(work, count: int, threads: int) -> None:
    """``work(k, slot)`` for k in ``range(count)``: the calling thread (slot 0) and
    ``threads - 1`` workers each take the next k nobody has started, until none
    is left; the workers kept off the caller's core (``placement.py``). Returns
    when every started k is done; raises the first exception of any."""
    threads = placement.threads_for_share(threads)  # fewer on a busy machine (``placement.py``)
    if threads <= 1:
        for k in range(count):
            work(k, 0)
        return
    ks = iter(range(count))
    lock, errors = threading.Lock(), []

    def take(slot):
        while True:
            with lock:
                k = next(ks, None)
            if k is None or errors:
                return
            try:
                work(k, slot)
            except BaseException as exc:  # noqa: BLE001 -- re-raised by the caller
                errors.append(exc)

    def worker_takes(slot):
        with placement.watch_share():
            take(slot)

    pool = _worker_pool()
    with placement.apart():
        futures = [pool.submit(worker_takes, slot) for slot in range(1, threads)]
        try:
            with placement.watch_share():
                take(0)
        finally:
            _wait_for_all(futures)
    if errors:
        raise errors[0]


@contextmanager
def inline_splits():
    """Inside, the calling thread runs :func:`split_batch` inline, as the workers do."""
    before = getattr(_here, "worker", False)
    _here.worker = True
    try:
        yield
    finally:
        _here.worker = before


_blas = None  # threadpoolctl's view of the BLAS libraries, made once (0.3 ms each time)


@contextmanager
def blas_on_one_thread():
    """BLAS (OpenBLAS, MKL, ...) limited to one thread inside, as it was after."""
    global _blas
    if _blas is None:
        _blas = ThreadpoolController().select(user_api="blas")
    with _blas.limit(limits=1):
        yield
