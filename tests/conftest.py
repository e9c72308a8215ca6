"""Shared fixtures for the npcnn unit tests (NumPy only; TensorFlow is never imported).

Hypothesis profiles (pick with ``NPCNN_HYPOTHESIS_PROFILE``, default ``ci``),
the same two that ``parity_tests/conftest.py`` registers, with the same values:

- ``ci``: derandomized (the same examples on every run and machine), no
  deadline, 40 examples per property, ``print_blob`` so a failure prints the
  line that reproduces it.
- ``dev``: 500 examples per property, randomized: run it locally to hunt for
  bugs, in parallel with pytest-xdist::

      NPCNN_HYPOTHESIS_PROFILE=dev python -m pytest -n auto tests parity_tests

Hypothesis keeps one global registry of profiles and both conftests may load
in one run, so the values must agree: ``tests/test_hypothesis_profiles.py``
reads both files' ``register_profile`` calls (without importing TensorFlow)
and compares them.
Tests that pass their own ``@settings`` (``test_fuzz.py``,
``test_fast_tier.py``) keep their own example counts.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=40,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=500,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HYPOTHESIS_PROFILE = os.environ.get("NPCNN_HYPOTHESIS_PROFILE", "ci")
settings.load_profile(HYPOTHESIS_PROFILE)


@pytest.fixture
def rng():
    """A fresh generator with a fixed seed for every test: failures reproduce."""
    return np.random.default_rng(20240521)


@pytest.fixture
def away_from_zero(rng):
    """Random values with |x| in [0.1, 1]: ReLU's kink at 0 stays far beyond the
    finite-difference step, so the numerical gradient is exact there."""

    def draw(shape, dtype=np.float64):
        sign = rng.choice([-1.0, 1.0], size=shape)
        return (sign * rng.uniform(0.1, 1.0, size=shape)).astype(dtype)

    return draw


@pytest.fixture
def distinct(rng):
    """Values that are pairwise at least 0.01 apart (a shuffled grid): no near-ties
    for max-pooling, so a step of 1e-6 never changes which cell wins."""

    def draw(shape, dtype=np.float64):
        size = int(np.prod(shape))
        return (rng.permutation(size).reshape(shape) * 0.01 - 0.005 * size).astype(dtype)

    return draw
