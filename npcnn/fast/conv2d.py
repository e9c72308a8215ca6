"""2-D convolution, fast: the math of ``npcnn/ops/conv2d.py`` (read that first),
organised for speed.

- The batch is convolved ``SLAB`` images at a time, so the im2col matrix stays
  small (it is kh*kw times the input it copies: 630 MB for conv2 on 1000 MNIST
  images); every slab copies its windows into the same reused buffer, and each
  slab's output is still in the CPU cache when ``b`` is added in place.
- ``matmul(..., out=)`` writes each slab's product straight into its rows of y.
- ``convolve(..., b=None)`` leaves the bias out, for the fused
  conv -> pool -> bias -> ReLU block (``fused.py``).
- The backward pass rebuilds the im2col matrix when the forward pass used
  several slabs, and shares col2im with the readable tier.

One big matrix product per gradient rather than one small product per tap
(kh*kw of them): every BLAS call that runs on several threads waits for all
of them, and on a busy machine 25 small calls are many times slower.
"""

from __future__ import annotations

from ..backend import get_array_module
from ..ops._checks import as_pair, check_conv2d_args, normalize_padding
from ..ops.conv2d import col2im
from ..ops.padding import output_hw, padding_amounts
from ..ops.windows import pad_nhwc, window_view

SLAB = 64  # images per im2col matrix in conv2d_forward (speed only)


def im2col(x_pad, kernel_hw, strides, out_hw, out=None):
    """Gather every kernel window of ``x_pad`` into one row.

    Args:
        x_pad: padded input (N, Hp, Wp, C).
        out: optional buffer with at least N*H_out*W_out rows of kh*kw*C
            columns; the rows are written into it (and a view of them is
            returned) instead of into a new array.
    Returns:
        cols (N*H_out*W_out, kh*kw*C), the row of output position (n, oh, ow)
        holding its window in (i, j, c) order -- the order of an HWIO kernel
        reshaped to (kh*kw*C, Cout), so ``cols @ w.reshape(-1, Cout)`` is the
        convolution.

    ``window_view`` already shows the windows in this layout without copying;
    the reshape makes the one copy (a loop over the kh*kw taps, copying
    ``tap_view`` slices, gives the same matrix 1-3x slower).
    """
    (kh, kw), (out_h, out_w) = kernel_hw, out_hw
    n, c = x_pad.shape[0], x_pad.shape[3]
    windows = window_view(x_pad, kernel_hw, strides, out_hw)  # (N, Ho, Wo, kh, kw, C), a view
    if out is None:
        return windows.reshape(n * out_h * out_w, kh * kw * c)
    cols = out[: n * out_h * out_w]
    cols.reshape(windows.shape)[...] = windows  # the same copy, into the buffer
    return cols


def conv2d_forward(x, w, b, strides=1, padding="same"):
    """``npcnn.ops.conv2d_forward``: y (N, H_out, W_out, Cout) and the cache."""
    check_conv2d_args(x, w, b)
    return convolve(x, w, b, strides, padding)


def convolve(x, w, b, strides, padding):
    """The work of :func:`conv2d_forward` (arguments already checked); ``b=None``
    skips the bias, for the fused block (``fused.py``) that adds it after pooling."""
    strides, padding = as_pair(strides, "strides"), normalize_padding(padding)
    kh, kw, cin, cout = w.shape
    n, height, width, _ = x.shape
    pads = padding_amounts((height, width), (kh, kw), strides, padding)
    out_hw = output_hw((height, width), (kh, kw), strides, padding)

    x_pad = pad_nhwc(x, pads)
    weights = w.reshape(kh * kw * cin, cout)
    positions = out_hw[0] * out_hw[1]  # output positions per image
    xp = get_array_module(x)
    y = xp.empty((n * positions, cout), dtype=x.dtype)
    buffer = xp.empty((min(n, SLAB) * positions, kh * kw * cin), dtype=x.dtype)  # one slab's cols
    cols = buffer  # (an empty batch has no slab: its cols is this empty matrix)
    # Speed only: the batch is convolved SLAB images at a time, so the im2col
    # matrix stays small (it is kh*kw times the input it copies: 630 MB for conv2
    # on 1000 MNIST images), every slab reuses the same buffer for it, and each
    # slab's output is still in cache when b is added; every slab is the same math.
    for first in range(0, n, SLAB):
        cols = im2col(x_pad[first : first + SLAB], (kh, kw), strides, out_hw, out=buffer)
        y_slab = y[first * positions : (first + SLAB) * positions]  # a view into y
        xp.matmul(cols, weights, out=y_slab)  # y = sum over the window of x*w ...
        if b is not None:
            y_slab += b  # ... plus b
    y = y.reshape(n, *out_hw, cout)
    if n > SLAB:
        cols = None  # not the whole batch's matrix: conv2d_backward rebuilds it
    cache = (x.shape, w, x_pad, cols, strides, pads, out_hw)
    return y, cache


def conv2d_backward(dy, cache, need_dx=True):
    """``npcnn.ops.conv2d_backward``: dx (or None when ``need_dx`` is False), dw, db.

    The same three formulas (dW = cols.T @ dy, db = the sum of dy, dcols = dy @ W.T
    scattered back by col2im); the im2col matrix is rebuilt when the forward pass
    used several slabs and so kept none."""
    x_shape, w, x_pad, cols, strides, pads, out_hw = cache
    kh, kw, cin, cout = w.shape
    n, height, width, _ = x_shape
    expected = (n, *out_hw, cout)
    if tuple(dy.shape) != expected:
        raise ValueError(f"dy must have the output's shape {expected}, got {tuple(dy.shape)}")
    if cols is None:  # the forward pass ran in several slabs
        cols = im2col(x_pad, (kh, kw), strides, out_hw)
    dy2 = dy.reshape(n * out_hw[0] * out_hw[1], cout)

    db = dy2.sum(axis=0)  # each b[co] was added to every output position
    dw = (cols.T @ dy2).reshape(w.shape)  # local derivative of y wrt W is cols
    if not need_dx:
        return None, dw, db

    # local derivative of y wrt cols is W: the gradient of every window, (i, j, c) order
    dcols = (dy2 @ w.reshape(kh * kw * cin, cout).T).reshape(n, *out_hw, kh, kw, cin)
    (top, _), (left, _) = pads
    dx_pad = col2im(dcols, x_pad.shape, (kh, kw), strides, out_hw)  # the readable one
    dx = dx_pad[:, top : top + height, left : left + width, :]  # padding cells get no gradient
    return dx, dw, db
