"""Initializers: Keras's fans and glorot_uniform limit, zero biases."""

from __future__ import annotations

import math

import numpy as np

from npcnn.initializers import compute_fans, glorot_uniform, zeros


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
