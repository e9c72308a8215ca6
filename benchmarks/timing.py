"""The stopwatch: warm-up, calibrated repetitions, interleaved rounds, medians.

A *case* is one thing to time (say "conv2, forward+backward, batch 50, npcnn").
Cases that are compared with each other form a *group* and are timed
interleaved: round 1 runs every case of the group once, round 2 again (in a
rotated order), and so on, so that a burst of noise from other processes hits
all of them alike instead of spoiling one. Each case reports the median time
per call over the rounds and the spread (min, quartiles, max).

Between cases of two frameworks we pause (``pause_s``): OpenBLAS's threads
keep spinning for a while after a GEMM, and TensorFlow's, PyTorch's and XLA's
thread pools do the same, so back-to-back runs would steal each other's cores.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Case:
    """One timed workload.

    ``fn()`` runs it once; ``sync()`` (optional) waits until the device has
    finished (CuPy and TF on a GPU return before the kernels are done).
    ``family`` is 'numpy', 'cupy', 'tf', 'torch' or 'jax': we pause when it
    changes (every framework's thread pool spins a while after its work).
    ``flops`` (per call) gives GFLOP/s; None for memory-bound ops.
    """

    section: str  # 'op', 'train step', 'adam', 'inference', 'headline', 'matmul', ...
    name: str  # e.g. 'conv2'
    kind: str  # 'forward', 'forward+backward', 'step', ...
    impl: str  # the system: 'npcnn', 'tf function', 'torch eager', 'jax jit', ...
    family: str
    batch: int
    dtype: str
    fn: Callable[[], object]
    flops: float | None = None
    sync: Callable[[], object] | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)
    cores: str = "all"  # 'all' (every core this process may use) or 'one'
    threads: int = 0  # the thread count every framework was given

    def key(self) -> tuple:
        """Cases with the same key are compared with each other."""
        return (self.section, self.name, self.kind, self.batch, self.dtype, self.cores)


@dataclass
class Settings:
    rounds: int = 5  # interleaved rounds per group
    warmup: int = 2  # untimed calls first (tf.function traces on the first call)
    block_s: float = 0.1  # each round times enough calls to last about this long
    max_reps: int = 1000
    pause_s: float = 0.15  # between cases of different families


def _run_block(case: Case, reps: int) -> float:
    """Seconds per call, averaged over ``reps`` back-to-back calls."""
    if case.sync is not None:
        case.sync()
    start = time.perf_counter()
    for _ in range(reps):
        case.fn()
    if case.sync is not None:
        case.sync()
    return (time.perf_counter() - start) / reps


def _quantile(sorted_values, q):
    """Linear-interpolated quantile of an already sorted list."""
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def time_group(cases: list[Case], settings: Settings, log=print) -> list[dict]:
    """Time the cases of one group interleaved; return one result dict per case."""
    reps = {}
    for case in cases:  # warm up, then pick the repetitions from one timed call
        for _ in range(settings.warmup):
            case.fn()
        one = max(_run_block(case, 1), 1e-7)
        reps[id(case)] = max(1, min(settings.max_reps, math.ceil(settings.block_s / one)))
        time.sleep(settings.pause_s if case.family != "numpy" else 0)

    samples = {id(case): [] for case in cases}
    previous_family = None
    for r in range(settings.rounds):
        shift = r % len(cases)
        for case in cases[shift:] + cases[:shift]:  # rotate: no case is always first
            if previous_family is not None and case.family != previous_family:
                time.sleep(settings.pause_s)
            samples[id(case)].append(_run_block(case, reps[id(case)]))
            previous_family = case.family

    results = []
    for case in cases:
        s = sorted(samples[id(case)])
        median = statistics.median(s)
        row = {
            "section": case.section,
            "name": case.name,
            "kind": case.kind,
            "impl": case.impl,
            "family": case.family,
            "batch": case.batch,
            "dtype": case.dtype,
            "median_s": median,
            "min_s": s[0],
            "p25_s": _quantile(s, 0.25),
            "p75_s": _quantile(s, 0.75),
            "max_s": s[-1],
            "rounds": len(s),
            "reps_per_round": reps[id(case)],
            "samples_s": s,
            "flops": case.flops,
            "gflops_per_s": case.flops / median / 1e9 if case.flops else None,
            "note": case.note,
            "cores": case.cores,
            "threads": case.threads,
            **case.extra,
        }
        results.append(row)
        log(
            f"  {case.section:<10} {case.name:<13} {case.kind:<17} {case.impl:<25} "
            f"N={case.batch:<5} {case.dtype:<8} {median * 1e3:10.3f} ms "
            f"[{s[0] * 1e3:.3f} .. {s[-1] * 1e3:.3f}]"
        )
    return results


def interleaved(cases, rounds, pause=0.1, block_s=0.3, max_reps=10):
    """{name: median seconds per call} of ``cases`` ({name: fn}) on this stopwatch:
    warm-up, interleaved rounds in rotated order, each a block of back-to-back calls
    (as many as fill ``block_s``, at most ``max_reps``), and a ``pause`` between
    NumPy cases and the others (names starting with "tf")."""
    group = [
        Case(
            "", str(name), "", str(name), "tf" if str(name).startswith("tf") else "numpy", 0, "", fn
        )  # fmt: skip
        for name, fn in cases.items()
    ]
    settings = Settings(rounds=rounds, block_s=block_s, max_reps=max_reps, pause_s=pause)
    rows = time_group(group, settings, log=lambda *args: None)
    return {name: row["median_s"] for name, row in zip(cases, rows)}
