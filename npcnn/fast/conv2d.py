"""2-D convolution (TensorFlow's ``tf.nn.conv2d``): forward and backward.

Layout: activations NHWC, kernels HWIO, cross-correlation (the kernel is not
flipped). For an input ``x`` (N, H, W, Cin), kernel ``w`` (kh, kw, Cin, Cout)
and bias ``b`` (Cout,)::

    y[n, oh, ow, co] = b[co] + sum_{i, j, ci} x_pad[n, oh*sh + i, ow*sw + j, ci] * w[i, j, ci, co]

How this file computes it (the loop version a learner reads first is
``npcnn/naive/conv2d.py``; tests check both agree):

- forward: gather every window into a row ("im2col"), so the whole convolution
  becomes one matrix product ``cols @ w``, which BLAS runs at full speed;
- backward: ``dw`` is the same product transposed (``cols.T @ dy``), and the
  gradient of the windows is one product too, ``dcols = dy @ w.T``; "col2im"
  then adds each window's gradient back onto the input cells it was copied
  from, tap by tap: tap (i, j) of every window came from
  ``x_pad[.., oh*sh+i, ow*sw+j, :]``.

Speed: one big matrix product per gradient rather than one small product per
tap (kh*kw of them), because every BLAS call that runs on several threads waits
for all of them; on a busy machine 25 small calls are many times slower.
"""

from __future__ import annotations

from ..backend import get_array_module
from ..ops._checks import as_pair, check_float, check_rank, check_same_dtype, normalize_padding
from ..ops.padding import output_hw, padding_amounts
from ..ops.windows import pad_nhwc, tap_view, window_view

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
    """Convolve ``x`` with ``w`` and add ``b``.

    Args:
        x: input (N, H, W, Cin), float32 or float64.
        w: kernel (kh, kw, Cin, Cout), same dtype as ``x``.
        b: bias (Cout,), same dtype.
        strides: int or (sh, sw).
        padding: 'same' (output ceil(H/sh) x ceil(W/sw), zeros split with the
            odd one at the bottom/right) or 'valid' (no padding).
    Returns:
        y (N, H_out, W_out, Cout) and the cache for :func:`conv2d_backward`.
    """
    check_rank(x, 4, "x", "N, H, W, Cin")
    check_rank(w, 4, "w", "kh, kw, Cin, Cout")
    check_rank(b, 1, "b", "Cout")
    check_float(x, "x")
    check_same_dtype(x, w, "x", "w")
    check_same_dtype(x, b, "x", "b")
    if w.shape[2] != x.shape[3]:
        raise ValueError(
            f"channel mismatch: x has {x.shape[3]} input channels (shape {tuple(x.shape)}) "
            f"but w expects {w.shape[2]} (shape {tuple(w.shape)})"
        )
    if b.shape[0] != w.shape[3]:
        raise ValueError(
            f"b must have shape ({w.shape[3]},) to match w {tuple(w.shape)}, got {tuple(b.shape)}"
        )
    return convolve(x, w, b, strides, padding)


def convolve(x, w, b, strides, padding):
    """The work of :func:`conv2d_forward` (arguments already checked); ``b=None``
    skips the bias, for the fused block (``fused.py``) that adds it after pooling."""
    strides, padding = as_pair(strides, "strides"), normalize_padding(padding)
    kh, kw, cin, cout = w.shape
    n, h, wd, _ = x.shape
    pads = padding_amounts((h, wd), (kh, kw), strides, padding)
    out_hw = output_hw((h, wd), (kh, kw), strides, padding)

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
    """Gradients of a convolution.

    Args:
        dy: upstream gradient dL/dy (N, H_out, W_out, Cout).
        need_dx: False skips dx (returned as None): the network's first layer
            needs no gradient for its input, the images.
    Returns:
        dx (N, H, W, Cin), dw (kh, kw, Cin, Cout), db (Cout,).

    Since y = cols @ W + b (W = w reshaped to (kh*kw*Cin, Cout)):
    dW = cols.T @ dy, db = sum of dy over (n, oh, ow), and dcols = dy @ W.T
    scattered back to the input cells each column came from.
    """
    x_shape, w, x_pad, cols, strides, pads, out_hw = cache
    xp = get_array_module(dy)
    kh, kw, cin, cout = w.shape
    n, h, wd, _ = x_shape
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
    (top, bottom), (left, right) = pads
    dx_pad = xp.zeros((n, h + top + bottom, wd + left + right, cin), dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            # col2im: tap (i, j) of each window was copied from these input cells,
            # so its gradient adds onto them (windows overlap: cells collect several)
            view = tap_view(dx_pad, i, j, strides, out_hw)
            view += dcols[:, :, :, i, j, :]
    dx = dx_pad[:, top : top + h, left : left + wd, :]  # padding cells get no gradient
    return dx, dw, db
