"""The fast tier's row sums (npcnn/fast/reduce.py): ``a.sum(axis=0)``, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from npcnn.fast.reduce import column_sums


def same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(19600, 32), (4900, 64), (50, 1024), (1, 3), (0, 4), (7, 1)])
def test_column_sums_are_numpys_to_the_bit(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    a = (rng.standard_normal(shape) * 10.0 ** rng.integers(-8, 8, shape)).astype(dtype)
    a[rng.random(shape) < 0.6] = 0.0  # routed gradients are mostly zeros
    same_bits(column_sums(a), a.sum(axis=0))


def test_signed_zeros_infs_and_nans_as_numpy_has_them():
    a = np.array([[-0.0, np.inf, 1.0, np.nan], [-0.0, -np.inf, -0.0, 2.0]], np.float32)
    with np.errstate(invalid="ignore"):  # inf - inf
        same_bits(column_sums(a), a.sum(axis=0))  # -0 + -0 from 0: +0; inf - inf: nan


@pytest.mark.parametrize("order", ["F", "strided"])
def test_other_memory_orders_sum_as_numpy_does(order):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3001, 24)).astype(np.float32)
    a = np.asfortranarray(a) if order == "F" else a[::2]
    same_bits(column_sums(a), a.sum(axis=0))  # F order: NumPy sums each column pairwise
