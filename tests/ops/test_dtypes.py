"""float32 stays float32, float64 stays float64, and an empty batch (N = 0) works.

Every forward output and every backward gradient must keep the input's dtype:
a silent upcast to float64 would double the memory and halve the speed of
float32 training, and make timings against TensorFlow meaningless.
"""

from __future__ import annotations

import numpy as np
import pytest

from npcnn import naive, ops

DTYPES = [np.float32, np.float64]
BATCHES = [3, 0]


def run_op(name, dtype, n, rng):
    """Forward and backward of one op on a batch of ``n``; returns (outputs, gradients)."""

    def draw(*shape):
        return rng.standard_normal(shape).astype(dtype)

    if name in ("conv2d", "naive.conv2d"):
        module = ops if name == "conv2d" else naive
        y, cache = module.conv2d_forward(draw(n, 6, 5, 2), draw(3, 2, 2, 4), draw(4), 2, "same")
        return [y], list(module.conv2d_backward(draw(*y.shape), cache))
    if name in ("maxpool2d", "naive.maxpool2d"):
        module = ops if name == "maxpool2d" else naive
        y, cache = module.maxpool2d_forward(draw(n, 6, 5, 2), 2, 2, "same")
        return [y], [module.maxpool2d_backward(draw(*y.shape), cache)]
    if name == "dense":
        y, cache = ops.dense_forward(draw(n, 5), draw(5, 3), draw(3))
        return [y], list(ops.dense_backward(draw(*y.shape), cache))
    if name == "relu":
        y, cache = ops.relu_forward(draw(n, 4, 3))
        return [y], [ops.relu_backward(draw(*y.shape), cache)]
    if name == "flatten":
        y, cache = ops.flatten_forward(draw(n, 4, 3, 2))
        assert y.shape == (n, 24)
        return [y], [ops.flatten_backward(draw(*y.shape), cache)]
    if name == "softmax":
        y, cache = ops.softmax_forward(draw(n, 7))
        return [y], [ops.softmax_backward(draw(*y.shape), cache)]
    raise AssertionError(name)


@pytest.mark.parametrize("n", BATCHES, ids=["N=3", "N=0"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "name",
    [
        "conv2d",
        "naive.conv2d",
        "maxpool2d",
        "naive.maxpool2d",
        "dense",
        "relu",
        "flatten",
        "softmax",
    ],
)
def test_op_keeps_dtype_and_handles_empty_batch(rng, name, dtype, n):
    outputs, grads = run_op(name, dtype, n, rng)
    for a in outputs + grads:
        assert a.dtype == dtype, (name, a.dtype)
        assert np.all(np.isfinite(a))
    assert outputs[0].shape[0] == n
    assert grads[0].shape[0] == n  # the input gradient has the batch axis
    if n == 0:  # parameter gradients of an empty batch are zeros
        assert all(np.all(g == 0) for g in grads[1:])


@pytest.mark.parametrize("reduction", ["sum", "mean", "none"])
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("n", BATCHES, ids=["N=3", "N=0"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_crossentropy_keeps_dtype_and_handles_empty_batch(rng, dtype, n, from_logits, reduction):
    y_pred = rng.uniform(0.05, 1.0, size=(n, 4)).astype(dtype)
    labels = rng.integers(0, 4, size=n)
    loss, cache = ops.sparse_categorical_crossentropy_forward(
        y_pred, labels, from_logits, reduction
    )
    assert loss.dtype == dtype
    assert loss.shape == ((n,) if reduction == "none" else ())
    if n == 0 and reduction != "none":
        assert loss == 0.0
    # a NumPy float64 upstream gradient (what `1.0 * np.float64(...)` gives) must not
    # turn float32 work into float64
    dloss = np.ones(n, dtype=np.float64) if reduction == "none" else np.float64(1.0)
    dy_pred = ops.sparse_categorical_crossentropy_backward(dloss, cache)
    assert dy_pred.dtype == dtype
    assert dy_pred.shape == (n, 4)


@pytest.mark.parametrize("dloss", [1.0, np.float64(1.0), np.float32(1.0), np.array(1.0)])
def test_crossentropy_float32_backward_with_any_scalar(dloss):
    y_pred = np.array([[0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    _, cache = ops.sparse_categorical_crossentropy_forward(y_pred, np.array([1, 0]))
    assert ops.sparse_categorical_crossentropy_backward(dloss, cache).dtype == np.float32
