"""The fast tier gives the readable ops' numbers: bit for bit where it sums in
the same order, within the rounding bound where it does not.

- fast == ops == naive for conv2d through im2col (kernel rows under
  ``ROWWISE_MIN_K`` values), maxpool2d and relu on random geometries (even
  kernels, strides 2 and 3, both paddings, ties, float32 and float64); the
  row-wise convolution at the same geometries is checked against TensorFlow
  (``parity_tests/test_ops_parity.py``, tier ``fast-rowwise``) and below;
- the fused block ``conv2d_relu_maxpool2d`` (conv -> pool -> bias -> ReLU)
  equals ``maxpool2d(relu(conv2d(x) + b))`` of the readable ops exactly,
  forward and backward, including windows with ties, all-negative windows and
  ties that only appear after rounding ``z + b``;
- the whole network on ``kernels="fast"`` (fused blocks, row-wise conv2)
  agrees with ``kernels="ops"`` within the rounding bound of its longest sum;
  on a batch of several parts (data parallelism, ``npcnn/fast/parallel.py``)
  the blocks that see images are each part run alone, the gradients summed
  part by part, bit for bit, and the dense layers run once on the whole batch.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npcnn import fast, naive, ops
from npcnn.model import fast_blocks, seed_cnn
from npcnn.ops.padding import output_hw

from .helpers import assert_close_to_scale

settings.register_profile("fast_tier", deadline=None, derandomize=True, max_examples=40)
SETTINGS = settings.get_profile("fast_tier")


def same_bits(a, b):
    """Exactly the same values (sign of zero aside, which compares equal)."""
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)


@st.composite
def block_case(draw):
    """A random conv + pool geometry and integer-ish data (many ties)."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["same", "valid"]))
    hw = (draw(st.integers(kernel[0], 9)), draw(st.integers(kernel[1], 9)))
    out = output_hw(hw, kernel, strides, padding)
    pool = (draw(st.integers(1, min(3, out[0]))), draw(st.integers(1, min(3, out[1]))))
    pool_strides = draw(st.sampled_from([None, 1, 2, 3]))
    pool_padding = draw(st.sampled_from(["same", "valid"]))
    seed = draw(st.integers(0, 2**32 - 1))
    ties = draw(st.booleans())
    return dtype, kernel, strides, padding, hw, pool, pool_strides, pool_padding, seed, ties


def draw_data(rng, dtype, hw, kernel, ties, cin=2, cout=3):
    if ties:  # small integers: many equal sums, whole windows at or below 0
        x = rng.integers(-2, 3, size=(2, *hw, cin)).astype(dtype)
        w = rng.integers(-1, 2, size=(*kernel, cin, cout)).astype(dtype)
        b = rng.integers(-2, 2, size=cout).astype(dtype)
    else:
        x = rng.standard_normal((2, *hw, cin)).astype(dtype)
        w = rng.standard_normal((*kernel, cin, cout)).astype(dtype)
        b = rng.standard_normal(cout).astype(dtype) - 1  # plenty of all-negative windows
    return x, w, b


def composition(k, x, w, b, conv_args, pool_args, dy, need_dx=True):
    """maxpool(relu(conv(x) + b)) and its gradients through kernels module ``k``
    (``npcnn.naive`` has no ReLU: it borrows the readable one)."""
    relu = k if hasattr(k, "relu_forward") else ops
    z, conv_cache = k.conv2d_forward(x, w, b, *conv_args)
    r, relu_cache = relu.relu_forward(z)
    y, pool_cache = k.maxpool2d_forward(r, *pool_args)
    dr = k.maxpool2d_backward(dy, pool_cache)
    dz = relu.relu_backward(dr, relu_cache)
    grads = k.conv2d_backward(dz, conv_cache, need_dx) if k is not naive else None
    return (y, *(grads or naive.conv2d_backward(dz, conv_cache)))


@SETTINGS
@given(block_case())
def test_fused_block_equals_readable_composition(case):
    dtype, kernel, strides, padding, hw, pool, pool_strides, pool_padding, seed, ties = case
    rng = np.random.default_rng(seed)
    x, w, b = draw_data(rng, dtype, hw, kernel, ties)
    pool_args = (pool, pool_strides, pool_padding)
    y, cache = fast.conv2d_relu_maxpool2d_forward(x, w, b, strides, padding, *pool_args)
    dy = rng.standard_normal(y.shape).astype(dtype)
    got = (y, *fast.conv2d_relu_maxpool2d_backward(dy, cache))
    want = composition(ops, x, w, b, (strides, padding), pool_args, dy)
    for a, e in zip(got, want):
        same_bits(a, e)


@SETTINGS
@given(block_case())
def test_fast_ops_naive_agree(case):
    dtype, kernel, strides, padding, hw, pool, pool_strides, pool_padding, seed, ties = case
    rng = np.random.default_rng(seed)
    x, w, b = draw_data(rng, dtype, hw, kernel, ties)
    pool_args = (pool, pool_strides, pool_padding)
    y = fast.conv2d_relu_maxpool2d_forward(x, w, b, strides, padding, *pool_args)[0]
    dy = rng.standard_normal(y.shape).astype(dtype)
    want = composition(ops, x, w, b, (strides, padding), pool_args, dy)
    got = composition(fast, x, w, b, (strides, padding), pool_args, dy)
    loops = composition(naive, x, w, b, (strides, padding), pool_args, dy)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for f, o, n in zip(got, want, loops):
        same_bits(f, o)  # fast == ops exactly
        np.testing.assert_allclose(n, o, rtol=tol, atol=tol)  # loops sum in another order


def test_fused_block_follows_ties_made_by_rounding():
    """z = (1, 1 + 2**-20) and b = 2**10 (float32): fl(z + b) ties, z does not.

    TF's max-pool of relu(z + b) sees two equal cells and routes the gradient
    to the first; pooling the raw z would pick the second. The fused block must
    pick the first.
    """
    z = np.array([1.0, 1.0 + 2.0**-20], dtype=np.float32).reshape(1, 1, 2, 1)
    w = np.ones((1, 1, 1, 1), np.float32)
    b = np.array([2.0**10], np.float32)
    assert (z[0, 0, 0] + b)[0] == (z[0, 0, 1] + b)[0]  # the tie exists only after rounding
    y, cache = fast.conv2d_relu_maxpool2d_forward(z, w, b, 1, "valid", (1, 2))
    dy = np.ones_like(y)
    got = (y, *fast.conv2d_relu_maxpool2d_backward(dy, cache))
    want = composition(ops, z, w, b, (1, "valid"), ((1, 2), None, "valid"), dy)
    for a, e in zip(got, want):
        same_bits(a, e)
    np.testing.assert_array_equal(got[1].ravel(), [1.0, 0.0])  # the first cell wins


def test_fused_block_all_negative_windows_get_no_gradient():
    x = -np.ones((1, 4, 4, 1))
    w = np.ones((1, 1, 1, 2))
    b = np.array([0.5, 1.0])  # channel 0: every window -0.5 -> 0; channel 1: exactly 0
    y, cache = fast.conv2d_relu_maxpool2d_forward(x, w, b, 1, "valid", 2)
    assert not y.any()
    dx, dw, db = fast.conv2d_relu_maxpool2d_backward(np.ones_like(y), cache)
    assert not dx.any() and not dw.any() and not db.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("need_dx", [True, False])
def test_seed_cnn_fast_agrees_with_ops(dtype, need_dx):
    """The network on both tiers, same weights: output, dx and every gradient
    within the rounding bound of the longest sum (the fast tier convolves conv2
    row-wise, summing in another order)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 28, 28, 1)).astype(dtype)
    a, b = (
        seed_cnn(seed=1, dtype=dtype, kernels="fast"),
        seed_cnn(seed=1, dtype=dtype, kernels="ops"),
    )
    weights = [p + rng.standard_normal(p.shape).astype(dtype) * 0.05 for p in a.params]
    a.set_weights(weights)
    b.set_weights(weights)
    blocks = fast_blocks(a.layers)  # conv+pool pairs fused, the rest as they are
    assert [type(block).__name__ for block in blocks[:3]] == ["ConvReluPool"] * 2 + ["Reshape"]
    assert b.parallel is None  # the readable tier: the plain loop over the layers
    ya, yb = a.forward(x), b.forward(x)
    assert_close_to_scale(ya, yb, "probabilities")
    dy = rng.standard_normal(ya.shape).astype(dtype)
    dxa, dxb = a.backward(dy, need_dx), b.backward(dy, need_dx)
    if need_dx:
        assert_close_to_scale(dxa, dxb, "dx")
    else:
        assert dxa is None and dxb is None
    for name, ga, gb in zip([n for n, _ in a.named_params()], a.grads, b.grads):
        assert_close_to_scale(ga, gb, name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 3, 64])  # 64 images: split over threads
@pytest.mark.parametrize("value", [0.0, -np.inf])
def test_fast_padding_equals_the_readable_one(dtype, n, value):
    from npcnn.fast.padding import pad_nhwc as fast_pad
    from npcnn.ops.windows import pad_nhwc as readable_pad

    x = np.random.default_rng(n).standard_normal((n, 14, 13, 32)).astype(dtype)
    for pads in [((2, 2), (2, 2)), ((0, 1), (1, 0)), ((3, 0), (0, 2)), ((0, 0), (0, 0))]:
        got, want = fast_pad(x, pads, value), readable_pad(x, pads, value)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_batch_of_several_parts_is_each_part_run_alone(dtype):
    """A batch of 50 runs in parts (``parallel.part_cuts``: two of 25 in float32,
    four of 12 or 13 in float64) through the blocks that see images (here all of
    them, up to the global pooling): its output and dx are those of each part run
    alone, concatenated, and each weight gradient is the parts' summed in order,
    bit for bit."""
    from npcnn import Conv2D, GlobalAveragePooling2D, MaxPool2D, Sequential
    from npcnn.fast.parallel import part_cuts

    def model():
        layers = [
            Conv2D(8, 3, padding="same", activation="relu"),
            MaxPool2D(),
            Conv2D(12, 3, padding="same", activation="relu"),
            GlobalAveragePooling2D(),
        ]
        return Sequential(layers, input_shape=(12, 12, 3), seed=4, dtype=dtype)  # fmt: skip

    rng = np.random.default_rng(11)
    x = rng.standard_normal((50, 12, 12, 3)).astype(dtype)
    a = model()
    cuts = part_cuts(50, np, np.dtype(dtype).itemsize)
    assert cuts == ([0, 25, 50] if dtype == np.float32 else [0, 12, 25, 37, 50])
    y = a.forward(x)
    assert a.parallel.split == len(fast_blocks(a.layers))  # every block ran in the parts
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, grads = a.backward(dy), list(a.grads)
    parts = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        y_part = a.forward(x[lo:hi])
        parts.append((y_part, a.backward(dy[lo:hi]), list(a.grads)))
    same_bits(y, np.concatenate([part[0] for part in parts]))
    same_bits(dx, np.concatenate([part[1] for part in parts]))
    for k, g in enumerate(grads):
        total = parts[0][2][k]
        for part in parts[1:]:
            total = total + part[2][k]  # g_0 + g_1 + ..., left to right
        same_bits(g, total)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_seed_cnn_on_several_parts_agrees_with_ops_and_runs_dense_once(dtype):
    """The seed network at batch 50: the two conv blocks and the Reshape run in two
    parts, the Dense layers once on the joined batch; output, dx and every
    gradient within the rounding bound of the readable tier's."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((50, 28, 28, 1)).astype(dtype)
    a, b = seed_cnn(seed=2, dtype=dtype), seed_cnn(seed=2, dtype=dtype, kernels="ops")
    y = a.forward(x)
    assert a.parallel.split == 3  # ConvReluPool, ConvReluPool, Reshape | Dense, Dense, Softmax
    assert a.layers[5].cache.x.shape[0] == 50  # dense1 saw the whole batch at once
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, grads = a.backward(dy), list(a.grads)
    assert_close_to_scale(y, b.forward(x), "probabilities")
    assert_close_to_scale(dx, b.backward(dy), "dx")
    for name, g, g_whole in zip([n for n, _ in a.named_params()], grads, b.grads):
        assert_close_to_scale(g, g_whole, name)


@SETTINGS
@given(case=block_case())
def test_rowwise_convolution_agrees_with_ops_within_the_rounding_bound(case):
    """Every drawn geometry convolved row-wise (``npcnn/fast/rowwise.py``): y, dx,
    dw and db within ``2 * K * (eps * M + tiny)`` of the readable im2col's, K the
    terms of each sum and M their magnitudes (the same sums over |x|, |w|, |dy|)."""
    from npcnn.fast import conv2d as fast_conv2d
    from parity_tests.tolerances import assert_within, rounding_bound

    dtype, kernel, strides, padding, hw, *_, seed, ties = case
    x, w, b = draw_data(np.random.default_rng(seed), dtype, hw, kernel, ties)
    threshold, fast_conv2d.ROWWISE_MIN_K = fast_conv2d.ROWWISE_MIN_K, 1  # every kernel
    try:
        y, cache = fast.conv2d_forward(x, w, b, strides, padding)
    finally:
        fast_conv2d.ROWWISE_MIN_K = threshold
    assert type(cache).__name__ == "RowwiseCache"
    y_ops, cache_ops = ops.conv2d_forward(x, w, b, strides, padding)
    dy = np.random.default_rng(0).standard_normal(y.shape).astype(x.dtype)
    got, want = fast.conv2d_backward(dy, cache), ops.conv2d_backward(dy, cache_ops)
    magnitudes = (np.abs(a.astype(np.float64)) for a in (x, w, b))
    mag_y, mag_cache = ops.conv2d_forward(*magnitudes, strides, padding)
    mags = ops.conv2d_backward(np.abs(dy.astype(np.float64)), mag_cache)
    kh, kw, cin, cout = w.shape
    positions = y.size // cout  # the terms of dw's and db's sums
    terms = {"y": kh * kw * cin + 1, "dx": kh * kw * cout, "dw": positions, "db": positions}
    for name, a, e, m in zip(terms, (y, *got), (y_ops, *want), (mag_y, *mags)):
        assert_within(a, e, rounding_bound(m, terms[name], x.dtype), f"row-wise {name}")


@pytest.mark.parametrize("strides", [(1, 1), (2, 2), (1, 3), (3, 1)])
def test_undoing_the_width_windows_adds_tap_by_tap_bit_for_bit(strides):
    """``undo_width_windows`` moves a whole window per add; every cell still gets
    its terms in the order of the taps, as one shifted add per tap gives them."""
    from npcnn.fast.rowwise import RowwiseCache, undo_width_windows

    (sh, sw), (kh, kw), (n, height, width, cin) = strides, (5, 4), (3, 9, 11, 2)
    pads = ((2, 2), (1, 2))
    hp, wp = height + 4, width + 3
    out_hw = ((hp - kh) // sh + 1, (wp - kw) // sw + 1)
    cache = RowwiseCache(
        (n, height, width, cin), np.zeros((kh, kw, cin, 1)), None, strides, pads, out_hw
    )
    rng = np.random.default_rng(sh * 10 + sw)
    dxw = rng.standard_normal((sh, -(-hp // sh), n, out_hw[1], kw * cin)).astype(np.float32)
    want = np.zeros((n, hp, wp, cin), np.float32)
    for r in range(sh):
        rows = -(-(hp - r) // sh)
        grad = dxw[r, :rows].reshape(rows, n, out_hw[1], kw, cin).transpose(1, 0, 2, 3, 4)
        for j in range(kw):  # tap j of every window, one shifted add
            want[:, r::sh][:, :rows, j : j + sw * (out_hw[1] - 1) + 1 : sw] += grad[:, :, :, j]
    got = undo_width_windows(dxw, cache)
    np.testing.assert_array_equal(got, want[:, 2 : 2 + height, 1 : 1 + width])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_big_dense_layer_in_column_blocks_agrees_with_ops_on_any_thread_count(dtype):
    """A dense layer of a million weights or more (the seed's dense1) runs its
    products in fixed column (forward) and row (backward) blocks shared over the
    threads: y, dx, dw within the rounding bound of the readable ops' (db the
    same sum, bit for bit), and the same bits on 1, 2 and 3 threads."""
    from npcnn.fast import dense as fast_dense
    from npcnn.fast import threads

    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, 3136)).astype(dtype)
    w = (rng.standard_normal((3136, 1024)) * 0.02).astype(dtype)
    b, dy = rng.standard_normal(1024).astype(dtype), rng.standard_normal((50, 1024)).astype(dtype)
    assert len(fast_dense.blocks(1024, w.size)) - 1 == 4  # split: blocks of 256 columns
    assert fast_dense.blocks(1024, 1024 * 512) == [0, 1024]  # small: one product
    y_ops, cache_ops = ops.dense_forward(x, w, b)
    dx_ops, dw_ops, db_ops = ops.dense_backward(dy, cache_ops)
    before, runs = threads.get_threads(), []
    try:
        for count in (1, 2, 3):
            threads.set_threads(count)
            y, cache = fast.dense_forward(x, w, b)
            runs.append((y, *fast.dense_backward(dy, cache)))
    finally:
        threads.set_threads(before)
    for run in runs[1:]:
        for got, first in zip(run, runs[0]):
            same_bits(got, first)
    y, dx, dw, db = runs[0]
    assert_close_to_scale(y, y_ops, "y", longest_sum=3136 + 1)
    assert_close_to_scale(dx, dx_ops, "dx", longest_sum=1024)
    assert_close_to_scale(dw, dw_ops, "dw", longest_sum=50)
    same_bits(db, db_ops)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    st.sampled_from([np.float32, np.float64]),
    st.integers(1, 4),  # images
    st.tuples(st.integers(1, 5), st.integers(1, 5)),  # kernel
    st.tuples(st.integers(1, 3), st.integers(1, 3)),  # strides
    st.integers(0, 10**6),
)
def test_one_channel_im2col_is_the_general_matrix_and_multiplies_to_its_bits(
    dtype, n, kernel, strides, seed
):
    """One input channel: the matrix is built transposed and returned as an
    F-ordered view; it holds the same numbers as the general copy, its forward
    product is the C-ordered matrix's bit for bit, and its weight gradient within
    the rounding bound (OpenBLAS's SkylakeX kernels multiply small float32
    matrices of the two layouts with different code, which can round differently)."""
    from npcnn.fast import conv2d as fast_conv2d
    from npcnn.ops.windows import window_view

    rng = np.random.default_rng(seed)
    x_pad = rng.standard_normal((n, 9, 8, 1)).astype(dtype)
    out_hw = tuple(output_hw((9, 8), kernel, strides, "valid"))
    cols = fast_conv2d.im2col(x_pad, kernel, strides, out_hw)
    general = np.ascontiguousarray(window_view(x_pad, kernel, strides, out_hw))
    general = general.reshape(n * out_hw[0] * out_hw[1], -1)
    assert cols.flags.f_contiguous and np.array_equal(cols, general)
    w = rng.standard_normal((cols.shape[1], 6)).astype(dtype)
    dy = rng.standard_normal((cols.shape[0], 6)).astype(dtype)
    assert np.array_equal(cols @ w, general @ w)
    assert_close_to_scale(cols.T @ dy, general.T @ dy, "dw", longest_sum=cols.shape[0])
