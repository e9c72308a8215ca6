"""Flatten (N, H, W, C) to (N, H*W*C) in NHWC (row-major) order, as Keras does."""

from __future__ import annotations

import math


def flatten_forward(x):
    """Reshape to (N, prod(rest)): index [n, h, w, c] becomes [n, (h*W + w)*C + c].

    Keras's ``Flatten`` and ``Reshape((H*W*C,))`` use this same order, which is
    why a Keras dense kernel loads into npcnn unchanged.
    """
    if x.ndim < 1:
        raise ValueError(f"x must have a batch axis, got shape {tuple(x.shape)}")
    return x.reshape(x.shape[0], math.prod(x.shape[1:])), x.shape


def flatten_backward(dy, cache):
    """Reshape the gradient back: flattening moves numbers, it does not change them."""
    x_shape = cache
    if dy.size != math.prod(x_shape):
        raise ValueError(f"dy of shape {tuple(dy.shape)} cannot be reshaped to {tuple(x_shape)}")
    return dy.reshape(x_shape)
