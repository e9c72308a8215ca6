"""What the guide says about SciPy and PyTorch, checked by running them.

The guide's own examples run with NumPy and npcnn only (tests/test_docs.py);
its claims about other libraries are checked here, each test skipping when
that library is not installed. The claims about TensorFlow and Keras are in
parity_tests/test_docs_claims.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from npcnn.ops import conv2d_backward, conv2d_forward
from npcnn.ops.padding import padding_amounts
from npcnn.ops.windows import pad_nhwc


def _conv1(x2d, w2d, padding="valid", strides=1):
    """npcnn's conv2d on one 2-D image and one 2-D kernel; returns (y2d, cache)."""
    y, cache = conv2d_forward(
        x2d[None, :, :, None], w2d[:, :, None, None], np.zeros(1), strides, padding
    )
    return y[0, :, :, 0], cache


def _dilate(a, s):
    """Insert s - 1 zeros between the entries of a 2-D array (both axes)."""
    out = np.zeros(((a.shape[0] - 1) * s + 1, (a.shape[1] - 1) * s + 1), dtype=a.dtype)
    out[::s, ::s] = a
    return out


# ---- SciPy: convolution, cross-correlation and the backward pass (chapters 1 and 10) ----


@pytest.fixture(scope="module")
def signal():
    return pytest.importorskip("scipy.signal")


def test_libraries_compute_cross_correlation_and_a_true_convolution_flips(signal):
    """Chapter 1: npcnn (like TensorFlow) does not flip the kernel; SciPy's
    convolve2d, the mathematician's convolution, does."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((7, 6)), rng.standard_normal((3, 2))
    y, _ = _conv1(x, w)
    np.testing.assert_allclose(y, signal.correlate2d(x, w, mode="valid"), rtol=1e-12)
    np.testing.assert_allclose(y, signal.convolve2d(x, w[::-1, ::-1], mode="valid"), rtol=1e-12)
    assert not np.allclose(y, signal.convolve2d(x, w, mode="valid"))


def test_dx_is_a_full_convolution_with_the_kernel_or_a_correlation_with_it_rotated(signal):
    """Chapter 10: with stride 1, dx is the 'full' true convolution of dy with
    the kernel as it is, i.e. the full cross-correlation with the kernel
    rotated by 180 degrees (rotating twice is the mistake)."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((6, 7)), rng.standard_normal((3, 2))
    y, cache = _conv1(x, w)
    dy = rng.standard_normal(y.shape)
    dx = conv2d_backward(dy[None, :, :, None], cache)[0][0, :, :, 0]
    np.testing.assert_allclose(dx, signal.convolve2d(dy, w, mode="full"), rtol=1e-12)
    np.testing.assert_allclose(dx, signal.correlate2d(dy, w[::-1, ::-1], mode="full"), rtol=1e-12)
    assert not np.allclose(dx, signal.convolve2d(dy, w[::-1, ::-1], mode="full"))


@pytest.mark.parametrize("stride", [2, 3])
def test_with_a_stride_dy_is_dilated_for_dw_and_dx(signal, stride):
    """Chapter 10: with stride s, dw correlates the padded input with dy dilated
    by s, and dx_pad is the full convolution of the dilated dy with the kernel
    (cells that no window reached get 0)."""
    rng = np.random.default_rng(stride)
    x, w = rng.standard_normal((8, 9)), rng.standard_normal((3, 2))
    y, cache = _conv1(x, w, padding="same", strides=stride)
    dy = rng.standard_normal(y.shape)
    dx, dw, _ = conv2d_backward(dy[None, :, :, None], cache)
    pads = padding_amounts(x.shape, w.shape, (stride, stride), "same")
    x_pad = pad_nhwc(x[None, :, :, None], pads)[0, :, :, 0]
    dilated = _dilate(dy, stride)
    want_dw = signal.correlate2d(x_pad, dilated, mode="valid")[: w.shape[0], : w.shape[1]]
    np.testing.assert_allclose(dw[:, :, 0, 0], want_dw, rtol=1e-12)
    full = signal.convolve2d(dilated, w, mode="full")
    dx_pad = np.zeros_like(x_pad)
    dx_pad[: full.shape[0], : full.shape[1]] = full
    (top, _), (left, _) = pads
    want_dx = dx_pad[top : top + x.shape[0], left : left + x.shape[1]]
    np.testing.assert_allclose(dx[0, :, :, 0], want_dx, rtol=1e-12, atol=1e-14)
    undilated = signal.correlate2d(x_pad, dy, mode="valid")  # stride ignored: wrong
    assert undilated.shape != w.shape or not np.allclose(undilated, want_dw)


# ---- PyTorch: padding and layouts (chapters 3 and 13) ----


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _torch_conv(torch, x_nhwc, w_hwio, **kwargs):
    """PyTorch's conv2d on npcnn's layouts (NHWC, HWIO), back in NHWC."""
    x = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))
    w = torch.from_numpy(np.ascontiguousarray(w_hwio.transpose(3, 2, 0, 1)))  # OIHW
    return torch.nn.functional.conv2d(x, w, **kwargs).numpy().transpose(0, 2, 3, 1)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("kernel", [(2, 2), (4, 3), (3, 3)])
def test_pytorch_same_padding_puts_the_odd_cell_after_like_tensorflow(torch, kernel):
    """Chapter 3: PyTorch's padding='same' (stride 1) splits like TensorFlow."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 6, 7, 2)), rng.standard_normal((*kernel, 2, 3))
    ours, _ = conv2d_forward(x, w, np.zeros(3), padding="same")
    np.testing.assert_allclose(_torch_conv(torch, x, w, padding="same"), ours, rtol=1e-12)
    if kernel[0] % 2 == 0:  # the extra cell at the top would give other numbers
        th, tw = kernel[0] - 1, kernel[1] - 1  # the extra cell before, not after:
        top_first = pad_nhwc(x, ((th - th // 2, th // 2), (tw - tw // 2, tw // 2)))
        elsewhere, _ = conv2d_forward(top_first, w, np.zeros(3), padding="valid")
        assert not np.allclose(elsewhere, ours)


def test_pytorch_same_padding_refuses_strides(torch):
    """Chapter 3: PyTorch's padding='same' accepts only stride 1."""
    x, w = np.ones((1, 6, 6, 1)), np.ones((3, 3, 1, 1))
    with pytest.raises(RuntimeError, match="not supported for strided"):
        _torch_conv(torch, x, w, padding="same", stride=2)


def test_pytorch_integer_padding_is_symmetric(torch):
    """Chapter 3: padding=p adds p cells on both sides, so it cannot split
    unevenly; TensorFlow's 'same' for a 2x2 kernel is something else."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 4, 4, 1)), rng.standard_normal((2, 2, 1, 1))
    theirs = _torch_conv(torch, x, w, padding=1)
    symmetric, _ = conv2d_forward(pad_nhwc(x, ((1, 1), (1, 1))), w, np.zeros(1), padding="valid")
    np.testing.assert_allclose(theirs, symmetric, rtol=1e-12)
    same, _ = conv2d_forward(x, w, np.zeros(1), padding="same")
    assert theirs.shape != same.shape  # 5x5 against 'same''s 4x4


def test_pytorch_kernels_are_oihw_and_move_to_hwio_by_transpose(torch):
    """Chapter 13, convention 1: w_hwio = w_oihw.transpose(2, 3, 1, 0)."""
    rng = np.random.default_rng(0)
    x, w_oihw = rng.standard_normal((1, 5, 5, 3)), rng.standard_normal((2, 3, 3, 3))
    theirs = torch.nn.functional.conv2d(
        torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.from_numpy(w_oihw)
    ).numpy()
    ours, _ = conv2d_forward(x, w_oihw.transpose(2, 3, 1, 0), np.zeros(2), padding="valid")
    np.testing.assert_allclose(ours, theirs.transpose(0, 2, 3, 1), rtol=1e-12)


def test_pytorch_flattens_channels_first(torch):
    """Chapters 5 and 13: PyTorch flattens (c, h, w); npcnn and Keras (h, w, c)."""
    block = np.arange(2 * 3 * 4, dtype=np.float64).reshape(1, 2, 3, 4)  # NHWC
    theirs = torch.flatten(torch.from_numpy(block.transpose(0, 3, 1, 2).copy()), 1).numpy()
    np.testing.assert_array_equal(theirs, block.transpose(0, 3, 1, 2).reshape(1, -1))
    assert not np.array_equal(theirs, block.reshape(1, -1))


PYTORCH_ADAM_STEP = """
import torch
w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
optimizer = torch.optim.Adam([w], lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
w.grad = torch.full((1,), 1e-6, dtype=torch.float64)
optimizer.step()
print(f"{-w.item():.3g}")
"""


def test_pytorch_adam_puts_epsilon_where_the_paper_does(torch):
    """Chapter 13, convention 8: for a gradient of 1e-6 the paper's first step
    is 0.000909 and Keras's (npcnn's) 0.00024; PyTorch's Adam is the paper's.
    In a process of its own: torch.optim imports torch._dynamo, which crashes in
    a process that has loaded TensorFlow (as other tests here may have)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", PYTORCH_ADAM_STEP], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "0.000909"


# ---- The three tiers' exactness (docs/README.md, chapters 1, 4, 8, 12, 14) ----


def _conv_data(cin, dtype, seed=0):
    """A batch of 4 images 12x12 with ``cin`` channels, a 5x5 kernel to 8 channels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 12, 12, cin)).astype(dtype)
    w = rng.standard_normal((5, 5, cin, 8)).astype(dtype)
    return x, w, rng.standard_normal(8).astype(dtype)


def _conv_both(tier_a, tier_b, x, w, b):
    """(y, dx, dw, db) of one convolution on two tiers, the same dy for both."""
    ya, cache_a = tier_a.conv2d_forward(x, w, b, 1, "same")
    yb, cache_b = tier_b.conv2d_forward(x, w, b, 1, "same")
    dy = np.random.default_rng(1).standard_normal(ya.shape).astype(x.dtype)
    ga, gb = tier_a.conv2d_backward(dy, cache_a), tier_b.conv2d_backward(dy, cache_b)
    return [ya, *ga], [yb, *gb]


def test_naive_and_ops_agree_within_rounding_not_bit_for_bit():
    """The loops and the readable reference add the same products in another
    order: on small integers (chapter 1's example) every sum of the forward
    pass is exact and they are equal; on random float32 data they differ in
    the last bits, within the rounding bound; in float64 within 1e-10 relative."""
    from npcnn import naive, ops

    from .helpers import assert_close_to_scale

    integers = [a.round() for a in _conv_data(3, np.float32)]
    got, want = _conv_both(naive, ops, *integers)
    np.testing.assert_array_equal(got[0], want[0])  # y: sums of small integers
    got, want = _conv_both(naive, ops, *_conv_data(16, np.float32))
    assert not all(np.array_equal(g, v) for g, v in zip(got, want))
    for g, v in zip(got, want):
        assert_close_to_scale(g, v, "naive vs ops, float32")
    for g, v in zip(*_conv_both(naive, ops, *_conv_data(16, np.float64))):
        np.testing.assert_allclose(g, v, rtol=1e-10, atol=1e-10 * np.abs(v).max())


def test_fast_is_ops_bit_for_bit_except_the_rowwise_convolution():
    """Chapter 14: max-pool, ReLU, dense, softmax, flatten, the loss, Adam and
    the convolution of thin kernels (kw * Cin < 64, through im2col) give ops'
    bits, but for one input channel's weight gradient (its matrix is built
    transposed, and BLAS may multiply the two layouts with different code):
    within the bound; the row-wise convolution (kw * Cin >= 64) sums in another
    order: within the bound."""
    from npcnn import fast, ops

    from .helpers import assert_adam_tiers_agree, assert_close_to_scale

    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 8, 8, 5)).astype(np.float32)
    d = rng.standard_normal((6, 3)).astype(np.float32)
    for op, args in [("maxpool2d", (x, 2, 2, "same")), ("relu", (x,)), ("softmax", (d,))]:
        ya, cache_a = getattr(fast, f"{op}_forward")(*args)
        yb, cache_b = getattr(ops, f"{op}_forward")(*args)
        np.testing.assert_array_equal(ya, yb)
        dy = rng.standard_normal(ya.shape).astype(np.float32)
        dxa, dxb = (
            getattr(fast, f"{op}_backward")(dy, cache_a),
            getattr(ops, f"{op}_backward")(dy, cache_b),
        )
        np.testing.assert_array_equal(dxa, dxb)
    w, b = rng.standard_normal((320, 10)).astype(np.float32), np.ones(10, np.float32)
    flat = x.reshape(6, -1)
    (ya, ca), (yb, cb) = fast.dense_forward(flat, w, b), ops.dense_forward(flat, w, b)
    np.testing.assert_array_equal(ya, yb)
    dy = rng.standard_normal(ya.shape).astype(np.float32)
    for ga, gb in zip(fast.dense_backward(dy, ca), ops.dense_backward(dy, cb)):
        np.testing.assert_array_equal(ga, gb)
    assert fast.flatten_forward is ops.flatten_forward  # the readable ones, re-exported
    assert (
        fast.sparse_categorical_crossentropy_forward is ops.sparse_categorical_crossentropy_forward
    )
    assert_adam_tiers_agree(rng.standard_normal((2, 300, 7)).astype(np.float32), steps=3)
    for got, want in zip(*_conv_both(fast, ops, *_conv_data(3, np.float32))):  # 5 * 3 < 64
        np.testing.assert_array_equal(got, want)
    got, want = _conv_both(fast, ops, *_conv_data(1, np.float32))  # one channel
    for name, g, v in zip(("y", "dx", "dw", "db"), got, want):
        if name == "dw":  # cols.T @ dy with cols built transposed: another BLAS call
            assert_close_to_scale(g, v, "one channel's dw", longest_sum=4 * 12 * 12)
        else:
            np.testing.assert_array_equal(g, v)
    got, want = _conv_both(fast, ops, *_conv_data(32, np.float32))  # 5 * 32 >= 64: row-wise
    assert not all(np.array_equal(g, v) for g, v in zip(got, want))
    for g, v in zip(got, want):
        assert_close_to_scale(g, v, "row-wise vs ops")


def test_the_network_on_fast_and_ops_agrees_within_the_bound_not_bit_for_bit():
    """Chapters 8 and 12: ``seed_cnn()`` (fast) and ``seed_cnn(kernels="ops")``
    give the same probabilities within 2 * K * eps * max, K = 3136, not the same bits."""
    from npcnn import seed_cnn

    from .helpers import assert_close_to_scale

    x = np.random.default_rng(3).standard_normal((4, 28, 28, 1)).astype(np.float32)
    fast_y = seed_cnn(seed=0).forward(x)
    ops_y = seed_cnn(seed=0, kernels="ops").forward(x)
    assert not np.array_equal(fast_y, ops_y)
    assert_close_to_scale(fast_y, ops_y, "probabilities", longest_sum=3136)
