"""Initializers: Keras's fans, glorot_uniform and He's limits, zero biases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from npcnn.initializers import (
    compute_fans,
    glorot_uniform,
    he_normal,
    he_uniform,
    kernel_initializer,
    zeros,
)


def test_compute_fans_follow_keras():
    assert compute_fans((5, 5, 1, 32)) == (5 * 5 * 1, 5 * 5 * 32)
    assert compute_fans((3, 2, 4, 6)) == (3 * 2 * 4, 3 * 2 * 6)
    assert compute_fans((3136, 1024)) == (3136, 1024)
    assert compute_fans((7,)) == (7, 7)


def test_glorot_uniform_limit_uses_receptive_field(rng):
    shape = (5, 5, 32, 64)
    w = glorot_uniform(shape, rng)
    limit = math.sqrt(6 / (5 * 5 * 32 + 5 * 5 * 64))  # 0.05
    assert w.dtype == np.float32 and w.shape == shape
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.999 * limit
    # a limit from the channel counts alone, sqrt(6 / (32 + 64)) = 0.25, is five times too big
    assert np.abs(w).max() < 0.25 / 4
    assert glorot_uniform((3, 3), rng, dtype="float64").dtype == np.float64
    np.testing.assert_array_equal(zeros((4,), dtype="float64"), np.zeros(4))


def test_he_normal_is_keras_truncated_normal():
    w = he_normal((3, 3, 64, 256), np.random.default_rng(0), "float64")
    fan_in = 3 * 3 * 64
    stddev = np.sqrt(2 / fan_in) / 0.87962566103423978
    assert np.abs(w).max() <= 2 * stddev  # truncated at two standard deviations
    assert abs(w.std() / np.sqrt(2 / fan_in) - 1) < 0.01  # the truncation's factor undone
    assert abs(w.mean()) < 0.01 * w.std()


def test_he_uniform_limit():
    w = he_uniform((500, 300), np.random.default_rng(0), "float32")
    limit = np.sqrt(6 / 500)
    assert w.dtype == np.float32 and np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit


def test_unknown_kernel_initializer_is_named():
    with pytest.raises(ValueError, match="he_normal"):
        kernel_initializer("he")
