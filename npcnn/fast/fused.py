"""Conv2D(relu) followed by MaxPool2D as one block, reordered: conv -> pool -> bias -> ReLU.

TensorFlow (and ``npcnn.ops``) compute ``maxpool(relu(conv(x) + b))``. Both the
bias add and ReLU are monotone non-decreasing per channel -- and so is the
*rounded* float add, ``fl(z + b)`` -- so they commute with the max::

    max_k relu(fl(z_k + b)) == relu(fl(max_k z_k + b))      (bit for bit)

so the block pools the raw convolution first and adds the bias and applies
ReLU on a quarter of the data (2x2 pooling). Same numbers, less work.

Backward must route the gradient exactly as TensorFlow does: to the *first*
cell (row-major within the window) whose ``relu(fl(z + b))`` equals the pooled
output ``y``, then through ReLU's gradient (0 where ``y`` is 0). Two cases:

- ``y > 0``: then ``relu(fl(z_k + b)) == y`` exactly when ``fl(z_k + b) == y``,
  so the winner is the first tap with ``z_k + b == y``. (Comparing the raw
  ``z_k`` is *not* enough: rounding can make ``fl(z_1 + b) == fl(z_2 + b)``
  with ``z_1 < z_2``, and TF then picks the earlier cell.)
- ``y == 0`` (every cell of the window <= 0 after the bias): TF routes the
  gradient to some cell whose ReLU output is 0, and ReLU's gradient there is 0,
  so the cell gets nothing. We zero the upstream gradient of those windows
  first; which cell "wins" no longer matters.

The gradient wrt the convolution's output is then the same array the
composition builds, and ``convolve_backward`` (``conv2d.py``) turns it into
dx, dw, db. A Conv2D layer passes its ``workspace`` (a dict): the block then
reuses the layer's im2col and dcols buffers from step to step.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..ops.maxpool2d import pool_geometry
from ..ops.windows import tap_view
from ..validation import check_bool, check_conv2d_args
from .conv2d import convolve, convolve_backward
from .maxpool2d import window_max
from .padding import pad_nhwc
from .threads import split_batch
from .workspace import reusable, zeroed


def conv2d_relu_maxpool2d_forward(
    x,
    w,
    b,
    strides=1,
    padding="same",
    pool_size=2,
    pool_strides=None,
    pool_padding="valid",
    workspace=None,
):
    """``maxpool2d(relu(conv2d(x, w, b)))`` with the same numbers, computed as
    ``relu(maxpool2d(conv2d(x, w)) + b)``.

    Returns y (N, H_pool, W_pool, Cout) and the cache for
    :func:`conv2d_relu_maxpool2d_backward`. ``workspace``: a dict of buffers
    to reuse, as in ``convolve`` (``conv2d.py``; a Conv2D layer passes its own).
    """
    check_conv2d_args(x, w, b)
    z, conv_cache = convolve(x, w, None, strides, padding, workspace)  # no bias yet
    xp = get_array_module(z)
    pool, pool_strides, pads, out_hw = pool_geometry(z, pool_size, pool_strides, pool_padding)
    z_pad = pad_nhwc(z, pads, value=-xp.inf)  # -inf (+ b) never wins the max
    taps = [(i, j) for i in range(pool[0]) for j in range(pool[1])]  # row-major
    y = window_max(z_pad, taps, pool_strides, out_hw)  # pool the raw convolution ...
    y += b  # ... then the bias and ReLU, on a quarter of the data
    xp.maximum(y, 0, out=y)
    cache = (conv_cache, z_pad, b, y, pads, pool_strides, out_hw, taps, workspace)
    return y, cache


def conv2d_relu_maxpool2d_backward(dy, cache, need_dx=True):
    """Gradients of the block: dx (or None), dw, db -- TensorFlow's, bit for bit.

    Each window's gradient ``g`` (0 where ReLU's output is 0) goes to the first
    tap, row-major, where ``fl(z + b)`` equals the pooled output. Per tap, in
    passes without branches: ``wins`` = this tap equals the output and no earlier
    tap did; then the tap's cells get ``g`` where ``wins``, +0.0 elsewhere. That
    selection is done on the bits (``g & 0xFF..FF`` or ``g & 0``), which keeps
    every value, inf and NaN included, and is 3-5x faster than ``where(wins, g, 0)``.
    The batch is split over threads (``threads.py``): each image's routing is its own.
    """
    need_dx = check_bool(need_dx, "need_dx")
    conv_cache, z_pad, b, y, pads, strides, out_hw, taps, workspace = cache
    if tuple(dy.shape) != tuple(y.shape):
        raise ValueError(f"dy must have the output's shape {tuple(y.shape)}, got {tuple(dy.shape)}")
    xp = get_array_module(dy)
    pool = (taps[-1][0] + 1, taps[-1][1] + 1)
    if tiles(z_pad, pool, strides, out_hw) and xp is np:
        dz_pad = route_tiled(dy, y, z_pad, b, pool, taps, workspace)
        return convolve_backward(crop(dz_pad, pads), conv_cache, need_dx, workspace)
    dz_pad = zeroed(workspace, "dz_pad", z_pad.shape, dy.dtype, xp)
    bits = np.dtype(f"u{dy.dtype.itemsize}")  # an unsigned int as wide as the float

    def route(lo, hi):  # images lo..hi-1
        y_part, z_part, dz_part = y[lo:hi], z_pad[lo:hi], dz_pad[lo:hi]
        g = relu_gradient(y_part, dy[lo:hi], xp)  # ReLU's, taken on the pooled output
        z_plus_b, share = xp.empty_like(g), xp.empty_like(g)
        wins, unrouted = xp.empty(g.shape, dtype=bool), xp.ones(g.shape, dtype=bool)
        mask = xp.empty(g.shape, dtype=bits)
        for i, j in taps:  # row-major: the first maximum wins, as in TF
            xp.add(tap_view(z_part, i, j, strides, out_hw), b, out=z_plus_b)  # fl(z + b), this tap
            xp.equal(z_plus_b, y_part, out=wins)  # this tap holds the maximum ...
            xp.logical_and(wins, unrouted, out=wins)  # ... and no earlier tap did
            xp.greater(unrouted, wins, out=unrouted)  # unrouted &= ~wins
            xp.subtract(0, wins.view(xp.uint8), out=mask, dtype=bits)  # all ones where wins
            xp.bitwise_and(g.view(bits), mask, out=share.view(bits))  # g where wins, else +0.0
            view = tap_view(dz_part, i, j, strides, out_hw)
            view += share

    split_batch(route, y.shape[0], z_pad.size, xp)
    return convolve_backward(crop(dz_pad, pads), conv_cache, need_dx, workspace)


def relu_gradient(y, dy, xp):
    """``where(y > 0, dy, 0)``: dy where ReLU's output y is positive, +0.0 elsewhere,
    selected on the bits as the routing selects (NumPy's three-argument ``where``
    took 13x longer on conv1's 157K gradients)."""
    if xp is not np:
        return xp.where(y > 0, dy, 0)
    bits = np.dtype(f"u{dy.dtype.itemsize}")
    mask = np.subtract(0, np.greater(y, 0).view(np.uint8), dtype=bits)  # all ones where y > 0
    return np.bitwise_and(dy.view(bits), mask, out=mask).view(dy.dtype)


def crop(dz_pad, pads):
    """dz_pad without the pooling's padding cells: the gradient of z."""
    (top, bottom), (left, right) = pads
    h, w = dz_pad.shape[1] - top - bottom, dz_pad.shape[2] - left - right
    return dz_pad[:, top : top + h, left : left + w, :]


def tiles(z_pad, pool, strides, out_hw) -> bool:
    """Whether the pooling windows tile ``z_pad`` exactly: strides equal to the
    window, and every cell in a window (the common 2x2, stride 2, even sizes)."""
    return tuple(strides) == pool and z_pad.shape[1:3] == (out_hw[0] * pool[0], out_hw[1] * pool[1])


def taps_as_axes(a, pool):
    """``a`` (N, H_out*ph, W_out*pw, C) as the view (N, H_out, ph, W_out, pw, C):
    ``[n, oh, i, ow, j, c]`` is tap (i, j) of window (oh, ow)."""
    n, height, width, c = a.shape
    (ph, pw), (s_n, s_h, s_w, s_c) = pool, a.strides
    shape = (n, height // ph, ph, width // pw, pw, c)
    return np.lib.stride_tricks.as_strided(a, shape, (s_n, s_h * ph, s_h, s_w * pw, s_w, s_c))


def route_tiled(dy, y, z_pad, b, pool, taps, workspace):
    """The routing of ``conv2d_relu_maxpool2d_backward`` when the windows tile z_pad
    (:func:`tiles`): the same choice, with every tap of every window at once (the
    taps as axes, :func:`taps_as_axes`), in fewer passes; each cell of dz_pad is
    written once, so it needs no zeroing. ``taps``: the window's, row-major.
    Returns dz_pad."""
    shape6 = taps_as_axes(z_pad, pool).shape
    dz_pad = reusable(workspace, "dz_pad", z_pad.shape, dy.dtype, np)
    scratch = reusable(workspace, "route", shape6, dy.dtype, np)
    wins = reusable(workspace, "route_wins", shape6, bool, np)
    bits = np.dtype(f"u{dy.dtype.itemsize}")  # an unsigned int as wide as the float

    def route(lo, hi):  # images lo..hi-1
        g = relu_gradient(y[lo:hi], dy[lo:hi], np)  # ReLU's, taken on the pooled output
        z6, w6, s6 = taps_as_axes(z_pad[lo:hi], pool), wins[lo:hi], scratch[lo:hi]
        np.add(z6, b, out=s6)  # fl(z + b), every tap
        np.equal(s6, y[lo:hi, :, None, :, None, :], out=w6)  # the taps holding the maximum
        taken = w6[:, :, 0, :, 0].copy()  # windows whose first tap won
        for k, (i, j) in enumerate(taps[1:], 2):  # row-major: the first maximum wins, as in TF
            np.greater(w6[:, :, i, :, j], taken, out=w6[:, :, i, :, j])  # ... if no earlier did
            if k < len(taps):
                np.logical_or(taken, w6[:, :, i, :, j], out=taken)
        mask = s6.view(bits)
        np.subtract(0, w6.view(np.uint8), out=mask, dtype=bits)  # all ones where a tap wins
        g6 = g.view(bits)[:, :, None, :, None, :]
        dz6 = taps_as_axes(dz_pad[lo:hi], pool).view(bits)
        np.bitwise_and(g6, mask, out=dz6)  # g where the tap wins, else +0.0: every cell

    split_batch(route, y.shape[0], z_pad.size, np)
    return dz_pad
