"""Every op's backward pass against central finite differences (float64).

Each test draws inputs, parameters and a random upstream gradient ``dout``,
runs forward and backward, and asks ``npcnn.gradcheck.check_gradients`` to
compare every analytic gradient with the numerical one for L = sum(dout * f()).
Inputs stay away from the ops' kinks (ReLU at 0, max-pool ties, the
cross-entropy clip bounds); the behaviour *at* the kinks is pinned down by the
exact tests at the end of this file.
"""

from __future__ import annotations

import numpy as np
import pytest

from npcnn import naive, ops
from npcnn.gradcheck import check_gradients
from npcnn.ops.crossentropy import EPSILON

TOL = 1e-6


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize(
    "kernel_hw, strides",
    [((3, 3), 1), ((2, 3), 2), ((3, 2), (2, 1)), ((1, 1), 3), ((4, 4), (1, 3))],
)
def test_conv2d_gradients(rng, padding, kernel_hw, strides):
    x = rng.standard_normal((2, 6, 7, 3))
    w = rng.standard_normal((*kernel_hw, 3, 4))
    b = rng.standard_normal(4)
    y, cache = ops.conv2d_forward(x, w, b, strides, padding)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_backward(dy, cache)

    def f():
        return ops.conv2d_forward(x, w, b, strides, padding)[0]

    check_gradients(f, {"x": (x, dx), "w": (w, dw), "b": (b, db)}, dy, tol=TOL)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize(
    "pool, strides", [(2, None), (3, 2), ((2, 3), 1), ((3, 2), (1, 2)), (2, 3)]
)
def test_maxpool2d_gradients(distinct, rng, padding, pool, strides):
    x = distinct((2, 7, 6, 3))  # no near-ties: the winner of a window never changes
    y, cache = ops.maxpool2d_forward(x, pool, strides, padding)
    dy = rng.standard_normal(y.shape)
    dx = ops.maxpool2d_backward(dy, cache)

    def f():
        return ops.maxpool2d_forward(x, pool, strides, padding)[0]

    check_gradients(f, {"x": (x, dx)}, dy, tol=TOL)


def test_dense_gradients(rng):
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    y, cache = ops.dense_forward(x, w, b)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.dense_backward(dy, cache)
    check_gradients(
        lambda: ops.dense_forward(x, w, b)[0], {"x": (x, dx), "w": (w, dw), "b": (b, db)}, dy
    )


@pytest.mark.parametrize("shape", [(13,), (3, 4, 5, 2)])
def test_relu_gradients(away_from_zero, rng, shape):
    x = away_from_zero(shape)  # |x| >= 0.1: no input within a step of the kink
    y, cache = ops.relu_forward(x)
    dy = rng.standard_normal(y.shape)
    dx = ops.relu_backward(dy, cache)
    check_gradients(lambda: ops.relu_forward(x)[0], {"x": (x, dx)}, dy, tol=TOL)


def test_flatten_gradients(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    y, cache = ops.flatten_forward(x)
    dy = rng.standard_normal(y.shape)
    dx = ops.flatten_backward(dy, cache)
    check_gradients(lambda: ops.flatten_forward(x)[0], {"x": (x, dx)}, dy, tol=TOL)


@pytest.mark.parametrize("shape", [(4, 10), (2, 3, 5)])
def test_softmax_gradients(rng, shape):
    z = 2 * rng.standard_normal(shape)
    p, cache = ops.softmax_forward(z)
    dp = rng.standard_normal(p.shape)
    dz = ops.softmax_backward(dp, cache)
    check_gradients(lambda: ops.softmax_forward(z)[0], {"z": (z, dz)}, dp, tol=TOL)


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
@pytest.mark.parametrize("from_logits", [True, False])
def test_crossentropy_gradients(rng, from_logits, reduction):
    n, k = 5, 4
    logits = rng.standard_normal((n, k))
    if from_logits:
        y_pred = logits
    else:
        # probabilities in (~0.02, ~0.9): far from the clip bounds 1e-7 and 1 - 1e-7
        y_pred = ops.softmax_forward(logits)[0]
        assert y_pred.min() > 1e-3 and y_pred.max() < 1 - 1e-3
    labels = rng.integers(0, k, size=n)
    loss, cache = ops.sparse_categorical_crossentropy_forward(
        y_pred, labels, from_logits=from_logits, reduction=reduction
    )
    dloss = rng.standard_normal(loss.shape)  # (N,) for 'none', a 0-d array otherwise
    dy_pred = ops.sparse_categorical_crossentropy_backward(dloss, cache)

    def f():
        return ops.sparse_categorical_crossentropy_forward(
            y_pred, labels, from_logits=from_logits, reduction=reduction
        )[0]

    check_gradients(f, {"y_pred": (y_pred, dy_pred)}, dloss, tol=TOL)


def test_crossentropy_probabilities_not_summing_to_one(rng):
    """Keras renormalises clipped probabilities; the gradient must include that
    term (it is not just -1/p[t]), which shows when rows do not sum to 1."""
    y_pred = rng.uniform(0.05, 0.9, size=(3, 4))
    labels = np.array([0, 3, 1])
    loss, cache = ops.sparse_categorical_crossentropy_forward(y_pred, labels)
    dy_pred = ops.sparse_categorical_crossentropy_backward(1.0, cache)
    q = y_pred / y_pred.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loss, -np.log(q[np.arange(3), labels]).sum(), rtol=1e-12)
    check_gradients(
        lambda: ops.sparse_categorical_crossentropy_forward(y_pred, labels)[0],
        {"y_pred": (y_pred, dy_pred)},
        tol=TOL,
    )


# ---- exact behaviour at the kinks ---------------------------------------------------------


def test_relu_gradient_at_exactly_zero_is_zero():
    x = np.array([-2.0, -0.0, 0.0, 1e-300, 3.0])
    y, cache = ops.relu_forward(x)
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.0, 1e-300, 3.0])
    dx = ops.relu_backward(np.full(5, 7.0), cache)
    np.testing.assert_array_equal(dx, [0.0, 0.0, 0.0, 7.0, 7.0])


def test_maxpool_tie_goes_to_first_max_in_row_major_order():
    # one 2x2 window per channel; channel c has its maxima at the marked cells
    windows = np.array(
        [
            [[5.0, 5.0], [5.0, 5.0]],  # all four tie      -> (0, 0)
            [[1.0, 4.0], [4.0, 2.0]],  # (0, 1) and (1, 0) -> (0, 1), not (1, 0)
            [[0.0, 1.0], [3.0, 3.0]],  # (1, 0) and (1, 1) -> (1, 0)
            [[-1.0, -2.0], [-3.0, -1.0]],  # (0, 0) and (1, 1) -> (0, 0)
        ]
    )
    x = windows.transpose(1, 2, 0)[None]  # (1, 2, 2, 4)
    expected_winner = [(0, 0), (0, 1), (1, 0), (0, 0)]
    for fwd, bwd in [
        (ops.maxpool2d_forward, ops.maxpool2d_backward),
        (naive.maxpool2d_forward, naive.maxpool2d_backward),
    ]:
        y, cache = fwd(x, 2)
        np.testing.assert_array_equal(y.ravel(), [5.0, 4.0, 3.0, -1.0])
        dx = bwd(np.array([[[[10.0, 20.0, 30.0, 40.0]]]]), cache)
        expected = np.zeros_like(x)
        for c, (i, j) in enumerate(expected_winner):
            expected[0, i, j, c] = 10.0 * (c + 1)
        np.testing.assert_array_equal(dx, expected)


def test_maxpool_overlapping_windows_accumulate_into_shared_winner():
    # stride 1, pool 2 on a 1x3 row: the middle cell wins both windows
    x = np.array([0.0, 9.0, 1.0]).reshape(1, 1, 3, 1)
    y, cache = ops.maxpool2d_forward(x, (1, 2), strides=1)
    np.testing.assert_array_equal(y.ravel(), [9.0, 9.0])
    dx = ops.maxpool2d_backward(np.array([2.0, 3.0]).reshape(1, 1, 2, 1), cache)
    np.testing.assert_array_equal(dx.ravel(), [0.0, 5.0, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_crossentropy_gradient_is_zero_where_clip_is_active(dtype):
    y_pred = np.array(
        [
            [0.0, 0.6, 0.4],  # p = 0 < 1e-7 (not the label)
            [1e-9, 0.5, 0.5],  # p = 1e-9 < 1e-7
            [1e-12, 0.3, 0.7],  # the *label's* probability is clipped
            [1.0, 0.0, 0.0],  # p = 1 > 1 - 1e-7, and two zeros
        ],
        dtype=dtype,
    )
    labels = np.array([1, 2, 0, 0])
    loss, cache = ops.sparse_categorical_crossentropy_forward(y_pred, labels)
    assert np.isfinite(loss)
    dy_pred = ops.sparse_categorical_crossentropy_backward(1.0, cache)
    assert dy_pred.dtype == dtype
    clipped = (y_pred < dtype(EPSILON)) | (y_pred > dtype(1 - EPSILON))
    assert clipped.sum() == 6
    np.testing.assert_array_equal(dy_pred[clipped], 0.0)
    assert np.all(dy_pred[~clipped] != 0.0)  # the others do get a gradient
