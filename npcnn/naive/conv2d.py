"""Convolution with explicit loops: slide the kernel, multiply, sum.

Compare with ``npcnn/ops/conv2d.py``, which computes the same numbers with one
matrix product (tests check they agree).
"""

from __future__ import annotations

import numpy as np

from ..ops._checks import as_pair, normalize_padding
from ..ops.conv2d import conv2d_forward as _fast_forward
from ..ops.padding import padding_amounts
from ..ops.windows import pad_nhwc


def conv2d_forward(x, w, b, strides=1, padding="same"):
    """y[n, oh, ow, co] = b[co] + sum_{i, j, ci} x_pad[n, oh*sh+i, ow*sw+j, ci] * w[i, j, ci, co].

    x (N, H, W, Cin), w (kh, kw, Cin, Cout), b (Cout,) -> y (N, H_out, W_out, Cout).
    """
    # Reuse the fast version's argument checks and output shape, then compute by hand.
    y_shape = _fast_forward(x, w, b, strides, padding)[0].shape
    strides, padding = as_pair(strides, "strides"), normalize_padding(padding)
    kh, kw, cin, cout = w.shape
    sh, sw = strides
    pads = padding_amounts(x.shape[1:3], (kh, kw), strides, padding)
    x_pad = pad_nhwc(x, pads)  # zeros around the image
    n, out_h, out_w = x.shape[0], y_shape[1], y_shape[2]

    y = np.zeros((n, out_h, out_w, cout), dtype=x.dtype)
    for img in range(n):
        for oh in range(out_h):
            for ow in range(out_w):
                # the window of the input under the kernel at this output position
                window = x_pad[img, oh * sh : oh * sh + kh, ow * sw : ow * sw + kw, :]
                for co in range(cout):
                    # multiply elementwise with kernel `co` and sum: one output number
                    y[img, oh, ow, co] = np.sum(window * w[:, :, :, co]) + b[co]
    return y, (x, w, strides, pads)


def conv2d_backward(dy, cache):
    """Each output number y[n, oh, ow, co] = sum(window * w[..., co]) + b[co], so

    dL/dwindow += dy[n, oh, ow, co] * w[..., co]   (local derivative: the kernel)
    dL/dw[..., co] += dy[n, oh, ow, co] * window    (local derivative: the window)
    dL/db[co] += dy[n, oh, ow, co]                  (local derivative: 1)
    """
    x, w, strides, pads = cache
    kh, kw, cin, cout = w.shape
    sh, sw = strides
    x_pad = pad_nhwc(x, pads)
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.zeros(cout, dtype=w.dtype)
    n, out_h, out_w, _ = dy.shape
    for img in range(n):
        for oh in range(out_h):
            for ow in range(out_w):
                rows = slice(oh * sh, oh * sh + kh)
                cols = slice(ow * sw, ow * sw + kw)
                for co in range(cout):
                    g = dy[img, oh, ow, co]
                    dx_pad[img, rows, cols, :] += g * w[:, :, :, co]
                    dw[:, :, :, co] += g * x_pad[img, rows, cols, :]
                    db[co] += g
    (top, _), (left, _) = pads
    dx = dx_pad[:, top : top + x.shape[1], left : left + x.shape[2], :]
    return dx, dw, db
