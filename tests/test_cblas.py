"""``npcnn/fast/cblas.py``: ``c += op(a) @ op(b)`` in one BLAS call gives the bits of
``matmul`` then ``+=`` (the two passes it replaces), lets other threads run, and
says when it cannot run (the caller then does the two passes)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from npcnn.fast import cblas, rowwise

pytestmark = pytest.mark.skipif(not cblas.available(), reason="NumPy's BLAS has no cblas here")


def operands(rng, dtype, m, n, k, trans):
    a = rng.standard_normal((k, m) if trans[0] == "t" else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans[1] == "t" else (k, n)).astype(dtype)
    return a, b, rng.standard_normal((m, n)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans", ["nn", "tn", "nt"])
@pytest.mark.parametrize("mnk", [(4900, 64, 160), (4900, 160, 64), (7, 3, 5), (1, 1, 1)])
def test_add_product_gives_the_bits_of_matmul_then_add(dtype, trans, mnk):
    a, b, c = operands(np.random.default_rng(sum(mnk)), dtype, *mnk, trans)
    want = c + np.matmul(a.T if trans[0] == "t" else a, b.T if trans[1] == "t" else b)
    assert cblas.add_product(a, b, c, trans)
    np.testing.assert_array_equal(c, want)


def test_empty_products_add_nothing_and_bad_shapes_are_refused():
    c = np.ones((3, 4), np.float32)
    assert cblas.add_product(np.ones((3, 0), np.float32), np.ones((0, 4), np.float32), c)
    assert (c == 1).all()
    with pytest.raises(ValueError, match="do not fit"):
        cblas.add_product(np.ones((3, 2), np.float32), np.ones((3, 4), np.float32), c)


def test_it_declines_what_it_cannot_do_and_the_caller_adds_in_two_passes():
    rng = np.random.default_rng(1)
    a, b, c = operands(rng, np.float32, 6, 5, 4, "nn")
    assert not cblas.add_product(a.astype(np.float64), b, c)  # mixed dtypes
    assert not cblas.add_product(np.asfortranarray(a), b, c)  # not C-ordered
    assert not cblas.add_product(a.astype(np.int64), b.astype(np.int64), c.astype(np.int64))
    want = c + a @ b
    rowwise.gemm(np.asfortranarray(a), b, c, beta=1.0)  # the fallback: matmul, then add
    np.testing.assert_array_equal(c, want)


def test_it_lets_go_of_the_gil():
    """A Python thread keeps counting at most of its own pace while the other
    thread is inside BLAS (holding the GIL, it would count for one switch
    interval, 5 ms, at most)."""
    from threadpoolctl import threadpool_limits

    a, b, c = operands(np.random.default_rng(2), np.float64, 1200, 1200, 1200, "nn")
    counts, done = [0], threading.Event()

    def count():
        while not done.is_set():
            counts[0] += 1

    counter = threading.Thread(target=count)
    counter.start()
    time.sleep(0.05)  # its pace alone: counts per second
    pace = counts[0] / 0.05
    with threadpool_limits(1, "blas"):
        before, start = counts[0], time.perf_counter()
        cblas.add_product(a, b, c)
        took, during = time.perf_counter() - start, counts[0] - before
    done.set()
    counter.join()
    assert took > 0.03, took  # long enough to tell
    assert during > 0.3 * pace * took, (during, pace, took)
