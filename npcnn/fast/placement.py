"""Where the threads run while they share a step: each on a core of its own,
unless another program wants those cores.

When the fast tier hands parts to its worker threads, the OS chooses the core
each thread runs on, at every wake-up (a worker given work, a thread given
the GIL). After the process has been idle for a while (a pause between
batches, a request after a quiet spell), a virtual machine's idle core can
look unavailable to the guest's scheduler, and a woken thread is put on the
core of the thread that woke it: both then share one core until the load
balancer separates them, which took longer than a whole step. Measured on a
2-core AMD EPYC VM, batch 50: the first step after a 150 ms sleep took 36 ms
instead of 22, both threads on one CPU for most of it (``sched_getcpu`` at
each part's start and end); with the threads held apart, 25 ms.

So while the threads share work (:func:`apart`), the calling thread is held on
the core it is on and each worker is kept off that core
(``sched_setaffinity``); afterwards every thread has all its CPUs again.

Holding threads on cores is wrong on a busy machine: a thread held on the
core another program is using gets half of it, and nobody can take its place
there. So each thread watches its own share (:func:`watch_share`): if it got
less than ``STARVED`` of its core's time, the threads are not held apart for
the next ``FREE_S`` seconds, and the OS places them as it likes. Which core
runs a part never changes a number.

Linux only (``os.sched_setaffinity`` and the C library's ``sched_getcpu``);
elsewhere, or where the calls are refused, the threads run where the OS
puts them.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from contextlib import contextmanager

STARVED = 0.7  # a thread ran less than this share of its time: its core is wanted elsewhere
FREE_S = 10.0  # then the OS places the threads for this long (a busy machine stays busy)
MIN_WATCH_S = 0.001  # shorter shares are not judged
IN_A_ROW = 3  # a thread's starved shares in a row: a busy machine (one alone happens when quiet)

_free_until = 0.0  # time.monotonic() until which the threads are not held apart
_busy_until = {}  # CPU -> time.monotonic() until which apart() keeps the caller off it (dynamic)
dynamic = False  # True: the parts are small and anyone may take them (worker processes)
_workers = {}  # native thread id -> the CPUs that worker may run on
_lock = threading.Lock()
_here = threading.local()  # .starved: this thread's starved shares in a row


def _load_sched_getcpu():
    """The C library's ``sched_getcpu`` (the CPU the calling thread runs on), or None."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        getcpu = ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):
        return None
    getcpu.restype, getcpu.argtypes = ctypes.c_int, []
    return getcpu


_sched_getcpu = _load_sched_getcpu()


def current_cpu():
    """The CPU the calling thread runs on now, or None where that is unknown."""
    cpu = _sched_getcpu() if _sched_getcpu is not None else -1
    return cpu if cpu >= 0 else None


def register_worker(tid=None) -> None:
    """A worker to steer, with its CPUs: the calling thread (a worker thread, as it
    starts), or the thread or process ``tid`` (a worker process, ``processes.py``)."""
    if _sched_getcpu is None:
        return
    with _lock:
        _workers[threading.get_native_id() if tid is None else tid] = frozenset(
            os.sched_getaffinity(0)
        )


def forget_worker(tid) -> None:
    """A worker (a process) that has stopped."""
    with _lock:
        _workers.pop(tid, None)


def forget_workers() -> None:
    """The pool is gone (shut down, or this is a forked child): no worker to steer."""
    with _lock:
        _workers.clear()


def _set_workers(cpus_of) -> None:
    """Each worker's allowed CPUs to ``cpus_of(its own CPUs)``; a worker the OS
    refuses (a sandbox, or a thread gone) is left be and forgotten."""
    with _lock:
        workers = list(_workers.items())
    for tid, cpus in workers:
        try:
            os.sched_setaffinity(tid, cpus_of(cpus))
        except OSError:
            with _lock:
                _workers.pop(tid, None)


@contextmanager
def apart():
    """Inside: the calling thread held on its core, the workers kept off it (they
    wake elsewhere); afterwards every thread has all its CPUs again (the workers
    are idle by then: the caller has waited for them).

    With parts of a fixed share (threads), not while a thread was recently
    starved of its core (:func:`watch_share`): then the OS places every thread
    as it likes, and nothing is set. With small parts that anyone may take
    (``dynamic``: worker processes, ``processes.py``), busy machine or not; but
    the caller is held on a core where it was not starved lately
    (:func:`watch_share`), if it has one: the parts it takes run at full speed,
    and the workers on the busy core take fewer of them."""
    cpu = current_cpu() if _workers and (dynamic or time.monotonic() >= _free_until) else None
    if cpu is None:
        yield
        return
    busy = _busy_cpus() if dynamic else set()
    try:
        mine = os.sched_getaffinity(0)
        if cpu in busy:  # off a core found busy, if it has a calm one
            cpu = min(mine - busy, default=cpu)
        os.sched_setaffinity(0, {cpu})
    except OSError:
        yield
        return
    _set_workers(lambda cpus: cpus - {cpu} - busy or cpus - {cpu} or cpus)  # off the caller's core
    try:
        yield
    finally:
        os.sched_setaffinity(0, mine)
        _set_workers(lambda cpus: cpus)


def _busy_cpus() -> set:
    """The CPUs another program kept busy lately (:func:`watch_share`)."""
    now = time.monotonic()
    return {c for c, until in _busy_until.items() if until > now}


def threads_for_share(threads: int) -> int:
    """How many of ``threads`` a share of pieces of fixed sizes should use: all of
    them, unless the parts are small and anyone may take them (``dynamic``) and
    another program keeps some of our CPUs busy: then one per calm CPU (on a
    busy core a thread holds up the others at the end of every share; worker
    processes, given fewer parts there, still use it)."""
    busy = _busy_cpus() if dynamic else set()
    if not busy:
        return threads
    try:
        calm = len(os.sched_getaffinity(0) - busy)
    except (AttributeError, OSError):
        return threads
    return max(1, min(threads, calm))


@contextmanager
def watch_share():
    """Around a thread's own share of the work inside :func:`apart` (the caller's
    or a worker's): if this thread's last ``IN_A_ROW`` shares each got less than
    ``STARVED`` of their core's time (another program busy on that core), stop
    holding the threads apart for ``FREE_S`` seconds; or, with worker processes
    (``dynamic``), count that core as busy for as long (``apart`` then holds
    the caller elsewhere). (One starved share alone is no sign: on a quiet
    machine about one in a hundred is.)"""
    global _free_until
    wall, cpu, core = time.perf_counter(), time.thread_time(), current_cpu() if dynamic else None
    yield
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    if wall <= MIN_WATCH_S:
        return
    _here.starved = getattr(_here, "starved", 0) + 1 if cpu < STARVED * wall else 0
    if _here.starved < IN_A_ROW:
        return
    _here.starved = 0
    if not dynamic:
        _free_until = time.monotonic() + FREE_S
    elif core is not None:
        _busy_until[core] = time.monotonic() + FREE_S
