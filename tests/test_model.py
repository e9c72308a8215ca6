"""Layers, ``Sequential`` and ``seed_cnn``: Keras's shapes, order and behaviour.

The tutorial net must expose its parameters in exactly Keras's
``get_weights()`` order and shapes, so that weights move between TensorFlow
and npcnn with ``set_weights`` and nothing else.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import npcnn
from npcnn import (
    SGD,
    Adam,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    MaxPooling2D,
    ReLU,
    Reshape,
    Sequential,
    Softmax,
    ops,
    seed_cnn,
)
from npcnn.initializers import compute_fans, glorot_uniform, zeros

KERAS_SHAPES = [
    ("conv1/kernel", (5, 5, 1, 32)),
    ("conv1/bias", (32,)),
    ("conv2/kernel", (5, 5, 32, 64)),
    ("conv2/bias", (64,)),
    ("dense1/kernel", (3136, 1024)),
    ("dense1/bias", (1024,)),
    ("dense2/kernel", (1024, 10)),
    ("dense2/bias", (10,)),
]


@pytest.fixture(scope="module")
def model():
    """One tutorial net for the read-only tests (building it draws 3.3M numbers)."""
    return seed_cnn(seed=0)


# ---- seed_cnn -----------------------------------------------------------------------------


def test_seed_cnn_parameter_order_and_shapes_equal_keras(model):
    assert [(name, p.shape) for name, p in model.named_params()] == KERAS_SHAPES
    assert [p.shape for p in model.params] == [s for _, s in KERAS_SHAPES]
    assert [w.shape for w in model.get_weights()] == [s for _, s in KERAS_SHAPES]
    assert model.count_params() == 3_274_634  # Keras's model.count_params()
    assert model.output_shapes == [
        (28, 28, 32),
        (14, 14, 32),
        (14, 14, 64),
        (7, 7, 64),
        (3136,),
        (1024,),
        (10,),
        (10,),
    ]


def test_seed_cnn_grads_follow_params_order(model, rng):
    x = rng.uniform(0, 1, size=(2, 28, 28, 1)).astype(np.float32)
    probs = model.forward(x)
    _, cache = ops.sparse_categorical_crossentropy_forward(probs, np.array([3, 7]))
    model.backward(ops.sparse_categorical_crossentropy_backward(1.0, cache))
    assert [g.shape for g in model.grads] == [s for _, s in KERAS_SHAPES]
    assert [g.dtype for g in model.grads] == [np.float32] * 8


def test_seed_cnn_is_reproducible_from_its_seed(model):
    again = seed_cnn(seed=0)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    other = seed_cnn(seed=1)
    assert not np.array_equal(model.params[0], other.params[0])
    # a Generator works too, and is consumed like the seed it came from
    from_generator = seed_cnn(seed=np.random.default_rng(0))
    np.testing.assert_array_equal(from_generator.params[2], model.params[2])


def test_seed_cnn_initialisation_is_glorot_kernels_and_zero_biases(model):
    for (name, p), (fan_in, fan_out) in zip(
        model.named_params()[::2], [(25, 800), (800, 1600), (3136, 1024), (1024, 10)]
    ):
        limit = math.sqrt(6 / (fan_in + fan_out))
        assert np.abs(p).max() <= limit, name
        assert np.abs(p).max() > 0.98 * limit, name  # fills the whole interval
        # mean and spread of U(-limit, limit)
        assert abs(p.mean()) < 0.05 * limit, name
        np.testing.assert_allclose(p.std(), limit / math.sqrt(3), rtol=0.1, err_msg=name)
    for _, bias in model.named_params()[1::2]:
        assert np.all(bias == 0)


def test_seed_cnn_forward_gives_probabilities(model, rng):
    probs = model.forward(rng.uniform(0, 1, size=(4, 28, 28, 1)))
    assert probs.shape == (4, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(probs > 0)


def test_seed_cnn_forward_equals_composed_ops(model, rng):
    """The model is nothing but the ops in order (a hand-written forward pass)."""
    x = rng.uniform(0, 1, size=(2, 28, 28, 1)).astype(np.float32)
    k1, b1, k2, b2, w3, b3, w4, b4 = model.params
    h = ops.relu_forward(ops.conv2d_forward(x, k1, b1, 1, "same")[0])[0]
    h = ops.maxpool2d_forward(h, 2, 2)[0]
    h = ops.relu_forward(ops.conv2d_forward(h, k2, b2, 1, "same")[0])[0]
    h = ops.maxpool2d_forward(h, 2, 2)[0].reshape(2, 3136)
    h = ops.relu_forward(ops.dense_forward(h, w3, b3)[0])[0]
    probs = ops.softmax_forward(ops.dense_forward(h, w4, b4)[0])[0]
    np.testing.assert_array_equal(model.forward(x), probs)


def test_float64_model(rng):
    model64 = seed_cnn(seed=0, dtype="float64")
    model32 = seed_cnn(seed=0)
    assert model64.dtype == np.float64
    assert all(p.dtype == np.float64 for p in model64.params)
    # the same draws, kept in float64 instead of rounded to float32
    for p64, p32 in zip(model64.params, model32.params):
        np.testing.assert_allclose(p64.astype(np.float32), p32, rtol=1e-6)
    x = rng.uniform(0, 1, size=(2, 28, 28, 1))
    probs64 = model64.forward(x)
    assert probs64.dtype == np.float64
    np.testing.assert_allclose(probs64, model32.forward(x), rtol=1e-3, atol=1e-6)


def test_summary(model):
    lines = []
    text = model.summary(print_fn=lines.append)
    assert lines == [text]
    for expected in [
        "conv1 (Conv2D)",
        "(None, 28, 28, 32)",
        "832",
        "pool1 (MaxPool2D)",
        "(None, 14, 14, 32)",
        "conv2 (Conv2D)",
        "51,264",
        "flatten (Reshape)",
        "(None, 3136)",
        "dense1 (Dense)",
        "3,212,288",
        "dense2 (Dense)",
        "10,250",
        "softmax (Softmax)",
        "Total params: 3,274,634 (float32)",
    ]:
        assert expected in text
    assert model.summary(print_fn=None) == text


# ---- get_weights / set_weights ------------------------------------------------------------


def test_get_weights_returns_copies():
    model = Sequential([Dense(3, name="d")], input_shape=(2,), seed=0)
    weights = model.get_weights()
    weights[0][...] = 42.0
    assert not np.any(model.params[0] == 42.0)


def test_set_weights_copies_in_place_so_optimizer_references_stay_valid(rng):
    model = Sequential(
        [Conv2D(2, 3, padding="same", activation="relu", name="conv"), Flatten(), Dense(3)],
        input_shape=(4, 4, 1),
        seed=0,
    )
    params_before = model.params
    adam = Adam(0.1)
    x = rng.uniform(size=(2, 4, 4, 1))
    model.backward(np.ones_like(model.forward(x)))
    adam.apply_gradients(zip(model.grads, model.params))  # Adam now holds m, v for these arrays

    new = [rng.standard_normal(p.shape) for p in model.params]  # float64 on purpose
    model.set_weights(new)
    for before, now, w in zip(params_before, model.params, new):
        assert now is before  # the very same arrays...
        assert now.dtype == np.float32  # ...cast to the model's dtype...
        np.testing.assert_allclose(now, w, rtol=1e-6)  # ...holding the new values
    for source in new:
        source[...] = 0.0  # the model copied, it does not alias the caller's arrays
    assert not np.all(model.params[0] == 0)

    # an optimizer step after set_weights moves the values that were set
    snapshot = [p.copy() for p in model.params]
    model.backward(np.ones_like(model.forward(x)))
    SGD(0.5).apply_gradients(zip(model.grads, params_before))
    assert any(not np.array_equal(a, b) for a, b in zip(model.params, snapshot))


def test_set_weights_roundtrip_between_models(model):
    clone = seed_cnn(seed=5)
    clone.set_weights(model.get_weights())
    for a, b in zip(model.params, clone.params):
        np.testing.assert_array_equal(a, b)


def test_set_weights_shape_mismatch_names_parameter_and_shapes(model):
    weights = model.get_weights()
    weights[2] = np.zeros((5, 5, 32, 63), np.float32)
    with pytest.raises(
        ValueError,
        match=re.escape("conv2/kernel has shape (5, 5, 32, 63), the model needs (5, 5, 32, 64)"),
    ):
        model.set_weights(weights)


def test_set_weights_mismatch_changes_nothing():
    model = Sequential([Dense(3, name="a"), Dense(2, name="b")], input_shape=(4,), seed=0)
    before = model.get_weights()
    bad = [np.ones((4, 3)), np.ones(3), np.ones((3, 2)), np.ones(3)]  # last one is wrong
    with pytest.raises(ValueError, match=re.escape("b/bias has shape (3,), the model needs (2,)")):
        model.set_weights(bad)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # checked everything before copying anything


def test_set_weights_count_mismatch_lists_the_parameters(model):
    with pytest.raises(
        ValueError,
        match=re.escape("expected 8 weight arrays (conv1/kernel, conv1/bias, conv2/kernel"),
    ):
        model.set_weights(model.get_weights()[:-1])


def test_set_weights_needs_a_built_model():
    with pytest.raises(ValueError, match="build the model"):
        Sequential([Dense(2)]).set_weights([np.zeros((3, 2)), np.zeros(2)])


# ---- individual layers --------------------------------------------------------------------


def test_model_builds_on_first_forward(rng):
    model = Sequential([Dense(4, activation="relu"), Dense(2)], seed=0)
    assert not model.built and model.params == []
    y = model.forward(rng.standard_normal((3, 5)))
    assert model.built and model.input_shape == (5,)
    assert y.shape == (3, 2)
    assert [p.shape for p in model.params] == [(5, 4), (4,), (4, 2), (2,)]


def test_layers_match_ops_and_keras_output_shapes(rng):
    x = rng.standard_normal((2, 9, 8, 3))
    conv = Conv2D(4, (3, 2), strides=(2, 1), padding="valid", activation="relu")
    assert conv.build((9, 8, 3), rng, np.float64) == (4, 7, 4)
    kernel, bias = conv.params
    assert kernel.shape == (3, 2, 3, 4) and bias.shape == (4,)
    expected = ops.relu_forward(ops.conv2d_forward(x, kernel, bias, (2, 1), "valid")[0])[0]
    np.testing.assert_array_equal(conv.forward(x), expected)

    pool = MaxPooling2D(3, strides=2, padding="same")
    assert MaxPooling2D is MaxPool2D
    assert pool.build((9, 8, 3), rng, np.float64) == (5, 4, 3)
    np.testing.assert_array_equal(pool.forward(x), ops.maxpool2d_forward(x, 3, 2, "same")[0])

    flat = Flatten()
    assert flat.build((9, 8, 3), rng, np.float64) == (216,)
    np.testing.assert_array_equal(flat.forward(x), x.reshape(2, 216))
    reshape = Reshape((216,))
    assert reshape.build((9, 8, 3), rng, np.float64) == (216,)
    np.testing.assert_array_equal(reshape.backward(reshape.forward(x)), x)

    dense = Dense(5, activation="softmax")
    assert dense.build((216,), rng, np.float64) == (5,)
    np.testing.assert_allclose(dense.forward(flat.forward(x)).sum(axis=1), 1.0)

    relu, softmax = ReLU(), Softmax()
    np.testing.assert_array_equal(relu.forward(x), np.maximum(x, 0))
    np.testing.assert_allclose(softmax.forward(x).sum(axis=-1), 1.0)


def test_reshape_resolves_one_minus_one_when_built(rng):
    """As Keras: one size may be -1, the rest of the input's size fills it."""
    x = rng.standard_normal((2, 9, 8, 3))
    reshape = Reshape((-1, 4))
    assert reshape.build((9, 8, 3), rng, np.float64) == (54, 4)
    assert reshape.target_shape == (54, 4)
    np.testing.assert_array_equal(reshape.forward(x), x.reshape(2, 54, 4))
    with pytest.raises(ValueError, match="one -1 at most"):
        Reshape((-1, -1))
    with pytest.raises(ValueError, match=r"cannot reshape \(9, 8, 3\) to \(-1, 5\)"):
        Reshape((-1, 5)).build((9, 8, 3), rng, np.float64)
    with pytest.raises(ValueError, match="target_shape"):
        Reshape((0, -1))


def test_layer_backward_sets_grads_and_matches_ops(rng):
    x = rng.standard_normal((3, 6))
    dense = Dense(4, activation="relu")
    dense.build((6,), rng, np.float64)
    y = dense.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = dense.backward(dy)
    kernel, bias = dense.params
    pre, cache = ops.dense_forward(x, kernel, bias)
    d_pre = np.where(pre > 0, dy, 0)
    want_dx, want_dw, want_db = ops.dense_backward(d_pre, cache)
    np.testing.assert_allclose(dx, want_dx)
    np.testing.assert_allclose(dense.grads[0], want_dw)
    np.testing.assert_allclose(dense.grads[1], want_db)


def test_predict_batches_equal_one_forward(rng):
    model = Sequential([Flatten(), Dense(3, activation="softmax")], input_shape=(4, 4, 1), seed=0)
    x = rng.standard_normal((7, 4, 4, 1))
    np.testing.assert_allclose(model.predict(x, batch_size=3), model.forward(x), rtol=1e-6)
    assert model.predict(x[:0]).shape == (0, 3)


def test_predict_default_chunks_equal_one_forward(rng):
    """The default chunk (128 examples with NumPy): 300 examples run as 128+128+44."""
    model = Sequential([Flatten(), Dense(3, activation="relu")], input_shape=(4, 4, 1), seed=0)
    x = rng.standard_normal((300, 4, 4, 1))
    np.testing.assert_allclose(model.predict(x), model.forward(x), rtol=1e-12)


@pytest.mark.parametrize("bad", [0, -5])
def test_predict_rejects_a_batch_size_below_one(bad):
    model = Sequential([Flatten()], input_shape=(2, 2, 1))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        model.predict(np.zeros((3, 2, 2, 1)), batch_size=bad)


# ---- initialisers -------------------------------------------------------------------------


def test_compute_fans_follow_keras():
    assert compute_fans((5, 5, 1, 32)) == (5 * 5 * 1, 5 * 5 * 32)
    assert compute_fans((3, 2, 4, 6)) == (3 * 2 * 4, 3 * 2 * 6)
    assert compute_fans((3136, 1024)) == (3136, 1024)
    assert compute_fans((7,)) == (7, 7)


def test_glorot_uniform_limit_uses_receptive_field(rng):
    shape = (5, 5, 32, 64)
    w = glorot_uniform(shape, rng)
    limit = math.sqrt(6 / (5 * 5 * 32 + 5 * 5 * 64))  # 0.05
    assert w.dtype == np.float32 and w.shape == shape
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.999 * limit
    # a limit from the channel counts alone, sqrt(6 / (32 + 64)) = 0.25, is five times too big
    assert np.abs(w).max() < 0.25 / 4
    assert glorot_uniform((3, 3), rng, dtype="float64").dtype == np.float64
    np.testing.assert_array_equal(zeros((4,), dtype="float64"), np.zeros(4))


def test_backward_can_skip_the_need_dx():
    """Training needs no dL/dx for the images: skipping it changes no parameter gradient."""
    rng = np.random.default_rng(7)
    model = npcnn.seed_cnn(seed=3)
    x = rng.random((4, 28, 28, 1), dtype=np.float32)
    dy = rng.standard_normal((4, 10)).astype(np.float32)
    model.forward(x)
    dx = model.backward(dy)
    full = [g.copy() for g in model.grads]
    model.forward(x)
    assert model.backward(dy, need_dx=False) is None
    assert dx.shape == x.shape
    for a, b in zip(full, model.grads):
        np.testing.assert_array_equal(a, b)
    y, cache = npcnn.ops.conv2d_forward(x, model.params[0], model.params[1])
    none, dw, db = npcnn.ops.conv2d_backward(np.ones_like(y), cache, need_dx=False)
    dx, dw2, db2 = npcnn.ops.conv2d_backward(np.ones_like(y), cache)
    assert none is None and dx.shape == x.shape
    np.testing.assert_array_equal(dw, dw2)
    np.testing.assert_array_equal(db, db2)


@pytest.mark.parametrize(
    "make",
    [lambda: Conv2D(3, 2, padding="same", activation="relu"), lambda: Dense(3, activation="relu")],
)
def test_layer_relu_in_place_leaves_input_and_gradients_intact(rng, make):
    """A layer with a ReLU (on the default fast tier, which may work in place):
    the input must not change, and the backward pass must equal the composed
    readable ops'."""
    layer = make()
    shape = (4, 5) if isinstance(layer, Dense) else (2, 4, 4, 2)
    layer.build(shape[1:], rng, np.float64)
    x = rng.standard_normal(shape)
    x_before = x.copy()
    y = layer.forward(x)
    np.testing.assert_array_equal(x, x_before)
    op = ops.dense_forward if isinstance(layer, Dense) else ops.conv2d_forward
    pre, op_cache = op(x, *layer.params)
    np.testing.assert_array_equal(y, np.maximum(pre, 0))
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    backward = ops.dense_backward if isinstance(layer, Dense) else ops.conv2d_backward
    dx_ops, dw, db = backward(np.where(pre > 0, dy, 0), op_cache)
    np.testing.assert_array_equal(dx, dx_ops)
    np.testing.assert_array_equal(layer.grads[0], dw)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_twenty_training_steps_give_the_same_weights_on_both_tiers(dtype):
    """seed_cnn on the readable ops and on the fast tier, trained 20 Adam steps on
    the same batches: the same weights, bit for bit. (At batches under the fast
    tier's slab size every GEMM has the same shape in both tiers, and every
    other trick repeats the same operations in the same order, so there is no
    rounding difference to bound.)"""
    from npcnn.train import train_step

    rng = np.random.default_rng(5)
    images = rng.random((20, 8, 28, 28, 1)).astype(dtype)
    labels = rng.integers(0, 10, (20, 8))
    weights = {}
    for kernels in ("ops", "fast"):
        model = npcnn.seed_cnn(seed=3, dtype=dtype, kernels=kernels)
        optimizer = npcnn.Adam(1e-3, kernels=kernels)
        losses = [float(train_step(model, optimizer, x, t)) for x, t in zip(images, labels)]
        weights[kernels] = (losses, model.get_weights())
    assert weights["ops"][0] == weights["fast"][0]
    assert weights["ops"][0][-1] < weights["ops"][0][0]  # it trained
    for w_ops, w_fast in zip(weights["ops"][1], weights["fast"][1]):
        np.testing.assert_array_equal(w_ops, w_fast)


def test_kernels_switch_reaches_every_layer_and_rejects_unknown_names():
    model = npcnn.seed_cnn(kernels="ops")
    assert all(layer.kernels is npcnn.ops for layer in model.layers)
    assert all(layer.kernels is npcnn.fast for layer in npcnn.seed_cnn().layers)
    with pytest.raises(ValueError, match="kernels must be 'fast' or 'ops'"):
        npcnn.seed_cnn(kernels="quick")
    with pytest.raises(ValueError, match="kernels must be 'fast' or 'ops'"):
        npcnn.Adam(kernels="numba")
