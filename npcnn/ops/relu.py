"""Rectified linear unit: y = max(x, 0)."""

from __future__ import annotations

from ..backend import get_array_module
from ..validation import check_float


def relu_forward(x):
    """Elementwise max(x, 0), any shape. Returns y and the cache (y itself).

    The backward pass needs to know where x > 0; that is exactly where y > 0,
    so caching y (which exists anyway) saves computing and storing a mask.
    """
    check_float(x, "x")
    xp = get_array_module(x)
    y = xp.maximum(x, 0)
    return y, y


def relu_backward(dy, cache):
    """dx = dy where x > 0, else 0.

    The derivative of max(x, 0) is 1 for x > 0 and 0 for x < 0; at exactly
    x = 0 we take 0, as TensorFlow does (y > 0 is false there).
    """
    y = cache
    if dy.shape != y.shape:
        raise ValueError(f"dy must have the input's shape {y.shape}, got {dy.shape}")
    xp = get_array_module(dy)
    return xp.where(y > 0, dy, 0)  # local derivative (1 or 0) times upstream gradient
