"""Max-pooling with explicit loops: slide the window, keep the largest value.

Compare with ``npcnn/ops/maxpool2d.py`` (tests check they agree).
"""

from __future__ import annotations

import numpy as np

from ._geometry import window_geometry


def maxpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """y[n, oh, ow, c] = max over the window at (oh*sh, ow*sw) of x_pad[n, ., ., c].

    x (N, H, W, C) -> y (N, H_out, W_out, C). 'same' pads with -inf so that
    padding never wins.
    """
    strides = pool_size if strides is None else strides  # as Keras
    pool, strides, pads, (out_h, out_w) = window_geometry(
        x, pool_size, strides, padding, "pool_size"
    )
    (ph, pw), (sh, sw) = pool, strides
    x_pad = np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-np.inf)  # -inf never wins
    n, c = x.shape[0], x.shape[3]

    y = np.zeros((n, out_h, out_w, c), dtype=x.dtype)
    for img in range(n):
        for oh in range(out_h):
            for ow in range(out_w):
                for ch in range(c):
                    window = x_pad[img, oh * sh : oh * sh + ph, ow * sw : ow * sw + pw, ch]
                    y[img, oh, ow, ch] = window.max()
    return y, (x, pool, strides, pads)


def maxpool2d_backward(dy, cache):
    """The max passes its gradient to the cell that won (local derivative 1) and
    nothing to the others (0). On a tie the first winner in row-major order
    takes it all, as in TensorFlow."""
    x, pool, strides, pads = cache
    (ph, pw), (sh, sw) = pool, strides
    x_pad = np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-np.inf)
    dx_pad = np.zeros_like(x_pad)
    n, out_h, out_w, c = dy.shape
    for img in range(n):
        for oh in range(out_h):
            for ow in range(out_w):
                for ch in range(c):
                    window = x_pad[img, oh * sh : oh * sh + ph, ow * sw : ow * sw + pw, ch]
                    i, j = np.unravel_index(np.argmax(window), window.shape)  # first max
                    dx_pad[img, oh * sh + i, ow * sw + j, ch] += dy[img, oh, ow, ch]
    (top, _), (left, _) = pads
    return dx_pad[:, top : top + x.shape[1], left : left + x.shape[2], :]
