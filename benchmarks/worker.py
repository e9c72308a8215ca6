"""One system in a process of its own, kept warm, answering the coordinator over pipes.

The coordinator (``suite.py``) starts ``python -m benchmarks.worker --system NAME
--threads T [--cpu C]`` with the thread settings in its environment
(``systems.thread_env``), so they reach every library before it loads; the
worker pins itself to CPU C when asked, then imports its framework (and no
other). Requests and answers are JSON lines: on stdin the requests, on a
private copy of stdout the answers (the frameworks' own prints go to stderr,
which is the worker's log):

- ``{"do": "prepare", "id": k, "spec": case, "warmup": w, "block_s": b, "max_reps": m,
  "settle": s}``: build the case, run it ``w`` times, time one call, keep it;
  answers ``reps`` (calls per timed block, as many as fill ``b`` seconds), or ``skip``;
- ``{"do": "time", "id": k}``: ``s`` untimed calls, then seconds per call over one
  block of ``reps`` calls (by the case's own clock where it has one: ``run_block``);
- ``{"do": "info"}``: the system's BLAS, version, threads.

An exception answers ``{"error": "Type: its last line"}``, its traceback in the
log. A crash or a hang is seen by the :class:`Worker` client, which turns it into
an error too; either way the run goes on.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STARTUP_S = 120.0  # the least time a worker gets to load its framework


class WorkerError(RuntimeError):
    """A case that failed, or a worker that crashed or hung: the reason is the row."""


def run_block(fn, sync, reps, settle=0, clock=None) -> float:
    """Seconds per call, averaged over ``reps`` back-to-back calls, after ``settle``
    untimed ones (they pay for what the pause and the other systems took from
    this one: its data in the caches, its threads awake). The seconds are the
    ``clock``'s: by default the case's own (``fn.clock``, which counts one part
    of each call: ``breakdown.py``), else the wall clock."""
    clock = clock or getattr(fn, "clock", time.perf_counter)
    for _ in range(settle):
        fn()
    if sync is not None:
        sync()
    start = clock()
    for _ in range(reps):
        fn()
    if sync is not None:
        sync()
    return (clock() - start) / reps


def serve(system, requests, answers) -> None:
    """Answer requests until 'quit' or the end of input."""
    from .systems import NotApplicable

    prepared = {}
    for line in requests:
        req = json.loads(line)
        try:
            if req["do"] == "quit":
                break
            if req["do"] == "info":
                answer = {"info": system.info()}
            elif req["do"] == "prepare":
                fn, sync = system.case(req["spec"])
                for _ in range(req["warmup"]):
                    fn()
                one = max(run_block(fn, sync, 1, clock=time.perf_counter), 1e-7)  # a call's time
                reps = max(1, min(req["max_reps"], math.ceil(req["block_s"] / one)))
                prepared[req["id"]] = (fn, sync, reps, req.get("settle", 0))
                answer = {"reps": reps}
            else:
                answer = {"s": run_block(*prepared[req["id"]])}
        except NotApplicable as e:
            answer = {"skip": str(e)}
        except Exception as e:  # the case fails, the worker stays: a row saying why
            traceback.print_exc()
            lines = [s.strip() for s in str(e).strip().splitlines() if s.strip()]
            answer = {"error": f"{type(e).__name__}: {lines[-1] if lines else ''}"[:300]}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    p.add_argument("--system", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--cpu", type=int, default=None, help="pin to this CPU (taskset -c)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--npcnn", default=None, help="import npcnn from this checkout")
    args = p.parse_args(argv)
    answers = os.fdopen(os.dup(1), "w")  # the protocol's own copy of stdout
    os.dup2(2, 1)  # whatever a library prints goes to the log
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    if args.npcnn:
        sys.path.insert(0, args.npcnn)
    from .systems import make

    try:
        system = make(args.system, args.threads, args.device)
    except Exception as e:
        traceback.print_exc()
        answers.write(json.dumps({"error": f"{type(e).__name__}: {e}"[:300]}) + "\n")
        return 1
    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    serve(system, sys.stdin, answers)
    return 0


class Worker:
    """The coordinator's handle on one worker: started on first use, restarted after
    a crash, every answer awaited at most ``timeout`` seconds."""

    def __init__(self, system, threads, cpu=None, device="cpu", npcnn=None, timeout=600.0,
                 log_dir="."):  # fmt: skip
        self.system, self.threads, self.cpu, self.timeout = system, threads, cpu, timeout
        self.args = ["--system", system, "--threads", str(threads), "--device", device]
        self.args += ["--cpu", str(cpu)] if cpu is not None else []
        self.args += ["--npcnn", npcnn] if npcnn else []
        where = "one-core" if cpu is not None else f"{threads}-threads"
        self.log = os.path.join(log_dir, f"{system.replace(':', '.')}-{where}.log")
        self.proc, self.generation = None, 0  # generation: how many processes ended

    def start(self):
        from .systems import thread_env

        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, **thread_env(self.threads), "PYTHONPATH": path}
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.worker", *self.args], cwd=str(ROOT), env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                start_new_session=True,  # its own process group: stop() ends its helpers too
            )  # fmt: skip
        self._answer(max(self.timeout, STARTUP_S))  # 'ready' once its framework loaded

    def ask(self, **request) -> dict:
        """The worker's answer; raises :class:`WorkerError` on an error, crash or hang."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died: _answer says how
        return self._answer()

    def _answer(self, timeout=None) -> dict:
        timeout = timeout or self.timeout
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else None
        if line is None:
            self.stop()
            raise WorkerError(f"hung: no answer in {timeout:g} s (killed; log: {self.log})")
        if not line.endswith("\n"):  # the end of its output: it died
            code = self.proc.wait()
            self.stop()  # and whatever it started
            why = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            raise WorkerError(f"crashed ({why}; log: {self.log})")
        answer = json.loads(line)
        if "error" in answer:
            raise WorkerError(answer["error"])
        return answer

    def stop(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the worker and whatever it started
            except ProcessLookupError:
                pass
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                try:
                    pipe.close()
                except OSError:  # a request it never read
                    pass
            self.proc = None
            self.generation += 1  # what the process had prepared is gone


if __name__ == "__main__":
    sys.exit(main())
