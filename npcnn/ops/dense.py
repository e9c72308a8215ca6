"""Fully connected (dense) layer: y = x @ w + b, forward and backward."""

from __future__ import annotations

from typing import NamedTuple

from ..validation import check_dense_args


class DenseCache(NamedTuple):
    """What the backward pass needs: the input and the weights."""

    x: object  # (N, Din)
    w: object  # (Din, Dout)


def dense_forward(x, w, b):
    """Affine map.

    Args:
        x: input (N, Din), float.  w: weights (Din, Dout).  b: bias (Dout,).
    Returns:
        y (N, Dout) with ``y[n, o] = sum_i x[n, i] * w[i, o] + b[o]``, and the cache.
    """
    check_dense_args(x, w, b)
    y = x @ w + b
    return y, DenseCache(x, w)


def dense_backward(dy, cache):
    """Gradients of y = x @ w + b.

    Args:
        dy: upstream gradient (N, Dout).
    Returns:
        dx (N, Din) = dy @ w.T, dw (Din, Dout) = x.T @ dy, db (Dout,) = sum_n dy.
    """
    x, w = cache.x, cache.w
    if tuple(dy.shape) != (x.shape[0], w.shape[1]):
        raise ValueError(
            f"dy must have the output's shape {(x.shape[0], w.shape[1])}, got {tuple(dy.shape)}"
        )
    dx = dy @ w.T  # local derivative of y wrt x is w
    dw = x.T @ dy  # local derivative of y wrt w is x
    db = dy.sum(axis=0)  # b was added to every row
    return dx, dw, db
