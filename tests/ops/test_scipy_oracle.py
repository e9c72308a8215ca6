"""npcnn against SciPy: an oracle that nobody on this project wrote.

``parity_tests/`` compare npcnn with TensorFlow, and the rest of ``tests/``
compares npcnn with itself (naive == ops == fast, finite differences). This
file adds a third, TensorFlow-free witness: every op is recomputed from SciPy's
own routines, following the textbook formula rather than npcnn's code:

- conv2d forward: ``scipy.signal.correlate`` of each padded input channel with
  its kernel slice ("valid"), summed over input channels, subsampled by the
  strides, plus the bias; backward: ``scipy.signal.convolve`` ("full") of the
  stride-upsampled ``dy`` with the kernel, cropped to the padding, for dx, and
  ``correlate(x_pad, dy_upsampled)`` for dw -- not im2col/col2im;
- max-pool forward: ``scipy.ndimage.maximum_filter`` on the input padded with
  -inf, subsampled; backward: ``np.argmax`` over each window (it returns the
  first maximum in row-major order, TensorFlow's rule) and a plain loop;
- softmax, log-softmax and the sparse cross-entropy (from logits, and from
  probabilities with Keras's clip to [1e-7, 1 - 1e-7], log, softmax
  cross-entropy): ``scipy.special.softmax``, ``log_softmax``, ``logsumexp``;
  the loss gradient is ``softmax - onehot``.

TensorFlow's 'same' padding is re-derived here from its documented formula
(:func:`same_padding`), not taken from ``npcnn.ops.padding``, and the
convolutions use ``method="direct"`` (an FFT's error is relative to the whole
array's norm, not to each element's terms, and would void the bound below).

**Tolerances.** Max-pool's forward pass and its gradient routing only select
and move numbers: they must match bit for bit. Everything else is compared
elementwise against a worst-case rounding bound, the rule of
``parity_tests/README.md`` ("Tolerances"), restated here so that ``tests/``
stands alone::

    |npcnn - scipy|  <=  2 * c * (eps * M + tiny)

``eps`` is the machine epsilon of the input's dtype (the oracle runs in
float64); ``c`` counts roundings: a sum of K products, added in any order or
grouping, errs by at most K * eps * (sum of |products|) (Higham's gamma_K),
an exp or log counts 4 (NumPy's float32 SIMD exp/log are within 4 ulp), one
multiply, divide or subtract counts 1; ``M`` is the magnitude the error is
relative to, e.g. the same convolution of ``|x|`` and ``|w|``; ``tiny`` covers
results that underflow to subnormals; the factor 2 lets both sides err, in
opposite directions. Nothing here was tuned to make a test pass. A real bug
(the odd padding cell on the wrong side, a gradient routed to the last
maximum, a missing clip) moves an element by O(M), far beyond c * eps * M.

Examples come from the Hypothesis profile in ``tests/conftest.py`` (``ci``:
40 derandomized examples per property; ``dev``: 500, randomized).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import scipy.special
from hypothesis import given
from hypothesis import strategies as st

from npcnn import fast, ops
from npcnn.ops.softmax import log_softmax

TIERS = [pytest.param(ops, id="ops"), pytest.param(fast, id="fast")]
DTYPES = st.sampled_from([np.float32, np.float64])
SEEDS = st.integers(0, 2**32 - 1)
EXP_LOG_ULPS = 4  # roundings counted for one exp or log
KERAS_EPSILON = 1e-7  # keras.backend.epsilon(), the clip of from_logits=False


# ---- tolerance rule (see the module docstring) ------------------------------------------
def rounding_bound(magnitude, roundings, dtype):
    """``2 * roundings * (eps * magnitude + tiny)``, elementwise, in float64."""
    info = np.finfo(dtype)
    magnitude = np.asarray(magnitude, dtype=np.float64)
    roundings = np.asarray(roundings, dtype=np.float64)
    return 2.0 * roundings * (float(info.eps) * magnitude + float(info.tiny))


# Like parity_tests/tolerances.assert_within, kept apart: SciPy's reference is float64
# (the dtypes differ by design), and this file needs nothing of parity_tests.
def assert_within(actual, expected, bound, what):
    """``|actual - expected| <= bound`` elementwise (NaN fails); shapes must agree."""
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), actual.shape)
    diff = np.abs(actual.astype(np.float64) - expected)
    bad = ~(diff <= bound)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {actual.size} elements differ by more than the "
            f"rounding bound; first at {index}: npcnn={actual[index]!r} "
            f"scipy={expected[index]!r} |diff|={diff[index]:.3g} bound={bound[index]:.3g}"
        )


# ---- TensorFlow's padding, re-derived ---------------------------------------------------
def same_padding(length, window, stride):
    """(before, after) for 'same', from TensorFlow's documented rule.

    The output has ceil(length / stride) cells; the padding needed is
    total = max((out - 1) * stride + window - length, 0), split as
    before = total // 2 and after = the rest: an odd cell goes after
    (bottom/right).
    """
    out = math.ceil(length / stride)
    total = max((out - 1) * stride + window - length, 0)
    return total // 2, total - total // 2


def paddings(in_hw, window, strides, padding):
    """((top, bottom), (left, right)): no padding for 'valid'."""
    if padding == "valid":
        return (0, 0), (0, 0)
    return tuple(same_padding(n, k, s) for n, k, s in zip(in_hw, window, strides))


def output_hw(in_hw, window, strides, padding):
    """(H_out, W_out): the window's positions on the padded input, every stride-th."""
    pads = paddings(in_hw, window, strides, padding)
    return tuple(
        len(range(0, n + sum(pad) - k + 1, s)) for n, pad, k, s in zip(in_hw, pads, window, strides)
    )


def pad_hw(x, pads, value=0.0):
    """Pad the H and W axes of an NHWC array."""
    return np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=value)


@pytest.mark.parametrize(
    "length, window, stride, expected",
    [
        (5, 3, 2, (1, 1)),  # out 3: (3-1)*2 + 3 - 5 = 2 cells, one each side
        (4, 2, 1, (0, 1)),  # one cell: it goes after (bottom/right)
        (6, 4, 2, (1, 1)),
        (7, 6, 3, (2, 3)),  # out 3: 2*3 + 6 - 7 = 5 cells: 2 before, 3 after
        (8, 1, 3, (0, 0)),  # (3-1)*3 + 1 - 8 < 0: no padding
    ],
)
def test_the_oracle_padding_rule_on_worked_examples(length, window, stride, expected):
    """The oracle's own padding rule, on hand-worked cases of TensorFlow's formula."""
    assert same_padding(length, window, stride) == expected


# ---- conv2d -----------------------------------------------------------------------------
class ConvCase(NamedTuple):
    x: np.ndarray  # (N, H, W, Cin)
    w: np.ndarray  # (kh, kw, Cin, Cout)
    b: np.ndarray  # (Cout,)
    dy: np.ndarray  # an upstream gradient (N, H_out, W_out, Cout)
    strides: tuple
    padding: str


@st.composite
def conv_cases(draw):
    """Kernels 1-6 (even ones too), strides 1-3, both paddings, batch 0-3, channels 1-3."""
    dtype = draw(DTYPES)
    kernel = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["same", "valid"]))
    smallest = kernel if padding == "valid" else (1, 1)
    in_hw = tuple(draw(st.integers(low, low + 7)) for low in smallest)
    n, cin, cout = draw(st.integers(0, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(SEEDS))
    x = rng.standard_normal((n, *in_hw, cin)).astype(dtype)
    w = rng.standard_normal((*kernel, cin, cout)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    dy = rng.standard_normal((n, *output_hw(in_hw, kernel, strides, padding), cout))
    dy = dy.astype(dtype)
    return ConvCase(x, w, b, dy, strides, padding)


def scipy_conv2d(x, w, b, strides, padding):
    """y[n, :, :, co] = b[co] + sum_ci correlate(x_pad[n, :, :, ci], w[:, :, ci, co])[::sh, ::sw].

    ``correlate(..., mode="valid")`` slides the kernel, unflipped, over every
    position where it fits; the stride keeps every sh-th row and sw-th column
    of that. Computed in float64.
    """
    x, w, b = (np.asarray(a, dtype=np.float64) for a in (x, w, b))
    (kh, kw, cin, cout), (sh, sw) = w.shape, strides
    x_pad = pad_hw(x, paddings(x.shape[1:3], (kh, kw), strides, padding))
    out_h = len(range(0, x_pad.shape[1] - kh + 1, sh))
    out_w = len(range(0, x_pad.shape[2] - kw + 1, sw))
    y = np.zeros((x.shape[0], out_h, out_w, cout))
    for n in range(x.shape[0]):
        for co in range(cout):
            for ci in range(cin):
                full = scipy.signal.correlate(
                    x_pad[n, :, :, ci], w[:, :, ci, co], mode="valid", method="direct"
                )
                y[n, :, :, co] += full[::sh, ::sw]
    return y + b


def scipy_conv2d_backward(x, w, dy, strides, padding):
    """(dx, dw, db) of a convolution, the classic way.

    Put ``dy`` back on the stride-1 grid (``dy_up``: zeros between the strided
    outputs). Then dx_pad[n, :, :, ci] = sum_co convolve(dy_up[n, :, :, co],
    w[:, :, ci, co], mode="full") -- the full convolution, i.e. correlation
    with the flipped kernel -- cropped to the unpadded input;
    dw[:, :, ci, co] = sum_n correlate(x_pad[n, :, :, ci], dy_up[n, :, :, co],
    mode="valid"); db = sum of dy over batch and positions. Computed in float64.
    """
    x, w, dy = (np.asarray(a, dtype=np.float64) for a in (x, w, dy))
    (kh, kw, cin, cout), (sh, sw) = w.shape, strides
    n_images, height, width, _ = x.shape
    pads = paddings((height, width), (kh, kw), strides, padding)
    x_pad = pad_hw(x, pads)
    dy_up = np.zeros((n_images, x_pad.shape[1] - kh + 1, x_pad.shape[2] - kw + 1, cout))
    dy_up[:, ::sh, ::sw, :] = dy
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for n in range(n_images):
        for ci in range(cin):
            for co in range(cout):
                dx_pad[n, :, :, ci] += scipy.signal.convolve(
                    dy_up[n, :, :, co], w[:, :, ci, co], mode="full", method="direct"
                )
                dw[:, :, ci, co] += scipy.signal.correlate(
                    x_pad[n, :, :, ci], dy_up[n, :, :, co], mode="valid", method="direct"
                )
    (top, _), (left, _) = pads
    dx = dx_pad[:, top : top + height, left : left + width, :]
    return dx, dw, dy.sum(axis=(0, 1, 2))


@pytest.mark.parametrize("tier", TIERS)
@given(case=conv_cases())
def test_conv2d_forward_matches_scipy_correlate(tier, case):
    """y within c = kh*kw*Cin + 1 roundings (the products plus the bias) of
    M = the same convolution of |x| and |w|, plus |b|."""
    x, w, b, _, strides, padding = case
    y, _ = tier.conv2d_forward(x, w, b, strides=strides, padding=padding)
    kh, kw, cin, _ = w.shape
    expected = scipy_conv2d(x, w, b, strides, padding)
    magnitude = scipy_conv2d(np.abs(x), np.abs(w), np.abs(b), strides, padding)
    assert y.dtype == x.dtype
    assert_within(y, expected, rounding_bound(magnitude, kh * kw * cin + 1, x.dtype), "y")


@pytest.mark.parametrize("tier", TIERS)
@given(case=conv_cases())
def test_conv2d_backward_matches_scipy_convolve(tier, case):
    """dx within c = kh*kw*Cout roundings of M = the same formula with |w|, |dy|;
    dw and db within c = N*H_out*W_out of M = the same with |x|, |dy|."""
    x, w, b, dy, strides, padding = case
    _, cache = tier.conv2d_forward(x, w, b, strides=strides, padding=padding)
    dx, dw, db = tier.conv2d_backward(dy, cache)
    kh, kw, _, cout = w.shape
    positions = dy.shape[0] * dy.shape[1] * dy.shape[2]
    expected = scipy_conv2d_backward(x, w, dy, strides, padding)
    magnitude = scipy_conv2d_backward(np.abs(x), np.abs(w), np.abs(dy), strides, padding)
    assert dx.dtype == dw.dtype == db.dtype == x.dtype
    assert_within(dx, expected[0], rounding_bound(magnitude[0], kh * kw * cout, x.dtype), "dx")
    assert_within(dw, expected[1], rounding_bound(magnitude[1], positions, x.dtype), "dw")
    assert_within(db, expected[2], rounding_bound(magnitude[2], positions, x.dtype), "db")


# ---- max-pooling ------------------------------------------------------------------------
class PoolCase(NamedTuple):
    x: np.ndarray  # (N, H, W, C)
    dy: np.ndarray  # distinct small integers: any summation order gives the same bits
    pool: tuple
    strides: tuple | None  # None: the pool size, as Keras
    padding: str


@st.composite
def pool_cases(draw):
    """Windows 1-4, strides 1-3 (or None), both paddings, batch 0-3; ties on a grid."""
    dtype = draw(DTYPES)
    pool = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    strides = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = draw(st.sampled_from(["same", "valid"]))
    smallest = pool if padding == "valid" else (1, 1)
    in_hw = tuple(draw(st.integers(low, low + 7)) for low in smallest)
    n, channels = draw(st.integers(0, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(SEEDS))
    if draw(st.booleans()):  # a coarse grid: many windows hold several equal maxima
        x = rng.integers(-2, 3, size=(n, *in_hw, channels)) * 0.5
    else:
        x = rng.standard_normal((n, *in_hw, channels))
    x = x.astype(dtype)
    out_hw = output_hw(in_hw, pool, pool if strides is None else strides, padding)
    out_shape = (n, *out_hw, channels)
    dy = (rng.permutation(math.prod(out_shape)) + 1).reshape(out_shape).astype(dtype)
    return PoolCase(x, dy, pool, strides, padding)


def scipy_maxpool(x, pool, strides, padding):
    """``scipy.ndimage.maximum_filter`` over (ph, pw) windows of x padded with -inf.

    The filter's ``origin`` of -(size // 2) anchors each window at its top-left
    cell (by default SciPy centres it), so filtered[n, r, c] is the max of
    x_pad[n, r : r + ph, c : c + pw]; the strides keep every sh-th row and
    sw-th column of the positions where the window fits. -inf padding never
    wins, so a window at the border is the max of its real cells.
    """
    (ph, pw) = pool
    sh, sw = pool if strides is None else strides
    x_pad = pad_hw(x, paddings(x.shape[1:3], pool, (sh, sw), padding), value=-np.inf)
    filtered = scipy.ndimage.maximum_filter(
        x_pad,
        size=(1, ph, pw, 1),
        origin=(0, -(ph // 2), -(pw // 2), 0),
        mode="constant",
        cval=-np.inf,
    )
    return filtered[:, : x_pad.shape[1] - ph + 1 : sh, : x_pad.shape[2] - pw + 1 : sw, :]


def first_max_routing(x, dy, pool, strides, padding):
    """dx: each dy[n, oh, ow, c] added to the first maximum of its window.

    ``sliding_window_view`` lists every window's cells; ``np.argmax`` over a
    window flattened in row-major order returns the *first* maximum, which is
    where TensorFlow sends the gradient when several cells tie. A plain loop
    then adds each dy at its winner.
    """
    ph, pw = pool
    sh, sw = pool if strides is None else strides
    pads = paddings(x.shape[1:3], pool, (sh, sw), padding)
    x_pad = pad_hw(x, pads, value=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(x_pad, pool, axis=(1, 2))[:, ::sh, ::sw]
    winners = windows.reshape(*windows.shape[:4], ph * pw).argmax(axis=-1)  # (N, Ho, Wo, C)
    dx_pad = np.zeros(x_pad.shape, dtype=dy.dtype)
    for (n, oh, ow, c), winner in np.ndenumerate(winners):
        i, j = divmod(int(winner), pw)
        dx_pad[n, oh * sh + i, ow * sw + j, c] += dy[n, oh, ow, c]
    (top, _), (left, _) = pads
    return dx_pad[:, top : top + x.shape[1], left : left + x.shape[2], :]


@pytest.mark.parametrize("tier", TIERS)
@given(case=pool_cases())
def test_maxpool2d_forward_equals_scipy_maximum_filter(tier, case):
    """A max selects one of its inputs: bit for bit, in the input's dtype."""
    y, _ = tier.maxpool2d_forward(case.x, case.pool, case.strides, case.padding)
    expected = scipy_maxpool(case.x, case.pool, case.strides, case.padding)
    assert y.dtype == expected.dtype == case.x.dtype
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("tier", TIERS)
@given(case=pool_cases())
def test_maxpool2d_backward_routes_to_the_first_maximum(tier, case):
    """Bit for bit: dy holds distinct integers, so a cell that wins several
    windows gets the same exact sum in any order, and a gradient sent to the
    wrong one of two tied cells changes dx."""
    _, cache = tier.maxpool2d_forward(case.x, case.pool, case.strides, case.padding)
    dx = tier.maxpool2d_backward(case.dy, cache)
    expected = first_max_routing(case.x, case.dy, case.pool, case.strides, case.padding)
    assert dx.dtype == expected.dtype == case.x.dtype
    np.testing.assert_array_equal(dx, expected)


# ---- softmax and the cross-entropy ------------------------------------------------------
# Every op in this section has a single implementation (npcnn.fast re-exports it).
class LogitsCase(NamedTuple):
    z: np.ndarray  # (N, K)
    labels: np.ndarray  # (N,) class ids
    upstream: float  # dL/dloss


@st.composite
def logits_cases(draw, min_rows=0):
    """N in [min_rows, 4] rows of K in [1, 10] logits, spread 0.1 to 50."""
    dtype = draw(DTYPES)
    n, k = draw(st.integers(min_rows, 4)), draw(st.integers(1, 10))
    scale = draw(st.sampled_from([0.1, 1.0, 10.0, 50.0]))
    rng = np.random.default_rng(draw(SEEDS))
    z = (rng.standard_normal((n, k)) * scale).astype(dtype)
    labels = rng.integers(0, k, size=n)
    upstream = draw(st.sampled_from([1.0, 0.5, -3.0]))
    return LogitsCase(z, labels, upstream)


def shift_spread(logits):
    """max_k |z_k - max z| per row, (N, 1): in float32 the shift z - max z rounds
    by eps/2 * |z_k - max z|, and exp turns that into a relative error of p."""
    logits = np.asarray(logits, dtype=np.float64)
    return np.abs(logits - logits.max(axis=-1, keepdims=True)).max(axis=-1, keepdims=True)


@given(case=logits_cases())
def test_softmax_matches_scipy(case):
    """p within c = K + 10 + max|z - max z| roundings relative to p itself:
    K for the sum, 4 + 4 for the exps in p_k and in the sum, 1 for the divide,
    and the exp of the shift's rounding."""
    z = case.z
    p, _ = ops.softmax_forward(z)
    expected = scipy.special.softmax(z.astype(np.float64), axis=-1)
    roundings = z.shape[-1] + 2 * EXP_LOG_ULPS + 2 + shift_spread(z)
    assert p.dtype == z.dtype
    assert_within(p, expected, rounding_bound(expected, roundings, z.dtype), "p")


@given(case=logits_cases())
def test_log_softmax_matches_scipy(case):
    """log p within c = K + 10 roundings of M = 1 + max|z - max z| + |log p|
    (an absolute error: the shift, the sum, exp, log and the subtraction)."""
    z = case.z
    expected = scipy.special.log_softmax(z.astype(np.float64), axis=-1)
    magnitude = 1.0 + shift_spread(z) + np.abs(expected)
    bound = rounding_bound(magnitude, z.shape[-1] + 2 * EXP_LOG_ULPS + 2, z.dtype)
    assert_within(log_softmax(z), expected, bound, "log_softmax")


def reduce_with_bound(per_example, per_bound, reduction, dtype):
    """The per-example losses (all >= 0) reduced by 'none', 'sum' or 'mean',
    and the bound: for a sum the per-example bounds add up and the N-term sum
    adds N roundings of the total; the mean divides both and adds one rounding."""
    if reduction == "none":
        return per_example, per_bound
    total = per_example.sum()
    bound = per_bound.sum() + rounding_bound(total, per_example.size, dtype)
    if reduction == "sum":
        return total, bound
    n = per_example.size
    return total / n, bound / n + rounding_bound(total / n, 1, dtype)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@given(case=logits_cases(min_rows=1))
def test_crossentropy_from_logits_matches_scipy_logsumexp(reduction, case):
    """loss_n = logsumexp(z_n) - z_n[t_n], within the log-softmax bound per example."""
    z, labels = case.z, case.labels
    loss, _ = ops.sparse_categorical_crossentropy_forward(
        z, labels, from_logits=True, reduction=reduction
    )
    z64 = z.astype(np.float64)
    per_example = scipy.special.logsumexp(z64, axis=1) - z64[np.arange(len(labels)), labels]
    magnitude = 1.0 + shift_spread(z)[:, 0] + per_example
    per_bound = rounding_bound(magnitude, z.shape[1] + 2 * EXP_LOG_ULPS + 2, z.dtype)
    expected, bound = reduce_with_bound(per_example, per_bound, reduction, z.dtype)
    assert loss.dtype == z.dtype and loss.shape == np.shape(expected)
    assert_within(loss, expected, bound, f"loss ({reduction})")


class ProbabilitiesCase(NamedTuple):
    p: np.ndarray  # (N, K), in [0, 1], rows not necessarily summing to 1
    labels: np.ndarray
    upstream: float


@st.composite
def probabilities_cases(draw):
    """Probabilities with exact 0s and 1s and values at, inside and outside the
    clip bounds; rows softmax-normalised or not (Keras renormalises anyway)."""
    dtype = draw(DTYPES)
    n, k = draw(st.integers(1, 4)), draw(st.integers(1, 10))
    rng = np.random.default_rng(draw(SEEDS))
    p = rng.uniform(0.0, 1.0, size=(n, k))
    if draw(st.booleans()):
        p = scipy.special.softmax(rng.standard_normal((n, k)) * 5.0, axis=1)
    special = [0.0, 1.0, 1e-9, 0.5e-7, KERAS_EPSILON, 2e-7, 1 - 1e-8, 1 - KERAS_EPSILON]
    at_edges = rng.random((n, k)) < draw(st.sampled_from([0.0, 0.3, 0.8]))
    p = np.where(at_edges, rng.choice(special, size=(n, k)), p).astype(dtype)
    labels = rng.integers(0, k, size=n)
    upstream = draw(st.sampled_from([1.0, 0.5, -3.0]))
    return ProbabilitiesCase(p, labels, upstream)


def keras_clip(p):
    """clip(p, 1e-7, 1 - 1e-7) with the bounds rounded to p's dtype (as Keras
    does), as float64, and where the clip lets the gradient through (at the
    bounds included: Keras's clip is maximum(minimum(p, hi), lo))."""
    lo, hi = float(p.dtype.type(KERAS_EPSILON)), float(p.dtype.type(1.0 - KERAS_EPSILON))
    p64 = p.astype(np.float64)
    return np.clip(p64, lo, hi), (p64 >= lo) & (p64 <= hi)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@given(case=probabilities_cases())
def test_crossentropy_from_probabilities_matches_scipy_log_softmax(reduction, case):
    """loss_n = -log_softmax(log(clip(p_n)))[t_n]: Keras's clip, log, then
    softmax cross-entropy, which renormalises the clipped row. Bound: the
    log-softmax one, plus 2 * 4 * max|log clip(p)| for the logs' own error
    (a log-softmax moves at most twice as far as its inputs)."""
    p, labels = case.p, case.labels
    loss, _ = ops.sparse_categorical_crossentropy_forward(p, labels, reduction=reduction)
    clipped, _ = keras_clip(p)
    logits = np.log(clipped)
    per_example = -scipy.special.log_softmax(logits, axis=1)[np.arange(len(labels)), labels]
    magnitude = 1.0 + shift_spread(logits)[:, 0] + per_example
    per_bound = rounding_bound(
        magnitude, p.shape[1] + 2 * EXP_LOG_ULPS + 2, p.dtype
    ) + rounding_bound(np.abs(logits).max(axis=1), 2 * EXP_LOG_ULPS, p.dtype)
    expected, bound = reduce_with_bound(per_example, per_bound, reduction, p.dtype)
    assert loss.dtype == p.dtype and loss.shape == np.shape(expected)
    assert_within(loss, expected, bound, f"loss ({reduction})")


def scale_for(reduction, n):
    """d(reduced loss) / d(loss of one example): 1 for 'sum', 1/N for 'mean'."""
    return 1.0 / n if reduction == "mean" else 1.0


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@given(case=logits_cases(min_rows=1))
def test_crossentropy_gradient_from_logits_is_softmax_minus_onehot(reduction, case):
    """dL/dz = (softmax(z) - onehot(t)) * upstream (/ N for 'mean'), with
    softmax from SciPy. Bound: softmax's roundings relative to q, plus 3 (the
    one-hot subtraction, the division by N, the upstream multiply), relative to
    (q + |q - onehot|) * |upstream| / N."""
    z, labels = case.z, case.labels
    _, cache = ops.sparse_categorical_crossentropy_forward(
        z, labels, from_logits=True, reduction=reduction
    )
    dz = ops.sparse_categorical_crossentropy_backward(z.dtype.type(case.upstream), cache)
    q = scipy.special.softmax(z.astype(np.float64), axis=1)
    onehot = np.eye(z.shape[1])[labels]
    factor = case.upstream * scale_for(reduction, len(labels))
    expected = (q - onehot) * factor
    magnitude = (q + np.abs(q - onehot)) * abs(factor)
    roundings = z.shape[1] + 2 * EXP_LOG_ULPS + 2 + shift_spread(z) + 3
    assert dz.dtype == z.dtype
    assert_within(dz, expected, rounding_bound(magnitude, roundings, z.dtype), "dz")


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@given(case=probabilities_cases())
def test_crossentropy_gradient_from_probabilities_goes_through_the_clip(reduction, case):
    """dL/dp = (q - onehot) * upstream (/ N) / clip(p) where the clip passes
    the gradient (p in [1e-7, 1 - 1e-7], bounds included) and exactly 0
    elsewhere; q = softmax(log(clip(p))) from SciPy. Bound: the logits-gradient
    one, plus 2 * 4 * max|log clip(p)| relative roundings for the logs and 1
    for the division by clip(p)."""
    p, labels = case.p, case.labels
    _, cache = ops.sparse_categorical_crossentropy_forward(p, labels, reduction=reduction)
    dp = ops.sparse_categorical_crossentropy_backward(p.dtype.type(case.upstream), cache)
    clipped, passes = keras_clip(p)
    logits = np.log(clipped)
    q = scipy.special.softmax(logits, axis=1)
    onehot = np.eye(p.shape[1])[labels]
    factor = case.upstream * scale_for(reduction, len(labels))
    expected = np.where(passes, (q - onehot) * factor / clipped, 0.0)
    magnitude = np.where(passes, (q + np.abs(q - onehot)) * abs(factor) / clipped, 0.0)
    log_roundings = 2 * EXP_LOG_ULPS * np.abs(logits).max(axis=1, keepdims=True)
    roundings = p.shape[1] + 2 * EXP_LOG_ULPS + 2 + shift_spread(logits) + 3 + log_roundings + 1
    assert dp.dtype == p.dtype
    assert_within(dp, expected, rounding_bound(magnitude, roundings, p.dtype), "dp")
