"""Row-wise convolution: one matrix product per kernel row instead of one im2col matrix.

The readable convolution (``npcnn/ops/conv2d.py``) copies every kh x kw window
into a row of one matrix: kh*kw times the input (conv2 on 50 images: 31 MB),
written once and read once per pass, far more than the CPU's caches hold.
Here only the *width* of each window is copied: for every padded input row hp
and output column ow, the kw taps of that row, ``kw*Cin`` contiguous values::

    xw[hp, n, ow, (j, c)] = x_pad[n, hp, ow*sw + j, c]          (kw times the input)

Kernel row i of output row oh reads input row hp = oh*sh + i, so::

    y[oh, n, ow, :] = b + sum_i  xw[oh*sh + i, n, ow, :] @ w[i].reshape(kw*Cin, Cout)

one matrix product per kernel row, each added into y (:func:`gemm`).
The layout puts the image axis *inside* the row axis, so the rows oh*sh + i of
every image, for all oh, are one contiguous matrix: rows are stored by phase,
``hp = q*sh + r`` at ``xw[r, q]``, and kernel row i reads the band
``xw[i % sh, i // sh : i // sh + H_out]`` (for stride 1, simply rows i..i+H_out-1).

Backward, the same products transposed, per kernel row:
``dw[i] = band_i.T @ dy`` and ``dband_i += dy @ w[i].T``, then
the width copy is undone by kw shifted adds into dx. No 31 MB matrix, no
25-tap col2im: conv2's forward and backward ran about 1.3x faster on one core
(AMD EPYC Zen 4, OpenBLAS SkylakeX kernels).

The sums run in another order than the readable tier's (kernel row by kernel
row, then across rows), so the numbers agree up to rounding, within the bound
the tests derive. The output is computed as (H_out, N, W_out, Cout); callers
get it as an NHWC view.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .cblas import add_product, available
from .reduce import column_sums
from .workspace import reusable, zeroed

GEMM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # BLAS's: sgemm and dgemm


class RowwiseCache(NamedTuple):
    """What the row-wise backward pass needs from the forward pass."""

    x_shape: tuple  # (N, H, W, Cin)
    w: object  # the kernel (kh, kw, Cin, Cout)
    xw: object  # the width windows by phase (sh, Q, N, W_out, kw*Cin)
    strides: tuple  # (sh, sw)
    pads: tuple  # ((top, bottom), (left, right))
    out_hw: tuple  # (H_out, W_out)


def gemm(a, b, c, beta, trans="nn", scratch=None):
    """``c = op(a) @ op(b) + beta * c`` in place (``beta`` 0 or 1); ``trans`` as BLAS
    spells it: "tn" transposes a, "nt" b. With ``beta=1`` the product is added in
    one BLAS call (``cblas.add_product``), or, where that cannot run, written into
    ``scratch`` (an array of c's shape, or None: a new one) and then added.

    Why not SciPy's ``scipy.linalg.blas.sgemm``, which adds in place too? Its
    wrapper holds Python's GIL while BLAS runs, so the two threads of
    ``parallel.py`` could not multiply at once: two threads doing 200 of conv2's
    row GEMMs each took 184 ms with it, 95 ms with NumPy's ``matmul``, which lets
    go of the GIL (AMD EPYC Zen 4, one BLAS thread each, a quiet machine);
    ``cblas.py`` lets go of it too.
    """
    if beta == 1 and add_product(a, b, c, trans):
        return
    op_a = a.T if trans[0] == "t" else a
    op_b = b.T if trans[1] == "t" else b
    if beta == 0:
        np.matmul(op_a, op_b, out=c)
        return
    product = np.matmul(op_a, op_b, out=scratch)
    c += product


def width_windows(x_pad, kw, strides, out_hw, out=None):
    """``xw`` (sh, Q, N, W_out, kw*C), Q = ceil(Hp / sh): every row's width
    windows, row hp = q*sh + r stored at ``[r, q]`` (rows past Hp are never read)."""
    n, hp, _, c = x_pad.shape
    (sh, sw), (_, out_w) = strides, out_hw
    q_rows = -(-hp // sh)
    if out is None:
        out = np.empty((sh, q_rows, n, out_w, kw * c), dtype=x_pad.dtype)
    s_n, s_h, s_w, s_c = x_pad.strides
    for r in range(min(sh, hp)):
        rows = -(-(hp - r) // sh)  # rows r, r + sh, ... inside the image
        view = np.lib.stride_tricks.as_strided(
            x_pad[:, r:], (rows, n, out_w, kw, c), (s_h * sh, s_n, s_w * sw, s_w, s_c)
        )  # (q, n, ow, j, c): a view of x_pad, nothing copied yet
        out[r, :rows].reshape(rows, n, out_w, kw, c)[...] = view  # the one copy
    return out


def band(xw, i, sh, out_h):
    """The rows kernel row ``i`` reads, as one matrix (H_out*N*W_out, kw*C)."""
    rows = xw[i % sh, i // sh : i // sh + out_h]
    return rows.reshape(-1, xw.shape[-1])


def rowwise_forward(x_pad, w, strides, out_hw, workspace=None):
    """Convolution of the padded input ``x_pad`` (N, Hp, Wp, Cin) with ``w``,
    no bias: y as (H_out, N, W_out, Cout), contiguous, and ``xw`` for backward.
    ``workspace``: a dict of buffers to reuse (``workspace.py``); y is then one
    of them too, valid until the next call with the same workspace."""
    kh, kw, cin, cout = w.shape
    (sh, _), (out_h, out_w) = strides, out_hw
    n, hp, _, _ = x_pad.shape
    shape = (sh, -(-hp // sh), n, out_w, kw * cin)
    xw = width_windows(x_pad, kw, strides, out_hw, reusable(workspace, "xw", shape, w.dtype, np))
    y = reusable(workspace, "y", (out_h, n, out_w, cout), x_pad.dtype, np)
    y2 = y.reshape(-1, cout)
    scratch = None if available() else reusable(workspace, "y_scratch", y2.shape, y.dtype, np)
    for i in range(kh):  # y = sum over kernel rows of band_i @ w[i]
        gemm(band(xw, i, sh, out_h), w[i].reshape(kw * cin, cout), y2, beta=float(i > 0),
             scratch=scratch)  # fmt: skip
    return y, xw


def rowwise_backward(dy_t, cache, need_dx, workspace=None):
    """Gradients from dy as (H_out, N, W_out, Cout): dx (N, H, W, Cin) or None, dw, db.
    ``workspace``: as in :func:`rowwise_forward` (dx, dw and db are new arrays)."""
    w, xw, sh, out_h = cache.w, cache.xw, cache.strides[0], cache.out_hw[0]
    kh, kw, cin, cout = w.shape
    dy2 = reusable(workspace, "dy", dy_t.shape, dy_t.dtype, np)
    dy2[...] = dy_t  # contiguous, so that it reshapes to a matrix
    dy2 = dy2.reshape(-1, cout)
    db = column_sums(dy2)  # each b[co] was added at every output position
    dw = np.empty(w.shape, dtype=w.dtype)  # C-ordered: dw[i] reshapes to a view
    for i in range(kh):  # dw[i] = band_i.T @ dy: y's local derivative wrt w[i] is band_i
        gemm(band(xw, i, sh, out_h), dy2, dw[i].reshape(kw * cin, cout), 0.0, trans="tn")
    if not need_dx:
        return None, dw, db
    dxw = zeroed(workspace, "dxw", xw.shape, xw.dtype, np)  # every window's gradient
    shape = (dy2.shape[0], kw * cin)
    scratch = None if available() else reusable(workspace, "dxw_scratch", shape, dy2.dtype, np)
    for i in range(kh):  # dband_i += dy @ w[i].T: y's local derivative wrt band_i is w[i]
        gemm(dy2, w[i].reshape(kw * cin, cout), band(dxw, i, sh, out_h), 1.0, trans="nt",
             scratch=scratch)  # fmt: skip
    return undo_width_windows(dxw, cache), dw, db


def undo_width_windows(dxw, cache):
    """The adjoint of :func:`width_windows`: add each window's gradient back onto
    the input cells it was copied from, then crop the padding: dx (N, H, W, Cin).

    The window of output column ow came from the kw input columns ow*sw ..
    ow*sw + kw - 1, kw*Cin contiguous values in both arrays, so one add per
    output column and phase moves a whole window (inner loops kw*Cin long, not
    Cin: 0.35 ms for conv2 on 25 images against 0.45 with one add per tap, one
    core of the AMD EPYC). The columns go right to left, so a cell receives its terms in the
    order of the taps j = 0, 1, ..: the order of one shifted add per tap."""
    n, height, width, cin = cache.x_shape
    (top, bottom), (left, right) = cache.pads
    (sh, sw), (_, out_w) = cache.strides, cache.out_hw
    kw = cache.w.shape[1]
    hp, wp = top + height + bottom, left + width + right
    dx_pad = np.zeros((n, hp, wp, cin), dtype=dxw.dtype)
    for r in range(min(sh, hp)):
        rows = -(-(hp - r) // sh)
        grad = dxw[r, :rows].reshape(rows, n, out_w, kw, cin).transpose(1, 0, 2, 3, 4)
        target = dx_pad[:, r::sh][:, :rows]  # the input rows of this phase
        for ow in reversed(range(out_w)):  # tap j of column ow came from input column ow*sw + j
            target[:, :, ow * sw : ow * sw + kw] += grad[:, :, ow]
    return dx_pad[:, top : top + height, left : left + width]
