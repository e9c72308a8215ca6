"""The peers of the benchmark do npcnn's work: PyTorch, JAX and MyGrad, built from
an npcnn model's weights (benchmarks/peers.py), give npcnn's logits, summed
cross-entropy and all eight gradients on a fixed batch, within the float32
rounding bound of the parity tests (parity_tests/tolerances.py): the longest sum
in the network is dense1's 3136 terms, so |peer - npcnn| <= 2 * 3136 * eps *
max|npcnn| per array (times the cancellation factor of dL/dlogits, 1 to 10 here).

'same' padding is checked where TensorFlow's split matters (an even kernel: the
odd extra row and column go to the bottom and right) and max-pooling at its
shapes, op by op against npcnn.ops. Each peer computes in a process of its own
(spawned: no framework is ever loaded beside another, and none in pytest's), and
hands its arrays back. A peer that is not installed skips, naming the extra that
installs it.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import npcnn
from benchmarks import peers
from npcnn import ops
from parity_tests.tolerances import assert_within, rounding_bound

SYSTEMS = ["torch-eager", "jax-jit", "mygrad"]
LONGEST_SUM = 7 * 7 * 64  # dense1's input: the longest reduction in the network
PARAMS = [f"{layer}/{kind}" for layer in ("conv1", "conv2", "dense1", "dense2")
          for kind in ("kernel", "bias")]  # fmt: skip
CONV_CASES = [(7, 4), (6, 5), (28, 5)]  # (size, kernel)
POOL_SIZES = [28, 7]


def conv_arrays(size, kernel):
    rng = np.random.default_rng(size)
    return {
        "x": rng.standard_normal((2, size, size, 3)).astype(np.float32),
        "w": rng.standard_normal((kernel, kernel, 3, 4)).astype(np.float32),
        "b": rng.standard_normal(4).astype(np.float32),
        "dy": rng.standard_normal((2, size, size, 4)).astype(np.float32),
    }


def pool_arrays(size):
    x = np.random.default_rng(size).standard_normal((2, size, size, 3)).astype(np.float32)
    return {"x": x, "dy": np.ones((2, size // 2, size // 2, 3), np.float32)}


def nhwc(system, out):
    """A peer op's output as an NHWC NumPy array."""
    if system == "torch-eager":
        return out.detach().numpy().transpose(0, 2, 3, 1)
    if system == "mygrad":
        return np.asarray(out.data).transpose(0, 2, 3, 1)
    return np.asarray(out)


def peer_outputs(system, weights, images, labels):
    """In the peer's own process: its logits, loss and gradients on the batch, its
    'same' convolutions and its max-pools, as NumPy arrays."""
    weights = [np.array(w) for w in weights]  # arrays owning their memory, as MyGrad needs
    images, labels = np.array(images), np.array(labels)
    net = peers.build(system, weights)
    return {
        "network": net.logits_loss_grads(images, labels),
        "conv": [nhwc(system, net.op("conv1", "forward", conv_arrays(*c))()) for c in CONV_CASES],
        "pool": [nhwc(system, net.op("pool1", "forward", pool_arrays(n))()) for n in POOL_SIZES],
    }


@pytest.fixture(scope="module")
def outputs(reference):
    """{system: peer_outputs(...)}, each computed in a spawned process; None: missing."""
    weights, images, labels = reference[:3]
    got = {}
    for system in SYSTEMS:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            try:
                got[system] = pool.submit(peer_outputs, system, weights, images, labels).result()
            except peers.Missing as e:
                got[system] = str(e)
    return got


def of(outputs, system):
    if isinstance(outputs[system], str):
        pytest.skip(f"{system}: {outputs[system]}")
    return outputs[system]


@pytest.fixture(scope="module")
def reference():
    """npcnn's model, a fixed MNIST-like batch, and npcnn's logits, loss, gradients
    (the loss from the logits, as every peer computes it)."""
    model = npcnn.seed_cnn(seed=0)
    rng = np.random.default_rng(7)
    images = (rng.random((3, 28, 28, 1)) * (rng.random((3, 28, 28, 1)) < 0.5)).astype(np.float32)
    labels = rng.integers(0, 10, 3)
    layers = model.layers[:-1]  # everything but the final Softmax
    assert isinstance(model.layers[-1], npcnn.Softmax)
    x = images
    for layer in layers:
        x = layer.forward(x)
    loss, cache = ops.sparse_categorical_crossentropy_forward(
        x, labels, from_logits=True, reduction="sum"
    )
    dy = ops.sparse_categorical_crossentropy_backward(np.float32(1), cache)
    for layer in reversed(layers):
        dy = layer.backward(dy)
    grads = [g.copy() for layer in layers for g in layer.grads]
    return model.get_weights(), images, labels, x, loss, grads


def kappa(logits, labels):
    """How much the cancellation in softmax(z) - onehot magnifies rounding in dL/dz."""
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.eye(10)[labels]
    return max(1.0, float((p + onehot).max() / np.abs(p - onehot).max()))


def within_scale(actual, expected, k, what, factor=1.0):
    """|actual - expected| <= the K-term rounding bound, relative to max|expected|."""
    expected = np.asarray(expected)
    scale = float(np.abs(expected).max())
    assert_within(np.asarray(actual), expected, factor * rounding_bound(scale, k, "float32"), what)


@pytest.mark.parametrize("system", SYSTEMS)
def test_logits_loss_and_gradients_equal_npcnns(reference, outputs, system):
    weights, images, labels, logits, loss, grads = reference
    p_logits, p_loss, p_grads = of(outputs, system)["network"]
    within_scale(p_logits, logits, LONGEST_SUM, f"{system} logits")
    within_scale(np.float32(p_loss), loss, LONGEST_SUM, f"{system} loss")
    assert len(p_grads) == len(grads) == 8
    factor = kappa(logits, labels)
    for name, g, ref in zip(PARAMS, p_grads, grads):
        within_scale(np.asarray(g, np.float32), ref, LONGEST_SUM, f"{system} d loss / d {name}",
                     factor)  # fmt: skip


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_same_padding_puts_the_odd_row_and_column_at_the_bottom_right(outputs, system, case):
    """An even kernel pads one more zero after than before: a peer that splits
    'same' padding the other way (or symmetrically) differs by whole products."""
    size, kernel = CONV_CASES[case]
    a = conv_arrays(size, kernel)
    out = of(outputs, system)["conv"][case]
    expected, _ = ops.conv2d_forward(a["x"], a["w"], a["b"], 1, "same")
    magnitude, _ = ops.conv2d_forward(np.abs(a["x"]), np.abs(a["w"]), np.abs(a["b"]), 1, "same")
    bound = rounding_bound(magnitude, kernel * kernel * 3 + 1, "float32")
    assert_within(out, expected, bound, f"{system} conv 'same', {size}x{size}, {kernel}x{kernel}")


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("case", range(len(POOL_SIZES)))
def test_max_pool_is_2x2_stride_2_valid(outputs, system, case):
    out = of(outputs, system)["pool"][case]
    expected, _ = ops.maxpool2d_forward(pool_arrays(POOL_SIZES[case])["x"], 2, 2, "valid")
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "size,kernel,stride,pads",
    [(28, 5, 1, (2, 2)), (7, 4, 1, (1, 2)), (28, 3, 2, (0, 1)), (5, 1, 1, (0, 0))],
)
def test_tf_same_pads(size, kernel, stride, pads):
    assert peers.tf_same_pads(size, kernel, stride) == pads


def test_layouts_round_trip():
    w = np.arange(5 * 5 * 3 * 4, dtype=np.float32).reshape(5, 5, 3, 4)
    assert peers.hwio_to_oihw(w).shape == (4, 3, 5, 5)
    np.testing.assert_array_equal(peers.oihw_to_hwio(peers.hwio_to_oihw(w)), w)
    d = np.arange(3136 * 2, dtype=np.float32).reshape(3136, 2)
    np.testing.assert_array_equal(peers.nchw_rows_to_nhwc(peers.nhwc_rows_to_nchw(d)), d)
    x = np.random.default_rng(0).random((2, 7, 7, 64)).astype(np.float32)
    # the NCHW flatten meets the permuted rows where the NHWC flatten meets the original
    np.testing.assert_allclose(
        x.transpose(0, 3, 1, 2).reshape(2, -1) @ peers.nhwc_rows_to_nchw(d),
        x.reshape(2, -1) @ d,
        rtol=1e-6,
    )


def test_a_missing_peer_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mygrad", None)  # import mygrad now fails
    with pytest.raises(peers.Missing, match=r"pip install '\.\[peers\]'"):
        peers.build("mygrad", peers.seed_weights())
