"""Fully connected layer, fast: the matrix products cut into column blocks shared over the threads.

The readable layer (``npcnn/ops/dense.py``) is three matrix products. Here a
big one (the tutorial's dense1: 3136 x 1024 weights, 12.8 MB) is cut into
fixed blocks of the weight matrix's columns (forward) or rows (backward), and
each thread takes the next block nobody has started (``threads.run_parts``)::

    y[:, blk]  = x @ w[:, blk] + b[blk]           blk: a block of the Dout columns
    dw[blk, :] = x[:, blk].T @ dy                  blk: a block of the Din rows
    dx[:, blk] = (w[blk, :] @ dy.T).T

(``dx.T = w @ dy.T`` reads w in its own order: 1.9 ms instead of 2.6 for ``dy @ w.T``
on one core of the AMD EPYC, the tutorial's dense1 at batch 50, float32. OpenBLAS's
float64 product runs the other way round, 4.4-4.7 ms against 6.0-6.2, so float64
takes ``dx = dy @ w.T``; the two gave the same bits.)

Each output element is still one dot product over the same axis, computed
by BLAS in its own order; where the block boundaries fall depends on the
shapes alone, never on the thread count, so 1, 2 or 8 threads give the same
bits. (Whether a block's elements round exactly as in one unsplit product
depends on the BLAS kernel: with OpenBLAS's AVX-512 kernels they did, with its
AVX2 kernels they did not; the tests hold the fast tier to the rounding bound.)
Small layers run as one product on the calling thread.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..ops.dense import DenseCache
from ..validation import check_dense_args
from .reduce import column_sums
from .threads import run_parts

__all__ = ["dense_forward", "dense_backward"]

MIN_BLOCK = 256  # columns (rows) per block at least: narrower products run slower per FLOP
MIN_SPLIT = 1 << 20  # weights at least, for the products to be cut into blocks
MAX_BLOCKS = 8


def blocks(size: int, weights: int, xp=np) -> list[int]:
    """Where an axis of ``size`` is cut (block boundaries, as even as can be),
    for a weight matrix of ``weights`` elements: one block when it is small
    or not a NumPy array."""
    count = min(MAX_BLOCKS, size // MIN_BLOCK) if weights >= MIN_SPLIT and xp is np else 1
    count = max(count, 1)
    return [size * k // count for k in range(count + 1)]


def dense_forward(x, w, b):
    """``npcnn.ops.dense_forward``: y (N, Dout) = x @ w + b and the cache, by column blocks."""
    check_dense_args(x, w, b)
    xp = get_array_module(x)
    cuts = blocks(w.shape[1], w.size, xp)
    if len(cuts) == 2:
        y = xp.matmul(x, w)
        y += b  # in place: no second (N, Dout) array
        return y, DenseCache(x, w)
    y = xp.empty((x.shape[0], w.shape[1]), dtype=x.dtype)  # check_dense_args: one dtype

    def block(k, slot):  # y[:, blk] = x @ w[:, blk] + b[blk]
        lo, hi = cuts[k], cuts[k + 1]
        np.matmul(x, w[:, lo:hi], out=y[:, lo:hi])
        y[:, lo:hi] += b[lo:hi]

    run_parts(block, len(cuts) - 1)
    return y, DenseCache(x, w)


def dense_backward(dy, cache):
    """Gradients of y = x @ w + b, as ``npcnn.ops.dense_backward``: dx (N, Din)
    = dy @ w.T, dw (Din, Dout) = x.T @ dy, db (Dout,) = sum_n dy; by row blocks of w."""
    x, w = cache.x, cache.w
    if tuple(dy.shape) != (x.shape[0], w.shape[1]):
        raise ValueError(
            f"dy must have the output's shape {(x.shape[0], w.shape[1])}, got {tuple(dy.shape)}"
        )
    xp = get_array_module(dy)
    cuts = blocks(w.shape[0], w.size, xp)
    db = column_sums(dy)  # b was added to every row
    if len(cuts) == 2:
        return xp.matmul(dy, w.T), xp.matmul(x.T, dy), db  # local derivatives: w wrt x, x wrt w
    transposed = dy.dtype != np.float64  # which product of the two runs faster: see above
    dx = xp.empty(x.shape[::-1] if transposed else x.shape, dtype=dy.dtype)  # (Din, N) or (N, Din)
    dw = xp.empty(w.shape, dtype=dy.dtype)

    def block(k, slot):  # the rows lo..hi-1 of w: their gradient, and dx's columns they touch
        lo, hi = cuts[k], cuts[k + 1]
        np.matmul(x[:, lo:hi].T, dy, out=dw[lo:hi])  # local derivative of y wrt w is x
        if transposed:
            np.matmul(w[lo:hi], dy.T, out=dx[lo:hi])  # dx.T = w @ dy.T: wrt x it is w
        else:
            np.matmul(dy, w[lo:hi].T, out=dx[:, lo:hi])  # dx = dy @ w.T

    run_parts(block, len(cuts) - 1)
    return (np.ascontiguousarray(dx.T) if transposed else dx), dw, db
