"""Systems that misbehave on purpose, for the benchmark's own tests: each is named on
the command line as ``tests.benchmarks.fakes:NAME`` and runs in a worker like any
other system (benchmarks/systems.py)."""

from __future__ import annotations

import os
import signal
import time


class Fake:
    """Every case runs ``fn``; ``when`` says whether it misbehaves while being
    prepared (the first call) or only once timed (a later call)."""

    def __init__(self, fn, when="prepare"):
        self.fn, self.when, self.calls = fn, when, 0

    def info(self):
        return {}

    def case(self, spec):
        def run():
            self.calls += 1
            if self.when == "prepare" or self.calls > 3:
                self.fn()

        return run, None


def segfault(threads, device):
    """Dies of SIGSEGV when its case first runs, as PyTorch's dynamo did beside TF."""
    return Fake(lambda: os.kill(os.getpid(), signal.SIGSEGV))


def hang(threads, device):
    """Never answers once its case is timed."""
    return Fake(lambda: time.sleep(10**6), when="timed")


def raises(threads, device):
    """An exception inside the case: the worker stays up and says why."""

    def fail():
        raise MemoryError("Unable to allocate 7.5 GiB for an array")

    return Fake(fail)


def segfault_on_float64(threads, device):
    """Runs float32 cases; dies of SIGSEGV on a float64 one."""
    crash = Fake(lambda: os.kill(os.getpid(), signal.SIGSEGV))
    fine = Fake(lambda: None)
    return type("ByDtype", (), {"case": lambda self, spec: (crash if spec["dtype"] ==
                "float64" else fine).case(spec), "info": lambda self: {}})()  # fmt: skip
