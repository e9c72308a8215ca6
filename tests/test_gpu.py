"""npcnn on CuPy (GPU) must match npcnn on NumPy.

The same op code runs on both (``npcnn.backend.get_array_module``), so these
tests compare the two array libraries, not two implementations:

- float64: relative error <= 1e-10 (same math; only summation order differs);
- float32: rtol = atol = 1e-4 on values of order 1. The GPU's GEMMs sum in a
  different order (and cuBLAS may use TF32 unless disabled; ``cupy_on_a_gpu`` disables
  it, CUPY_TF32=0), so each output differs by a few float32 ulps times
  sqrt(reduction length) (<= 1600 here: 40 * 1.2e-7 ~ 5e-6); 1e-4 leaves room
  for the softmax/log and for gradients summed over the batch.

They skip, saying why, when CuPy or a GPU is missing: CI has no GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from .helpers import cupy_on_a_gpu

cupy = cupy_on_a_gpu()  # sets CUPY_TF32=0

import npcnn  # noqa: E402
from npcnn import ops  # noqa: E402
from npcnn.backend import get_array_module, to_numpy  # noqa: E402

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-4)}


def _both(fn, *arrays):
    """Run fn on NumPy arrays and on their CuPy copies; return both results as NumPy."""
    host = fn(*arrays)
    dev = fn(*[cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in arrays])
    return host, dev


def _close(host, dev, dtype):
    if isinstance(host, tuple):
        for h, d in zip(host, dev):
            _close(h, d, dtype)
        return
    d = to_numpy(dev)
    assert d.dtype == np.asarray(host).dtype
    np.testing.assert_allclose(d, host, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "strides,padding", [(1, "same"), (2, "same"), (3, "valid"), ((1, 2), "same")]
)
def test_conv_and_pool_match_numpy(dtype, strides, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 9, 8, 4)).astype(dtype)
    w = rng.standard_normal((4, 3, 4, 5)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)

    def conv(x, w, b):
        y, cache = ops.conv2d_forward(x, w, b, strides, padding)
        assert get_array_module(y) is get_array_module(x)
        dy = get_array_module(y).ones_like(y)
        return (y, *ops.conv2d_backward(dy, cache))

    _close(*_both(conv, x, w, b), dtype)

    def pool(x):
        y, cache = ops.maxpool2d_forward(x, 3, strides, padding)
        return y, ops.maxpool2d_backward(get_array_module(y).ones_like(y), cache)

    _close(*_both(pool, x), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [True, False])
def test_dense_softmax_loss_match_numpy(dtype, from_logits):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 7)).astype(dtype)
    w = rng.standard_normal((7, 4)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    labels = rng.integers(0, 4, 6)

    def chain(x, w, b, labels):
        z, c1 = ops.dense_forward(x, w, b)
        r, c2 = ops.relu_forward(z)
        p, c3 = ops.softmax_forward(r)
        loss, c4 = ops.sparse_categorical_crossentropy_forward(
            r if from_logits else p, labels, from_logits=from_logits
        )
        g = ops.sparse_categorical_crossentropy_backward(1.0, c4)
        if not from_logits:
            g = ops.softmax_backward(g, c3)
        dx, dw, db = ops.dense_backward(ops.relu_backward(g, c2), c1)
        return loss, dx, dw, db

    _close(*_both(chain, x, w, b, labels), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_seed_cnn_training_steps_match_numpy(dtype):
    from npcnn.train import train_step

    rng = np.random.default_rng(2)
    x = rng.random((8, 28, 28, 1)).astype(dtype)
    labels = rng.integers(0, 10, 8)
    host, dev = npcnn.seed_cnn(seed=0, dtype=dtype), npcnn.seed_cnn(seed=0, dtype=dtype)
    dev.to(cupy)
    opt_h, opt_d = npcnn.Adam(), npcnn.Adam()
    for _ in range(3):
        loss_h = train_step(host, opt_h, x, labels)
        loss_d = train_step(dev, opt_d, cupy.asarray(x), cupy.asarray(labels))
        np.testing.assert_allclose(
            float(loss_d), float(loss_h), rtol=TOL[np.dtype(dtype).type]["rtol"]
        )
    for a, b in zip(host.get_weights(), dev.get_weights()):
        # after Adam steps, weights differ by at most a fraction of the step size 1e-3
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-9 if dtype == "float64" else 2e-4)


def test_checkpoint_from_gpu_loads_on_cpu(tmp_path):
    from npcnn.checkpoint import load_checkpoint, save_checkpoint, weights_for

    model = npcnn.seed_cnn(seed=0).to(cupy)
    save_checkpoint(tmp_path / "g.npz", [(n, to_numpy(p)) for n, p in model.named_params()])
    ck = load_checkpoint(tmp_path / "g.npz")
    cpu = npcnn.seed_cnn(seed=1)
    cpu.set_weights(weights_for([(n, p.shape) for n, p in cpu.named_params()], ck["weights"]))
    for a, b in zip(cpu.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_predict_over_several_conv_slabs_matches_numpy():
    """150 images: CuPy's predict takes them in one chunk, conv2d_forward in three
    slabs through its reused im2col buffer; NumPy's predict in chunks of 128."""
    rng = np.random.default_rng(3)
    x = rng.random((150, 28, 28, 1)).astype(np.float32)
    host = npcnn.seed_cnn(seed=0)
    dev = npcnn.seed_cnn(seed=0).to(cupy)
    probs_dev = dev.predict(cupy.asarray(x))
    assert get_array_module(probs_dev) is cupy
    _close(host.predict(x), probs_dev, np.float32)
