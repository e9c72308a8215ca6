"""Average pooling with explicit loops: slide the window, average the cells inside the image.

Compare with ``npcnn/ops/avgpool2d.py`` (tests check they agree).
"""

from __future__ import annotations

import numpy as np

from ._geometry import window_geometry


def _window_cells(oh, ow, pool, strides, pads, hw):
    """The cells (h, w) of the window at output (oh, ow) that lie inside the image."""
    (ph, pw), (sh, sw), ((top, _), (left, _)), (height, width) = pool, strides, pads, hw
    return [
        (oh * sh + i - top, ow * sw + j - left)
        for i in range(ph)
        for j in range(pw)
        if 0 <= oh * sh + i - top < height and 0 <= ow * sw + j - left < width
    ]


def avgpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """y[n, oh, ow, c] = mean of x[n, h, w, c] over the window's cells inside the image.

    x (N, H, W, C) -> y (N, H_out, W_out, C). With 'same' a border window holds
    fewer cells; the padding is never averaged in (as Keras).
    """
    strides = pool_size if strides is None else strides  # as Keras
    pool, strides, pads, (out_h, out_w) = window_geometry(
        x, pool_size, strides, padding, "pool_size"
    )
    n, height, width, c = x.shape
    y = np.zeros((n, out_h, out_w, c), dtype=x.dtype)
    for oh in range(out_h):
        for ow in range(out_w):
            cells = _window_cells(oh, ow, pool, strides, pads, (height, width))
            for h, w in cells:
                y[:, oh, ow, :] += x[:, h, w, :]
            y[:, oh, ow, :] /= len(cells)
    return y, (x.shape, pool, strides, pads)


def avgpool2d_backward(dy, cache):
    """Each cell of a window receives the window's gradient divided by its cell count
    (the local derivative of a mean)."""
    x_shape, pool, strides, pads = cache
    n, height, width, c = x_shape
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for oh in range(dy.shape[1]):
        for ow in range(dy.shape[2]):
            cells = _window_cells(oh, ow, pool, strides, pads, (height, width))
            for h, w in cells:
                dx[:, h, w, :] += dy[:, oh, ow, :] / len(cells)
    return dx
