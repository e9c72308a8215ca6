"""2-D convolution (TensorFlow's ``tf.nn.conv2d``): forward and backward.

Layout: activations NHWC, kernels HWIO, cross-correlation (the kernel is not
flipped). For an input ``x`` (N, H, W, Cin), kernel ``w`` (kh, kw, Cin, Cout)
and bias ``b`` (Cout,)::

    y[n, oh, ow, co] = b[co] + sum_{i, j, ci} x_pad[n, oh*sh + i, ow*sw + j, ci] * w[i, j, ci, co]

How this file computes it (the loop version a learner reads first is
``npcnn/naive/conv2d.py``; tests check both agree):

- forward: gather every window into a row ("im2col"), so the whole convolution
  becomes one matrix product ``cols @ W``;
- backward: ``dW`` is the same product transposed (``cols.T @ dy``), and the
  gradient of the windows is one product too, ``dcols = dy @ W.T``; "col2im"
  then adds each window's gradient back onto the input cells it was copied
  from, tap by tap: tap (i, j) of every window came from
  ``x_pad[.., oh*sh+i, ow*sw+j, :]``.
"""

from __future__ import annotations

from typing import NamedTuple

from ..backend import get_array_module
from ..validation import as_pair, check_bool, check_conv2d_args, normalize_padding
from .padding import output_hw, padding_amounts
from .windows import pad_nhwc, tap_view, window_view


class Conv2DCache(NamedTuple):
    """What the backward pass needs from the forward pass."""

    x_shape: tuple  # (N, H, W, Cin)
    w: object  # the kernel (kh, kw, Cin, Cout)
    cols: object  # the im2col matrix (N*H_out*W_out, kh*kw*Cin)
    strides: tuple  # (sh, sw)
    pads: tuple  # ((top, bottom), (left, right))
    out_hw: tuple  # (H_out, W_out)


def im2col(x_pad, kernel_hw, strides, out_hw):
    """Gather every kernel window of ``x_pad`` (N, Hp, Wp, C) into one row.

    Returns cols (N*H_out*W_out, kh*kw*C): the row of output position
    (n, oh, ow) holds its window in (i, j, c) order -- the order of an HWIO
    kernel reshaped to (kh*kw*C, Cout), so ``cols @ w.reshape(-1, Cout)`` is
    the convolution. ``window_view`` shows the windows in this layout without
    copying; the reshape makes the copy.
    """
    (kh, kw), (out_h, out_w) = kernel_hw, out_hw
    n, c = x_pad.shape[0], x_pad.shape[3]
    windows = window_view(x_pad, kernel_hw, strides, out_hw)  # (N, Ho, Wo, kh, kw, C), a view
    return windows.reshape(n * out_h * out_w, kh * kw * c)


def col2im(dcols, x_pad_shape, kernel_hw, strides, out_hw):
    """The adjoint of im2col: add each window's gradient back onto its input cells.

    Args:
        dcols: (N, H_out, W_out, kh, kw, C), the gradient of every window.
    Returns:
        dx_pad (N, Hp, Wp, C); a cell covered by several windows collects the
        sum of their gradients.
    """
    xp = get_array_module(dcols)
    kh, kw = kernel_hw
    dx_pad = xp.zeros(x_pad_shape, dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            # tap (i, j) of each window was copied from these cells: add its gradient back
            view = tap_view(dx_pad, i, j, strides, out_hw)  # a view: += writes into dx_pad
            view += dcols[:, :, :, i, j, :]
    return dx_pad


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
    check_conv2d_args(x, w, b)
    strides, padding = as_pair(strides, "strides"), normalize_padding(padding)
    kh, kw, cin, cout = w.shape
    n, height, width, _ = x.shape
    pads = padding_amounts((height, width), (kh, kw), strides, padding)
    out_hw = output_hw((height, width), (kh, kw), strides, padding)

    x_pad = pad_nhwc(x, pads)  # zeros around the image
    cols = im2col(x_pad, (kh, kw), strides, out_hw)  # one window per row
    y = cols @ w.reshape(kh * kw * cin, cout) + b  # every window times every kernel, plus b
    y = y.reshape(n, *out_hw, cout)
    return y, Conv2DCache(x.shape, w, cols, strides, pads, out_hw)


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
    need_dx = check_bool(need_dx, "need_dx")
    kh, kw, cin, cout = cache.w.shape
    n, height, width, _ = cache.x_shape
    expected = (n, *cache.out_hw, cout)
    if tuple(dy.shape) != expected:
        raise ValueError(f"dy must have the output's shape {expected}, got {tuple(dy.shape)}")
    dy2 = dy.reshape(-1, cout)  # one row per output position, like cols

    db = dy2.sum(axis=0)  # each b[co] was added to every output position
    dw = (cache.cols.T @ dy2).reshape(cache.w.shape)  # local derivative of y wrt W is cols
    if not need_dx:
        return None, dw, db

    # local derivative of y wrt cols is W: the gradient of every window, (i, j, c) order
    dcols = (dy2 @ cache.w.reshape(kh * kw * cin, cout).T).reshape(n, *cache.out_hw, kh, kw, cin)
    (top, bottom), (left, right) = cache.pads
    x_pad_shape = (n, height + top + bottom, width + left + right, cin)
    dx_pad = col2im(dcols, x_pad_shape, (kh, kw), cache.strides, cache.out_hw)
    dx = dx_pad[:, top : top + height, left : left + width, :]  # padding cells get no gradient
    return dx, dw, db
