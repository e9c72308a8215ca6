"""Batch normalization over the channel axis (Keras's ``BatchNormalization``).

For x (N, ..., C) -- NHWC images or (N, C) features -- every channel c is
normalized by a mean and a variance over all the other axes (the m = N*H*W
values of that channel), then scaled and shifted::

    x_hat = (x - mean) / sqrt(var + epsilon)
    y     = gamma * x_hat + beta

Training uses the batch's own statistics, ``mean = sum(x) / m`` and the
*biased* variance ``var = sum((x - mean)**2) / m`` (Keras's ``ops.moments``),
and then moves the layer's running statistics toward them::

    moving_mean = moving_mean * momentum + mean * (1 - momentum)   (momentum 0.99)
    moving_var  = moving_var  * momentum + var  * (1 - momentum)

Inference uses the moving statistics instead: y is then an affine function of
x, channel by channel.

Backward, training mode. mean and var depend on every x of the channel, so
dx has three terms. With ``g = dy * gamma`` (the gradient wrt x_hat) and
``inv = 1 / sqrt(var + epsilon)``::

    dx_hat / dx_i (direct)            = inv
    dvar  = sum_i g_i (x_i - mean) * (-1/2) * inv**3          (x_hat through var)
    dmean = sum_i g_i * (-inv)  +  dvar * sum_i (-2 (x_i - mean)) / m  (the second sum is 0)
    dx_i  = g_i * inv + dvar * 2 (x_i - mean) / m + dmean / m

which simplifies to the form computed below::

    dx = (inv / m) * (m * g - sum(g) - x_hat * sum(g * x_hat))

dgamma = sum(dy * x_hat), dbeta = sum(dy). In inference mode mean and var are
constants: dx = g * inv.
"""

from __future__ import annotations

from typing import NamedTuple

from ..backend import get_array_module
from ..validation import check_float


class BatchNormCache(NamedTuple):
    """What the backward pass needs from the forward pass."""

    x_hat: object  # the normalized input, x's shape
    gamma: object  # (C,)
    inv: object  # 1 / sqrt(var + epsilon), (C,)
    training: bool  # batch statistics (True) or moving ones (False)


def _check(x, gamma, beta, stats):
    check_float(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must be a batch (N, ..., C), got shape {tuple(x.shape)}")
    c = x.shape[-1]
    for name, a in (("gamma", gamma), ("beta", beta), *stats):
        if tuple(a.shape) != (c,) or a.dtype != x.dtype:
            raise ValueError(f"{name} must be ({c},) {x.dtype}, got {tuple(a.shape)} {a.dtype}")


def batchnorm_forward(x, gamma, beta, epsilon=1e-3):
    """Training mode: normalize with the batch's statistics over every axis but the last.

    Returns y (x's shape), the cache, and the batch's (mean, var), each (C,),
    for the moving averages (:func:`moving_average`).
    """
    _check(x, gamma, beta, ())
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes)
    var = ((x - mean) ** 2).mean(axis=axes)  # biased: divided by m, as Keras
    xp = get_array_module(x)
    inv = 1 / xp.sqrt(var + x.dtype.type(epsilon))
    x_hat = (x - mean) * inv
    return gamma * x_hat + beta, BatchNormCache(x_hat, gamma, inv, True), (mean, var)


def batchnorm_inference(x, gamma, beta, moving_mean, moving_var, epsilon=1e-3):
    """Inference mode: normalize with the moving statistics. Returns y and the cache."""
    _check(x, gamma, beta, (("moving_mean", moving_mean), ("moving_var", moving_var)))
    xp = get_array_module(x)
    inv = 1 / xp.sqrt(moving_var + x.dtype.type(epsilon))
    x_hat = (x - moving_mean) * inv
    return gamma * x_hat + beta, BatchNormCache(x_hat, gamma, inv, False)


def batchnorm_backward(dy, cache):
    """dx, dgamma, dbeta (see the module docstring for the derivation)."""
    x_hat, gamma, inv, training = cache
    if dy.shape != x_hat.shape:
        raise ValueError(f"dy must have the output's shape {x_hat.shape}, got {dy.shape}")
    axes = tuple(range(dy.ndim - 1))
    dgamma = (dy * x_hat).sum(axis=axes)
    dbeta = dy.sum(axis=axes)
    g = dy * gamma  # the gradient wrt x_hat
    if not training:  # mean and var are constants
        return g * inv, dgamma, dbeta
    m = x_hat.size // x_hat.shape[-1]  # values per channel
    dx = (inv / m) * (m * g - g.sum(axis=axes) - x_hat * (g * x_hat).sum(axis=axes))
    return dx, dgamma, dbeta


def moving_average(moving, batch_value, momentum):
    """``moving * momentum + batch_value * (1 - momentum)``, as Keras updates them (a new array)."""
    f = moving.dtype.type
    return moving * f(momentum) + batch_value * f(1.0 - momentum)
