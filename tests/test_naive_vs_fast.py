"""The three tiers agree: loops (``npcnn.naive``), readable ops, fast kernels.

The naive loops are the textbook definition; ``npcnn.ops`` and ``npcnn.fast``
use im2col and strided views (the fast tier with every speed trick on top).
Every comparison runs on both vectorised tiers against the loops.
Random small shapes cover even, odd and non-square kernels, strides 1, 2, 3
and per-axis (h, w) strides, both paddings and non-square inputs, forward and
backward. Also here: where "same" puts its padding
(bottom/right, as TensorFlow), checked on hand-computed examples, and the
output sizes against TensorFlow's formulas.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from npcnn import fast, naive, ops
from npcnn.ops.padding import padding_amounts

KERNELS = [(1, 1), (2, 2), (3, 3), (2, 3), (4, 1)]
STRIDES = [1, 2, 3, (1, 2), (3, 1)]
PADDINGS = ["same", "valid"]
INPUT_HW = [(7, 5), (6, 8)]
TIERS = pytest.mark.parametrize("tier", [ops, fast], ids=["ops", "fast"])


@pytest.mark.parametrize("in_hw", INPUT_HW)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("strides", STRIDES)
@pytest.mark.parametrize("kernel_hw", KERNELS)
@TIERS
def test_conv2d_naive_equals_fast(rng, tier, kernel_hw, strides, padding, in_hw):
    x = rng.standard_normal((2, *in_hw, 3))
    w = rng.standard_normal((*kernel_hw, 3, 2))
    b = rng.standard_normal(2)

    y_fast, cache_fast = tier.conv2d_forward(x, w, b, strides, padding)
    y_naive, cache_naive = naive.conv2d_forward(x, w, b, strides, padding)
    assert y_fast.shape == y_naive.shape
    np.testing.assert_allclose(y_fast, y_naive, rtol=1e-12, atol=1e-12)

    dy = rng.standard_normal(y_fast.shape)
    grads_fast = tier.conv2d_backward(dy, cache_fast)
    grads_naive = naive.conv2d_backward(dy, cache_naive)
    for got, slow in zip(grads_fast, grads_naive):
        assert got.shape == slow.shape
        np.testing.assert_allclose(got, slow, rtol=1e-12, atol=1e-12)


POOLS = [(2, 2), (3, 3), (2, 3), (1, 2)]
POOL_STRIDES = [None, 1, 2, 3, (2, 1)]


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("in_hw", INPUT_HW)
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("strides", POOL_STRIDES)
@pytest.mark.parametrize("pool", POOLS)
@TIERS
def test_maxpool2d_naive_equals_fast(rng, tier, pool, strides, padding, in_hw, ties):
    shape = (2, *in_hw, 3)
    # with ties (small integers, many equal cells) both must pick the same first max
    x = rng.integers(-2, 3, size=shape).astype(float) if ties else rng.standard_normal(shape)

    y_fast, cache_fast = tier.maxpool2d_forward(x, pool, strides, padding)
    y_naive, cache_naive = naive.maxpool2d_forward(x, pool, strides, padding)
    assert y_fast.shape == y_naive.shape
    np.testing.assert_array_equal(y_fast, y_naive)

    dy = rng.standard_normal(y_fast.shape)
    dx_fast = tier.maxpool2d_backward(dy, cache_fast)
    dx_naive = naive.maxpool2d_backward(dy, cache_naive)
    np.testing.assert_allclose(dx_fast, dx_naive, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@TIERS
def test_naive_and_fast_agree_in_both_dtypes(rng, tier, dtype):
    x = rng.standard_normal((1, 5, 6, 2)).astype(dtype)
    w = rng.standard_normal((3, 2, 2, 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    y_fast, _ = tier.conv2d_forward(x, w, b, 2, "same")
    y_naive, _ = naive.conv2d_forward(x, w, b, 2, "same")
    assert y_fast.dtype == y_naive.dtype == dtype
    np.testing.assert_allclose(y_fast, y_naive, rtol=1e-5 if dtype == np.float32 else 1e-12)


# ---- 'same' padding: where the zeros go ---------------------------------------------------


def test_same_padding_4x4_input_2x2_kernel_pads_bottom_right():
    """4x4 input, 2x2 kernel of ones, stride 1: one cell of padding is needed per
    axis and TensorFlow puts it after (bottom/right), so y[i, j] sums
    x[i:i+2, j:j+2] with zeros beyond the last row/column."""
    assert padding_amounts((4, 4), (2, 2), (1, 1), "same") == ((0, 1), (0, 1))
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    #   0  1  2  3
    #   4  5  6  7
    #   8  9 10 11
    #  12 13 14 15
    w = np.ones((2, 2, 1, 1))
    expected = np.array(
        [
            [0 + 1 + 4 + 5, 1 + 2 + 5 + 6, 2 + 3 + 6 + 7, 3 + 7],
            [4 + 5 + 8 + 9, 5 + 6 + 9 + 10, 6 + 7 + 10 + 11, 7 + 11],
            [8 + 9 + 12 + 13, 9 + 10 + 13 + 14, 10 + 11 + 14 + 15, 11 + 15],
            [12 + 13, 13 + 14, 14 + 15, 15],
        ],
        dtype=float,
    )
    for conv in (ops.conv2d_forward, naive.conv2d_forward):
        y, _ = conv(x, w, np.zeros(1), 1, "same")
        np.testing.assert_array_equal(y[0, :, :, 0], expected)


def test_same_padding_odd_extra_row_and_col_go_bottom_right_in_backward():
    """5x5 input, 4x4 kernel, stride 1: 3 cells of padding per axis, 1 before and
    2 after. The gradient of sum(y) wrt x counts how many windows cover each cell."""
    assert padding_amounts((5, 5), (4, 4), (1, 1), "same") == ((1, 2), (1, 2))
    x = np.zeros((1, 5, 5, 1))
    w = np.ones((4, 4, 1, 1))
    y, cache = ops.conv2d_forward(x, w, np.zeros(1), 1, "same")
    dx, _, _ = ops.conv2d_backward(np.ones_like(y), cache)
    # windows start at rows -1..3 and cover 4 rows: row r is covered by windows
    # starting at max(-1, r-3)..min(3, r)
    per_axis = np.array([2, 3, 4, 4, 3])
    np.testing.assert_array_equal(dx[0, :, :, 0], np.outer(per_axis, per_axis))


def test_same_maxpool_ignores_padding_and_pads_bottom_right():
    """3x3 input of negative numbers, pool 2, stride 2, 'same': the extra row and
    column go bottom/right and are -inf, so they never win (zeros would)."""
    x = -np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    #  -1 -2 -3
    #  -4 -5 -6
    #  -7 -8 -9
    for pool in (ops.maxpool2d_forward, naive.maxpool2d_forward):
        y, _ = pool(x, 2, 2, "same")
        np.testing.assert_array_equal(y[0, :, :, 0], [[-1.0, -3.0], [-7.0, -9.0]])


@pytest.mark.parametrize(
    "n, k, s, expected",
    [
        (4, 2, 1, (0, 1)),
        (5, 4, 1, (1, 2)),
        (6, 3, 2, (0, 1)),
        (5, 3, 2, (1, 1)),
        (28, 5, 1, (2, 2)),
        (7, 1, 3, (0, 0)),
        (2, 5, 1, (2, 2)),
        (3, 6, 2, (2, 3)),
    ],
)
def test_same_padding_amounts(n, k, s, expected):
    """TF: total = max((ceil(n/s) - 1)*s + k - n, 0); before = total // 2."""
    assert padding_amounts((n, 1), (k, 1), (s, 1), "same") == (expected, (0, 0))


@pytest.mark.parametrize("padding", PADDINGS)
def test_output_sizes_equal_tensorflow_formulas(padding):
    """'same': ceil(n / s); 'valid': ceil((n - k + 1) / s), for every small case."""
    x_row = np.zeros((1, 1, 1, 1))
    for n in range(1, 10):
        for k in range(1, 6):
            for s in range(1, 4):
                want = math.ceil(n / s) if padding == "same" else math.ceil((n - k + 1) / s)
                if want < 1:
                    continue  # 'valid' with k > n: an error, tested in test_errors.py
                x = np.broadcast_to(x_row, (1, n, n + 1, 1))
                y, _ = ops.conv2d_forward(x, np.zeros((k, 1, 1, 1)), np.zeros(1), (s, 1), padding)
                assert y.shape == (1, want, n + 1, 1), (n, k, s)
                y, _ = ops.maxpool2d_forward(x, (k, 1), (s, 1), padding)
                assert y.shape == (1, want, n + 1, 1), (n, k, s)


@TIERS
def test_conv2d_on_a_big_batch_equals_naive(rng, tier):
    """A batch of 131 images (the fast tier works through big batches in pieces,
    and its backward must not reuse a piece's im2col matrix): the same numbers."""
    n = 131
    x = rng.standard_normal((n, 5, 4, 2))
    w = rng.standard_normal((3, 2, 2, 3))
    b = rng.standard_normal(3)
    y_fast, cache_fast = tier.conv2d_forward(x, w, b, 1, "same")
    y_naive, cache_naive = naive.conv2d_forward(x, w, b, 1, "same")
    np.testing.assert_allclose(y_fast, y_naive, rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y_fast.shape)
    grads_fast = tier.conv2d_backward(dy, cache_fast)
    for fast_grad, slow in zip(grads_fast, naive.conv2d_backward(dy, cache_naive)):
        np.testing.assert_allclose(fast_grad, slow, rtol=1e-12, atol=1e-12)


def summation_bounds(x, w, dy, strides, padding):
    """Bounds on |fast - ops| for conv2d's y, dx, dw, db (float64 arrays).

    Both tiers compute each output as a sum of K products, but BLAS may add
    them in a different order for a differently shaped matrix (the fast tier
    multiplies slab by slab). Each result is within gamma_K * sum|terms| of the
    exact value (gamma_K ~ K*u, u the unit roundoff), so two orders differ by
    at most 2*K*u*sum|terms|. The sums of |terms| are the same convolution run
    on |x|, |w|, |dy| in float64; K is the number of terms of each result.
    """
    u = np.finfo(x.dtype).eps / 2
    kh, kw, cin, cout = w.shape
    ax, aw, ady = (np.abs(a).astype(np.float64) for a in (x, w, dy))
    y_abs, cache = ops.conv2d_forward(ax, aw, np.zeros(cout), strides, padding)
    dx_abs, dw_abs, db_abs = ops.conv2d_backward(ady, cache)
    rows = dy.size // cout  # N * H_out * W_out: terms of each dw and db entry
    terms = (kh * kw * cin + 1, kh * kw * cout, rows, rows)  # y (+ bias), dx, dw, db
    absolute = (y_abs + 0, dx_abs, dw_abs, db_abs)
    return [2 * k * u * a + np.finfo(x.dtype).tiny for k, a in zip(terms, absolute)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 131])
def test_fast_tier_equals_ops(rng, dtype, n):
    """The fast tier must not change a number: elementwise ops (max-pool, ReLU)
    bit for bit; convolution within the summation-order bound derived in
    :func:`summation_bounds` (and bit for bit on a batch of one)."""
    x = rng.standard_normal((n, 9, 8, 3)).astype(dtype)
    w = rng.standard_normal((5, 4, 3, 4)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    for strides, padding in [(1, "same"), (2, "valid"), (3, "same")]:
        y_ops, c_ops = ops.conv2d_forward(x, w, b, strides, padding)
        y_fast, c_fast = fast.conv2d_forward(x, w, b, strides, padding)
        dy = rng.standard_normal(y_ops.shape).astype(dtype)
        results_fast = (y_fast, *fast.conv2d_backward(dy, c_fast))
        results_ops = (y_ops, *ops.conv2d_backward(dy, c_ops))
        bounds = summation_bounds(x, w, dy, strides, padding)
        for got, want, bound in zip(results_fast, results_ops, bounds):
            assert got.dtype == want.dtype == dtype
            assert np.all(np.abs(got.astype(np.float64) - want) <= bound)
        p_ops, pc_ops = ops.maxpool2d_forward(y_ops, 2, None, padding)
        p_fast, pc_fast = fast.maxpool2d_forward(y_ops, 2, None, padding)
        np.testing.assert_array_equal(p_fast, p_ops)
        dp = rng.standard_normal(p_ops.shape).astype(dtype)
        np.testing.assert_array_equal(
            fast.maxpool2d_backward(dp, pc_fast), ops.maxpool2d_backward(dp, pc_ops)
        )
        r_ops, rc_ops = ops.relu_forward(y_ops)
        r_fast, rc_fast = fast.relu_forward(y_ops)
        np.testing.assert_array_equal(r_fast, r_ops)
        np.testing.assert_array_equal(
            fast.relu_backward(dy, rc_fast), ops.relu_backward(dy, rc_ops)
        )
