"""The known mistakes of the layers beyond the tutorial's: batch norm, dropout, average
pooling, leaky ReLU, sigmoid and tanh -- the wrong code and a teacher's words.

As in ``wrong.py``, a forward mistake takes the forward's arguments and
returns the wrong output; a backward mistake takes the forward's arguments
and the upstream gradient and returns the wrong gradients by name, or None
when the case cannot show it. ``mistakes.py`` joins :data:`MISTAKES` to the
tutorial's catalogue.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from .spec import Mistake

MOMENTUM = 0.99  # Keras's BatchNormalization default


# ---- batch norm ---------------------------------------------------------------------------
def _bn(x, gamma, beta, epsilon, ddof=0):
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes)
    var = ((x - mean) ** 2).sum(axis=axes) / (x.size // x.shape[-1] - ddof)
    inv = 1 / np.sqrt(var + x.dtype.type(epsilon))
    return (x - mean) * inv, inv, axes


def batchnorm_unbiased_variance(x, gamma, beta, epsilon=1e-3):
    x_hat, _, _ = _bn(x, gamma, beta, epsilon, ddof=1)
    return gamma * x_hat + beta


def _bn_dx(args, dy, mean_term=True, variance_term=True):
    x, gamma, beta, epsilon = args
    x_hat, inv, axes = _bn(x, gamma, beta, epsilon)
    m, g = x_hat.size // x_hat.shape[-1], dy * gamma
    dx = m * g
    if mean_term:
        dx = dx - g.sum(axis=axes)
    if variance_term:
        dx = dx - x_hat * (g * x_hat).sum(axis=axes)
    return {"dx": (inv / m) * dx}


def batchnorm_dx_no_mean_term(args, dy):
    return _bn_dx(args, dy, mean_term=False)


def batchnorm_dx_no_variance_term(args, dy):
    return _bn_dx(args, dy, variance_term=False)


def batchnorm_dx_as_constants(args, dy):
    return _bn_dx(args, dy, mean_term=False, variance_term=False)


def batchnorm_inference_batch_statistics(x, gamma, beta, moving_mean, moving_var, epsilon=1e-3):
    return ops.batchnorm_forward(x, gamma, beta, epsilon)[0]


def batchnorm_inference_moves_averages(x, gamma, beta, moving_mean, moving_var, epsilon=1e-3):
    """Normalises with the moving statistics after moving them toward the batch's."""
    _, _, (mean, var) = ops.batchnorm_forward(x, gamma, beta, epsilon)
    moved_mean = ops.batchnorm.moving_average(moving_mean, mean, MOMENTUM)
    moved_var = ops.batchnorm.moving_average(moving_var, var, MOMENTUM)
    return ops.batchnorm_inference(x, gamma, beta, moved_mean, moved_var, epsilon)[0]


# ---- dropout ------------------------------------------------------------------------------
def _keep(x, rate, rng):
    return rng.random(x.shape) >= rate  # a fresh generator from the case's seed


def dropout_not_rescaled(x, rate, rng):
    return None if rate == 0 else np.where(_keep(x, rate, rng), x, 0).astype(x.dtype)


def dropout_times_keep_probability(x, rate, rng):
    if rate == 0:
        return None
    return np.where(_keep(x, rate, rng), x * x.dtype.type(1 - rate), 0).astype(x.dtype)


def dropout_keeps_rate(x, rate, rng):
    keep = ~_keep(x, rate, rng)  # kept with probability rate
    return np.where(keep, x / x.dtype.type(1 - rate), 0).astype(x.dtype)


def dropout_grad_not_rescaled(args, dy):
    x, rate, rng = args
    return None if rate == 0 else {"dx": np.where(_keep(x, rate, rng), dy, 0).astype(dy.dtype)}


# ---- average pooling ----------------------------------------------------------------------
def _pool_geometry(x, pool_size, strides, padding):
    _, cache = ops.avgpool2d_forward(x, pool_size, strides, padding)
    return cache


def avgpool_counts_padding(x, pool_size=2, strides=None, padding="valid"):
    cache = _pool_geometry(x, pool_size, strides, padding)
    if padding != "same" or not any(any(p) for p in cache.pads):
        return None
    y, _ = ops.avgpool2d_forward(x, pool_size, strides, padding)
    return (y * cache.count / x.dtype.type(len(cache.taps))).astype(x.dtype)


def avgpool_default_stride_1(x, pool_size=2, strides=None, padding="valid"):
    if strides is not None:
        return None
    return ops.avgpool2d_forward(x, pool_size, 1, padding)[0]


def _avgpool_dx(args, dy, count):
    """dx with each window's dy / ``count`` (broadcast over the windows) sent to its cells."""
    cache = _pool_geometry(*args)
    return {"dx": ops.avgpool2d_backward(dy * cache.count / count, cache).astype(dy.dtype)}


def avgpool_grad_not_divided(args, dy):
    return _avgpool_dx(args, dy, 1)


def avgpool_grad_counts_padding(args, dy):
    cache = _pool_geometry(*args)
    if not any(any(p) for p in cache.pads):
        return None
    return _avgpool_dx(args, dy, dy.dtype.type(len(cache.taps)))


def global_avgpool_grad_not_divided(args, dy):
    x = args[0]
    if x.shape[1] * x.shape[2] == 1:
        return None
    return {"dx": np.broadcast_to(dy[:, None, None, :], x.shape).copy()}


# ---- activations --------------------------------------------------------------------------
def leaky_relu_grad_at_zero(args, dy):
    x = args[0]
    a = dy.dtype.type(np.float32(args[1] if len(args) > 1 else 0.3))
    return {"dx": np.where(x >= 0, dy, a * dy)}


def leaky_relu_slope_0_01(x, negative_slope=0.3):
    if negative_slope != 0.3:
        return None
    return ops.leaky_relu_forward(x, 0.01)[0]


def sigmoid_grad_from_input(args, dy):
    x = args[0]
    return {"dx": dy * x * (1 - x)}


def tanh_grad_from_input(args, dy):
    x = args[0]
    return {"dx": dy * (1 - x * x)}


def tanh_grad_not_squared(args, dy):
    t = np.tanh(args[0])
    return {"dx": dy * (1 - t)}


MISTAKES = (
    Mistake(
        "batchnorm-unbiased-variance",
        "batchnorm",
        "forward",
        "the variance is divided by m - 1 (unbiased, np.var(ddof=1)); batch normalization "
        "uses the batch's biased variance, sum((x - mean)**2) / m, as Keras does.",
        batchnorm_unbiased_variance,
    ),
    Mistake(
        "batchnorm-dx-no-mean-term",
        "batchnorm",
        "backward",
        "dx misses the path through the batch mean: every x moves the mean, which adds "
        "-sum(g) / m to each dx (g = dy * gamma); the dx of a channel must sum to 0.",
        batchnorm_dx_no_mean_term,
    ),
    Mistake(
        "batchnorm-dx-no-variance-term",
        "batchnorm",
        "backward",
        "dx misses the path through the batch variance: every x moves the variance, which "
        "adds -x_hat * sum(g * x_hat) / m to each dx (times 1 / sqrt(var + epsilon)).",
        batchnorm_dx_no_variance_term,
    ),
    Mistake(
        "batchnorm-dx-as-constants",
        "batchnorm",
        "backward",
        "dx treats the batch's mean and variance as constants (dx = dy * gamma / sqrt(var + "
        "epsilon)): that is inference mode's gradient; in training they depend on every x.",
        batchnorm_dx_as_constants,
    ),
    Mistake(
        "batchnorm-inference-batch-statistics",
        "batchnorm_inference",
        "forward",
        "at inference batch norm normalizes with the moving statistics it is given "
        "(moving_mean, moving_var), not the batch's own: a prediction must not depend on "
        "the other examples of its batch.",
        batchnorm_inference_batch_statistics,
    ),
    Mistake(
        "batchnorm-inference-updates-moving-averages",
        "batchnorm_inference",
        "forward",
        "the moving averages are updated at inference: only training moves moving_mean "
        "and moving_var toward the batch's statistics; inference reads them and leaves "
        "them as they are.",
        batchnorm_inference_moves_averages,
        mutates=("moving_mean", "moving_var"),
    ),
    Mistake(
        "dropout-not-rescaled",
        "dropout",
        "forward",
        "dropout is not rescaled: the kept values are divided by 1 - rate (inverted "
        "dropout, as Keras), so that y's expected value is x and inference needs no change.",
        dropout_not_rescaled,
    ),
    Mistake(
        "dropout-times-keep-probability",
        "dropout",
        "forward",
        "the kept values are multiplied by 1 - rate, the old scaling applied at test time; "
        "inverted dropout divides them by 1 - rate during training instead.",
        dropout_times_keep_probability,
    ),
    Mistake(
        "dropout-keeps-rate",
        "dropout",
        "forward",
        "rate is the fraction dropped, not kept: keep = rng.random(x.shape) >= rate "
        "(one draw per value, from the generator given).",
        dropout_keeps_rate,
    ),
    Mistake(
        "dropout-grad-not-rescaled",
        "dropout",
        "backward",
        "the backward pass is not rescaled: y = x * keep / (1 - rate), so dx = dy * keep "
        "/ (1 - rate), the forward's mask and scale.",
        dropout_grad_not_rescaled,
    ),
    Mistake(
        "avgpool2d-same-averages-padding",
        "avgpool2d",
        "forward",
        "'same' average pooling averages over padded cells: a border window divides its sum "
        "by the number of its cells inside the image (TensorFlow), not by ph * pw.",
        avgpool_counts_padding,
    ),
    Mistake(
        "avgpool2d-default-stride-1",
        "avgpool2d",
        "forward",
        "strides=None means the stride equals the pool size (windows side by side), not 1.",
        avgpool_default_stride_1,
    ),
    Mistake(
        "avgpool2d-grad-not-divided",
        "avgpool2d",
        "backward",
        "each cell of a window gets dy / count, the local derivative of a mean of count "
        "terms times the upstream gradient; you sent it dy undivided.",
        avgpool_grad_not_divided,
    ),
    Mistake(
        "avgpool2d-grad-same-averages-padding",
        "avgpool2d",
        "backward",
        "with 'same' padding a border window averaged only its cells inside the image, so "
        "its gradient is dy / (that count), not dy / (ph * pw).",
        avgpool_grad_counts_padding,
    ),
    Mistake(
        "global-avgpool2d-grad-not-divided",
        "global_avgpool2d",
        "backward",
        "the mean over H * W cells sends dy / (H * W) to each of them, not dy.",
        global_avgpool_grad_not_divided,
    ),
    Mistake(
        "leaky-relu-grad-at-zero",
        "leaky_relu",
        "backward",
        "at exactly x = 0 leaky ReLU's gradient is the slope (TensorFlow takes the x > 0 "
        "branch for positive x only): dx = dy where x > 0, else negative_slope * dy.",
        leaky_relu_grad_at_zero,
    ),
    Mistake(
        "leaky-relu-slope-0.01",
        "leaky_relu",
        "forward",
        "Keras's LeakyReLU slope defaults to 0.3; 0.01 is PyTorch's default.",
        leaky_relu_slope_0_01,
    ),
    Mistake(
        "sigmoid-grad-from-input",
        "sigmoid",
        "backward",
        "sigmoid's derivative is s * (1 - s) of the output s = sigmoid(x), not x * (1 - x) "
        "of the input.",
        sigmoid_grad_from_input,
    ),
    Mistake(
        "tanh-grad-from-input",
        "tanh",
        "backward",
        "tanh's derivative is 1 - t**2 of the output t = tanh(x), not 1 - x**2 of the input.",
        tanh_grad_from_input,
    ),
    Mistake(
        "tanh-grad-not-squared",
        "tanh",
        "backward",
        "tanh's derivative is 1 - t**2 (t = tanh(x)), not 1 - t.",
        tanh_grad_not_squared,
    ),
)
