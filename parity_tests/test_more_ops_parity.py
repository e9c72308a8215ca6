"""The ops beyond the tutorial's, each against TensorFlow/Keras: average and global
average pooling, leaky ReLU, sigmoid, tanh, batch normalization (training and
inference, with Keras's moving averages) and dropout.

As in ``test_ops_parity.py``: Hypothesis draws geometries and values, TensorFlow
runs the op under a ``GradientTape`` with the same upstream gradient, and every
output and gradient must agree within ``tolerances.rounding_bound`` (roundings
counted per element, magnitudes from the same computation on absolute values);
leaky ReLU must match but for subnormal products (TensorFlow flushes them). Both dtypes.

Dropout's mask is random on both sides, so its test checks the semantics: every
value TensorFlow keeps is ``x * (1 / (1 - rate))`` exactly as npcnn scales it,
npcnn's mask comes from the seed alone, and its gradient is the same mask and scale.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install -e '.[test]')")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from hypothesis import given, note  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from npcnn import naive, ops  # noqa: E402
from parity_tests.strategies import DTYPES, float_arrays, window_cases  # noqa: E402
from parity_tests.tf_reference import _vjp  # noqa: E402
from parity_tests.tolerances import (  # noqa: E402
    TRANSCENDENTAL_ULPS,
    assert_exact,
    assert_within,
    rounding_bound,
)

F64 = np.float64
by_dtype = pytest.mark.parametrize("dtype", DTYPES, ids=[np.dtype(d).name for d in DTYPES])


def magnitude(a):
    return np.abs(np.asarray(a, dtype=F64))


# ------------------------------------------------------------------- average pooling
@by_dtype
@given(case=window_cases(max_batch=3, max_channels=3), data=st.data())
def test_avgpool2d_matches_tf_and_the_loops(dtype, case, data):
    """Each output averages at most ph*pw cells (+1 division); each dx cell gets at
    most ceil(ph/sh)*ceil(pw/sw) shares (+1 division). 'same' must average the
    cells inside the image only, as TensorFlow does."""
    note(f"avgpool2d {case}")
    x = data.draw(float_arrays(case.input_shape, dtype), label="x")
    geometry = (case.window, case.strides, case.padding)
    y, cache = ops.avgpool2d_forward(x, *geometry)
    dy = data.draw(float_arrays(y.shape, dtype), label="dy")
    dx = ops.avgpool2d_backward(dy, cache)

    def forward(x):
        return tf.nn.avg_pool2d(
            x, list(case.window), list(case.strides), case.padding.upper()
        )  # fmt: skip

    y_tf, (dx_tf,) = _vjp(forward, [x], dy)
    y_m, cache_m = ops.avgpool2d_forward(magnitude(x), *geometry)
    dx_m = ops.avgpool2d_backward(magnitude(dy), cache_m)
    overlap = math.prod(-(-k // s) for k, s in zip(case.window, case.strides))
    assert_within(y, y_tf, rounding_bound(y_m, math.prod(case.window) + 1, dtype), "y")
    # TensorFlow's AvgPoolGrad disagrees with its own avg_pool when a 'same' window is
    # wider than the image (width 4, window 5: dx[0] is 0.75, its forward's 1/3 + 1/4 + 1/4):
    # there the loops below are the reference for dx.
    if not any(k > n for k, n in zip(case.window, case.input_shape[1:3])):
        assert_within(dx, dx_tf, rounding_bound(dx_m, overlap + 1, dtype), "dx")
    y_loop, loop_cache = naive.avgpool2d_forward(x, *geometry)  # the loops agree too
    assert_within(y, y_loop, rounding_bound(y_m, math.prod(case.window) + 1, dtype), "loops y")
    dx_loop = naive.avgpool2d_backward(dy, loop_cache)
    assert_within(dx, dx_loop, rounding_bound(dx_m, overlap + 1, dtype), "loops dx")


@by_dtype
def test_avgpool2d_same_does_not_average_the_padding(dtype):
    """A 3x3 image of ones, 2x2 windows, 'same': every output is 1 (a padded zero
    averaged in would give 0.5 or 0.25 at the border), in npcnn and in TF."""
    x = np.ones((1, 3, 3, 1), dtype=dtype)
    y, _ = ops.avgpool2d_forward(x, 2, 2, "same")
    y_tf = tf.nn.avg_pool2d(x, [2, 2], [2, 2], "SAME").numpy()
    assert_exact(y, y_tf, "y")
    assert_exact(y, np.ones((1, 2, 2, 1), dtype=dtype), "y")


@by_dtype
@given(shape=st.tuples(st.integers(0, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 3)),
       data=st.data())  # fmt: skip
def test_global_avgpool2d_matches_keras(dtype, shape, data):
    x = data.draw(float_arrays(shape, dtype), label="x")
    dy = data.draw(float_arrays((shape[0], shape[3]), dtype), label="dy")
    y, cache = ops.global_avgpool2d_forward(x)
    dx = ops.global_avgpool2d_backward(dy, cache)
    layer = keras.layers.GlobalAveragePooling2D(dtype=np.dtype(dtype).name)
    y_tf, (dx_tf,) = _vjp(layer, [x], dy)
    cells = shape[1] * shape[2]
    assert_within(y, y_tf, rounding_bound(magnitude(x).mean(axis=(1, 2)), cells + 1, dtype), "y")
    dx_m = np.broadcast_to(magnitude(dy)[:, None, None, :] / cells, x.shape)
    assert_within(dx, dx_tf, rounding_bound(dx_m, 2, dtype), "dx")


# -------------------------------------------------------------------- activations
@by_dtype
@given(data=st.data(), slope=st.sampled_from([0.0, 0.01, 0.3, 1.0]))
def test_leaky_relu_matches_tf(dtype, data, slope):
    """One multiply by the slope: equal up to that rounding's subnormal part
    (TensorFlow flushes subnormal products to zero, NumPy keeps them)."""
    x = data.draw(float_arrays((3, 5), dtype), label="x")
    x[0, :2] = 0  # the kink: slope a on both sides of TF's rule
    dy = data.draw(float_arrays((3, 5), dtype), label="dy")
    y, cache = ops.leaky_relu_forward(x, slope)
    y_tf, (dx_tf,) = _vjp(lambda t: tf.nn.leaky_relu(t, alpha=slope), [x], dy)
    assert_within(y, y_tf, rounding_bound(0 * magnitude(x), 1, dtype), "y")
    dx = ops.leaky_relu_backward(dy, cache)
    assert_within(dx, dx_tf, rounding_bound(0 * magnitude(dy), 1, dtype), "dx")


@by_dtype
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
@given(data=st.data())
def test_sigmoid_and_tanh_match_tf(dtype, name, data):
    """A transcendental each (a few ulps), then 2-3 roundings. For the gradient the
    error of s (or t) enters 1 - s (1 - t*t), so it is relative to |dy|, not to the
    small derivative."""
    x = data.draw(float_arrays((4, 6), dtype, bound=30.0), label="x")
    dy = data.draw(float_arrays((4, 6), dtype), label="dy")
    forward, backward = getattr(ops, f"{name}_forward"), getattr(ops, f"{name}_backward")
    y, cache = forward(x)
    y_tf, (dx_tf,) = _vjp(getattr(tf.math, name), [x], dy)
    assert_within(y, y_tf, rounding_bound(magnitude(y_tf), TRANSCENDENTAL_ULPS + 2, dtype), "y")
    dx = backward(dy, cache)
    assert_within(
        dx, dx_tf, rounding_bound(magnitude(dy), 2 * TRANSCENDENTAL_ULPS + 4, dtype), "dx"
    )


def test_sigmoid_does_not_overflow_at_large_inputs():
    x = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=np.float32)
    with np.errstate(over="raise"):
        s, _ = ops.sigmoid_forward(x)
    s_tf = tf.math.sigmoid(x).numpy()  # flushes exp(-100)/(1 + ...) to 0; NumPy keeps it
    assert_within(
        s, s_tf, rounding_bound(magnitude(s_tf), TRANSCENDENTAL_ULPS + 2, np.float32), "s"
    )


# -------------------------------------------------------------- batch normalization
def keras_batchnorm(x, dy, gamma, beta, moving, training, momentum, epsilon):
    """Keras's BatchNormalization on ``x`` with these weights: y, (dx, dgamma, dbeta),
    and its moving mean and variance after the call."""
    layer = keras.layers.BatchNormalization(
        momentum=momentum, epsilon=epsilon, dtype=x.dtype.name
    )  # fmt: skip
    layer.build(x.shape)
    for variable, value in zip(
        (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance), (gamma, beta, *moving)
    ):
        variable.assign(value)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt, training=training)
    grads = tape.gradient(y, [xt, layer.gamma, layer.beta], output_gradients=tf.constant(dy))
    stats = (layer.moving_mean.numpy(), layer.moving_variance.numpy())
    return y.numpy(), [np.asarray(g) for g in grads], stats


def batchnorm_bounds(x, dy, gamma, beta, moving, training, epsilon):
    """Per output: (magnitude, roundings). Keras takes the variance as
    mean(x*x) - mean(x)**2, whose error is relative to mean(x*x), not to the
    variance; the factor ``1 + mean(x*x) * inv**2`` carries that into every term."""
    axes = tuple(range(x.ndim - 1))
    m = x.size // x.shape[-1]
    ax, ag, ab, ady = magnitude(x), magnitude(gamma), magnitude(beta), magnitude(dy)
    if training:
        mean, var = x.astype(F64).mean(axis=axes), x.astype(F64).var(axis=axes)
    else:
        mean, var = (a.astype(F64) for a in moving)
    inv = 1 / np.sqrt(var + epsilon)
    cond = 1 + (ax**2).mean(axis=axes) * inv**2
    x_hat = (np.abs(x - mean) + ax.mean(axis=axes)) * inv * cond  # mean rounds: |x - mean| > 0
    c = (2 * m if training else 0) + TRANSCENDENTAL_ULPS + 8
    y = (ag * (ax + np.abs(mean)) * inv * cond + ab, c)
    g = ady * ag
    if training:
        dx = (inv / m) * (m * g + g.sum(axis=axes) + x_hat * (g * x_hat).sum(axis=axes)) * cond
        dx = (dx, 3 * m + 2 * c)
    else:
        dx = (g * inv * cond, c)
    dgamma = ((ady * x_hat).sum(axis=axes), m + c)
    dbeta = (ady.sum(axis=axes), m)
    return y, dx, dgamma, dbeta


@by_dtype
@pytest.mark.parametrize("training", [True, False])
@given(shape=st.sampled_from([(4, 3), (2, 3, 4, 2), (3, 5, 5, 3), (1, 2, 2, 4)]), data=st.data())
def test_batchnorm_matches_keras(dtype, training, shape, data):
    """Forward, the three gradients, and (training) the moving averages, with
    Keras's momentum 0.99 and epsilon 1e-3; inference uses the moving statistics."""
    momentum, epsilon = 0.99, 1e-3
    c = shape[-1]
    x = data.draw(float_arrays(shape, dtype), label="x")
    dy = data.draw(float_arrays(shape, dtype), label="dy")
    gamma = data.draw(float_arrays((c,), dtype, bound=2.0), label="gamma")
    beta = data.draw(float_arrays((c,), dtype, bound=2.0), label="beta")
    moving = (
        data.draw(float_arrays((c,), dtype, bound=2.0), label="moving_mean"),
        np.abs(data.draw(float_arrays((c,), dtype, bound=2.0), label="moving_var")),
    )
    if training:
        y, cache, batch_stats = ops.batchnorm_forward(x, gamma, beta, epsilon)
        new_moving = [
            ops.batchnorm.moving_average(a, s, momentum) for a, s in zip(moving, batch_stats)
        ]
    else:
        y, cache = ops.batchnorm_inference(x, gamma, beta, *moving, epsilon)
        new_moving = list(moving)
    grads = ops.batchnorm_backward(dy, cache)
    y_tf, grads_tf, moving_tf = keras_batchnorm(
        x, dy, gamma, beta, moving, training, momentum, epsilon
    )
    bounds = batchnorm_bounds(x, dy, gamma, beta, moving, training, epsilon)
    for name, got, want, (mag, count) in zip(
        ("y", "dx", "dgamma", "dbeta"), (y, *grads), (y_tf, *grads_tf), bounds
    ):
        assert_within(got, want, rounding_bound(mag, count, dtype), name)
    m = x.size // c
    for name, got, want, old in zip(("moving_mean", "moving_var"), new_moving, moving_tf, moving):
        scale = momentum * magnitude(old) + (1 - momentum) * (magnitude(x) ** 2 + 1).mean(
            axis=tuple(range(x.ndim - 1))
        )
        assert_within(got, want, rounding_bound(scale, 2 * m + 6, dtype), name)


# ----------------------------------------------------------------------------- dropout
@by_dtype
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropout_scales_kept_values_as_keras_and_repeats_from_its_seed(dtype, rate):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 50)).astype(dtype)
    y, cache = ops.dropout_forward(x, rate, np.random.default_rng(1))
    y_again, _ = ops.dropout_forward(x, rate, np.random.default_rng(1))
    assert_exact(y, y_again, "the same seed, the same mask")
    keep = y != 0
    assert abs(keep.mean() - (1 - rate)) < 0.05  # about 1 - rate of the values survive
    y_tf = keras.layers.Dropout(rate, seed=3, dtype=np.dtype(dtype).name)(x, training=True)
    y_tf = np.asarray(y_tf)
    kept_tf = y_tf != 0
    scale = dtype(1 / (1 - rate))
    assert_exact(y_tf[kept_tf], x[kept_tf] * scale, "TF's kept values")
    assert_exact(y[keep], x[keep] * scale, "npcnn's kept values, scaled the same")
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert_exact(ops.dropout_backward(dy, cache), np.where(keep, dy * scale, 0), "dx")
    assert_exact(
        np.asarray(keras.layers.Dropout(rate, dtype=np.dtype(dtype).name)(x, training=False)),
        x,
        "Keras at inference",
    )
