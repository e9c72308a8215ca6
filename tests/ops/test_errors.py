"""Bad input gives a ``ValueError`` whose message names the argument and the shapes.

A learner who passes NCHW data, integer pixels or a label of 10 should read in
the message what is wrong, not decode a broadcasting error from deep inside.
"""

from __future__ import annotations

import numpy as np
import pytest

from npcnn import Conv2D, MaxPool2D, naive, ops

from ..helpers import raises

X = np.zeros((2, 5, 6, 3))
W = np.zeros((3, 3, 3, 4))
B = np.zeros(4)


# ---- wrong rank ---------------------------------------------------------------------------


@pytest.mark.parametrize("conv", [ops.conv2d_forward, naive.conv2d_forward])
def test_conv2d_wrong_rank(conv):
    with raises("x must have 4 axes (N, H, W, Cin), got shape (5, 6, 3)"):
        conv(X[0], W, B)
    with raises("w must have 4 axes (kh, kw, Cin, Cout), got shape (3, 3, 3)"):
        conv(X, W[..., 0], B)
    with raises("b must have 1 axes (Cout), got shape (1, 4)"):
        conv(X, W, B[None])


@pytest.mark.parametrize("pool", [ops.maxpool2d_forward, naive.maxpool2d_forward])
def test_maxpool2d_wrong_rank(pool):
    with raises("x must have 4 axes (N, H, W, C), got shape (5, 6, 3)"):
        pool(X[0])


def test_dense_wrong_rank():
    with raises("x must have 2 axes (N, Din), got shape (2, 5, 6, 3)"):
        ops.dense_forward(X, np.zeros((90, 4)), B)
    with raises("w must have 2 axes (Din, Dout), got shape (3, 3, 3, 4)"):
        ops.dense_forward(np.zeros((2, 3)), W, B)


def test_crossentropy_wrong_rank():
    with raises("y_pred must have 2 axes (N, num_classes), got shape (10,)"):
        ops.sparse_categorical_crossentropy_forward(np.full(10, 0.1), np.array([1]))
    with raises("labels must have 1 axes (N), got shape (2, 1)"):
        ops.sparse_categorical_crossentropy_forward(np.full((2, 3), 0.3), np.array([[0], [1]]))


def test_softmax_needs_a_class_axis():
    with raises("z must have a non-empty last (class) axis, got shape (3, 0)"):
        ops.softmax_forward(np.zeros((3, 0)))


# ---- channel and shape mismatches ---------------------------------------------------------


@pytest.mark.parametrize("conv", [ops.conv2d_forward, naive.conv2d_forward])
def test_conv2d_channel_mismatch(conv):
    w = np.zeros((3, 3, 1, 4))
    with raises(
        "channel mismatch: x has 3 input channels (shape (2, 5, 6, 3)) "
        "but w expects 1 (shape (3, 3, 1, 4))"
    ):
        conv(X, w, B)


def test_conv2d_nchw_input_is_caught_as_channel_mismatch():
    """The commonest mistake: NCHW data (PyTorch's layout) for an NHWC op."""
    x_nchw = np.zeros((2, 1, 28, 28))
    with raises("x has 28 input channels (shape (2, 1, 28, 28))"):
        ops.conv2d_forward(x_nchw, np.zeros((5, 5, 1, 32)), np.zeros(32))


def test_conv2d_bias_mismatch():
    with raises("b must have shape (4,) to match w (3, 3, 3, 4), got (5,)"):
        ops.conv2d_forward(X, W, np.zeros(5))


def test_dense_feature_mismatch():
    with raises("x has 3 features (shape (2, 3)) but w expects 4 (shape (4, 5))"):
        ops.dense_forward(np.zeros((2, 3)), np.zeros((4, 5)), np.zeros(5))
    with raises("b must have shape (5,) to match w (4, 5), got (4,)"):
        ops.dense_forward(np.zeros((2, 4)), np.zeros((4, 5)), np.zeros(4))


def test_backward_rejects_upstream_gradient_of_wrong_shape():
    _, cache = ops.conv2d_forward(X, W, B)
    with raises("dy must have the output's shape (2, 5, 6, 4), got (2, 5, 6, 3)"):
        ops.conv2d_backward(np.zeros((2, 5, 6, 3)), cache)
    _, cache = ops.maxpool2d_forward(X)
    with raises("dy must have the output's shape (2, 2, 3, 3), got (2, 3, 3, 3)"):
        ops.maxpool2d_backward(np.zeros((2, 3, 3, 3)), cache)
    _, cache = ops.dense_forward(np.zeros((2, 3)), np.zeros((3, 4)), np.zeros(4))
    with raises("dy must have the output's shape (2, 4), got (4, 2)"):
        ops.dense_backward(np.zeros((4, 2)), cache)
    _, cache = ops.relu_forward(X)
    with raises("dy must have the input's shape (2, 5, 6, 3), got (2, 5, 6)"):
        ops.relu_backward(X[..., 0], cache)
    _, cache = ops.softmax_forward(np.zeros((2, 3)))
    with raises("dp must have the output's shape (2, 3), got (3, 2)"):
        ops.softmax_backward(np.zeros((3, 2)), cache)
    _, cache = ops.flatten_forward(X)
    with raises("dy of shape (2, 10) cannot be reshaped to (2, 5, 6, 3)"):
        ops.flatten_backward(np.zeros((2, 10)), cache)


def test_crossentropy_dloss_shape_must_match_reduction():
    y_pred, labels = np.full((3, 2), 0.5), np.array([0, 1, 1])
    _, cache = ops.sparse_categorical_crossentropy_forward(y_pred, labels, reduction="none")
    with raises("dloss must have shape (3,) for reduction='none', got ()"):
        ops.sparse_categorical_crossentropy_backward(1.0, cache)
    _, cache = ops.sparse_categorical_crossentropy_forward(y_pred, labels, reduction="sum")
    with raises("dloss must be a scalar for reduction='sum', got (3,)"):
        ops.sparse_categorical_crossentropy_backward(np.ones(3), cache)


# ---- dtypes -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.bool_])
def test_non_float_input(dtype):
    name = np.dtype(dtype).name
    with raises(f"x must be a floating-point array, got dtype {name}"):
        ops.conv2d_forward(X.astype(dtype), W, B)
    with raises(f"x must be a floating-point array, got dtype {name}"):
        ops.maxpool2d_forward(X.astype(dtype))
    with raises(f"x must be a floating-point array, got dtype {name}"):
        ops.dense_forward(np.zeros((2, 3), dtype=dtype), np.zeros((3, 4)), np.zeros(4))
    with raises(f"x must be a floating-point array, got dtype {name}"):
        ops.relu_forward(X.astype(dtype))
    with raises(f"z must be a floating-point array, got dtype {name}"):
        ops.softmax_forward(X.astype(dtype))
    with raises(f"y_pred must be a floating-point array, got dtype {name}"):
        ops.sparse_categorical_crossentropy_forward(np.zeros((2, 3), dtype=dtype), np.zeros(2, int))


def test_mixed_float32_and_float64_are_refused():
    with raises("x and w must share a dtype, got float32 and float64"):
        ops.conv2d_forward(X.astype(np.float32), W, B.astype(np.float32))
    with raises("x and b must share a dtype, got float32 and float64"):
        ops.conv2d_forward(X.astype(np.float32), W.astype(np.float32), B)
    with raises("x and w must share a dtype, got float64 and float32"):
        ops.dense_forward(np.zeros((2, 3)), np.zeros((3, 4), np.float32), np.zeros(4))


# ---- labels -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad, lo, hi", [([0, 3], 0, 3), ([-1, 2], -1, 2), ([7, 7], 7, 7)])
def test_labels_out_of_range(bad, lo, hi):
    y_pred = np.full((2, 3), 1 / 3)
    with raises(
        f"labels must lie in [0, 3) for y_pred of shape (2, 3), got values from {lo} to {hi}"
    ):
        ops.sparse_categorical_crossentropy_forward(y_pred, np.array(bad))


@pytest.mark.parametrize("labels", [np.array([0.0, 1.0]), np.array([True, False])])
def test_labels_must_be_integers(labels):
    with raises(f"labels must be integer class ids, got dtype {labels.dtype}"):
        ops.sparse_categorical_crossentropy_forward(np.full((2, 3), 1 / 3), labels)


def test_labels_count_must_match_batch():
    with raises("labels has 3 entries but y_pred has 2 rows (shapes (3,) and (2, 3))"):
        ops.sparse_categorical_crossentropy_forward(np.full((2, 3), 1 / 3), np.array([0, 1, 2]))


def test_unknown_reduction():
    with raises("reduction must be one of ('sum', 'mean', 'none'), got 'average'"):
        ops.sparse_categorical_crossentropy_forward(
            np.full((2, 3), 1 / 3), np.array([0, 1]), reduction="average"
        )


# ---- padding, strides, empty outputs ------------------------------------------------------


@pytest.mark.parametrize("conv", [ops.conv2d_forward, naive.conv2d_forward])
def test_valid_output_would_be_empty(conv):
    with raises(
        "input of spatial size (5, 6) is smaller than the window (3, 7): "
        "padding='valid' would give an empty output (3, 0)"
    ):
        conv(X, np.zeros((3, 7, 3, 4)), B, 1, "valid")


@pytest.mark.parametrize("pool", [ops.maxpool2d_forward, naive.maxpool2d_forward])
def test_valid_pool_output_would_be_empty(pool):
    with raises("input of spatial size (5, 6) is smaller than the window (6, 2)"):
        pool(X, (6, 2))


@pytest.mark.parametrize("padding", ["full", "SAMEE", None, 0])
def test_unknown_padding_word(padding):
    message = f"padding must be 'same' or 'valid' (any case), got {padding!r}"
    with raises(message):
        ops.conv2d_forward(X, W, B, 1, padding)
    with raises(message):
        ops.maxpool2d_forward(X, 2, 2, padding)
    with raises(message):
        Conv2D(4, 3, padding=padding)


def test_padding_word_is_case_insensitive():
    y_upper, _ = ops.conv2d_forward(X, W, B, 1, "SAME")
    y_lower, _ = ops.conv2d_forward(X, W, B, 1, "same")
    np.testing.assert_array_equal(y_upper, y_lower)
    assert ops.maxpool2d_forward(X, 2, 2, "Valid")[0].shape == (2, 2, 3, 3)


@pytest.mark.parametrize("strides", [(1, 2, 3), (2,), 1.5, (1.5, 2), "2", "22", True])
def test_strides_of_wrong_kind(strides):
    message = f"strides must be an int or an (h, w) pair of ints, got {strides!r}"
    with raises(message):
        ops.conv2d_forward(X, W, B, strides)
    with raises(message):
        ops.maxpool2d_forward(X, 2, strides)
    with raises(message):
        MaxPool2D(2, strides)


@pytest.mark.parametrize("strides", [0, -1, (1, 0), (-2, 2)])
def test_strides_must_be_positive(strides):
    with raises(f"strides must be positive, got {strides!r}"):
        ops.conv2d_forward(X, W, B, strides)
    with raises(f"strides must be positive, got {strides!r}"):
        naive.maxpool2d_forward(X, 2, strides)


def test_bad_pool_and_kernel_size():
    with raises("strides must be an int or an (h, w) pair of ints, got None"):
        ops.conv2d_forward(X, W, B, None)  # (maxpool's strides=None means pool_size)
    with raises("pool_size must be positive, got 0"):
        ops.maxpool2d_forward(X, 0)
    with raises("kernel_size must be an int or an (h, w) pair of ints, got (3, 3, 3)"):
        Conv2D(4, (3, 3, 3))
