"""Convolution with explicit loops: slide the kernel, multiply, sum.

Compare with ``npcnn/ops/conv2d.py``, which computes the same numbers with one
matrix product (tests check they agree).
"""

from __future__ import annotations

import numpy as np

from ..validation import check_conv2d_args
from ._geometry import window_geometry


def conv2d_forward(x, w, b, strides=1, padding="same"):
    """y[n, oh, ow, co] = b[co] + sum_{i, j, ci} x_pad[n, oh*sh+i, ow*sw+j, ci] * w[i, j, ci, co].

    x (N, H, W, Cin), w (kh, kw, Cin, Cout), b (Cout,) -> y (N, H_out, W_out, Cout).
    """
    check_conv2d_args(x, w, b)
    _, (sh, sw), pads, (out_h, out_w) = window_geometry(x, w.shape[:2], strides, padding)
    kh, kw, cin, cout = w.shape
    (top, bottom), (left, right) = pads
    x_pad = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))  # zeros around the image
    n = x.shape[0]

    y = np.zeros((n, out_h, out_w, cout), dtype=x.dtype)
    for img in range(n):
        for oh in range(out_h):
            for ow in range(out_w):
                # the window of the input under the kernel at this output position
                window = x_pad[img, oh * sh : oh * sh + kh, ow * sw : ow * sw + kw, :]
                for co in range(cout):
                    # multiply elementwise with kernel `co` and sum: one output number
                    y[img, oh, ow, co] = np.sum(window * w[:, :, :, co]) + b[co]
    return y, (x, w, (sh, sw), pads)


def conv2d_backward(dy, cache):
    """Each output number y[n, oh, ow, co] = sum(window * w[..., co]) + b[co], so

    dL/dwindow += dy[n, oh, ow, co] * w[..., co]   (local derivative: the kernel)
    dL/dw[..., co] += dy[n, oh, ow, co] * window    (local derivative: the window)
    dL/db[co] += dy[n, oh, ow, co]                  (local derivative: 1)
    """
    x, w, (sh, sw), pads = cache
    kh, kw, cin, cout = w.shape
    (top, bottom), (left, right) = pads
    x_pad = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.zeros(cout, dtype=w.dtype)
    n, out_h, out_w, _ = dy.shape
    for img in range(n):
        for oh in range(out_h):
            for ow in range(out_w):
                rows = slice(oh * sh, oh * sh + kh)
                columns = slice(ow * sw, ow * sw + kw)
                for co in range(cout):
                    g = dy[img, oh, ow, co]
                    dx_pad[img, rows, columns, :] += g * w[:, :, :, co]
                    dw[:, :, :, co] += g * x_pad[img, rows, columns, :]
                    db[co] += g
    dx = dx_pad[:, top : top + x.shape[1], left : left + x.shape[2], :]
    return dx, dw, db
