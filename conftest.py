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

The real datasets, for the tests that train or load them: ``shared_data`` and
``mnist_dir`` (both suites use them, so they live here too).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
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


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real datasets (``mnist/``, ``fashion-mnist/``): ``$NPCNN_DATA_DIR``,
    else ``../shared/data`` beside the checkout. Skips without it, except under CI,
    where a missing data folder is a failure."""
    here = Path(__file__).resolve().parent
    for root in (os.environ.get("NPCNN_DATA_DIR"), here.parent / "shared" / "data"):
        if root and (Path(root) / "mnist" / "train-images-idx3-ubyte.gz").exists():
            return Path(root)
    if os.environ.get("CI"):
        pytest.fail("CI must provide the MNIST files through NPCNN_DATA_DIR")
    pytest.skip("real MNIST not found: set NPCNN_DATA_DIR to a folder holding mnist/")


@pytest.fixture(scope="session")
def mnist_dir(shared_data) -> str:
    """The real MNIST folder, ``shared_data / "mnist"``."""
    return str(shared_data / "mnist")
