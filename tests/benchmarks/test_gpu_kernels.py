"""The fused CUDA kernels (benchmarks/cuda_kernels.py) against npcnn.ops, on a GPU.

Each kernel performs the same IEEE operations in the same order as the op it
replaces, compiled with --fmad=false, so it must equal the op *bit for bit*:
against the op run on CuPy, and against the op run on NumPy (additions, max,
and Adam's correctly rounded sqrt and division: no library function whose
rounding could differ). Where a cuBLAS GEMM feeds a kernel and NumPy's GEMM
feeds the reference, the comparison uses a derived float32/float64 bound:
|error| <= gamma_K * (the same computation on absolute values), with
gamma_K = K*u/(1 - K*u), K the number of terms summed per output and u the
unit roundoff (Higham, Accuracy and Stability of Numerical Algorithms, 3.1).

tests/benchmarks/test_cuda_kernels_import.py runs the same CUDA source on a CPU (compiled
as C++) without CuPy; this module skips without CuPy or a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import cupy_on_a_gpu

cupy = cupy_on_a_gpu()  # skips the module without CuPy or a GPU; TF32 off

from benchmarks import cuda_kernels as ck  # noqa: E402
from npcnn import ops  # noqa: E402
from npcnn.ops.conv2d import col2im as ops_col2im  # noqa: E402
from npcnn.ops.padding import output_hw, padding_amounts  # noqa: E402

DTYPES = [np.float32, np.float64]


def _same(dev, ref):
    """Bit-exact: dev (CuPy) equals ref (NumPy or CuPy); NaN == NaN."""
    d, r = cupy.asnumpy(dev), cupy.asnumpy(ref) if isinstance(ref, cupy.ndarray) else ref
    assert d.dtype == r.dtype and d.shape == r.shape
    np.testing.assert_array_equal(d, r)


def _gamma(k, dtype):
    u = np.finfo(dtype).eps / 2
    return k * u / (1 - k * u)


def test_kernels_compile_for_both_dtypes():
    for name in ck.KERNEL_NAMES:
        for dtype in DTYPES:
            assert ck._kernel(name, dtype) is not None


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_relu(dtype):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((50, 28, 28, 32)).astype(dtype)
    z[0, 0, 0, :3] = [np.nan, -0.0, 0.0]
    b = rng.standard_normal(32).astype(dtype)
    b[:3] = 0
    zd, bd = cupy.asarray(z), cupy.asarray(b)
    y, cache = ck.bias_relu_forward(zd, bd)
    assert cache is y
    _same(y, ops.relu_forward(z + b)[0])  # NumPy
    _same(y, ops.relu_forward(zd + bd)[0])  # the readable op on CuPy
    ck.bias_relu_forward(zd, bd, out=zd)  # in place
    _same(zd, y)


POOL_CASES = [
    # (H, W, pool, strides, padding)
    (28, 28, 2, 2, "valid"),  # the tutorial's pools
    (14, 14, 2, 2, "same"),
    (7, 9, 2, 2, "same"),
    (9, 8, 3, 3, "same"),
    (10, 7, 3, 3, "valid"),
    (7, 8, 3, 2, "same"),  # overlapping windows
    (9, 9, 3, 2, "valid"),
    (8, 9, (2, 3), (3, 2), "same"),
    (6, 7, 2, 3, "valid"),  # stride > pool
]


def _pool_input(rng, shape, dtype, kind):
    if kind == "normal":
        return rng.standard_normal(shape).astype(dtype)
    if kind == "ties":
        return rng.integers(-2, 2, shape).astype(dtype)
    if kind == "negative":  # all-negative windows next to the -inf padding
        return -rng.random(shape).astype(dtype) - 1
    return np.full(shape, -3.0, dtype)  # "constant": every cell ties


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "ties", "negative", "constant"])
@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool_forward_backward(dtype, kind, case):
    h, w, pool, strides, padding = case
    rng = np.random.default_rng(1)
    x = _pool_input(rng, (4, h, w, 5), dtype, kind)
    dy_shape = (4, *output_hw((h, w), ck.as_pair(pool, "p"), ck.as_pair(strides, "s"), padding), 5)
    dy = rng.standard_normal(dy_shape).astype(dtype)
    xd, dyd = cupy.asarray(x), cupy.asarray(dy)

    y, cache = ck.maxpool2d_forward(xd, pool, strides, padding)
    dx = ck.maxpool2d_backward(dyd, cache)
    for ref_x, ref_dy in ((x, dy), (xd, dyd)):  # NumPy, then the readable op on CuPy
        y_ref, cache_ref = ops.maxpool2d_forward(ref_x, pool, strides, padding)
        _same(y, y_ref)
        _same(dx, ops.maxpool2d_backward(ref_dy, cache_ref))


@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool_nan_and_inf(dtype):
    x = np.zeros((1, 4, 4, 2), dtype)
    x[0, 0, 1, 0] = np.nan
    x[0, 2:, 2:, 1] = -np.inf
    x[0, 2, 3, 0] = np.inf
    for strides, padding in ((2, "valid"), (1, "same"), (3, "same")):
        y, cache = ck.maxpool2d_forward(cupy.asarray(x), 2, strides, padding)
        y_ref, cache_ref = ops.maxpool2d_forward(x, 2, strides, padding)
        _same(y, y_ref)
        dy = np.arange(1, y.size + 1, dtype=dtype).reshape(y.shape)
        _same(ck.maxpool2d_backward(cupy.asarray(dy), cache), ops.maxpool2d_backward(dy, cache_ref))


CONV_CASES = [
    # (H, W, kernel, strides, padding)
    (28, 28, 5, 1, "same"),  # the tutorial's conv1 / conv2 geometry
    (14, 14, 5, 1, "same"),
    (9, 8, 3, 2, "same"),
    (10, 9, 3, 3, "valid"),
    (8, 11, (4, 3), (2, 3), "same"),
    (6, 6, 2, 3, "valid"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_col2im(dtype, case):
    h, w, kernel, strides, padding = case
    kh, kw = ck.as_pair(kernel, "k")
    sh, sw = ck.as_pair(strides, "s")
    rng = np.random.default_rng(2)
    pads = padding_amounts((h, w), (kh, kw), (sh, sw), padding)
    out = output_hw((h, w), (kh, kw), (sh, sw), padding)
    (top, bottom), (left, right) = pads
    x_pad_shape = (3, h + top + bottom, w + left + right, 4)
    dcols = rng.standard_normal((3, *out, kh, kw, 4)).astype(dtype)
    dd = cupy.asarray(dcols)
    got = ck.col2im(dd, x_pad_shape, (kh, kw), (sh, sw), out)
    _same(got, ops_col2im(dcols, x_pad_shape, (kh, kw), (sh, sw), out))
    _same(got, ops_col2im(dd, x_pad_shape, (kh, kw), (sh, sw), out))
    cropped = ck.col2im(dd.reshape(-1, kh * kw * 4), x_pad_shape, (kh, kw), (sh, sw), out, pads)
    _same(cropped, cupy.ascontiguousarray(got[:, top : top + h, left : left + w]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_backward_dx_through_col2im(dtype):
    """dx of the tutorial's conv2 (batch 50): cuBLAS GEMM + col2im kernel vs NumPy's op,
    within 2 gamma_K of |dy| @ |W|.T col2im'd, K = Cout + kh*kw terms per cell."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 14, 14, 32)).astype(dtype)
    w = (rng.standard_normal((5, 5, 32, 64)) * 0.05).astype(dtype)
    b = np.zeros(64, dtype)
    y, cache = ops.conv2d_forward(x, w, b, 1, "same")
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx_ref, _, _ = ops.conv2d_backward(dy, cache)

    wd, dyd = cupy.asarray(w.reshape(-1, 64)), cupy.asarray(dy.reshape(-1, 64))
    x_pad_shape = (50, 18, 18, 32)
    dx = ck.col2im(dyd @ wd.T, x_pad_shape, (5, 5), (1, 1), (14, 14), pads=cache.pads)
    bound_terms = np.abs(dy.reshape(-1, 64)) @ np.abs(w.reshape(-1, 64)).T
    bound = ops_col2im(
        bound_terms.reshape(50, 14, 14, 5, 5, 32), x_pad_shape, (5, 5), (1, 1), (14, 14)
    )
    # each side is within gamma_K * bound of the exact dx, so they are within twice that
    bound = 2 * _gamma(64 + 25, dtype) * bound[:, 2:16, 2:16, :]
    err = np.abs(cupy.asnumpy(dx) - dx_ref)
    assert (err <= bound).all(), float((err / np.maximum(bound, 1e-300)).max())
    # and bit for bit the readable CuPy path from the same GEMM result
    dcols = (dyd @ wd.T).reshape(50, 14, 14, 5, 5, 32)
    full = ops_col2im(dcols, x_pad_shape, (5, 5), (1, 1), (14, 14))
    _same(dx, cupy.ascontiguousarray(full[:, 2:16, 2:16, :]))


def _adam_scalars(dtype, t):
    f = np.dtype(dtype).type
    lr, b1, b2 = (f(np.float32(h)) for h in (1e-3, 0.9, 0.999))
    alpha = lr * np.sqrt(f(1) - b2**t) / (f(1) - b1**t)
    return alpha, f(1 - 0.9), f(1 - 0.999), f(1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_all_parameters_one_launch(dtype):
    """20 Adam steps on the tutorial's parameter shapes: one launch per step
    equals ops.adam_update per parameter on NumPy and on CuPy, bit for bit."""
    rng = np.random.default_rng(4)
    shapes = [(5, 5, 1, 32), (32,), (5, 5, 32, 64), (64,), (3136, 1024), (1024,), (1024, 10), (10,)]
    host = [rng.standard_normal(s).astype(dtype) * 0.05 for s in shapes]
    ps_h, ms_h, vs_h = host, [np.zeros_like(p) for p in host], [np.zeros_like(p) for p in host]
    ps_c, ms_c, vs_c = ([cupy.asarray(a) for a in group] for group in (ps_h, ms_h, vs_h))
    ps_k, ms_k, vs_k = ([cupy.asarray(a) for a in group] for group in (ps_h, ms_h, vs_h))
    for t in range(1, 21):
        gs_h = [rng.standard_normal(s).astype(dtype) for s in shapes]
        gs_d = [cupy.asarray(g) for g in gs_h]
        scalars = _adam_scalars(dtype, t)
        ck.adam_update_all(ps_k, gs_d, ms_k, vs_k, *scalars)
        for p, g, m, v in zip(ps_h, gs_h, ms_h, vs_h):
            ops.adam_update(p, g, m, v, *scalars)
        for p, g, m, v in zip(ps_c, gs_d, ms_c, vs_c):
            ops.adam_update(p, g, m, v, *scalars)
    for k, c, h in zip(ps_k + ms_k + vs_k, ps_c + ms_c + vs_c, ps_h + ms_h + vs_h):
        _same(k, c)
        _same(k, h)


def test_adam_single_parameter_form():
    p = cupy.arange(10, dtype=cupy.float32) / 7
    g = cupy.ones(10, dtype=cupy.float32)
    m, v = cupy.zeros_like(p), cupy.zeros_like(p)
    ref = [a.copy() for a in (p, m, v)]
    scalars = _adam_scalars(np.float32, 1)
    ck.adam_update(p, g, m, v, *scalars)
    ops.adam_update(ref[0], g, ref[1], ref[2], *scalars)
    for a, r in zip((p, m, v), ref):
        _same(a, r)


def test_kernels_reject_bad_input():
    with pytest.raises(TypeError):
        ck.maxpool2d_forward(np.zeros((1, 4, 4, 1), np.float32))
    with pytest.raises(ValueError):
        ck.bias_relu_forward(cupy.zeros((2, 3), cupy.float32), cupy.zeros(4, cupy.float32))
    with pytest.raises(ValueError):
        ck.maxpool2d_forward(cupy.zeros((1, 4, 4, 1), cupy.float16))
