"""benchmarks/cuda_kernels.py without a GPU: it imports without CuPy, and its CUDA
source, compiled as plain C++ with a small shim, computes what npcnn.ops computes.

The shim defines ``__global__``/``__device__`` away and makes ``blockIdx``,
``threadIdx``, ``blockDim`` and ``gridDim`` host variables; a fake launcher
runs every (block, thread) of the grid the module asks for, one after another.
The module's own host code runs unchanged except for three seams that are
monkeypatched: ``_cupy`` (NumPy stands in for CuPy), ``_check_cupy`` (only
contiguity is checked) and ``_kernel`` (the shim's function instead of the
NVRTC-compiled one). So these tests check the kernels' index arithmetic, the
host code's argument order and the summation order (bit-exact against the
ops) -- everything but NVRTC and the GPU, which tests/benchmarks/test_gpu_kernels.py does.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from npcnn import ops
from npcnn.ops.conv2d import col2im as ops_col2im
from npcnn.ops.padding import output_hw, padding_amounts


def test_module_imports_without_cupy():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["cupy"] = None  # any 'import cupy' now raises ImportError
        import npcnn
        from benchmarks import cuda_kernels as ck
        assert "npcnn_maxpool_fwd" in ck.CUDA_SOURCE and callable(ck.adam_update_all)
        try:
            ck.bias_relu_forward(None, None)
        except ImportError:
            pass
        else:
            raise SystemExit("expected ImportError when a kernel is called without CuPy")
        print("ok")
        """
    )
    root = Path(__file__).resolve().parents[2]  # the checkout: benchmarks/ is not installed
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


SHIM = r"""
#include <math.h>
#include <string.h>
struct npcnn_dim3 { unsigned int x, y, z; };
static npcnn_dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
static npcnn_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
#define __global__
#define __device__
#define __forceinline__ inline
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline double __longlong_as_double(long long i) { double d; memcpy(&d, &i, 8); return d; }
"""

WRAPPERS = r"""
// run every (block, thread) of a (gx, gy) x bx grid, one after another
#define NPCNN_LAUNCH(CALL)                                                        \
    gridDim.x = gx; gridDim.y = gy; blockDim.x = bx;                              \
    for (unsigned int by = 0; by < gy; ++by)                                      \
        for (unsigned int bb = 0; bb < gx; ++bb)                                  \
            for (unsigned int t = 0; t < bx; ++t) {                               \
                blockIdx.x = bb; blockIdx.y = by; threadIdx.x = t; CALL;          \
            }
#define NPCNN_WRAP(T, S)                                                          \
extern "C" void npcnn_bias_relu_##S(unsigned gx, unsigned gy, unsigned bx,        \
    const T* z, const T* b, T* y, long long n, long long c) {                     \
    NPCNN_LAUNCH(npcnn_bias_relu<T>(z, b, y, n, c)) }                             \
extern "C" void npcnn_maxpool_fwd_##S(unsigned gx, unsigned gy, unsigned bx,      \
    const T* x, T* y, int* a, long long n, int H, int W, int C, int Ho, int Wo,   \
    int ph, int pw, int sh, int sw, int top, int left) {                          \
    NPCNN_LAUNCH(npcnn_maxpool_fwd<T>(x, y, a, n, H, W, C, Ho, Wo, ph, pw, sh, sw, \
                                      top, left)) }                               \
extern "C" void npcnn_maxpool_bwd_##S(unsigned gx, unsigned gy, unsigned bx,      \
    const T* dy, const int* a, T* dx, long long n, int H, int W, int C, int Ho,   \
    int Wo, int ph, int pw, int sh, int sw, int top, int left) {                  \
    NPCNN_LAUNCH(npcnn_maxpool_bwd<T>(dy, a, dx, n, H, W, C, Ho, Wo, ph, pw, sh,  \
                                      sw, top, left)) }                           \
extern "C" void npcnn_col2im_##S(unsigned gx, unsigned gy, unsigned bx,           \
    const T* d, T* dx, long long n, int Hx, int Wx, int C, int Ho, int Wo,        \
    int kh, int kw, int sh, int sw, int oh, int ow) {                             \
    NPCNN_LAUNCH(npcnn_col2im<T>(d, dx, n, Hx, Wx, C, Ho, Wo, kh, kw, sh, sw, oh, \
                                 ow)) }                                           \
extern "C" void npcnn_adam_##S(unsigned gx, unsigned gy, unsigned bx,             \
    const unsigned long long* p, const long long* s, T a, T b1, T b2, T e) {      \
    NPCNN_LAUNCH(npcnn_adam<T>(p, s, a, b1, b2, e)) }
NPCNN_WRAP(float, float)
NPCNN_WRAP(double, double)
"""

CXX = shutil.which("g++") or shutil.which("clang++")


@pytest.fixture(scope="module")
def shim_lib(tmp_path_factory):
    if CXX is None:
        pytest.skip("no C++ compiler to run the CUDA source on the CPU")
    from benchmarks import cuda_kernels as ck

    d = tmp_path_factory.mktemp("cudashim")
    src, lib = d / "kernels.cpp", d / "kernels.so"
    src.write_text(SHIM + ck.CUDA_SOURCE + WRAPPERS)
    # -ffp-contract=off: the host twin of --fmad=false (no a*b+c fused into an FMA)
    cmd = [CXX, "-O1", "-ffp-contract=off", "-fPIC", "-shared", "-o", str(lib), str(src)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return ctypes.CDLL(str(lib))


CT = {
    np.int32: ctypes.c_int,
    np.int64: ctypes.c_longlong,
    np.float32: ctypes.c_float,
    np.float64: ctypes.c_double,
}


@pytest.fixture
def ck(shim_lib, monkeypatch):
    """cuda_kernels with NumPy for CuPy and the shim's functions for the kernels."""
    from benchmarks import cuda_kernels

    def kernel(name, dtype):
        fn = getattr(shim_lib, f"{name}_{cuda_kernels.CTYPES[np.dtype(dtype)]}")

        def launch(grid, block, args):
            gx, gy = (grid[0], grid[1]) if len(grid) > 1 else (grid[0], 1)
            cargs = [ctypes.c_uint(gx), ctypes.c_uint(gy), ctypes.c_uint(block[0])]
            for a in args:
                if isinstance(a, np.ndarray):
                    assert a.flags.c_contiguous
                    cargs.append(ctypes.c_void_p(a.ctypes.data))
                else:  # the module must pass explicitly typed NumPy scalars
                    cargs.append(CT[type(a)](a))
            fn(*cargs)

        return launch

    def check(a, name):
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")

    monkeypatch.setattr(cuda_kernels, "_cupy", lambda: np)
    monkeypatch.setattr(cuda_kernels, "_kernel", kernel)
    monkeypatch.setattr(cuda_kernels, "_check_cupy", check)
    monkeypatch.setattr(cuda_kernels, "_ptr", lambda a: a.ctypes.data)
    monkeypatch.setattr(cuda_kernels, "BLOCK", 7)  # small odd blocks: many blocks, ragged end
    monkeypatch.setattr(cuda_kernels, "MAX_BLOCKS", 5)  # force the grid-stride loops
    cuda_kernels._adam_tables.clear()
    yield cuda_kernels
    cuda_kernels._adam_tables.clear()


DTYPES = [np.float32, np.float64]


def _same(a, b):
    """Bit-exact equality (NaN == NaN; -0.0 == 0.0 as NumPy compares)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_relu_equals_ops(ck, dtype):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, 5, 4, 6)).astype(dtype)
    z[0, 0, 0, :3] = [np.nan, -0.0, 0.0]
    b = rng.standard_normal(6).astype(dtype)
    b[:3] = 0
    y, cache = ck.bias_relu_forward(z, b)
    ref, _ = ops.relu_forward(z + b)
    _same(y, ref)
    assert cache is y and not np.signbit(y[0, 0, 0, 1])  # -0.0 -> +0.0, as np.maximum
    z2 = z.copy()
    ck.bias_relu_forward(z2, b, out=z2)  # in place
    _same(z2, ref)


POOL_CASES = [
    # (H, W, pool, strides, padding)
    (8, 8, 2, 2, "valid"),
    (7, 9, 2, 2, "same"),
    (9, 8, 3, 3, "same"),
    (10, 7, 3, 3, "valid"),
    (7, 8, 3, 2, "same"),  # overlapping windows: a cell can win several
    (9, 9, 3, 2, "valid"),
    (8, 9, (2, 3), (3, 2), "same"),
    (6, 7, 2, 3, "valid"),  # stride > pool: cells in no window
    (5, 5, 1, 1, "same"),
]


def _pool_input(rng, shape, dtype, kind):
    if kind == "normal":
        return rng.standard_normal(shape).astype(dtype)
    if kind == "ties":  # few distinct values: many windows hold their max twice or more
        return rng.integers(-2, 2, shape).astype(dtype)
    if kind == "negative":  # all-negative windows next to the -inf padding
        return -rng.random(shape).astype(dtype) - 1
    if kind == "constant":
        return np.full(shape, -3.0, dtype)
    raise ValueError(kind)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["normal", "ties", "negative", "constant"])
@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool_equals_ops(ck, dtype, kind, case):
    h, w, pool, strides, padding = case
    rng = np.random.default_rng(1)
    x = _pool_input(rng, (2, h, w, 3), dtype, kind)
    y, cache = ck.maxpool2d_forward(x, pool, strides, padding)
    y_ref, cache_ref = ops.maxpool2d_forward(x, pool, strides, padding)
    _same(y, y_ref)
    dy = rng.standard_normal(y.shape).astype(dtype)
    _same(ck.maxpool2d_backward(dy, cache), ops.maxpool2d_backward(dy, cache_ref))


@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool_nan_and_inf_as_ops(ck, dtype):
    x = np.zeros((1, 4, 4, 2), dtype)
    x[0, 0, 1, 0] = np.nan  # a NaN window: y NaN, no cell gets a gradient
    x[0, 2:, 2:, 1] = -np.inf  # an all -inf window
    x[0, 2, 3, 0] = np.inf
    for strides, padding in ((2, "valid"), (1, "same"), (3, "same")):
        y, cache = ck.maxpool2d_forward(x, 2, strides, padding)
        y_ref, cache_ref = ops.maxpool2d_forward(x, 2, strides, padding)
        _same(y, y_ref)
        dy = np.arange(1, y.size + 1, dtype=dtype).reshape(y.shape)
        _same(ck.maxpool2d_backward(dy, cache), ops.maxpool2d_backward(dy, cache_ref))


CONV_CASES = [
    # (H, W, kernel, strides, padding)
    (7, 7, 5, 1, "same"),
    (9, 8, 3, 2, "same"),
    (10, 9, 3, 3, "valid"),
    (8, 11, (4, 3), (2, 3), "same"),
    (6, 6, 2, 3, "valid"),  # stride > kernel: some cells in no window
    (5, 4, 1, 1, "valid"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_col2im_equals_ops(ck, dtype, case):
    h, w, kernel, strides, padding = case
    rng = np.random.default_rng(2)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (strides, strides) if isinstance(strides, int) else strides
    pads = padding_amounts((h, w), (kh, kw), (sh, sw), padding)
    out = output_hw((h, w), (kh, kw), (sh, sw), padding)
    (top, bottom), (left, right) = pads
    x_pad_shape = (2, h + top + bottom, w + left + right, 3)
    dcols = rng.standard_normal((2, *out, kh, kw, 3)).astype(dtype)
    ref = ops_col2im(dcols, x_pad_shape, (kh, kw), (sh, sw), out)
    _same(ck.col2im(dcols, x_pad_shape, (kh, kw), (sh, sw), out), ref)
    flat = dcols.reshape(-1, kh * kw * 3)  # the matrix form works too
    cropped = ck.col2im(flat, x_pad_shape, (kh, kw), (sh, sw), out, pads=pads)
    _same(cropped, np.ascontiguousarray(ref[:, top : top + h, left : left + w]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_col2im_gives_conv2d_backward_dx(ck, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 9, 8, 3)).astype(dtype)
    w = rng.standard_normal((5, 5, 3, 4)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    y, cache = ops.conv2d_forward(x, w, b, 2, "same")
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx_ref, _, _ = ops.conv2d_backward(dy, cache)
    dcols = dy.reshape(-1, 4) @ w.reshape(-1, 4).T
    (top, bottom), (left, right) = cache.pads
    x_pad_shape = (2, 9 + top + bottom, 8 + left + right, 3)
    dx = ck.col2im(dcols, x_pad_shape, (5, 5), cache.strides, cache.out_hw, pads=cache.pads)
    _same(dx, np.ascontiguousarray(dx_ref))


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_all_equals_ops_per_parameter(ck, dtype):
    rng = np.random.default_rng(4)
    shapes = [(5, 5, 1, 4), (4,), (3, 3, 4, 6), (6,), (30, 9), (9,), (9, 10), (10,)]
    f = np.dtype(dtype).type
    scalars = (f(1e-3) * np.sqrt(f(1) - f(0.999) ** 3) / (f(1) - f(0.9) ** 3),)
    scalars += (f(1 - 0.9), f(1 - 0.999), f(1e-7))
    ps = [rng.standard_normal(s).astype(dtype) for s in shapes]
    gs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ms = [rng.standard_normal(s).astype(dtype) * f(0.1) for s in shapes]
    vs = [rng.random(s).astype(dtype) * f(0.01) for s in shapes]
    refs = [[a.copy() for a in group] for group in (ps, ms, vs)]
    for _step in range(3):  # the cached pointer table is reused after the first step
        ck.adam_update_all(ps, gs, ms, vs, *scalars)
        for p, g, m, v in zip(*refs[:1], gs, *refs[1:]):
            ops.adam_update(p, g, m, v, *scalars)
        for group, ref in zip((ps, ms, vs), refs):
            for a, r in zip(group, ref):
                _same(a, r)
    assert len(ck._adam_tables) == 1
    p, g, m, v = ps[2].copy(), gs[2], ms[2].copy(), vs[2].copy()
    ck.adam_update(p, g, m, v, *scalars)  # the one-parameter form
    ops.adam_update(ps[2], g, ms[2], vs[2], *scalars)
    _same(p, ps[2])


def test_adam_rejects_mixed_dtypes(ck):
    p = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="g\\[0\\]"):
        ck.adam_update_all([p], [np.zeros(3)], [p.copy()], [p.copy()], 1, 1, 1, 1)
