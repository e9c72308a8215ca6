"""Hypothesis profiles for every test under this folder (``tests/`` and ``parity_tests/``).

Pick one with ``NPCNN_HYPOTHESIS_PROFILE`` (default ``ci``):

- ``ci``: derandomized (the same examples on every run and machine, so CI never
  flakes), no deadline (TensorFlow's first call of an op is slow), 40 examples
  per property, ``print_blob`` so a failure prints the line that reproduces it.
- ``dev``: 500 examples per property, randomized: run it locally to hunt for
  bugs, in parallel with pytest-xdist::

      NPCNN_HYPOTHESIS_PROFILE=dev python -m pytest -n auto tests parity_tests

Tests that pass their own ``@settings`` (the fuzzing tests, ``tests/helpers.py``'s ``fuzz``,
``tests/test_fast_tier.py``, the generated models) keep their own example counts.
Hypothesis keeps one global registry of profiles, so they live here, once.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Every setting is explicit: under CI=true, Hypothesis makes its own "ci" profile the
# default, and a profile inherits whatever it does not set from the default.
_COMMON = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", derandomize=True, max_examples=40, **_COMMON)
settings.register_profile("dev", derandomize=False, max_examples=500, **_COMMON)
HYPOTHESIS_PROFILE = os.environ.get("NPCNN_HYPOTHESIS_PROFILE", "ci")
settings.load_profile(HYPOTHESIS_PROFILE)
