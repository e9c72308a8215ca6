"""``Sequential`` and ``seed_cnn``: Keras's parameter order, shapes and behaviour.

The tutorial net must expose its parameters in exactly Keras's
``get_weights()`` order and shapes, so that weights move between TensorFlow
and npcnn with ``set_weights`` and nothing else. Bad input is refused by name
and leaves the model as it was, whatever is passed (fuzzed below).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import npcnn
from npcnn import SGD, Adam, Conv2D, Dense, Flatten, MaxPool2D, Reshape, Sequential, ops, seed_cnn
from npcnn.fast.threads import blas_on_one_thread

from .helpers import ANY_VALUE, fuzz, raises

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


@pytest.mark.parametrize("kernels", ["fast", "ops"])
def test_seed_cnn_forward_equals_composed_ops(rng, kernels):
    """The model is nothing but its tier's ops in order (a hand-written forward
    pass), bit for bit; the fast tier's fused conv -> pool -> bias -> ReLU block
    included (``npcnn/fast/fused.py`` proves the reordering exact)."""
    model = npcnn.seed_cnn(seed=0, kernels=kernels)
    k = getattr(npcnn, kernels)
    x = rng.uniform(0, 1, size=(2, 28, 28, 1)).astype(np.float32)
    k1, b1, k2, b2, w3, b3, w4, b4 = model.params
    with blas_on_one_thread():  # as the fast tier runs BLAS
        h = k.relu_forward(k.conv2d_forward(x, k1, b1, 1, "same")[0])[0]
        h = k.maxpool2d_forward(h, 2, 2)[0]
        h = k.relu_forward(k.conv2d_forward(h, k2, b2, 1, "same")[0])[0]
        h = k.maxpool2d_forward(h, 2, 2)[0].reshape(2, 3136)
        h = k.relu_forward(k.dense_forward(h, w3, b3)[0])[0]
        probs = k.softmax_forward(k.dense_forward(h, w4, b4)[0])[0]
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


def test_set_weights_count_mismatch_lists_the_parameters(model):
    with pytest.raises(
        ValueError,
        match=re.escape("expected 8 weight arrays (conv1/kernel, conv1/bias, conv2/kernel"),
    ):
        model.set_weights(model.get_weights()[:-1])


def test_set_weights_needs_a_built_model():
    with pytest.raises(ValueError, match="build the model"):
        Sequential([Dense(2)]).set_weights([np.zeros((3, 2)), np.zeros(2)])


# ---- building, predicting, training --------------------------------------------------------


def test_model_builds_on_first_forward(rng):
    model = Sequential([Dense(4, activation="relu"), Dense(2)], seed=0)
    assert not model.built and model.params == []
    y = model.forward(rng.standard_normal((3, 5)))
    assert model.built and model.input_shape == (5,)
    assert y.shape == (3, 2)
    assert [p.shape for p in model.params] == [(5, 4), (4,), (4, 2), (2,)]


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


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_predict_rejects_a_batch_size_that_is_not_a_positive_int(bad):
    model = Sequential([Flatten()], input_shape=(2, 2, 1))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        model.predict(np.zeros((3, 2, 2, 1)), batch_size=bad)


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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_twenty_training_steps_give_the_same_weights_on_both_tiers(dtype):
    """seed_cnn on the readable ops and on the fast tier, trained 20 Adam steps on
    the same batches: the same losses and weights up to rounding. The tiers sum in
    different orders (conv2 row-wise), and training amplifies rounding: float64
    within 1e-10 of each array's largest weight, float32 within 1e-3 (a fortieth
    of the 2 * 20 * lr two runs can drift apart, as the parity tests state)."""
    from npcnn.train import train_step

    rng = np.random.default_rng(5)
    images = rng.random((20, 8, 28, 28, 1)).astype(dtype)
    labels = rng.integers(0, 10, (20, 8))
    weights = {}
    for kernels in ("ops", "fast"):
        model = npcnn.seed_cnn(seed=3, dtype=dtype, kernels=kernels)
        optimizer = npcnn.Adam(1e-3, kernels=kernels)
        losses = [float(train_step(model, optimizer, x, t)) for x, t in zip(images, labels)]
        weights[kernels] = (np.array(losses), model.get_weights())
    assert weights["ops"][0][-1] < weights["ops"][0][0]  # it trained
    relative = dtype == "float64"
    loss_rtol = 1e-12 if relative else 2e-6
    np.testing.assert_allclose(weights["fast"][0], weights["ops"][0], rtol=loss_rtol)
    for w_ops, w_fast in zip(weights["ops"][1], weights["fast"][1]):
        bound = 1e-10 * np.abs(w_ops).max() if relative else 1e-3
        assert np.abs(w_fast.astype(np.float64) - w_ops).max() <= bound


def test_kernels_switch_reaches_every_layer_and_rejects_unknown_names():
    model = npcnn.seed_cnn(kernels="ops")
    assert all(layer.kernels is npcnn.ops for layer in model.layers)
    assert all(layer.kernels is npcnn.fast for layer in npcnn.seed_cnn().layers)
    with pytest.raises(ValueError, match="kernels must be 'fast' or 'ops'"):
        npcnn.seed_cnn(kernels="quick")
    with pytest.raises(ValueError, match="kernels must be 'fast' or 'ops'"):
        npcnn.Adam(kernels="numba")


# ---- bad input: refused by name, and the model left as it was ------------------------------


def test_valid_output_would_be_empty_in_a_model_names_the_layer():
    with raises("pool2 of spatial size (1, 1) is smaller than the window (2, 2)"):
        Sequential(
            [Conv2D(1, 3, name="conv"), MaxPool2D(2, name="pool1"), MaxPool2D(2, name="pool2")],
            input_shape=(5, 5, 1),
        )


def test_model_build_errors_name_the_layer():
    with raises("dense1 expects flat inputs (features,), got (4, 4, 2): put a Flatten"):
        Sequential([Dense(3, name="dense1")], input_shape=(4, 4, 2))
    with raises("conv expects inputs (H, W, C), got (16,)"):
        Sequential([Conv2D(3, 3, name="conv")], input_shape=(16,))
    with raises("flat cannot reshape (4, 4, 2) to (30,): 32 != 30 values"):
        Sequential([Reshape((30,), name="flat")], input_shape=(4, 4, 2))


def test_model_forward_rejects_wrong_input_shape():
    model = Sequential([Conv2D(2, 3, name="conv")], input_shape=(6, 6, 1))
    with raises("expected a batch of shape (N, 6, 6, 1), got (2, 1, 6, 6)"):
        model.forward(np.zeros((2, 1, 6, 6)))


def test_model_dtype_must_be_float():
    with raises("dtype must be float32 or float64, got 'int32'"):
        Sequential([Dense(2)], dtype="int32")


def small_model(**kw):
    return Sequential([Conv2D(2, 3), Flatten(), Dense(3)], seed=1, **kw)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: Sequential([Dense(3)], input_shape=(4.0,)), "input_shape"),
        (lambda: Sequential("dense"), "layers"),
        (lambda: Sequential([Dense(3)], seed=1.5), "seed"),
    ],
)
def test_sequential_refuses_what_is_not_a_shape_a_list_or_a_seed(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_failed_build_leaves_the_model_unchanged():
    model = Sequential([Conv2D(2, 3), Dense(3)], seed=1)  # no Flatten: Dense refuses (H, W, C)
    with pytest.raises(ValueError, match="flat inputs"):
        model.forward(np.zeros((1, 5, 5, 1)))
    assert not model.built and model.layers[0].params == []  # conv1 was built before
    model.layers.insert(1, Flatten())
    model.build((5, 5, 1))  # the generator was not advanced by the failed build
    reference = small_model(input_shape=(5, 5, 1))
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", ["shape", "text", "count"])
def test_set_weights_is_atomic(bad):
    model = small_model(input_shape=(5, 5, 1))
    before = model.get_weights()
    weights = [w + 1 for w in before]
    if bad == "shape":
        weights[2] = np.zeros((3, 3))  # the third weight: the first two fit
    elif bad == "text":
        weights[2] = np.array(["a"] * weights[2].size).reshape(weights[2].shape)
    else:
        weights = weights[:3]
    with pytest.raises(ValueError, match="weight"):
        model.set_weights(weights)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_flags_and_inputs_are_checked():
    model = small_model(input_shape=(5, 5, 1))
    with pytest.raises(ValueError, match="x must be a numeric array"):
        model.forward("abc")
    with pytest.raises(ValueError, match="x must be a numeric array"):
        model.forward([[1, 2], [3]])
    model.forward(np.zeros((2, 5, 5, 1)))
    with pytest.raises(ValueError, match="need_dx"):
        model.backward(np.ones((2, 3), np.float32), need_dx="no")
    x = np.random.default_rng(0).random((2, 5, 5, 1)).round(2)
    np.testing.assert_array_equal(model.forward(x.tolist()), model.forward(x))  # lists are fine


@fuzz(60)
@given(shape=st.lists(ANY_VALUE, max_size=4))
def test_build_with_any_input_shape_is_all_or_nothing(shape):
    model = Sequential([Conv2D(2, 3), Flatten(), Dense(3)], seed=0)
    try:
        model.build(shape)
    except ValueError as exc:
        assert "input_shape" in str(exc) or "conv2d" in str(exc) or "dense" in str(exc)
        assert not model.built
        assert all(layer.params == [] for layer in model.layers)
        assert model.rng.bit_generator.state == np.random.default_rng(0).bit_generator.state
        return
    assert model.input_shape == tuple(shape)


SHAPES = [(3, 3, 1, 2), (2,), (18, 3), (3,)]  # the small model below, input (5, 5, 1)


def weight_lists():
    one = st.one_of(
        *(
            hnp.arrays(np.float64, s, elements=st.floats(-1, 1)) for s in SHAPES
        ),  # right or wrong place
        hnp.arrays(
            st.sampled_from([np.float32, np.int8, np.bool_, np.complex64, np.dtype("U1")]),
            hnp.array_shapes(max_dims=2, max_side=3),
        ),
        st.text(max_size=2),
        st.none(),
    )
    return st.lists(one, min_size=0, max_size=5)


@fuzz(60)
@given(weights=weight_lists())
def test_set_weights_with_any_list_is_all_or_nothing(weights):
    model = Sequential([Conv2D(2, 3), Flatten(), Dense(3)], input_shape=(5, 5, 1), seed=0)
    before = model.get_weights()
    try:
        model.set_weights(weights)
    except ValueError as exc:
        assert "weight" in str(exc)
        for a, b in zip(before, model.get_weights()):
            np.testing.assert_array_equal(a, b)
        return
    for w, got in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(np.asarray(w).astype(np.float32), got)


MODEL = Sequential([Conv2D(2, 3), Flatten(), Dense(3)], input_shape=(5, 5, 1), seed=0)


BATCH = np.random.default_rng(1).random((2, 5, 5, 1))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf and nan among the inputs
@fuzz(80)
@given(
    x=st.one_of(
        st.text(max_size=3),
        st.none(),
        st.integers(),
        st.floats(),
        st.just(BATCH.tolist()),
        st.just([[1.0, 2.0], [3.0]]),
        st.just({"x": BATCH}),
        hnp.arrays(
            st.sampled_from([np.float32, np.float64, np.uint8, np.bool_, np.complex128, object]),
            st.sampled_from([(2, 5, 5, 1), (1, 5, 5, 1), (0, 5, 5, 1), (2, 5, 5), (5, 5, 1)]),
        ),
    )
)
def test_forward_takes_arrays_and_lists_of_numbers_only(x):
    try:
        y = MODEL.forward(x)
    except ValueError as exc:
        assert "x must be" in str(exc) or "expected a batch of shape" in str(exc)
        return
    reference = np.asarray(x).astype(np.float32)
    assert reference.ndim == 4 and reference.shape[1:] == (5, 5, 1)
    np.testing.assert_array_equal(y, MODEL.forward(reference))


# ---- dtypes --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 0], ids=["N=3", "N=0"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_seed_cnn_keeps_dtype_and_handles_empty_batch(rng, dtype, n):
    model = seed_cnn(seed=0, dtype=np.dtype(dtype).name)
    assert all(p.dtype == dtype for p in model.params)
    # uint8 pixels (as MNIST ships them) are cast to the model's dtype, as in Keras
    probs = model.forward(rng.integers(0, 256, size=(n, 28, 28, 1), dtype=np.uint8))
    assert probs.dtype == dtype and probs.shape == (n, 10)
    loss, cache = ops.sparse_categorical_crossentropy_forward(probs, rng.integers(0, 10, size=n))
    dx = model.backward(ops.sparse_categorical_crossentropy_backward(np.float64(1.0), cache))
    assert dx.dtype == dtype and dx.shape == (n, 28, 28, 1)
    assert [g.dtype for g in model.grads] == [dtype] * 8
    assert [g.shape for g in model.grads] == [p.shape for p in model.params]

    adam = Adam(1e-3)
    for optimizer in (adam, SGD(0.01)):
        optimizer.apply_gradients(zip(model.grads, model.params))
        assert all(p.dtype == dtype for p in model.params)
    assert all(m.dtype == dtype for m in adam.m + adam.v)
