"""What several test modules share: a stand-in dataset and checkpoint, the fuzzing
settings, the bad-input checks and the GPU check. (Fixtures are in the conftest.py files.)"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def raises(pattern):
    """pytest.raises(ValueError) whose message must contain ``pattern`` literally."""
    return pytest.raises(ValueError, match=re.escape(pattern))


def fake_dataset(n_train=32, n_test=8, seed=0):
    """A tiny stand-in for MNIST, ``((x_train, y_train), (x_test, y_test))``."""
    rng = np.random.default_rng(seed)
    return (
        (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train)),
        (rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test)),
    )


def fuzz(max_examples):
    """Settings for a fuzzing test: derandomized (the same examples every run) and
    bounded, whatever the profile, so the bad-input tests stay a few seconds."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# any value a user might pass where a count is expected
ANY_VALUE = st.one_of(
    st.integers(-3, 70),
    st.integers(0, 5).map(np.int64),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
    st.lists(st.integers(1, 3), max_size=2),
)


def cupy_on_a_gpu():
    """CuPy, for a test module that needs a GPU; skips the module, saying why, without one.

    Call it at the top of the module: ``cupy = cupy_on_a_gpu()``. TF32 is off
    (``CUPY_TF32=0``) so that float32 GEMMs round as float32.
    """
    os.environ.setdefault("CUPY_TF32", "0")
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (pip install 'npcnn[gpu]')")
    try:
        have_gpu = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver
        have_gpu = False
    if not have_gpu:
        pytest.skip("CuPy is installed but no GPU is present", allow_module_level=True)
    return cupy


def seed_cnn_checkpoint(path, **changes):
    """Save the tutorial network's fresh weights as a checkpoint, with ``changes``
    (name -> array) replacing some of them."""
    from npcnn.checkpoint import save_checkpoint
    from npcnn.train import TrainConfig, make_numpy_learner

    named = dict(make_numpy_learner(TrainConfig()).named_params())
    named.update(changes)
    save_checkpoint(path, list(named.items()), {}, None, {"step": 0})


LONGEST_SUM = 7 * 7 * 64  # dense1's input length: the longest sum in the seed network


def assert_close_to_scale(actual, expected, what, longest_sum=LONGEST_SUM):
    """``max|actual - expected| <= 2 * K * eps * max|expected|``, K = ``longest_sum``:
    the rounding bound of a K-term sum computed in any order, applied to the
    array's largest entry (``parity_tests/tolerances.py`` derives it). Two tiers
    that sum in different orders must agree this closely; a bug moves an element
    by the order of the array itself."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, what
    bound = 2 * longest_sum * float(np.finfo(expected.dtype).eps) * np.abs(expected).max()
    diff = np.abs(actual.astype(np.float64) - expected).max() if actual.size else 0.0
    assert diff <= bound, f"{what}: off by {diff:.3g} > {bound:.3g}"


def assert_adam_tiers_agree(start, steps):
    """``steps`` Adam updates of the parameter ``start[0]`` with the gradient
    ``start[1]`` on the fast tier and on the readable ops, from zero moments:
    the same parameter and moments, bit for bit."""
    from npcnn import fast, ops

    states = []
    for tier in (fast, ops):
        p, g = start.copy()
        m, v = np.zeros_like(p), np.zeros_like(p)
        for _ in range(steps):
            tier.adam_update(p, g, m, v, *np.float32([1e-3, 0.1, 0.001, 1e-7]))
        states.append((p, m, v))
    for got, want in zip(*states):
        np.testing.assert_array_equal(got, want)
