"""Leaky ReLU, sigmoid and tanh: elementwise activations with their derivatives.

Each backward pass is the local derivative times the upstream gradient::

    leaky_relu(x) = x if x > 0 else a*x     d/dx = 1 if x > 0 else a   (a: negative_slope)
    sigmoid(x)    = 1 / (1 + exp(-x))       d/dx = s * (1 - s)          (s = sigmoid(x))
    tanh(x)                                 d/dx = 1 - t*t              (t = tanh(x))

The derivative of sigmoid and tanh is written with the *output*, so the cache
is the output itself. Keras's defaults: ``LeakyReLU(negative_slope=0.3)``; at
exactly x = 0 the slope is ``a`` (TensorFlow's ``leaky_relu`` gradient takes
the ``x > 0`` branch only for positive x). TensorFlow keeps ``a`` as a float32
attribute, so in float64 too the slope is float32(a): 0.01 is 0.009999999776...
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..validation import check_float


def _check_same_shape(dy, y, what="dy"):
    if dy.shape != y.shape:
        raise ValueError(f"{what} must have the output's shape {y.shape}, got {dy.shape}")


def leaky_relu_forward(x, negative_slope=0.3):
    """y = x where x > 0, else negative_slope * x (any shape). Returns y and the cache (x, a)."""
    check_float(x, "x")
    if not isinstance(negative_slope, (int, float)) or negative_slope < 0:
        raise ValueError(f"negative_slope must be a number >= 0, got {negative_slope!r}")
    xp = get_array_module(x)
    a = x.dtype.type(np.float32(negative_slope))  # TF's float32 attribute, then x's dtype
    return xp.where(x > 0, x, a * x), (x, a)


def leaky_relu_backward(dy, cache):
    """dx = dy where x > 0, else negative_slope * dy."""
    x, a = cache
    _check_same_shape(dy, x)
    xp = get_array_module(dy)
    return xp.where(x > 0, dy, a * dy)  # local derivative (1 or a) times upstream gradient


def sigmoid_forward(x):
    """s = 1 / (1 + exp(-x)), computed without overflow for large |x|. Returns s, cache (s)."""
    check_float(x, "x")
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))  # in (0, 1]: never overflows
    one = x.dtype.type(1)
    s = xp.where(x >= 0, one / (one + e), e / (one + e))  # exp(x)/(1+exp(x)) for x < 0
    return s, s


def sigmoid_backward(dy, cache):
    """dx = dy * s * (1 - s)."""
    s = cache
    _check_same_shape(dy, s)
    return dy * s * (1 - s)


def tanh_forward(x):
    """t = tanh(x). Returns t and the cache (t)."""
    check_float(x, "x")
    t = get_array_module(x).tanh(x)
    return t, t


def tanh_backward(dy, cache):
    """dx = dy * (1 - t*t)."""
    t = cache
    _check_same_shape(dy, t)
    return dy * (1 - t * t)
