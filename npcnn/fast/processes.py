"""The parts of a training batch in worker processes: no GIL between them.

``parallel.py`` cuts a batch into parts (50 images: two of 25) and runs the
convolution blocks, forward and backward, on each. On threads, the threads
share Python's GIL: between two NumPy calls a thread needs it, and a thread
the OS has paused while holding it holds up the other. When another program
keeps one core busy (2-core AMD EPYC, batch 50, float32, a CPU-burning process
on the second core), the step on threads took 36.5-38 ms, about the one-core
step; here 28-32 (quiet: 21.3-22.4 either way).

The parts run in a worker process (``python -m npcnn.worker``; one per thread
beyond the first, ``threads.py``) and in the main process, each with its own
GIL; each process takes the next part nobody has taken, from a pipe holding
the part numbers, until none is left::

    main:      part 0 ----------> (then the rest: Dense layers, Adam, on its threads)
    worker 1:  part 1 ----------^

What crosses between the processes is plain data in shared memory
(:class:`SharedArrays`): the head layers' parameters, the images, the heads'
outputs, their gradients, each part's weight gradients; the commands are
small JSON messages. A worker rebuilds the head layers from their
``get_config`` (so only npcnn's own layer classes, without state, can run
there; any other model runs on threads). The backward pass of a part runs in
the process that ran its forward pass (its cache is there). The parts are the
threads' parts, and the weight gradients are summed part by part in order,
whichever process ran each part: the bits of threads, however the parts were
shared out.

On a busy machine (``placement.py``, ``dynamic``): the main process is held on
a core where it was not starved lately, and a worker takes at most its quota
of the parts (:meth:`PartProcesses.quotas`: its share by the speed it ran at).

On request: ``NPCNN_WORKERS=processes`` (or ``set_workers("processes")``), on
Linux, with two threads or more. (Not the default: on a quiet machine, and in
the benchmark's short timed blocks after a pause, the step is the threads'.)
Where the workers cannot start (a sandbox, no room for a shared file), a
warning says so and the parts run on threads: the same numbers.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time
import weakref
from math import prod

import numpy as np

from . import placement
from .shared import SharedArrays, param_slots, receive, send

MAX_PARTS = 255  # part numbers go through the claims pipe as one byte each
MAX_POOLS = 4  # models with workers at once: the least recently used one's stop

_workers = None  # None: decide from the environment on first use
_pools = []  # weak references to the PartProcesses with workers, least recently used first


class WorkersUnavailable(RuntimeError):
    """The worker processes could not be started here (the parts run on threads)."""


def get_workers() -> str:
    """Where the parts of a training batch run: "threads" (the default) or
    "processes" (where :func:`supported`); ``NPCNN_WORKERS`` or :func:`set_workers`."""
    global _workers
    if _workers is None:
        text = os.environ.get("NPCNN_WORKERS", "").strip() or "threads"
        if text not in ("threads", "processes"):
            raise ValueError(f"NPCNN_WORKERS must be 'threads' or 'processes', got {text!r}")
        _workers = text
        placement.dynamic = text == "processes"
    return _workers


def set_workers(kind: str) -> None:
    """Run the parts of a training batch on ``"threads"`` or worker ``"processes"``
    from the next step on."""
    global _workers
    if kind not in ("threads", "processes"):
        raise ValueError(f"workers must be 'threads' or 'processes', got {kind!r}")
    _workers = kind
    placement.dynamic = kind == "processes"  # every share's parts may go to anyone


def supported() -> bool:
    """Whether this system can run the worker processes: Linux (a Unix socket
    that keeps messages apart and passes file descriptors), a Python to start."""
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds") and bool(sys.executable)


class PartProcesses:
    """The main process's side: worker processes that run the head ``layers``
    (npcnn layers that see images) on parts of the batch, with the main process.

    :meth:`forward` and :meth:`backward` take a callable that runs one part in
    the main process; the workers run theirs. Started on first use, stopped
    when this object is collected (or at exit)."""

    def __init__(self, layers, dtype, count):
        self.layers = list(layers)
        self.dtype = np.dtype(dtype)  # the images' and the parameters' (one dtype, as the ops ask)
        self.count = count  # worker processes
        self.owner = os.getpid()  # a forked child must not talk to its parent's workers
        self.mine = []  # the parts the main process ran in the last forward pass
        self._forget()

    def _forget(self) -> None:
        """No workers (none started yet, or stopped)."""
        self.socks, self.procs = [], []  # a socket to each worker; its process
        self.shared = None  # the SharedArrays
        self.key = None  # (images, parts, input shape, output shape) of the shared arrays
        self.speeds = None  # parts per second of each process's backward passes (main first)
        self.claims = None  # the pipe the part numbers are taken from: one byte each
        self._finalizer = None

    def start(self, input_shape) -> None:
        """Start the workers, each rebuilding the head layers for ``input_shape``."""
        read, write = os.pipe()
        flags = fcntl.fcntl(read, fcntl.F_GETFL)
        fcntl.fcntl(read, fcntl.F_SETFL, flags | os.O_NONBLOCK)  # an empty pipe: no part left
        self.claims = (read, write)
        config = {
            "layers": [
                {"class_name": type(layer).__name__, "config": layer.get_config()}
                for layer in self.layers
            ],
            "input_shape": list(input_shape),
            "dtype": self.dtype.name,
        }
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   NPCNN_THREADS="1", NPCNN_WORKERS="threads")  # fmt: skip
        env["PYTHONPATH"] = os.pathsep.join([here] + [p for p in [env.get("PYTHONPATH")] if p])
        self._finalizer = weakref.finalize(self, _stop, self.socks, self.procs, self.claims)
        for _ in range(self.count):  # the finalizer sees the lists fill: a failed start is undone
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            proc = subprocess.Popen(
                [sys.executable, "-m", "npcnn.worker", str(theirs.fileno()), str(read)],
                pass_fds=(theirs.fileno(), read), env=env, stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C goes to the main process alone
            )  # fmt: skip
            theirs.close()
            self.socks.append(mine)
            self.procs.append(proc)
            placement.register_worker(proc.pid)  # kept off the main process's core, as threads
        self._tell([{"op": "build", **config}] * self.count)
        self._replies()

    def stop(self) -> None:
        """Stop the workers (idempotent); the next forward pass starts new ones."""
        if self._finalizer is not None and self.owner == os.getpid():
            self._finalizer()
        self._forget()

    def prepare(self, x, parts, out_shape) -> None:
        """Workers started and the shared arrays sized for ``x`` in ``parts`` parts;
        :class:`WorkersUnavailable` if that cannot be done here."""
        key = (len(x), parts, tuple(x.shape[1:]), tuple(out_shape))
        if self.owner != os.getpid():  # forked: the workers are the parent's; leave them be
            self._forget()
            self.owner = os.getpid()
        _used(self)
        if key == self.key:
            return
        try:
            if not self.procs:
                self.start(x.shape[1:])
            self.attach(x, parts, out_shape)
        except (OSError, RuntimeError) as exc:
            self.stop()
            raise WorkersUnavailable(str(exc)) from exc
        self.key = key

    def attach(self, x, parts, out_shape) -> None:
        """New shared arrays for ``x`` in ``parts`` parts, mapped by every worker."""
        _, total = param_slots(self.layers)
        n, dt = len(x), self.dtype.name
        layout = {
            "params": ((total,), dt),
            "grads": ((parts, total), dt),
            "x": ((n, *x.shape[1:]), dt),
            "dx": ((n, *x.shape[1:]), dt),
            "y": ((n, *out_shape), dt),
            "dy": ((n, *out_shape), dt),
        }
        old, self.shared, self.key = self.shared, SharedArrays(layout), None
        if old is not None:
            old.close()
        self._tell([{"op": "attach", "layout": self.shared.layout}] * self.count, [self.shared.fd])
        self._replies()

    def forward(self, x, cuts, training, run_mine):
        """Every part's head output: the workers and the main process
        (``run_mine(k, i)`` -> part k's output, its i-th part) each take the
        next part, a worker at most its quota (:meth:`quotas`); returns the
        outputs joined (N, ...)."""
        arrays = self.shared.arrays
        slots, _ = param_slots(self.layers)
        for i, j, offset, shape in slots:  # this step's parameters, for the workers
            arrays["params"][offset : offset + prod(shape)] = self.layers[i].params[j].reshape(-1)
        arrays["x"][...] = x
        self._offer(len(cuts) - 1)
        message = {"op": "forward", "cuts": list(cuts), "training": bool(training)}
        self._tell([{**message, "quota": quota} for quota in self.quotas(len(cuts) - 1)])
        self.mine = []
        with placement.apart():
            try:
                with placement.watch_share():
                    for k in self._claim():  # its i-th part on its replica i: warm buffers
                        arrays["y"][cuts[k] : cuts[k + 1]] = run_mine(k, len(self.mine))
                        self.mine.append(k)
            finally:
                self._replies()
        return arrays["y"].copy()

    def backward(self, dy, cuts, need_dx, run_mine):
        """Each part's backward pass where its forward ran (``run_mine(k, i)`` ->
        part k's dx, or None, the main process's i-th part); returns dx joined
        (or None) and, per part, its weight gradients as flat vectors."""
        arrays = self.shared.arrays
        arrays["dy"][...] = dy
        self._tell([{"op": "backward", "cuts": list(cuts), "need_dx": bool(need_dx)}] * self.count)
        with placement.apart():
            try:
                start = time.perf_counter()
                with placement.watch_share():
                    for i, k in enumerate(self.mine):
                        dx = run_mine(k, i)
                        if need_dx:
                            arrays["dx"][cuts[k] : cuts[k + 1]] = dx
                mine = {"parts": self.mine, "seconds": time.perf_counter() - start}
            finally:
                replies = self._replies()
        self.measure([mine] + replies)
        return (arrays["dx"].copy() if need_dx else None), arrays["grads"]

    def quotas(self, parts):
        """How many parts each worker may take in a forward pass: its share of
        the parts by the speed each process ran its backward passes at lately
        (a worker on a core another program is using gets fewer, and the
        backward pass, where most of the work is, ends together); at least one
        (so its speed keeps being measured); all of them before any is measured."""
        if self.speeds is None:
            return [parts] * len(self.socks)
        total = sum(self.speeds)
        return [max(1, round(parts * speed / total)) for speed in self.speeds[1:]]

    def measure(self, runs) -> None:
        """Update each process's speed (parts per second, the main process's
        first) from its backward pass: ``runs`` [{"parts", "seconds"}], half
        the new value and half the old."""
        speeds = list(self.speeds or [0.0] * len(runs))
        for i, run in enumerate(runs):
            if run["parts"] and run["seconds"] > 0:
                new = len(run["parts"]) / run["seconds"]
                speeds[i] = new if speeds[i] == 0.0 else (speeds[i] + new) / 2
        self.speeds = speeds if all(speeds) else self.speeds

    def _offer(self, parts) -> None:
        """Put part numbers 0..parts-1 in the pipe, for whoever reads first."""
        for _ in self._claim():  # anything an interrupted step left
            pass
        os.write(self.claims[1], bytes(range(parts)))

    def _claim(self):
        """The part numbers this process takes, one at a time, until none is left."""
        while True:
            try:
                taken = os.read(self.claims[0], 1)
            except BlockingIOError:
                return
            if not taken:
                return
            yield taken[0]

    def _tell(self, messages, fds=()) -> None:
        """Send each worker its message; a worker gone is a RuntimeError (as in
        :meth:`_replies`), the workers stopped."""
        for sock, proc, message in zip(self.socks, self.procs, messages):
            try:
                send(sock, message, fds)
            except OSError as exc:
                self.stop()
                raise RuntimeError(
                    f"a worker process of the fast tier failed:\nworker {proc.pid} has gone ({exc})"
                ) from None

    def _replies(self) -> list:
        """Wait for every worker's reply (through Ctrl-C, re-raised after) and
        return what each sent; a worker's error, or a worker gone, raised here
        as RuntimeError."""
        errors, interrupted, results = [], False, []
        for sock, proc in zip(self.socks, self.procs):
            while True:
                try:
                    reply, _ = receive(sock)
                    break
                except KeyboardInterrupt:
                    interrupted = True
                except (EOFError, OSError) as exc:
                    reply = {"error": f"worker {proc.pid} has gone ({exc})"}
                    break
            if "error" in reply:
                errors.append(reply["error"])
            results.append(reply.get("ok"))
        if errors:
            self.stop()
            raise RuntimeError("a worker process of the fast tier failed:\n" + errors[0])
        if interrupted:
            raise KeyboardInterrupt
        return results


def _used(pool) -> None:
    """``pool`` was just used: the most recently used; with more than
    ``MAX_POOLS`` pools holding workers, the least recently used one's stop."""
    global _pools
    if _pools and _pools[-1]() is pool:  # every step of one model: nothing to reorder
        return
    _pools = [r for r in _pools if r() is not None and r() is not pool and r().procs]
    _pools.append(weakref.ref(pool))
    while len(_pools) > MAX_POOLS:
        oldest = _pools.pop(0)()
        if oldest is not None:
            oldest.stop()


def _stop(socks, procs, claims) -> None:
    """Close the sockets (a worker exits when its socket closes) and reap the workers."""
    for sock in socks:
        sock.close()
    for proc in procs:
        placement.forget_worker(proc.pid)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for fd in claims or ():
        os.close(fd)
