"""Shared fixtures for the npcnn unit tests (NumPy only; TensorFlow is never imported).

Hypothesis profiles (``ci``, ``dev``) are registered in the root ``conftest.py``.
"""

from __future__ import annotations

import numpy as np
import pytest


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


@pytest.fixture
def blas_on_one_thread():
    """BLAS on one thread for the whole test, as the fast tier runs it inside its
    parts: a matrix product split over several BLAS threads may round differently,
    so a bit-for-bit comparison of the two tiers needs both on one thread."""
    from npcnn.fast.threads import blas_on_one_thread as one_thread

    with one_thread():
        yield


@pytest.fixture
def fake_data(monkeypatch):
    """`npcnn train/evaluate` read this tiny dataset instead of MNIST; returns a call counter."""
    import npcnn.datasets

    from .helpers import fake_dataset

    data = fake_dataset()
    calls = []

    def load_dataset(name, data_dir=None, **kwargs):
        calls.append(name)
        return data

    monkeypatch.setattr(npcnn.datasets, "load_dataset", load_dataset)
    return calls
