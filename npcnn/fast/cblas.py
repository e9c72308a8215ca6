"""``c += op(a) @ op(b)`` in one BLAS call, through the BLAS NumPy itself uses (speed only).

The row-wise convolution (``rowwise.py``) adds one matrix product per kernel
row into its output. NumPy's ``matmul`` can only *write* a product, so each
one went into a scratch matrix and was then added: one more pass over the
output per kernel row. BLAS's ``gemm`` adds in place (``beta=1``), but SciPy's
wrapper (``scipy.linalg.blas.sgemm``) holds Python's GIL while it runs, and the
parts of the batch (``parallel.py``) would take turns instead of running at once.

So :func:`add_product` calls ``cblas_sgemm``/``cblas_dgemm`` with ``ctypes``,
which lets go of the GIL during the call, from the very library NumPy's
``matmul`` calls (found through NumPy's own extension module, so
``threadpoolctl``'s limits hold for it too). The product is accumulated in the
same registers either way; with one block of the inner dimension (K at most a
few hundred, as here) ``c + product`` is rounded exactly as ``matmul`` then
``+=`` round it (tested). Where no such library is found (a NumPy built on
another BLAS), :func:`add_product` returns False and the caller does the
two passes.
"""

from __future__ import annotations

import ctypes
import itertools

import numpy as np

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS's enum values
PREFIXES, SUFFIXES = ("scipy_", ""), ("64_", "_64", "")  # NumPy's wheels: scipy_cblas_sgemm64_

_gemm = None  # {dtype: (function, int type)}, found on first use; {} when there is none


def _find() -> dict:
    """NumPy's BLAS gemm functions, by dtype, or {} when they cannot be found."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as umath
    try:
        lib = ctypes.CDLL(umath.__file__)  # its symbols and its libraries' (NumPy's BLAS)
    except OSError:
        return {}
    for prefix, suffix in itertools.product(PREFIXES, SUFFIXES):
        found = {}
        for dtype, c_float, letter in ((np.float32, ctypes.c_float, "s"),
                                       (np.float64, ctypes.c_double, "d")):  # fmt: skip
            function = getattr(lib, f"{prefix}cblas_{letter}gemm{suffix}", None)
            if function is None:
                break
            index = ctypes.c_int64 if suffix else ctypes.c_int  # 64-bit BLAS ints ("ILP64")
            function.restype = None
            function.argtypes = [ctypes.c_int] * 3 + [index] * 3 + [
                c_float, ctypes.c_void_p, index, ctypes.c_void_p, index,
                c_float, ctypes.c_void_p, index,
            ]  # fmt: skip
            found[np.dtype(dtype)] = (function, index)
        if len(found) == 2:
            return found
    return {}


def available() -> bool:
    """Whether :func:`add_product` can run here."""
    global _gemm
    if _gemm is None:
        _gemm = _find()
    return bool(_gemm)


def add_product(a, b, c, trans="nn") -> bool:
    """``c += op(a) @ op(b)`` in place, ``trans`` as BLAS spells it ("tn": a
    transposed); a, b, c C-contiguous 2-D arrays of one float dtype. Returns
    False, doing nothing, when it cannot (no BLAS found, other arrays)."""
    if not available() or not all(x.flags.c_contiguous and x.ndim == 2 for x in (a, b, c)):
        return False
    if not (a.dtype == b.dtype == c.dtype) or c.dtype not in _gemm:
        return False
    function, _ = _gemm[c.dtype]
    m, k = a.shape[::-1] if trans[0] == "t" else a.shape
    n = b.shape[0] if trans[1] == "t" else b.shape[1]
    if c.shape != (m, n) or (b.shape[1] if trans[1] == "t" else b.shape[0]) != k:
        raise ValueError(f"shapes {a.shape}, {b.shape}, {c.shape} do not fit trans={trans!r}")
    if c.size == 0 or k == 0:  # nothing to add (and BLAS wants leading dimensions >= 1)
        return True
    flags = [TRANS if t == "t" else NO_TRANS for t in trans]
    function(ROW_MAJOR, *flags, m, n, k, 1.0, a.ctypes.data, a.shape[1],
             b.ctypes.data, b.shape[1], 1.0, c.ctypes.data, n)  # fmt: skip
    return True
