"""How far npcnn and TensorFlow may differ, derived from rounding-error bounds.

The rule used everywhere (details and per-op counts in ``parity_tests/README.md``):

    |npcnn - tf|  <=  2 * c * (eps * M + tiny)        elementwise

- ``eps`` is the machine epsilon of the dtype (2**-23 for float32, 2**-52
  for float64): one correctly rounded operation has relative error <= eps/2.
- ``c`` counts the roundings an element goes through, in units of eps:
  a sum of K terms counts K (Higham's bound gamma_K = K*u/(1-K*u) <= K*eps,
  valid for *any* summation order, blocked, pairwise or FMA), one exp or log
  counts :data:`TRANSCENDENTAL_ULPS`, one multiply/divide/subtract counts 1.
- ``M`` is the *magnitude* the error is relative to: for a sum of products,
  the same sum of absolute values (e.g. conv2d(|x|, |w|) + |b|), computed in
  float64 by TensorFlow; for softmax, the probability itself.
- ``tiny`` (the smallest normal number) is there because TensorFlow's CPU
  kernels flush subnormal results to zero and NumPy does not: each of the
  ``c`` steps may lose up to ``tiny``.
- the factor 2: each of the two implementations may be off by the bound, in
  opposite directions.

This is a worst-case bound, not a fitted number: nothing here was tuned to
make a test pass. It is still tight enough to catch real bugs, which move an
element by O(M), not by O(c * eps * M).
"""

from __future__ import annotations

import numpy as np

# An exp or a log is accurate to a few units in the last place: NumPy's SIMD
# float32 exp/log are documented to under 4 ulp, glibc/Eigen's to about 1.
TRANSCENDENTAL_ULPS = 4


def rounding_bound(magnitude, roundings, dtype):
    """``2 * roundings * (eps * magnitude + tiny)``: see the module docstring."""
    info = np.finfo(dtype)
    magnitude = np.asarray(magnitude, dtype=np.float64)
    return 2.0 * roundings * (float(info.eps) * magnitude + float(info.tiny))


def assert_within(actual, expected, bound, what: str):
    """Elementwise ``|actual - expected| <= bound``; same shape and dtype required.

    On failure the message names the first offending element with both values
    and the bound, so a shrunk Hypothesis example is readable.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{what}: npcnn shape {actual.shape} != tf shape {expected.shape}"
    )
    assert actual.dtype == expected.dtype, (
        f"{what}: npcnn dtype {actual.dtype} != tf dtype {expected.dtype}"
    )
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), actual.shape)
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    bad = ~(diff <= bound)  # also catches NaN
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {actual.size} elements differ by more than the "
            f"rounding bound; first at index {index}: npcnn={actual[index]!r} "
            f"tf={expected[index]!r} |diff|={diff[index]:.3g} bound={bound[index]:.3g}"
        )


def assert_exact(actual, expected, what: str):
    """Bit-for-bit equality (ops that only move or select numbers: ReLU, max, reshape)."""
    assert_within(actual, expected, 0.0, what)
