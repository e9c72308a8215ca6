"""Layers: Keras's names, arguments and output shapes; forward and backward equal the ops'.

A bad argument is a ``ValueError`` naming it, whatever is passed (fuzzed below).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from npcnn import (
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    MaxPooling2D,
    ReLU,
    Reshape,
    Softmax,
    ops,
)

from .helpers import ANY_VALUE, fuzz, raises


def test_layers_match_ops_and_keras_output_shapes(rng):
    x = rng.standard_normal((2, 9, 8, 3))
    conv = Conv2D(4, (3, 2), strides=(2, 1), padding="valid", activation="relu")
    assert conv.build((9, 8, 3), rng, np.float64) == (4, 7, 4)
    kernel, bias = conv.params
    assert kernel.shape == (3, 2, 3, 4) and bias.shape == (4,)
    expected = ops.relu_forward(ops.conv2d_forward(x, kernel, bias, (2, 1), "valid")[0])[0]
    np.testing.assert_array_equal(conv.forward(x), expected)

    pool = MaxPooling2D(3, strides=2, padding="same")
    assert MaxPooling2D is MaxPool2D
    assert pool.build((9, 8, 3), rng, np.float64) == (5, 4, 3)
    np.testing.assert_array_equal(pool.forward(x), ops.maxpool2d_forward(x, 3, 2, "same")[0])

    flat = Flatten()
    assert flat.build((9, 8, 3), rng, np.float64) == (216,)
    np.testing.assert_array_equal(flat.forward(x), x.reshape(2, 216))
    reshape = Reshape((216,))
    assert reshape.build((9, 8, 3), rng, np.float64) == (216,)
    np.testing.assert_array_equal(reshape.backward(reshape.forward(x)), x)

    dense = Dense(5, activation="softmax")
    assert dense.build((216,), rng, np.float64) == (5,)
    np.testing.assert_allclose(dense.forward(flat.forward(x)).sum(axis=1), 1.0)

    relu, softmax = ReLU(), Softmax()
    np.testing.assert_array_equal(relu.forward(x), np.maximum(x, 0))
    np.testing.assert_allclose(softmax.forward(x).sum(axis=-1), 1.0)


def test_reshape_resolves_one_minus_one_when_built(rng):
    """As Keras: one size may be -1, the rest of the input's size fills it."""
    x = rng.standard_normal((2, 9, 8, 3))
    reshape = Reshape((-1, 4))
    assert reshape.build((9, 8, 3), rng, np.float64) == (54, 4)
    assert reshape.target_shape == (54, 4)
    np.testing.assert_array_equal(reshape.forward(x), x.reshape(2, 54, 4))
    with pytest.raises(ValueError, match="one -1 at most"):
        Reshape((-1, -1))
    with pytest.raises(ValueError, match=r"cannot reshape \(9, 8, 3\) to \(-1, 5\)"):
        Reshape((-1, 5)).build((9, 8, 3), rng, np.float64)
    with pytest.raises(ValueError, match="target_shape"):
        Reshape((0, -1))


def test_layer_backward_sets_grads_and_matches_ops(rng):
    x = rng.standard_normal((3, 6))
    dense = Dense(4, activation="relu")
    dense.build((6,), rng, np.float64)
    y = dense.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = dense.backward(dy)
    kernel, bias = dense.params
    pre, cache = ops.dense_forward(x, kernel, bias)
    d_pre = np.where(pre > 0, dy, 0)
    want_dx, want_dw, want_db = ops.dense_backward(d_pre, cache)
    np.testing.assert_allclose(dx, want_dx)
    np.testing.assert_allclose(dense.grads[0], want_dw)
    np.testing.assert_allclose(dense.grads[1], want_db)


@pytest.mark.parametrize(
    "make",
    [lambda: Conv2D(3, 2, padding="same", activation="relu"), lambda: Dense(3, activation="relu")],
)
def test_layer_relu_in_place_leaves_input_and_gradients_intact(rng, make):
    """A layer with a ReLU (on the default fast tier, which may work in place):
    the input must not change, and the backward pass must equal the composed
    readable ops'."""
    layer = make()
    shape = (4, 5) if isinstance(layer, Dense) else (2, 4, 4, 2)
    layer.build(shape[1:], rng, np.float64)
    x = rng.standard_normal(shape)
    x_before = x.copy()
    y = layer.forward(x)
    np.testing.assert_array_equal(x, x_before)
    op = ops.dense_forward if isinstance(layer, Dense) else ops.conv2d_forward
    pre, op_cache = op(x, *layer.params)
    np.testing.assert_array_equal(y, np.maximum(pre, 0))
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    backward = ops.dense_backward if isinstance(layer, Dense) else ops.conv2d_backward
    dx_ops, dw, db = backward(np.where(pre > 0, dy, 0), op_cache)
    np.testing.assert_array_equal(dx, dx_ops)
    np.testing.assert_array_equal(layer.grads[0], dw)


def test_layer_argument_errors():
    with raises(
        "activation must be None, 'linear' or one of relu, softmax, sigmoid, tanh, "
        "leaky_relu, got 'elu'"
    ):
        Dense(3, activation="elu")
    with raises("units must be a positive int, got 0"):
        Dense(0)
    with raises("filters must be a positive int, got 0"):
        Conv2D(0, 3)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: Conv2D(2.5, 3), "filters"),
        (lambda: Conv2D(True, 3), "filters"),
        (lambda: Conv2D(2.0, 3), "filters"),
        (lambda: Dense("3"), "units"),
        (lambda: Dense(False), "units"),
        (lambda: Dense(3, name=5), "name"),
    ],
)
def test_constructors_refuse_non_integer_counts(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_numpy_ints_are_counts():
    assert Dense(np.int64(3)).units == 3 and Conv2D(np.int32(2), 3).filters == 2


# ---- counts, fuzzed: a positive int or a ValueError naming the argument -------------------
def is_count(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


@pytest.mark.parametrize(
    ("make", "name"),
    [(lambda value: Dense(value), "units"), (lambda value: Conv2D(value, 3), "filters")],
    ids=["Dense.units", "Conv2D.filters"],
)
@fuzz(100)
@given(value=ANY_VALUE)
def test_a_count_is_a_positive_int_or_refused_by_name(make, name, value):
    try:
        layer = make(value)
    except ValueError as exc:
        assert name in str(exc)
        assert not is_count(value)
        return
    assert is_count(value) and getattr(layer, name) == value
