"""Fused CUDA kernels for CuPy arrays: one launch where the readable ops use a chain.

They live with the GPU benchmark (the ``kernels`` section of ``python -m
benchmarks --device gpu`` times them against the ops they replace): npcnn's
layers do not use them.

On the GPU, npcnn's step at batch 50 is bound by kernel launches (hundreds of
small CuPy kernels per step), not by arithmetic. Each function here does in
one launch what a readable op (``npcnn/ops``) does in several, and computes
the same numbers -- bit for bit, because every kernel performs the same IEEE
operations in the same order as the op it replaces (and is compiled with
``--fmad=false`` so that ``a*b + c`` is never contracted into an FMA):

================================  =============================================
this module                       the readable op it equals
================================  =============================================
``bias_relu_forward(z, b)``       ``ops.relu_forward(z + b)`` (conv/dense bias + ReLU)
``maxpool2d_forward(x, ...)``     ``ops.maxpool2d_forward(x, ...)`` (y identical)
``maxpool2d_backward(dy, c)``     ``ops.maxpool2d_backward(dy, c)``
``col2im(dcols, ...)``            ``ops.conv2d.col2im(dcols, ...)``
``adam_update(p, g, m, v, ...)``  ``ops.adam_update(p, g, m, v, ...)``
``adam_update_all(ps, gs, ...)``  ``ops.adam_update`` on every parameter, one launch
================================  =============================================

Differences from the readable ops, all in what is cached or required:

- ``maxpool2d_forward`` caches the *index of the winning tap* of every window
  (int32, ``i*pw + j`` in row-major order of the window, -1 when the window's
  max is NaN and so no cell wins) instead of the padded input and ``y``; its
  cache is :class:`MaxPoolArgCache`, not ``ops``'s ``MaxPool2DCache``, and
  only this module's ``maxpool2d_backward`` reads it.
- ``col2im`` with ``pads=`` writes the cropped ``dx`` (N, H, W, C) directly
  instead of ``dx_pad``: the same numbers as ``col2im(...)[:, top:top+H,
  left:left+W]``.
- Arrays must be C-contiguous CuPy arrays of one float dtype (float32 or
  float64); Adam updates ``p``, ``m`` and ``v`` in place, as the ops do.

Every backward kernel *gathers*: one thread per output cell visits the windows
that cover it, in the order the ops add them, so there are no atomics and the
sums are deterministic. The kernels index with 64-bit integers (im2col's
gradient at batch 10,000 has 6.3e9 elements).

CuPy is imported only inside the functions: this module imports (and
``npcnn`` never needs CuPy) on a machine without it. The CUDA source is
``cuda_kernels.cu`` beside this file (:data:`CUDA_SOURCE`); the tests also
compile it as plain C++ with a small shim (one thread,
``gridDim = blockDim = 1``) to run the index arithmetic on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from npcnn.ops.padding import output_hw, padding_amounts
from npcnn.validation import as_pair, check_float, check_rank, normalize_padding

BLOCK = 256  # threads per block
MAX_BLOCKS = 1 << 20  # grid-stride loops cover anything larger
COMPILE_OPTIONS = ("--fmad=false", "--prec-div=true", "--prec-sqrt=true")

# The CUDA C++ source of every kernel, in its own file beside this one.
CUDA_SOURCE = Path(__file__).with_name("cuda_kernels.cu").read_text()

KERNEL_NAMES = (
    "npcnn_bias_relu",
    "npcnn_maxpool_fwd",
    "npcnn_maxpool_bwd",
    "npcnn_col2im",
    "npcnn_adam",
)
CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

_module = None  # the compiled cupy.RawModule, built on first use
_adam_tables: dict = {}  # pointer tables on the device, keyed by the pointers themselves


def _cupy():
    import cupy  # only when a kernel is called, i.e. with CuPy arrays in hand

    return cupy


def _kernel(name, dtype):
    """The compiled kernel ``name<float>`` or ``name<double>`` (compiled once, cached)."""
    global _module
    dtype = np.dtype(dtype)
    if dtype not in CTYPES:
        raise ValueError(f"the CUDA kernels take float32 or float64 arrays, got {dtype}")
    if _module is None:
        cupy = _cupy()
        _module = cupy.RawModule(
            code=CUDA_SOURCE,
            options=COMPILE_OPTIONS,
            name_expressions=[f"{n}<{t}>" for n in KERNEL_NAMES for t in CTYPES.values()],
        )
    return _module.get_function(f"{name}<{CTYPES[dtype]}>")


def _ptr(a):
    """The device address of a CuPy array's first element."""
    return a.data.ptr


def _grid(total):
    return (max(1, min(-(-total // BLOCK), MAX_BLOCKS)),)


def _check_cupy(a, name):
    if type(a).__module__.split(".")[0] != "cupy":
        raise TypeError(f"{name} must be a CuPy array, got {type(a).__name__}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous, got strides {a.strides}")


def bias_relu_forward(z, b, out=None):
    """y = max(z + b, 0) in one pass; returns (y, y) like ``ops.relu_forward``.

    Args:
        z: pre-activations (..., C), e.g. ``cols @ W`` of a convolution or
            ``x @ w`` of a dense layer, before the bias.
        b: bias (C,), same dtype.
        out: array to write y into (``out=z`` is allowed: each thread reads
            its element before writing it).
    Equals ``ops.relu_forward(z + b)`` bit for bit (NaN propagates, -0.0 -> +0.0).
    """
    cupy = _cupy()
    _check_cupy(z, "z")
    check_float(z, "z")
    if b.shape != (z.shape[-1],) or b.dtype != z.dtype:
        raise ValueError(f"b must be ({z.shape[-1]},) {z.dtype}, got {b.shape} {b.dtype}")
    b = cupy.ascontiguousarray(b)
    y = cupy.empty_like(z) if out is None else out
    _check_cupy(y, "out")
    if y.shape != z.shape or y.dtype != z.dtype:
        raise ValueError(f"out must be {z.shape} {z.dtype}, got {y.shape} {y.dtype}")
    if z.size:
        _kernel("npcnn_bias_relu", z.dtype)(
            _grid(z.size), (BLOCK,), (z, b, y, np.int64(z.size), np.int64(z.shape[-1]))
        )
    return y, y


class MaxPoolArgCache(NamedTuple):
    """What :func:`maxpool2d_backward` needs: the winning tap of every window."""

    x_shape: tuple  # (N, H, W, C)
    arg: object  # int32 (N, H_out, W_out, C): tap i*pw + j of the first max, -1 if NaN
    pool: tuple  # (ph, pw)
    strides: tuple  # (sh, sw)
    pads: tuple  # ((top, bottom), (left, right))
    out_hw: tuple  # (H_out, W_out)


def _pool_args(x_shape, pool, strides, pads, out_hw):
    n, h, w, c = x_shape
    (top, _), (left, _) = pads
    ints = (h, w, c, *out_hw, *pool, *strides, top, left)
    return tuple(np.int32(v) for v in ints)


def maxpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """Max over each pooling window, in one launch.

    Arguments and ``y`` as :func:`npcnn.ops.maxpool2d_forward` (TensorFlow's
    rules: 'same' padding cells are -inf and never win). The cache is a
    :class:`MaxPoolArgCache` holding the first maximum's tap of every window.
    """
    cupy = _cupy()
    check_rank(x, 4, "x", "N, H, W, C")
    check_float(x, "x")
    _check_cupy(x, "x")
    pool = as_pair(pool_size, "pool_size")
    strides = pool if strides is None else as_pair(strides, "strides")
    padding = normalize_padding(padding)
    n, h, w, c = x.shape
    pads = padding_amounts((h, w), pool, strides, padding)
    out_hw = output_hw((h, w), pool, strides, padding)
    y = cupy.empty((n, *out_hw, c), dtype=x.dtype)
    arg = cupy.empty(y.shape, dtype=np.int32)
    if y.size:
        _kernel("npcnn_maxpool_fwd", x.dtype)(
            _grid(y.size),
            (BLOCK,),
            (x, y, arg, np.int64(y.size), *_pool_args(x.shape, pool, strides, pads, out_hw)),
        )
    return y, MaxPoolArgCache(tuple(x.shape), arg, pool, strides, pads, out_hw)


def maxpool2d_backward(dy, cache):
    """Route each output gradient to its window's first maximum (gathered, no atomics).

    Equals :func:`npcnn.ops.maxpool2d_backward` bit for bit: a cell that wins
    several overlapping windows adds their gradients in the same order.
    """
    cupy = _cupy()
    n, h, w, c = cache.x_shape
    expected = (n, *cache.out_hw, c)
    if tuple(dy.shape) != expected:
        raise ValueError(f"dy must have the output's shape {expected}, got {tuple(dy.shape)}")
    check_float(dy, "dy")
    dy = cupy.ascontiguousarray(dy)
    dx = cupy.empty(cache.x_shape, dtype=dy.dtype)
    if dx.size:
        args = _pool_args(cache.x_shape, cache.pool, cache.strides, cache.pads, cache.out_hw)
        _kernel("npcnn_maxpool_bwd", dy.dtype)(
            _grid(dx.size), (BLOCK,), (dy, cache.arg, dx, np.int64(dx.size), *args)
        )
    return dx


def col2im(dcols, x_pad_shape, kernel_hw, strides, out_hw, pads=None):
    """The adjoint of im2col, one thread per input cell (deterministic, no atomics).

    Args as :func:`npcnn.ops.conv2d.col2im`; ``dcols`` may be the
    (N*H_out*W_out, kh*kw*C) matrix or its (N, H_out, W_out, kh, kw, C) view.
    Returns dx_pad (N, Hp, Wp, C) -- or, with ``pads=((top, bottom), (left,
    right))``, the cropped dx (N, Hp-top-bottom, Wp-left-right, C) without
    computing the padding cells.
    """
    cupy = _cupy()
    check_float(dcols, "dcols")
    (kh, kw), (sh, sw) = as_pair(kernel_hw, "kernel_hw"), as_pair(strides, "strides")
    n, hp, wp, c = x_pad_shape
    out_h, out_w = out_hw
    if dcols.size != n * out_h * out_w * kh * kw * c:
        raise ValueError(
            f"dcols of shape {tuple(dcols.shape)} does not hold {(n, out_h, out_w, kh, kw, c)}"
        )
    dcols = cupy.ascontiguousarray(dcols)
    (top, bottom), (left, right) = pads if pads is not None else ((0, 0), (0, 0))
    dx = cupy.empty((n, hp - top - bottom, wp - left - right, c), dtype=dcols.dtype)
    if dx.size:
        ints = (dx.shape[1], dx.shape[2], c, out_h, out_w, kh, kw, sh, sw, top, left)
        _kernel("npcnn_col2im", dcols.dtype)(
            _grid(dx.size),
            (BLOCK,),
            (dcols, dx, np.int64(dx.size), *(np.int32(v) for v in ints)),
        )
    return dx


def _adam_table(ps, gs, ms, vs):
    """(pointers, sizes) on the device for these arrays; cached, since the
    parameters and moments live as long as the model (a CUDA graph can then
    replay the launch without a host-to-device copy)."""
    cupy = _cupy()
    key = tuple(_ptr(a) for quad in zip(ps, gs, ms, vs) for a in quad)
    sizes = tuple(p.size for p in ps)
    table = _adam_tables.get((key, sizes))
    if table is None:
        if len(_adam_tables) >= 64:  # gradients may move between steps; keep it bounded
            _adam_tables.clear()
        table = (
            cupy.asarray(np.array(key, dtype=np.uint64)),
            cupy.asarray(np.array(sizes, dtype=np.int64)),
        )
        _adam_tables[(key, sizes)] = table
    return table


def adam_update_all(params, grads, ms, vs, alpha, one_minus_b1, one_minus_b2, eps):
    """Keras's Adam step on every parameter, in one launch, in place.

    Args: lists of CuPy arrays (parameters, their gradients, first and second
    moments), one dtype for all; the scalars as in
    :func:`npcnn.ops.adam.adam_update` (cast to that dtype here). Bit for bit
    what ``ops.adam_update`` does to each parameter.
    """
    params, grads, ms, vs = list(params), list(grads), list(ms), list(vs)
    if not (len(params) == len(grads) == len(ms) == len(vs)) or not params:
        raise ValueError("adam_update_all needs as many grads, m and v as params (at least one)")
    dtype = params[0].dtype
    for group, name in ((params, "p"), (grads, "g"), (ms, "m"), (vs, "v")):
        for k, (a, p) in enumerate(zip(group, params)):
            _check_cupy(a, f"{name}[{k}]")
            if a.dtype != dtype or a.shape != p.shape:
                raise ValueError(
                    f"{name}[{k}] must be {p.shape} {dtype}, got {tuple(a.shape)} {a.dtype}"
                )
    ptrs, sizes = _adam_table(params, grads, ms, vs)
    f = dtype.type
    largest = max(p.size for p in params)
    grid = (max(1, min(-(-largest // BLOCK), MAX_BLOCKS)), len(params))
    _kernel("npcnn_adam", dtype)(
        grid,
        (BLOCK,),
        (ptrs, sizes, f(alpha), f(one_minus_b1), f(one_minus_b2), f(eps)),
    )


def adam_update(p, g, m, v, alpha, one_minus_b1, one_minus_b2, eps):
    """One parameter's Adam step (the signature of :func:`npcnn.ops.adam_update`)."""
    adam_update_all([p], [g], [m], [v], alpha, one_minus_b1, one_minus_b2, eps)
