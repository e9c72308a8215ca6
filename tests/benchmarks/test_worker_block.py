"""A timed block: ``settle`` untimed calls first, then ``reps`` timed ones."""

from __future__ import annotations

import time

from benchmarks.worker import run_block


def test_the_settling_calls_are_run_and_not_timed():
    calls = []

    def fn():  # the first call is slow (cold caches), the others fast
        calls.append(None)
        time.sleep(0.05 if len(calls) == 1 else 0.001)

    per_call = run_block(fn, None, reps=3, settle=1)
    assert len(calls) == 4 and per_call < 0.02
    calls.clear()
    assert run_block(fn, None, reps=3) > 0.015  # no settling: the slow call is timed
