"""Max-pooling with explicit loops: slide the window, keep the largest value.

Compare with ``npcnn/ops/maxpool2d.py`` (tests check they agree).
"""

from __future__ import annotations

import numpy as np

from ..ops._checks import as_pair, normalize_padding
from ..ops.maxpool2d import maxpool2d_forward as _fast_forward
from ..ops.padding import padding_amounts
from ..ops.windows import pad_nhwc


def maxpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """y[n, oh, ow, c] = max over the window at (oh*sh, ow*sw) of x_pad[n, ., ., c].

    x (N, H, W, C) -> y (N, H_out, W_out, C). 'same' pads with -inf so that
    padding never wins.
    """
    y_shape = _fast_forward(x, pool_size, strides, padding)[0].shape  # checks + shape
    pool = as_pair(pool_size, "pool_size")
    strides = pool if strides is None else as_pair(strides, "strides")
    pads = padding_amounts(x.shape[1:3], pool, strides, normalize_padding(padding))
    x_pad = pad_nhwc(x, pads, value=-np.inf)
    (ph, pw), (sh, sw) = pool, strides
    n, out_h, out_w, c = x.shape[0], y_shape[1], y_shape[2], x.shape[3]

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
    x_pad = pad_nhwc(x, pads, value=-np.inf)
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
