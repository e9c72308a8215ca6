"""2-D convolution, fast: the math of ``npcnn/ops/conv2d.py`` (read that first),
organised for speed.

- A batch of up to ``KEEP_COLS`` images (a training batch) is one im2col
  matrix and one matrix product; the matrix is kept for the backward pass.
- A bigger batch (inference) is convolved ``SLAB`` images at a time, every slab
  copying its windows into the same small reused buffer (the whole matrix is
  kh*kw times the input: 630 MB for conv2 on 1000 MNIST images); a slab's rows
  are multiplied while they are still in the CPU cache, and its output is still
  there when ``b`` is added in place. A backward pass rebuilds the matrix.
- ``matmul(..., out=)`` writes each slab's product straight into its rows of y.
- ``convolve(..., b=None)`` leaves the bias out, for the fused
  conv -> pool -> bias -> ReLU block (``fused.py``).
- col2im adds a whole (kw, C) block of each window per call instead of one
  tap's C values (the same sums in the same order), and splits the batch over
  threads (``threads.py``); so does im2col's copy.
- ``convolve``/``convolve_backward`` (what the fused block calls) take a
  ``workspace`` dict whose buffers they reuse (:func:`reusable`), so a layer
  does not get its big matrices from fresh OS pages every step.

One big matrix product per gradient rather than one small product per tap
(kh*kw of them): every BLAS call that runs on several threads waits for all
of them, and on a busy machine 25 small calls are many times slower.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..ops import conv2d as readable
from ..ops.padding import output_hw, padding_amounts
from ..ops.windows import window_view
from ..validation import as_pair, check_bool, check_conv2d_args, normalize_padding
from .padding import pad_nhwc
from .reduce import column_sums
from .rowwise import GEMM_DTYPES, RowwiseCache, rowwise_backward, rowwise_forward
from .threads import split_batch
from .workspace import reusable

KEEP_COLS = 64  # batches up to this size are one matrix, kept for the backward pass
SLAB = 32  # images per matrix product in bigger batches (speed only)
ROWWISE_MIN_K = 64  # kw*Cin from which the row-wise convolution is used (speed only)


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
    assigning it to the matrix makes the one copy (a loop over the kh*kw taps,
    copying ``tap_view`` slices, gives the same matrix 1-3x slower), split over
    the batch across threads.
    """
    (kh, kw), (out_h, out_w) = kernel_hw, out_hw
    n, c = x_pad.shape[0], x_pad.shape[3]
    xp = get_array_module(x_pad)
    if c == 1 and xp is np and (out is None or out.flags.c_contiguous):
        return _im2col_one_channel(x_pad, kernel_hw, strides, out_hw, out)
    windows = window_view(x_pad, kernel_hw, strides, out_hw)  # (N, Ho, Wo, kh, kw, C), a view
    if out is None:
        out = xp.empty((n * out_h * out_w, kh * kw * c), dtype=x_pad.dtype)
    cols = out[: n * out_h * out_w]
    blocks = cols.reshape(windows.shape)

    def copy(lo, hi):  # images lo..hi-1: the same copy, into the buffer
        blocks[lo:hi] = windows[lo:hi]

    split_batch(copy, n, cols.size, xp)
    return cols


def _im2col_one_channel(x_pad, kernel_hw, strides, out_hw, out=None):
    """:func:`im2col` for one input channel (conv1 on grayscale images), built
    transposed: row ``(i, j)`` of ``cols.T`` is tap (i, j) of every window, one
    strided copy of ``x_pad`` whose runs are whole output rows (W_out values),
    where the general copy's runs are a window row (kw values). conv1 on 25 images:
    0.10 ms instead of 0.34 on one core of the AMD EPYC. Returns ``cols.T.T``, an
    F-ordered view of the same matrix: BLAS reads either order. The forward
    product with it gave the C-ordered matrix's bits (OpenBLAS's SkylakeX,
    Haswell, Zen, SandyBridge and Prescott kernels); the weight gradient
    ``cols.T @ dy`` can differ in the last bits where OpenBLAS's SkylakeX kernels
    multiply small float32 matrices of the two layouts with different code
    (within the rounding bound; the fast-vs-ops tests hold them to it).

    All the taps are copied by one NumPy call, not one call per tap: two threads
    each building 32 images' matrix took 0.30 ms a call with 25 calls (each
    waiting for Python's GIL between its short copies), 0.13 ms with one."""
    (kh, kw), (out_h, out_w) = kernel_hw, out_hw
    n = x_pad.shape[0]
    size = kh * kw * n * out_h * out_w
    flat = np.empty(size, dtype=x_pad.dtype) if out is None else out.reshape(-1)[:size]
    cols_t = flat.reshape(kh, kw, n, out_h, out_w)  # [i, j, n, oh, ow]

    def copy(lo, hi):  # images lo..hi-1, every tap at once
        windows = window_view(x_pad[lo:hi], kernel_hw, strides, out_hw)[..., 0]  # (n, oh, ow, i, j)
        cols_t[:, :, lo:hi] = windows.transpose(3, 4, 0, 1, 2)

    split_batch(copy, n, size, np)
    return cols_t.reshape(kh * kw, n * out_h * out_w).T


def col2im(dcols, x_pad_shape, kernel_hw, strides, out_hw):
    """``npcnn.ops.conv2d.col2im`` (read that first): the same sums, faster.

    The readable loop adds one tap (i, j) of every window per call: C values
    (32 for conv2) per output position, so NumPy's inner loop is 32 elements
    long and its per-loop overhead dominates. Here, for a kernel row i and an
    output column ow, the taps j = 0..kw-1 of those windows are kw*C
    contiguous values in ``dcols`` and land on kw*C contiguous cells of
    ``dx_pad`` (columns ow*sw .. ow*sw+kw-1), so one call adds them all:
    5x longer inner loops, 25 -> 5x14 calls for conv2.

    Same numbers, bit for bit: a cell (h, w) receives its terms in the readable
    order, by i and then by j. Within a kernel row, j = w - ow*sw grows as ow
    falls, hence the reversed loop over ow. No call writes a cell twice (each
    output row oh of the block lands on its own input row). The batch is split
    over threads: each image's dx is its own.
    """
    xp = get_array_module(dcols)
    if xp is not np:
        return readable.col2im(dcols, x_pad_shape, kernel_hw, strides, out_hw)
    (kh, kw), (sh, sw), (out_h, out_w) = kernel_hw, strides, out_hw
    dx_pad = np.zeros(x_pad_shape, dtype=dcols.dtype)

    def scatter(lo, hi):  # images lo..hi-1
        for i in range(kh):
            rows = slice(i, i + sh * (out_h - 1) + 1, sh)  # input rows under kernel row i
            for ow in reversed(range(out_w)):
                # taps (i, 0..kw-1) of the windows in output column ow, all rows oh
                block = dx_pad[lo:hi, rows, ow * sw : ow * sw + kw, :]  # a view
                block += dcols[lo:hi, :, ow, i, :, :]

    split_batch(scatter, x_pad_shape[0], dcols.size)
    return dx_pad


def conv2d_forward(x, w, b, strides=1, padding="same"):
    """``npcnn.ops.conv2d_forward``: y (N, H_out, W_out, Cout) and the cache."""
    check_conv2d_args(x, w, b)
    return convolve(x, w, b, strides, padding)


def convolve(x, w, b, strides, padding, workspace=None):
    """The work of :func:`conv2d_forward` (arguments already checked); ``b=None``
    skips the bias, for the fused block (``fused.py``) that adds it after pooling.
    ``workspace``: a dict whose buffers this call reuses (:func:`reusable`); the
    cache then stays valid only until the next call with the same workspace, as
    a layer's cache does. Kernels whose rows hold at least ``ROWWISE_MIN_K``
    values (kw*Cin) run row-wise (``rowwise.py``), the others through im2col."""
    strides, padding = as_pair(strides, "strides"), normalize_padding(padding)
    kh, kw, cin, cout = w.shape
    n, height, width, _ = x.shape
    pads = padding_amounts((height, width), (kh, kw), strides, padding)
    out_hw = output_hw((height, width), (kh, kw), strides, padding)
    x_pad = pad_nhwc(x, pads)
    if rowwise_wins(w, x):
        y_t, xw = rowwise_forward(x_pad, w, strides, out_hw, workspace)
        if b is not None:
            y_t += b
        return y_t.transpose(1, 0, 2, 3), RowwiseCache(x.shape, w, xw, strides, pads, out_hw)
    return _im2col_convolve(x, w, b, x_pad, strides, pads, out_hw, workspace)


def rowwise_wins(w, x) -> bool:
    """Whether the row-wise convolution is used: NumPy arrays of float32/64 and
    kernel rows of ``ROWWISE_MIN_K`` values or more (a thin row, like conv1's 5,
    makes small matrix products, where one im2col product is faster)."""
    kw, cin = w.shape[1], w.shape[2]
    numpy_floats = get_array_module(x) is np and x.dtype in GEMM_DTYPES and w.dtype == x.dtype
    return numpy_floats and kw * cin >= ROWWISE_MIN_K


def _im2col_convolve(x, w, b, x_pad, strides, pads, out_hw, workspace):
    """The convolution through one im2col matrix (in slabs for big batches)."""
    kh, kw, cin, cout = w.shape
    n = x.shape[0]
    weights = w.reshape(kh * kw * cin, cout)
    positions = out_hw[0] * out_hw[1]  # output positions per image
    xp = get_array_module(x)
    y = xp.empty((n * positions, cout), dtype=x.dtype)
    slab = n if n <= KEEP_COLS else SLAB  # images per matrix product
    buffer = reusable(workspace, "cols", (slab * positions, kh * kw * cin), x.dtype, xp)
    cols = buffer  # (an empty batch has no slab: its cols is this empty matrix)
    # Speed only: a big batch is convolved SLAB images at a time, so the im2col
    # matrix stays small, every slab reuses the same buffer for it, and each slab's
    # rows and output are still in cache when multiplied and when b is added;
    # every slab is the same math, and every row of y the same numbers.
    for first in range(0, n, max(slab, 1)):
        cols = im2col(x_pad[first : first + slab], (kh, kw), strides, out_hw, out=buffer)
        y_slab = y[first * positions : (first + slab) * positions]  # a view into y
        xp.matmul(cols, weights, out=y_slab)  # y = sum over the window of x*w ...
        if b is not None:
            y_slab += b  # ... plus b
    y = y.reshape(n, *out_hw, cout)
    if n > slab:
        cols = None  # not the whole batch's matrix: conv2d_backward rebuilds it
    cache = (x.shape, w, x_pad, cols, strides, pads, out_hw)
    return y, cache


def conv2d_backward(dy, cache, need_dx=True):
    """``npcnn.ops.conv2d_backward``: dx (or None when ``need_dx`` is False), dw, db.

    The same three formulas (dW = cols.T @ dy, db = the sum of dy, dcols = dy @ W.T
    scattered back by col2im); the im2col matrix is rebuilt when the forward pass
    used several slabs and so kept none."""
    return convolve_backward(dy, cache, check_bool(need_dx, "need_dx"))


def convolve_backward(dy, cache, need_dx, workspace=None):
    """The work of :func:`conv2d_backward`; ``workspace`` as in :func:`convolve`
    (dcols, and a rebuilt im2col matrix, go into reused buffers)."""
    if isinstance(cache, RowwiseCache):
        if tuple(dy.shape) != (cache.x_shape[0], *cache.out_hw, cache.w.shape[3]):
            raise ValueError(f"dy must have the output's shape, got {tuple(dy.shape)}")
        return rowwise_backward(dy.transpose(1, 0, 2, 3), cache, need_dx, workspace)
    x_shape, w, x_pad, cols, strides, pads, out_hw = cache
    kh, kw, cin, cout = w.shape
    n, height, width, _ = x_shape
    expected = (n, *out_hw, cout)
    if tuple(dy.shape) != expected:
        raise ValueError(f"dy must have the output's shape {expected}, got {tuple(dy.shape)}")
    xp = get_array_module(dy)
    positions = out_hw[0] * out_hw[1]
    if cols is None:  # the forward pass ran in several slabs
        buffer = reusable(workspace, "cols", (n * positions, kh * kw * cin), x_pad.dtype, xp)
        cols = im2col(x_pad, (kh, kw), strides, out_hw, out=buffer)
    dy2 = dy.reshape(n * positions, cout)

    db = column_sums(dy2)  # each b[co] was added to every output position
    dw = xp.matmul(cols.T, dy2).reshape(w.shape)  # local derivative of y wrt W is cols
    if not need_dx:
        return None, dw, db

    # local derivative of y wrt cols is W: the gradient of every window, (i, j, c) order
    dcols = reusable(workspace, "dcols", (n * positions, kh * kw * cin), dy.dtype, xp)
    xp.matmul(dy2, w.reshape(kh * kw * cin, cout).T, out=dcols)
    dcols = dcols.reshape(n, *out_hw, kh, kw, cin)
    (top, _), (left, _) = pads
    dx_pad = col2im(dcols, x_pad.shape, (kh, kw), strides, out_hw)
    dx = dx_pad[:, top : top + height, left : left + width, :]  # padding cells get no gradient
    return dx, dw, db
