"""Rectified linear unit: y = max(x, 0)."""

from __future__ import annotations

from ..backend import get_array_module
from ._checks import check_float


def relu_forward(x):
    """Elementwise max(x, 0), any shape. Returns y and the cache (the mask x > 0)."""
    check_float(x, "x")
    xp = get_array_module(x)
    return xp.maximum(x, 0), x > 0  # y, and where the gradient will pass


def relu_backward(dy, cache):
    """dx = dy where x > 0, else 0.

    The derivative of max(x, 0) is 1 for x > 0 and 0 for x < 0; at exactly
    x = 0 we take 0, as TensorFlow does.
    """
    passed = cache
    if dy.shape != passed.shape:
        raise ValueError(f"dy must have the input's shape {passed.shape}, got {dy.shape}")
    xp = get_array_module(dy)
    return xp.where(passed, dy, 0)  # local derivative (1 or 0) times upstream gradient
