"""Op-by-op differential tests: every op in ``npcnn.ops`` against TensorFlow.

For each op, Hypothesis draws a geometry (shapes, windows 1..5, strides 1..3
per axis, 'same'/'valid', batches including 0 and 1, channel counts) and the
values; the test runs npcnn's ``*_forward``/``*_backward`` and TensorFlow's op
under ``tf.GradientTape`` (see ``tf_reference.py``) with the *same* random
upstream gradient, and compares the output and every gradient (inputs and
parameters) in float32 and float64.

Tolerances come from ``tolerances.rounding_bound`` and count the roundings of
each element (see ``README.md``); ops that only select or move numbers
(ReLU, max-pool forward, flatten) must match bit for bit.

Each op's section ends with targeted tests for what random draws rarely hit:
uneven 'same' padding, ties inside pooling windows, ReLU at exactly 0,
saturated softmax, probabilities at and beyond Keras's clip bounds, and the
empty batch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip(
    "tensorflow",
    reason="TensorFlow is not installed (pip install -e '.[test]'); set CI=1 to make this an error",
)

import keras  # noqa: E402
from hypothesis import given, note  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import npcnn  # noqa: E402
from npcnn import ops  # noqa: E402
from npcnn.ops.crossentropy import EPSILON  # noqa: E402
from npcnn.ops.padding import padding_amounts  # noqa: E402
from parity_tests import tf_reference as tf_ref  # noqa: E402
from parity_tests.strategies import (  # noqa: E402
    DTYPES,
    WindowCase,
    asymmetric_same_cases,
    batch_sizes,
    float_arrays,
    grid_arrays,
    label_arrays,
    window_cases,
)
from parity_tests.tolerances import (  # noqa: E402
    TRANSCENDENTAL_ULPS,
    assert_exact,
    assert_within,
    rounding_bound,
)

F64 = np.float64


@pytest.fixture(scope="module", autouse=True, params=["ops", "fast", "fast-rowwise"])
def tier(request):
    """Every test of this module runs on both tiers: the readable ``npcnn.ops``
    and the fast ``npcnn.fast`` (the name ``ops`` below is each in turn); on
    ``fast-rowwise`` the fast tier convolves every kernel row-wise
    (``npcnn/fast/rowwise.py``), not only those of ``ROWWISE_MIN_K`` values."""
    global ops
    from npcnn.fast import conv2d as fast_conv2d

    ops = getattr(npcnn, request.param.split("-")[0])
    threshold = fast_conv2d.ROWWISE_MIN_K
    if request.param == "fast-rowwise":
        fast_conv2d.ROWWISE_MIN_K = 1
    yield request.param
    ops, fast_conv2d.ROWWISE_MIN_K = npcnn.ops, threshold


by_dtype = pytest.mark.parametrize("dtype", DTYPES, ids=[np.dtype(d).name for d in DTYPES])


def magnitude(a):
    """|a| in float64: fed through an op, it gives the sum of |terms| (the error scale)."""
    return np.abs(np.asarray(a, dtype=F64))


def describe(case: WindowCase) -> str:
    """One line for ``note()``: shapes, window, strides and where 'same' puts the zeros."""
    pads = padding_amounts((case.height, case.width), case.window, case.strides, case.padding)
    return (
        f"x{case.input_shape} window={case.window} strides={case.strides} "
        f"padding={case.padding!r} npcnn_pads((top,bottom),(left,right))={pads} "
        f"out_hw={case.output_hw}"
    )


# --------------------------------------------------------------------------- conv2d


def check_conv2d(case: WindowCase, x, w, b, dy):
    """conv2d forward and dx, dw, db against ``tf.nn.conv2d`` + b.

    Terms summed per element: y: kh*kw*Cin products + the bias; dx: at most
    kh*kw*Cout (taps times output channels); dw and db: N*H_out*W_out.
    """
    dtype = x.dtype.type
    y, cache = ops.conv2d_forward(x, w, b, strides=case.strides, padding=case.padding)
    dx, dw, db = ops.conv2d_backward(dy, cache)
    y_tf, (dx_tf, dw_tf, db_tf) = tf_ref.conv2d(x, w, b, dy, case.strides, case.padding)
    y_m, (dx_m, dw_m, db_m) = tf_ref.conv2d(
        magnitude(x), magnitude(w), magnitude(b), magnitude(dy), case.strides, case.padding
    )
    kh, kw = case.window
    positions = case.batch * math.prod(case.output_hw)
    assert_within(y, y_tf, rounding_bound(y_m, kh * kw * case.channels + 1, dtype), "conv2d y")
    assert_within(dx, dx_tf, rounding_bound(dx_m, kh * kw * case.out_channels, dtype), "conv2d dx")
    assert_within(dw, dw_tf, rounding_bound(dw_m, positions, dtype), "conv2d dw")
    assert_within(db, db_tf, rounding_bound(db_m, positions, dtype), "conv2d db")


def draw_conv2d_arrays(data, case: WindowCase, dtype):
    x = data.draw(float_arrays(case.input_shape, dtype), label="x")
    w = data.draw(float_arrays(case.kernel_shape, dtype), label="w")
    b = data.draw(float_arrays((case.out_channels,), dtype), label="b")
    dy = data.draw(float_arrays((case.batch, *case.output_hw, case.out_channels), dtype), "dy")
    return x, w, b, dy


@by_dtype
@given(case=window_cases(max_batch=3, max_channels=3, max_out_channels=3), data=st.data())
def test_conv2d_matches_tf(dtype, case, data):
    note(f"conv2d {describe(case)} kernel{case.kernel_shape}")
    check_conv2d(case, *draw_conv2d_arrays(data, case, dtype))


@by_dtype
@given(case=asymmetric_same_cases(max_out_channels=2), data=st.data())
def test_conv2d_uneven_same_padding_matches_tf(dtype, case, data):
    """'same' with an odd total padding on both axes: the extra zero row/column
    must go bottom/right, as in TensorFlow."""
    note(f"conv2d {describe(case)} kernel{case.kernel_shape}")
    check_conv2d(case, *draw_conv2d_arrays(data, case, dtype))


# ------------------------------------------------------------------------ maxpool2d


def check_maxpool2d(case: WindowCase, x, dy):
    """max-pool forward (bit-exact: a max does no arithmetic) and dx.

    dx sums the upstream gradients of the windows a cell won: at most
    ceil(ph/sh) * ceil(pw/sw) terms. The magnitude is the same routing of |dy|.
    """
    dtype = x.dtype.type
    y, cache = ops.maxpool2d_forward(x, case.window, case.strides, case.padding)
    dx = ops.maxpool2d_backward(dy, cache)
    geometry = (case.window, case.strides, case.padding)
    y_tf, (dx_tf,) = tf_ref.maxpool2d(x, dy, *geometry)
    _, (dx_m,) = tf_ref.maxpool2d(x.astype(F64), magnitude(dy), *geometry)
    overlap = math.prod(-(-k // s) for k, s in zip(case.window, case.strides))
    assert_exact(y, y_tf, "maxpool2d y")
    assert_within(dx, dx_tf, rounding_bound(dx_m, overlap, dtype), "maxpool2d dx")


def pool_output_shape(case: WindowCase):
    return (case.batch, *case.output_hw, case.channels)


@by_dtype
@given(case=window_cases(max_batch=3, max_channels=3), data=st.data())
def test_maxpool2d_matches_tf(dtype, case, data):
    note(f"maxpool2d {describe(case)}")
    x = data.draw(float_arrays(case.input_shape, dtype), label="x")
    dy = data.draw(float_arrays(pool_output_shape(case), dtype), label="dy")
    check_maxpool2d(case, x, dy)


@by_dtype
@given(case=asymmetric_same_cases(), data=st.data())
def test_maxpool2d_uneven_same_padding_matches_tf(dtype, case, data):
    """Uneven 'same' padding: the padded (-inf) cells sit bottom/right."""
    note(f"maxpool2d {describe(case)}")
    x = data.draw(float_arrays(case.input_shape, dtype), label="x")
    dy = data.draw(float_arrays(pool_output_shape(case), dtype, bound=2.0), label="dy")
    check_maxpool2d(case, x, dy)


def nonzero_upstream(shape, dtype):
    """Upstream gradients in [0.5, 2]: a gradient routed to the wrong cell must show."""
    return hnp.arrays(np.dtype(dtype), shape, elements=st.sampled_from([0.5, 1.0, 1.5, 2.0]))


@by_dtype
@given(case=window_cases(max_batch=2, max_channels=2), data=st.data())
def test_maxpool2d_ties_go_to_first_max(dtype, case, data):
    """Values from {-1, 0, 1, 2}: windows full of ties. TensorFlow (and npcnn)
    send the gradient to the first maximum in row-major window order."""
    note(f"maxpool2d ties {describe(case)}")
    x = data.draw(grid_arrays(case.input_shape, dtype), label="x")
    dy = data.draw(nonzero_upstream(pool_output_shape(case), dtype), label="dy")
    check_maxpool2d(case, x, dy)


@by_dtype
@given(case=window_cases(max_batch=2, max_channels=2), data=st.data())
def test_maxpool2d_after_relu_ties_at_zero(dtype, case, data):
    """ReLU then max-pool, as in the tutorial network: mostly-negative inputs
    leave windows of exact zeros, all tied."""
    note(f"relu -> maxpool2d {describe(case)}")
    x = data.draw(float_arrays(case.input_shape, dtype, bound=1.0), label="x") - dtype(0.75)
    relu_x, _ = ops.relu_forward(x)
    dy = data.draw(nonzero_upstream(pool_output_shape(case), dtype), label="dy")
    check_maxpool2d(case, relu_x, dy)


@by_dtype
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_maxpool2d_all_equal_windows(dtype, padding):
    """A constant image: every cell of every window ties; the first one wins."""
    case = WindowCase(
        batch=1, height=5, width=4, channels=2, window=(3, 2), strides=(2, 1), padding=padding
    )
    x = np.full(case.input_shape, 0.5, dtype=dtype)
    dy = np.arange(1, math.prod(pool_output_shape(case)) + 1, dtype=dtype).reshape(
        pool_output_shape(case)
    )
    check_maxpool2d(case, x, dy)


# ---------------------------------------------------------------------------- dense


def check_dense(x, w, b, dy):
    """dense forward (Din products + bias per element), dx (Dout terms), dw and db (N terms)."""
    dtype = x.dtype.type
    (n, d_in), d_out = x.shape, w.shape[1]
    y, cache = ops.dense_forward(x, w, b)
    dx, dw, db = ops.dense_backward(dy, cache)
    y_tf, (dx_tf, dw_tf, db_tf) = tf_ref.dense(x, w, b, dy)
    y_m, (dx_m, dw_m, db_m) = tf_ref.dense(magnitude(x), magnitude(w), magnitude(b), magnitude(dy))
    assert_within(y, y_tf, rounding_bound(y_m, d_in + 1, dtype), "dense y")
    assert_within(dx, dx_tf, rounding_bound(dx_m, d_out, dtype), "dense dx")
    assert_within(dw, dw_tf, rounding_bound(dw_m, n, dtype), "dense dw")
    assert_within(db, db_tf, rounding_bound(db_m, n, dtype), "dense db")


@by_dtype
@given(
    batch=batch_sizes(4),
    d_in=st.integers(1, 8),
    d_out=st.integers(1, 5),
    data=st.data(),
)
def test_dense_matches_tf(dtype, batch, d_in, d_out, data):
    note(f"dense x({batch}, {d_in}) w({d_in}, {d_out})")
    x = data.draw(float_arrays((batch, d_in), dtype), label="x")
    w = data.draw(float_arrays((d_in, d_out), dtype), label="w")
    b = data.draw(float_arrays((d_out,), dtype), label="b")
    dy = data.draw(float_arrays((batch, d_out), dtype), label="dy")
    check_dense(x, w, b, dy)


# ----------------------------------------------------------------------------- relu


def check_relu(x, dy):
    """ReLU selects numbers: output and gradient must match bit for bit."""
    y, cache = ops.relu_forward(x)
    dx = ops.relu_backward(dy, cache)
    y_tf, (dx_tf,) = tf_ref.relu(x, dy)
    assert_exact(y, y_tf, "relu y")
    assert_exact(dx, dx_tf, "relu dx")


@by_dtype
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4),
    data=st.data(),
)
def test_relu_matches_tf(dtype, shape, data):
    note(f"relu x{shape}")
    x = data.draw(float_arrays(shape, dtype), label="x")
    dy = data.draw(float_arrays(shape, dtype), label="dy")
    check_relu(x, dy)


@by_dtype
def test_relu_gradient_at_exactly_zero_is_zero(dtype):
    """TensorFlow's ReluGrad passes the gradient only where x > 0; at x == 0
    (and -0.0) it is 0. Pin that down explicitly, for TF and npcnn."""
    x = np.array([[-1.0, -0.0, 0.0, 1e-30, 2.0]], dtype=dtype)
    dy = np.full(x.shape, 3.0, dtype=dtype)
    _, (dx_tf,) = tf_ref.relu(x, dy)
    np.testing.assert_array_equal(dx_tf, np.array([[0, 0, 0, 3, 3]], dtype=dtype))
    check_relu(x, dy)


@by_dtype
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), data=st.data())
def test_relu_with_many_exact_zeros_matches_tf(dtype, shape, data):
    note(f"relu grid x{shape}")
    check_relu(
        data.draw(grid_arrays(shape, dtype), label="x"),
        data.draw(nonzero_upstream(shape, dtype), label="dy"),
    )


# -------------------------------------------------------------------------- flatten


@by_dtype
@given(
    shape=st.tuples(batch_sizes(3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3)),
    data=st.data(),
)
def test_flatten_matches_tf(dtype, shape, data):
    """Flatten moves numbers in NHWC order: bit-exact both ways."""
    note(f"flatten x{shape}")
    x = data.draw(float_arrays(shape, dtype), label="x")
    y, cache = ops.flatten_forward(x)
    dy = data.draw(float_arrays(y.shape, dtype), label="dy")
    dx = ops.flatten_backward(dy, cache)
    y_tf, (dx_tf,) = tf_ref.flatten(x, dy)
    assert_exact(y, y_tf, "flatten y")
    assert_exact(dx, dx_tf, "flatten dx")


# -------------------------------------------------------------------------- softmax


def softmax64(z):
    """Float64 reference softmax, for the error magnitudes only."""
    shifted = np.asarray(z, dtype=F64) - np.max(z, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def check_softmax(z, dp):
    """softmax forward and backward.

    p_k = exp(s_k) / sum_j exp(s_j), s = z - max(z): both libraries compute s
    identically (one correctly rounded subtraction), then one exp, a K-term
    sum and a divide (TF: reciprocal and multiply): K + ULPS + 2 roundings,
    relative to p. Backward dz = p * (dp - sum_k dp_k p_k): p's error, a
    K-term dot product, a subtraction and a product: 2K + ULPS + 4, relative
    to p * (|dp| + sum_k |dp_k| p_k).
    """
    dtype, k = z.dtype.type, z.shape[-1]
    p, cache = ops.softmax_forward(z)
    dz = ops.softmax_backward(dp, cache)
    p_tf, (dz_tf,) = tf_ref.softmax(z, dp)
    p64, dp_m = softmax64(z), magnitude(dp)
    dz_m = p64 * (dp_m + (dp_m * p64).sum(axis=-1, keepdims=True))
    assert_within(p, p_tf, rounding_bound(p64, k + TRANSCENDENTAL_ULPS + 2, dtype), "softmax p")
    assert_within(
        dz, dz_tf, rounding_bound(dz_m, 2 * k + TRANSCENDENTAL_ULPS + 4, dtype), "softmax dz"
    )


@by_dtype
@given(batch=batch_sizes(4), classes=st.integers(1, 10), data=st.data())
def test_softmax_matches_tf(dtype, batch, classes, data):
    note(f"softmax z({batch}, {classes})")
    z = data.draw(float_arrays((batch, classes), dtype, bound=8.0), label="z")
    dp = data.draw(float_arrays((batch, classes), dtype), label="dp")
    check_softmax(z, dp)


@by_dtype
@given(batch=st.integers(1, 3), classes=st.integers(2, 10), data=st.data())
def test_saturated_softmax_matches_tf(dtype, batch, classes, data):
    """Logits hundreds apart: probabilities underflow to exactly 0 (or a
    subnormal, which TF flushes) and the winner rounds to exactly 1."""
    note(f"saturated softmax z({batch}, {classes})")
    z = data.draw(float_arrays((batch, classes), dtype, bound=800.0), label="z")
    dp = data.draw(float_arrays((batch, classes), dtype), label="dp")
    check_softmax(z, dp)


# --------------------------------------------------------------------- crossentropy

REDUCTIONS = ("sum", "mean", "none")


def crossentropy_bounds(y_pred, labels, dloss, from_logits, reduction):
    """Rounding bounds for the loss and its gradient (see README for the derivation).

    With logits z (or log(clip(p))), s = z - max z and S = sum_k exp(s_k), one
    example's loss is log(S) - s_t: a K-term sum, an exp, a log and a
    subtraction, so K + 2*ULPS + 1 roundings relative to 1 + log(S) + |s_t|.
    Summing N losses adds N; 'mean' adds 1. The gradient w.r.t. logits is
    (q - onehot) * upstream: q's K + ULPS + 2, a subtraction and a product
    (+1 for the mean's division), relative to (q + |q - onehot|) * |upstream|.

    With probabilities, each library's log(clip(p)) is off by up to ULPS ulp
    of |log clip(p)| <= L (L = max over the row); the loss moves by at most
    sum_k |q_k - onehot_k| <= 2 times that, q relatively by at most 2 times
    that; the final 1/clip(p) divides the logits gradient's error bound (its
    ``tiny`` terms too: a subnormal TF flushed is then 1/clip(p) times larger)
    and adds 2 roundings (TF: reciprocal, multiply).
    """
    dtype = y_pred.dtype.type
    n, k = y_pred.shape
    z = np.asarray(y_pred, dtype=F64)
    log_error = np.zeros(n)  # |log clip(p)| per row, scaled by ULPS below
    if not from_logits:
        clipped = np.clip(z, dtype(EPSILON), dtype(1.0 - EPSILON))
        z = np.log(clipped)
        log_error = np.abs(z).max(axis=1) if n else log_error
    s = z - (z.max(axis=1, keepdims=True) if n else 0)
    log_sum = np.log(np.exp(s).sum(axis=1))
    rows = np.arange(n)
    per_m = 1 + np.abs(log_sum) + np.abs(s[rows, labels])
    per_c = k + 2 * TRANSCENDENTAL_ULPS + 1

    if reduction == "none":
        loss_bound = rounding_bound(per_m, per_c, dtype)
        loss_bound += rounding_bound(2 * log_error, TRANSCENDENTAL_ULPS, dtype)
        upstream = np.abs(np.asarray(dloss, dtype=F64))
    else:
        scale = 1.0 / max(n, 1) if reduction == "mean" else 1.0
        extra = 1 if reduction == "mean" else 0
        loss_bound = rounding_bound(scale * per_m.sum(), per_c + n + extra, dtype)
        loss_bound += rounding_bound(scale * 2 * log_error.sum(), TRANSCENDENTAL_ULPS, dtype)
        upstream = np.full(n, abs(float(dloss)) * scale)

    q = np.exp(s - log_sum[:, None])
    onehot = np.zeros((n, k))
    onehot[rows, labels] = 1.0
    grad_m = (q + np.abs(q - onehot)) * upstream[:, None]
    grad_c = k + TRANSCENDENTAL_ULPS + 4 + (1 if reduction == "mean" else 0)
    if from_logits:
        return loss_bound, rounding_bound(grad_m, grad_c, dtype)
    # dL/dp = (dL/dlogits) / clip(p): the logits gradient's error, the subnormals
    # TF flushes to zero included, is divided by clip(p) too; then 2 roundings
    grad_bound = rounding_bound(grad_m, grad_c, dtype) / clipped
    grad_m = grad_m / clipped
    grad_bound += rounding_bound(grad_m, 2, dtype)
    grad_bound += rounding_bound(grad_m, 2 * TRANSCENDENTAL_ULPS * log_error[:, None], dtype)
    return loss_bound, grad_bound


def check_crossentropy(y_pred, labels, dloss, from_logits, reduction):
    """npcnn's loss and dloss/dy_pred against the *eager* Keras function."""
    loss, cache = ops.sparse_categorical_crossentropy_forward(
        y_pred, labels, from_logits=from_logits, reduction=reduction
    )
    grad = ops.sparse_categorical_crossentropy_backward(dloss, cache)
    loss_tf, (grad_tf,) = tf_ref.sparse_categorical_crossentropy(
        y_pred, labels, dloss, from_logits, reduction
    )
    loss_bound, grad_bound = crossentropy_bounds(y_pred, labels, dloss, from_logits, reduction)
    what = f"crossentropy(from_logits={from_logits}, reduction={reduction!r})"
    assert_within(loss, loss_tf, loss_bound, f"{what} loss")
    assert_within(grad, grad_tf, grad_bound, f"{what} gradient")


def draw_upstream(data, batch, reduction, dtype):
    """The upstream gradient of the loss: one per example for 'none', else a scalar."""
    shape = (batch,) if reduction == "none" else ()
    return data.draw(float_arrays(shape, dtype), label="dloss")


def draw_probabilities(data, shape, dtype):
    """Values in [0, 1], rows not normalised (Keras renormalises): Hypothesis
    readily draws 0 and 1, which the clip moves to 1e-7 and 1 - 1e-7."""
    width = np.dtype(dtype).itemsize * 8
    elements = st.floats(0.0, 1.0, allow_subnormal=False, width=width)
    return data.draw(hnp.arrays(np.dtype(dtype), shape, elements=elements), label="p")


@by_dtype
@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(batch=batch_sizes(4), classes=st.integers(1, 10), data=st.data())
def test_crossentropy_from_logits_matches_keras(dtype, reduction, batch, classes, data):
    note(f"crossentropy from_logits=True z({batch}, {classes}) reduction={reduction!r}")
    z = data.draw(float_arrays((batch, classes), dtype, bound=8.0), label="z")
    labels = data.draw(label_arrays(batch, classes), label="labels")
    check_crossentropy(z, labels, draw_upstream(data, batch, reduction, dtype), True, reduction)


# The test above with logits up to 800: kept apart, so a failure names the saturated case.
@by_dtype
@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(batch=st.integers(1, 3), classes=st.integers(2, 10), data=st.data())
def test_crossentropy_from_saturated_logits_matches_keras(dtype, reduction, batch, classes, data):
    """Logits hundreds apart, from_logits=True: exp(z) alone overflows (past ~88
    in float32, ~709 in float64), so the log-softmax must subtract the row max
    first, as TF's softmax cross-entropy does. (The probability path never sees
    such logits: log(clip(p)) lies in [log(1e-7), 0].)"""
    note(f"crossentropy from_logits=True saturated z({batch}, {classes}) reduction={reduction!r}")
    z = data.draw(float_arrays((batch, classes), dtype, bound=800.0), label="z")
    labels = data.draw(label_arrays(batch, classes), label="labels")
    check_crossentropy(z, labels, draw_upstream(data, batch, reduction, dtype), True, reduction)


@by_dtype
@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(batch=batch_sizes(4), classes=st.integers(1, 10), data=st.data())
def test_crossentropy_from_probabilities_matches_eager_keras(
    dtype, reduction, batch, classes, data
):
    """from_logits=False, compared with Keras's *eager* path: clip to
    [1e-7, 1 - 1e-7], log, softmax cross-entropy (not the tf.function path,
    which would use the softmax's logits)."""
    note(f"crossentropy from_logits=False p({batch}, {classes}) reduction={reduction!r}")
    p = draw_probabilities(data, (batch, classes), dtype)
    labels = data.draw(label_arrays(batch, classes), label="labels")
    check_crossentropy(p, labels, draw_upstream(data, batch, reduction, dtype), False, reduction)


@by_dtype
@pytest.mark.parametrize("reduction", REDUCTIONS)
@given(batch=st.integers(1, 3), classes=st.integers(2, 10), data=st.data())
def test_crossentropy_of_saturated_softmax_matches_eager_keras(
    dtype, reduction, batch, classes, data
):
    """The tutorial's loss on a saturated softmax: probabilities of exactly 0
    and 1 hit the clip bounds, where the gradient is 0."""
    z = data.draw(float_arrays((batch, classes), dtype, bound=200.0), label="z")
    p, _ = ops.softmax_forward(z)
    note(f"crossentropy on softmax(z) p={p!r} reduction={reduction!r}")
    labels = data.draw(label_arrays(batch, classes), label="labels")
    check_crossentropy(p, labels, draw_upstream(data, batch, reduction, dtype), False, reduction)


def test_crossentropy_gradient_where_tf_flushes_a_subnormal():
    """An upstream gradient at the smallest normal float32 makes a subnormal inside
    TF's gradient, which its CPU kernels flush to zero; dividing by p = 1/256 then
    makes that 1.5e-36 apart from npcnn's. The bound divides the flushed ``tiny``
    by clip(p) as well (``crossentropy_bounds``)."""
    p = np.array([[0.00390625, 0.00390625]], np.float32)
    dloss = np.array([np.finfo(np.float32).tiny], np.float32)
    check_crossentropy(p, np.array([0]), dloss, False, "none")


@by_dtype
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_crossentropy_at_the_clip_bounds(dtype, reduction):
    """Probabilities exactly at 1e-7 and 1 - 1e-7 (rounded to the dtype, as
    ``tf.clip_by_value`` rounds Keras's Python floats), just inside and just
    outside them, 0 and 1. TF's clip gradient is inclusive: it passes at the
    bounds (Maximum/Minimum grads use >= and <=) and is 0 outside."""
    lo, hi = dtype(EPSILON), dtype(1.0 - EPSILON)
    row_values = [
        [lo, hi, 0.0],
        [np.nextafter(lo, dtype(0)), np.nextafter(hi, dtype(1)), 0.5],
        [np.nextafter(lo, dtype(1)), np.nextafter(hi, dtype(0)), 1.0],
        [0.0, 1.0, lo],
    ]
    p = np.array(row_values, dtype=dtype)
    labels = np.array([0, 0, 2, 0])  # true-class p: at lo, below lo, 1.0, 0.0
    dloss = np.ones(4, dtype=dtype) if reduction == "none" else dtype(1.5)
    check_crossentropy(p, labels, dloss, False, reduction)
    # the gradient is exactly 0 where the clip is active, and nonzero at the bounds
    grad_tf = tf_ref.sparse_categorical_crossentropy(p, labels, dloss, False, reduction)[1][0]
    outside = (p < lo) | (p > hi)
    assert np.all(grad_tf[outside] == 0) and np.all(grad_tf[(p == lo) | (p == hi)] != 0)


@by_dtype
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reductions_match_the_keras_loss_class(dtype, from_logits, reduction):
    """The reference's 'sum'/'mean' (reduce_sum, divide_no_nan(sum, N)) are what
    ``keras.losses.SparseCategoricalCrossentropy(reduction="sum" /
    "sum_over_batch_size")`` computes, for a non-empty batch. (For an empty
    batch that class returns an empty array whatever the reduction; npcnn and
    the reference return 0.)"""
    rng = np.random.default_rng(7)
    z = rng.normal(0.0, 3.0, size=(6, 4)).astype(dtype)
    y_pred = z if from_logits else ops.softmax_forward(z)[0]
    labels = rng.integers(0, 4, size=6)
    keras_reduction = "sum" if reduction == "sum" else "sum_over_batch_size"
    loss_fn = keras.losses.SparseCategoricalCrossentropy(
        from_logits=from_logits, reduction=keras_reduction, dtype=np.dtype(dtype).name
    )
    keras_loss = np.asarray(loss_fn(labels, y_pred))
    loss, _ = ops.sparse_categorical_crossentropy_forward(
        y_pred, labels, from_logits=from_logits, reduction=reduction
    )
    bound, _ = crossentropy_bounds(y_pred, labels, dtype(1.0), from_logits, reduction)
    assert_within(loss, keras_loss, bound, f"{reduction} loss vs Keras loss class")


# ---------------------------------------------------------------------- empty batch


@by_dtype
def test_every_op_accepts_the_empty_batch(dtype):
    """N = 0 everywhere: shapes (0, ...) out, zero parameter gradients, and
    losses of 0 ('mean' included: Keras divides with divide_no_nan)."""
    rng = np.random.default_rng(0)

    def arr(*shape):
        return rng.standard_normal(shape).astype(dtype)

    conv = WindowCase(0, 5, 4, 2, (3, 2), (2, 1), "same", out_channels=3)
    check_conv2d(conv, arr(0, 5, 4, 2), arr(3, 2, 2, 3), arr(3), arr(0, 3, 4, 3))
    pool = WindowCase(0, 5, 4, 2, (2, 2), (2, 2), "valid")
    check_maxpool2d(pool, arr(0, 5, 4, 2), arr(0, 2, 2, 2))
    check_dense(arr(0, 4), arr(4, 3), arr(3), arr(0, 3))
    check_relu(arr(0, 3), arr(0, 3))
    check_softmax(arr(0, 5), arr(0, 5))
    labels = np.zeros(0, dtype=np.int64)
    for from_logits in (True, False):
        for reduction in REDUCTIONS:
            dloss = arr(0) if reduction == "none" else dtype(1.0)
            check_crossentropy(arr(0, 5), labels, dloss, from_logits, reduction)
            loss, _ = ops.sparse_categorical_crossentropy_forward(
                arr(0, 5), labels, from_logits=from_logits, reduction=reduction
            )
            assert loss.shape == ((0,) if reduction == "none" else ())
            assert reduction == "none" or loss == 0
