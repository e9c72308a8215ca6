"""Shared fixtures for the npcnn unit tests (NumPy only; TensorFlow is never imported).

Hypothesis profiles (``ci``, ``dev``) are registered in the root ``conftest.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from .helpers import SHARED_DATA


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


@pytest.fixture(scope="session")
def mnist_dir():
    """The real MNIST folder (``$NPCNN_DATA_DIR/mnist``); skips without it, except
    under CI, where a missing data folder is a failure."""
    for root in (os.environ.get("NPCNN_DATA_DIR"), SHARED_DATA):
        if root and (Path(root) / "mnist" / "train-images-idx3-ubyte.gz").exists():
            return str(Path(root) / "mnist")
    if os.environ.get("CI"):
        pytest.fail("CI must provide the MNIST files through NPCNN_DATA_DIR")
    pytest.skip("real MNIST not found: set NPCNN_DATA_DIR to a folder holding mnist/")
