"""How far a learner's numbers may be from the reference, and how they differ when they are not.

The tolerances follow the rule the parity tests derive from rounding-error
bounds (``parity_tests/README.md``)::

    |learner - reference|  <=  2 * c * (eps * M + tiny)        elementwise

``eps`` is the dtype's machine epsilon, ``c`` counts the roundings an element
goes through (a sum of K terms counts K, in any order; an exp or a log counts
:data:`TRANSCENDENTAL_ULPS`), ``M`` is the magnitude the error is relative to
(for a sum of products, the same sum of absolute values), ``tiny`` the
smallest normal number, and the 2 because both sides may round. Ops that only
move or select numbers must match exactly (ReLU, flatten, the max-pool's
forward; its backward adds up the gradients of overlapping windows). A
correct learner's code, summing in any order, stays inside the bound; a bug
moves an element by O(M), far outside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import ops
from ..ops.softmax import softmax

TRANSCENDENTAL_ULPS = 4  # an exp or a log: a few units in the last place


def rounding_bound(magnitude, roundings, dtype):
    """``2 * roundings * (eps * magnitude + tiny)`` in float64."""
    info = np.finfo(dtype)
    magnitude = np.asarray(magnitude, dtype=np.float64)
    return 2.0 * roundings * (float(info.eps) * magnitude + float(info.tiny))


def _abs64(a):
    return np.abs(np.asarray(a, dtype=np.float64))


def bounds(case):
    """(bound of the forward output, bounds of the gradients) for ``case``."""
    dtype, args, up = case.dtype, case.args, case.upstream
    if case.op in ("relu", "flatten"):
        return 0.0, (0.0,)
    if case.op in MORE_BOUNDS:
        return MORE_BOUNDS[case.op](case)
    if case.op == "maxpool2d":  # the max is exact; a cell that wins overlapping windows sums
        x, pool, strides, padding = args
        _, cache = ops.maxpool2d_forward(x, pool, strides, padding)
        last_i, last_j = cache.taps[-1]  # the window is (last_i + 1) x (last_j + 1) cells
        sh, sw = cache.strides
        overlap = -(-(last_i + 1) // sh) * -(-(last_j + 1) // sw)  # windows sharing a cell
        return 0.0, (rounding_bound(ops.maxpool2d_backward(_abs64(up), cache), overlap, dtype),)
    if case.op == "dense":
        x, w, b = (_abs64(a) for a in args)
        dy = _abs64(up)
        n, (d_in, d_out) = x.shape[0], w.shape
        return rounding_bound(x @ w + b, d_in + 1, dtype), (
            rounding_bound(dy @ w.T, d_out, dtype),
            rounding_bound(x.T @ dy, n, dtype),
            rounding_bound(dy.sum(axis=0), n, dtype),
        )
    if case.op == "conv2d":
        x, w, b = (_abs64(a) for a in args[:3])
        y, cache = ops.conv2d_forward(x, w, b, *args[3:])
        dx, dw, db = ops.conv2d_backward(_abs64(up), cache)
        kh, kw, cin, cout = w.shape
        positions = y.shape[0] * y.shape[1] * y.shape[2]
        return rounding_bound(y, kh * kw * cin + 1, dtype), (
            rounding_bound(dx, kh * kw * cout, dtype),
            rounding_bound(dw, positions, dtype),
            rounding_bound(db, positions, dtype),
        )
    if case.op == "softmax":
        z = np.asarray(args[0], dtype=np.float64)
        k = z.shape[-1]
        p = softmax(z)
        scale = 1.0 + np.abs(z).max(axis=-1, keepdims=True)  # exp(z - m) loses eps*|z| relative
        dp = _abs64(up)
        grad = p * (dp + (dp * p).sum(axis=-1, keepdims=True)) * scale
        c = k + 2 * TRANSCENDENTAL_ULPS
        return rounding_bound(p * scale, c + 4, dtype), (rounding_bound(grad, c + 6, dtype),)
    if case.op == "batchnorm":
        return _batchnorm_bounds(case)
    return _crossentropy_bounds(case)


def _batchnorm_bounds(case):
    """The mean and the variance are sums of m terms; x - mean carries the mean's error
    (m * eps * max|x|), which 1 / sqrt(var + epsilon) amplifies: every magnitude
    below is relative to that worst case, in float64."""
    x, gamma, beta, epsilon = case.args
    dtype, axes = case.dtype, tuple(range(x.ndim - 1))
    x64, g64, dy = np.asarray(x, dtype=np.float64), _abs64(gamma), _abs64(case.upstream)
    m = x.size // x.shape[-1]
    inv = 1 / np.sqrt(x64.var(axis=axes) + epsilon)
    spread = 2 * np.abs(x64).max(axis=axes) * inv  # |x_hat| and its error's scale, per channel
    c = 4 * m + 20
    y = g64 * spread + _abs64(beta)
    dx = g64 * inv * (dy + dy.mean(axis=axes) + spread * (dy * spread).mean(axis=axes))
    dgamma = (dy * spread).sum(axis=axes)
    return rounding_bound(y + 0 * x64, c, dtype), (
        rounding_bound(dx * (1 + spread), c, dtype),
        rounding_bound(dgamma, c, dtype),
        rounding_bound(dy.sum(axis=axes), m, dtype),
    )


def _batchnorm_inference_bounds(case):
    """y = gamma * (x - moving_mean) / sqrt(moving_var + epsilon) + beta: a few roundings
    and a square root per element; dgamma and dbeta sum m of them."""
    x, gamma, beta, moving_mean, moving_var, epsilon = (_abs64(a) for a in case.args)
    dtype, axes, dy = case.dtype, tuple(range(x.ndim - 1)), _abs64(case.upstream)
    m = x.size // x.shape[-1]
    x_hat = (x + moving_mean) / np.sqrt(moving_var + epsilon)
    return rounding_bound(gamma * x_hat + beta, 8, dtype), (
        rounding_bound(dy * gamma / np.sqrt(moving_var + epsilon), 8, dtype),
        rounding_bound((dy * x_hat).sum(axis=axes), m + 8, dtype),
        rounding_bound(dy.sum(axis=axes), m, dtype),
    )


def _dropout_bounds(case):
    """x / (1 - rate) or x * (1 / (1 - rate)): two roundings either way."""
    x, rate, _ = case.args
    scale = 1 / (1 - rate)
    return rounding_bound(_abs64(x) * scale, 3, case.dtype), (
        rounding_bound(_abs64(case.upstream) * scale, 3, case.dtype),
    )


def _avgpool2d_bounds(case):
    """A mean of at most ph*pw cells; a cell sums the shares of the windows that overlap it."""
    x, pool, strides, padding = case.args
    y, cache = ops.avgpool2d_forward(_abs64(x), pool, strides, padding)
    c = len(cache.taps) + 2
    dx = ops.avgpool2d_backward(_abs64(case.upstream), cache)
    return rounding_bound(y, c, case.dtype), (rounding_bound(dx, c, case.dtype),)


def _global_avgpool2d_bounds(case):
    x, dy = _abs64(case.args[0]), _abs64(case.upstream)
    cells = x.shape[1] * x.shape[2]
    dx = np.broadcast_to(dy[:, None, None, :] / cells, x.shape)
    return rounding_bound(x.mean(axis=(1, 2)), cells + 1, case.dtype), (
        rounding_bound(dx, 2, case.dtype),
    )


def _leaky_relu_bounds(case):
    """One product; the slope may be a (TensorFlow's float32 slope) or the Python float a,
    which differ by float32's rounding of a."""
    x, dy = _abs64(case.args[0]), _abs64(case.upstream)
    a = case.args[1] if len(case.args) > 1 else 0.3
    slack = float(np.finfo(np.float32).eps) * a
    return rounding_bound(a * x, 1, case.dtype) + slack * x, (
        rounding_bound(a * dy, 1, case.dtype) + slack * dy,
    )


def _squashing_bounds(case):
    """sigmoid and tanh: an exp or two and a division, in any of the usual formulas, whose
    error is relative to 1 (the outputs' scale); the backward's to |dy|."""
    one = np.ones_like(_abs64(case.args[0]))
    c = 2 * TRANSCENDENTAL_ULPS + 6
    return rounding_bound(one, c, case.dtype), (
        rounding_bound(_abs64(case.upstream), c, case.dtype),
    )


MORE_BOUNDS = {
    "batchnorm_inference": _batchnorm_inference_bounds,
    "dropout": _dropout_bounds,
    "avgpool2d": _avgpool2d_bounds,
    "global_avgpool2d": _global_avgpool2d_bounds,
    "leaky_relu": _leaky_relu_bounds,
    "sigmoid": _squashing_bounds,
    "tanh": _squashing_bounds,
}


def _crossentropy_bounds(case):
    y_pred, labels, from_logits, reduction = case.args
    dtype, (n, k) = case.dtype, y_pred.shape
    y = np.asarray(y_pred, dtype=np.float64)
    clipped = None if from_logits else np.clip(y, 1e-7, 1 - 1e-7)
    logits = y if from_logits else np.log(clipped)
    big = np.abs(logits).max(axis=1)  # the largest logit of each row
    each = 2 * big + np.log(k) + 1  # -log q[t] = logsumexp - logit[t]
    c = k + n + 2 * TRANSCENDENTAL_ULPS + 4
    if reduction == "none":
        out, per = each, _abs64(case.upstream)
    else:
        out = each.sum() / (n if reduction == "mean" else 1)
        per = np.full(n, float(_abs64(case.upstream)) / (n if reduction == "mean" else 1))
    onehot = np.eye(k)[labels]
    grad = (softmax(logits) + onehot) * per[:, None] * (1 + big[:, None])
    if clipped is not None:
        grad = grad / clipped
    return rounding_bound(out, c, dtype), (rounding_bound(grad, k + 12, dtype),)


@dataclass
class Mismatch:
    """How one result of the learner differs from the reference."""

    name: str  # 'y', 'dx', ...
    kind: str  # 'type', 'shape', 'dtype', 'nan', 'value'
    message: str  # one line
    details: list = field(default_factory=list)  # further lines (index, values, errors)


def _fmt(v) -> str:
    return np.format_float_positional(v, precision=8, trim="-") if np.isfinite(v) else str(v)


def as_array(value):
    """``value`` as a numeric ndarray, or None if it is not one (None, a dict, ...)."""
    if value is None:
        return None
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - whatever the learner returned
        return None
    return arr if arr.dtype.kind in "fiub" else None


def compare(name, got, expected, bound, dtype):
    """The :class:`Mismatch` between ``got`` and ``expected``, or None when within ``bound``."""
    expected = np.asarray(expected)
    arr = as_array(got)
    if arr is None:
        return Mismatch(
            name,
            "type",
            f"{name} is {type(got).__name__}, expected a NumPy array of shape {expected.shape}",
        )
    if arr.shape != expected.shape:
        return Mismatch(name, "shape", f"{name} has shape {arr.shape}, expected {expected.shape}")
    if arr.dtype != np.dtype(dtype):
        return Mismatch(
            name,
            "dtype",
            f"{name} is {arr.dtype} but the inputs are {np.dtype(dtype)}: "
            "the result must keep the inputs' dtype",
        )
    got64, exp64 = arr.astype(np.float64), expected.astype(np.float64)
    bad_finite = np.isfinite(got64) != np.isfinite(exp64)
    bad_finite |= ~np.isfinite(exp64) & ~((got64 == exp64) | (np.isnan(got64) & np.isnan(exp64)))
    if bad_finite.any():
        index = tuple(int(i) for i in np.argwhere(bad_finite)[0])
        return Mismatch(
            name,
            "nan",
            f"{name} holds {_fmt(arr[index])} at index {index}, where the reference has "
            f"{_fmt(expected[index])}",
        )
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), arr.shape)
    finite = np.isfinite(exp64)
    diff = np.where(finite, np.abs(got64 - exp64), 0.0)
    bad = diff > bound
    if not bad.any():
        return None
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    nonzero = bad & (exp64 != 0)
    if nonzero.any():
        rel = f"{(diff[nonzero] / np.abs(exp64[nonzero])).max():.3g}"
    else:
        rel = "- (the reference is 0 there)"
    allowed = bound[index]
    allowed = "none (must be equal)" if allowed < 1e-250 else f"{allowed:.3g} (from rounding)"
    where = f"index {index}" if index else "the value"
    return Mismatch(
        name,
        "value",
        f"{name} differs from the reference in {int(bad.sum())} of {arr.size} elements",
        [
            f"first at {where}: expected {_fmt(expected[index])}, got {_fmt(arr[index])}",
            f"max abs error {diff.max():.3g}, max rel error {rel}",
            f"difference allowed there: {allowed}",
        ],
    )


def same(got, other, bound, dtype) -> bool:
    """Does ``got`` equal ``other`` (a known mistake's result) up to rounding?"""
    a, b = as_array(got), as_array(other)
    if a is None or b is None or a.shape != b.shape:
        return False
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    both = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
    finite = np.isfinite(a64) & np.isfinite(b64)
    eps = float(np.finfo(dtype).eps)
    bound = np.asarray(bound, dtype=np.float64)
    if bound.shape != a.shape:  # a mistake of another shape: the reference's bound does not fit
        bound = bound.max(initial=0.0)
    with np.errstate(invalid="ignore"):
        close = finite & (np.abs(a64 - b64) <= bound + 1024 * eps * np.abs(b64))
    return bool((both | close).all())
