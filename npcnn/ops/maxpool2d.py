"""2-D max-pooling (TensorFlow's ``tf.nn.max_pool2d``): forward and backward.

For an input ``x`` (N, H, W, C), window (ph, pw) and strides (sh, sw)::

    y[n, oh, ow, c] = max_{i, j} x_pad[n, oh*sh + i, ow*sw + j, c]

With 'same' padding the padded cells are -inf, so they are never the maximum
(TensorFlow ignores them). Backward: each output's gradient goes to the cell
that was the maximum; when several cells tie, to the *first* in row-major
order of the window (TensorFlow's rule).

The loop version a learner reads first is ``npcnn/naive/maxpool2d.py``.
"""

from __future__ import annotations

from typing import NamedTuple

from ..backend import get_array_module
from ..validation import as_pair, check_float, check_rank, normalize_padding
from .padding import output_hw, padding_amounts
from .windows import pad_nhwc, tap_view


class MaxPool2DCache(NamedTuple):
    """What the backward pass needs from the forward pass."""

    x_shape: tuple  # (N, H, W, C)
    x_pad: object  # the input padded with -inf (N, Hp, Wp, C)
    y: object  # the output: the max of each window
    pads: tuple  # ((top, bottom), (left, right))
    strides: tuple  # (sh, sw)
    out_hw: tuple  # (H_out, W_out)
    taps: list  # the window's cells (i, j) in row-major order


def maxpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """Max over each pooling window.

    Args:
        x: input (N, H, W, C), float.
        pool_size: int or (ph, pw).
        strides: int or (sh, sw); None means ``pool_size`` (as Keras).
        padding: 'valid' or 'same' (any case).
    Returns:
        y (N, H_out, W_out, C) and the cache for :func:`maxpool2d_backward`.
    """
    pool, strides, pads, out_hw = pool_geometry(x, pool_size, strides, padding)
    xp = get_array_module(x)
    x_pad = pad_nhwc(x, pads, value=-xp.inf)  # -inf: a padded cell never wins the max
    taps = [(i, j) for i in range(pool[0]) for j in range(pool[1])]  # row-major order
    y = window_max(x_pad, taps, strides, out_hw)
    # The backward pass finds the winning cells itself (from x_pad and y).
    return y, MaxPool2DCache(x.shape, x_pad, y, pads, strides, out_hw, taps)


def pool_geometry(x, pool_size, strides, padding):
    """Check the arguments; return (pool, strides, pads, out_hw) as pairs of ints."""
    check_rank(x, 4, "x", "N, H, W, C")
    check_float(x, "x")
    pool = as_pair(pool_size, "pool_size")
    strides = pool if strides is None else as_pair(strides, "strides")  # as Keras
    padding = normalize_padding(padding)
    in_hw = x.shape[1:3]
    pads = padding_amounts(in_hw, pool, strides, padding)
    return pool, strides, pads, output_hw(in_hw, pool, strides, padding)


def window_max(x_pad, taps, strides, out_hw):
    """The max over the taps of every window, y (N, H_out, W_out, C)."""
    xp = get_array_module(x_pad)
    windows = [tap_view(x_pad, i, j, strides, out_hw) for i, j in taps]  # views, no copies
    y = windows[0]
    for window in windows[1:]:
        y = xp.maximum(y, window)  # running max over the taps
    return y.copy()  # (a pool of one cell would otherwise return a view of x)


def maxpool2d_backward(dy, cache):
    """Route each output gradient to its window's (first) maximum.

    Args:
        dy: upstream gradient (N, H_out, W_out, C).
    Returns:
        dx (N, H, W, C): dy summed into the winning cells (a cell can win
        several overlapping windows), zero elsewhere.
    """
    n, h, w, c = cache.x_shape
    expected = (n, *cache.out_hw, c)
    if tuple(dy.shape) != expected:
        raise ValueError(f"dy must have the output's shape {expected}, got {tuple(dy.shape)}")
    xp = get_array_module(dy)
    dx_pad = xp.zeros(cache.x_pad.shape, dtype=dy.dtype)
    taken = xp.zeros(cache.y.shape, dtype=bool)  # outputs whose winner was already found
    for i, j in cache.taps:  # row-major order
        window = tap_view(cache.x_pad, i, j, cache.strides, cache.out_hw)
        wins = (window == cache.y) & ~taken  # tap (i, j) holds the max and no earlier tap did
        taken = taken | wins
        # local derivative of max: 1 for the winning tap, 0 for the others
        view = tap_view(dx_pad, i, j, cache.strides, cache.out_hw)  # a view into dx_pad
        view += xp.where(wins, dy, 0)
    (top, _), (left, _) = cache.pads
    return dx_pad[:, top : top + h, left : left + w, :]  # padding cells get no gradient
