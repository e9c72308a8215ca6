"""Tests of the ``tfcnn`` package itself: SeedCNN, the loss paths, to_npcnn/from_npcnn.

Whole-model numerical parity with npcnn is in ``test_model_parity.py``; here
each tfcnn promise is checked on its own: weights exist at construction in
npcnn's order, the cross-entropy path each ``loss_path`` takes (eager and
under ``tf.function``), and that model conversion keeps the outputs and
refuses, by name, what npcnn cannot represent or would get wrong; ``TFLearner``
is a ``Learner``.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

import npcnn  # noqa: E402
import tfcnn  # noqa: E402
from npcnn.train import Learner, TrainConfig  # noqa: E402

L = keras.layers
FLOAT64_TOL = 1e-12  # max|difference| relative to max|value| for float64 forward passes


def assert_close(actual, expected, what, tol=FLOAT64_TOL):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: {actual.shape} != {expected.shape}"
    scale = max(float(np.abs(expected).max()), 1e-300)
    assert np.abs(actual - expected).max() <= tol * scale, what


# ---- SeedCNN --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_seed_cnn_has_weights_at_construction_in_npcnn_order(dtype):
    model = tfcnn.SeedCNN(seed=0, dtype=dtype)
    weights = model.get_weights()  # no call needed
    np_shapes = [w.shape for w in npcnn.seed_cnn(dtype=dtype).get_weights()]
    assert [w.shape for w in weights] == np_shapes
    assert {w.dtype for w in weights} == {np.dtype(dtype)}
    assert all(not b.any() for b in weights[1::2])  # biases start at zero
    x = np.random.default_rng(0).random((2, 28, 28, 1))
    probs = model(x)
    assert probs.dtype == dtype and probs.shape == (2, 10)
    np.testing.assert_array_equal(probs.numpy(), tf.nn.softmax(model.logits(x)).numpy())


def test_seed_cnn_seed_fixes_the_initial_weights():
    a, b, c = (tfcnn.SeedCNN(seed=s).get_weights() for s in (3, 3, 4))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("dtype", ["float16", "int32", "bfloat16", "mixed_float16"])
def test_seed_cnn_rejects_other_dtypes(dtype):
    with pytest.raises(ValueError, match="float32 or 'float64'|float32' or 'float64'"):
        tfcnn.SeedCNN(dtype=dtype)


def test_weights_move_both_ways_with_set_weights():
    np_model = npcnn.seed_cnn(seed=1, dtype="float64")
    tf_model = tfcnn.SeedCNN(dtype="float64")
    tf_model.set_weights(np_model.get_weights())
    for w_tf, w_np in zip(tf_model.get_weights(), np_model.get_weights()):
        np.testing.assert_array_equal(w_tf, w_np)
    back = npcnn.seed_cnn(seed=2, dtype="float64")
    back.set_weights(tf_model.get_weights())
    for w_back, w_np in zip(back.get_weights(), np_model.get_weights()):
        np.testing.assert_array_equal(w_back, w_np)


# ---- the cross-entropy paths -------------------------------------------------------------
@pytest.fixture(scope="module")
def saturated():
    """A SeedCNN so confident that most probabilities are below 1e-7, and a batch whose
    labels are the *least* likely classes: there the two cross-entropies differ most."""
    model = tfcnn.SeedCNN(seed=0, dtype="float64")
    weights = model.get_weights()
    weights[6] = weights[6] * 500  # dense2/kernel: logit spread ~0.2 -> ~100
    model.set_weights(weights)
    images = np.random.default_rng(1).random((2, 28, 28, 1))
    labels = model(images).numpy().argmin(axis=1)
    return model, images, labels


def test_keras_takes_the_clipped_path_eagerly_and_the_logits_under_tf_function(saturated):
    model, images, _ = saturated
    assert tfcnn.keras_crossentropy_path(model(images)) == "clipped-probs"
    seen = {}

    @tf.function
    def traced(x):
        probs = model(x)
        seen["softmax output"] = tfcnn.keras_crossentropy_path(probs)
        seen["not a softmax"] = tfcnn.keras_crossentropy_path(probs * 1.0)
        return probs

    traced(images)
    assert seen == {"softmax output": "logits", "not a softmax": "clipped-probs"}


def test_loss_paths_compute_what_the_docstring_says(saturated):
    """Eagerly 'tutorial' == 'clipped-probs'; under tf.function 'tutorial' == 'logits',
    and 'clipped-probs' still clips. Saturated outputs make the two paths differ."""
    model, images, labels = saturated

    def all_losses():
        return {p: tfcnn.batch_loss(model, images, labels, p) for p in tfcnn.LOSS_PATHS}

    eager = {p: float(v) for p, v in all_losses().items()}
    graph = {p: float(v) for p, v in tf.function(all_losses)().items()}

    # each example's clipped loss is at most -log(1e-7 / (1 + 9e-7)) ~ 16.1; the logits loss is not
    assert eager["clipped-probs"] <= 2 * 16.2 < eager["logits"] - 10
    assert eager["tutorial"] == eager["clipped-probs"]
    assert graph["tutorial"] == pytest.approx(graph["logits"], rel=1e-12)
    assert graph["clipped-probs"] == pytest.approx(eager["clipped-probs"], rel=1e-12)
    assert graph["logits"] == pytest.approx(eager["logits"], rel=1e-12)


def tiny_classifier(softmax):
    """Input (4,) -> Dense(3) with large weights -> ``softmax``: saturated probabilities."""
    model = keras.Sequential([keras.Input((4,)), L.Dense(3, activation=softmax)])
    model.set_weights(
        [np.array([[60.0, 0, -60], [0, 40, 0], [-50, 0, 50], [0, 0, 0]]), np.zeros(3)]
    )
    return model


TINY_IMAGES = np.array([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], dtype="float32")
TINY_LABELS = np.array([2, 0, 0])  # mostly the unlikely classes


def test_train_step_reports_the_path_it_took():
    """'tutorial' on a tf.nn.softmax output: clipped eagerly, logits once traced."""
    for jit, path in ((False, "clipped-probs"), (True, "logits")):
        model = tiny_classifier(tf.nn.softmax)
        step = tfcnn.make_train_step(model, loss_path="tutorial", jit=jit)
        assert step.loss_path == path  # resolve_loss_path's prediction...
        step.loss_path = None
        step(TINY_IMAGES, TINY_LABELS)
        assert step.loss_path == path  # ...and what the step's code saw


def test_a_keras_softmax_takes_the_logits_path_even_eagerly():
    """Keras's softmax tags its output with _keras_logits: no clipping, eager or not.
    'clipped-probs' still clips (it never asks Keras), which is why it exists."""
    model = tiny_classifier("softmax")
    assert tfcnn.keras_crossentropy_path(model(TINY_IMAGES)) == "logits"
    tutorial, taken = tfcnn.per_example_crossentropy(model, TINY_IMAGES, TINY_LABELS, "tutorial")
    clipped = tfcnn.batch_loss(model, TINY_IMAGES, TINY_LABELS, "clipped-probs")
    assert taken == "logits"
    assert float(tf.reduce_max(tutorial)) > 50 > 16.2 * 3 >= float(clipped)
    step = tfcnn.make_train_step(model, loss_path="tutorial", jit=False)
    step(TINY_IMAGES, TINY_LABELS)
    assert step.loss_path == "logits"


def test_resolve_loss_path_and_bad_paths():
    assert tfcnn.resolve_loss_path("tutorial", jit=False) == "clipped-probs"
    assert tfcnn.resolve_loss_path("tutorial", jit=True) == "logits"
    for path in ("clipped-probs", "logits"):
        assert (
            tfcnn.resolve_loss_path(path, jit=False) == tfcnn.resolve_loss_path(path, True) == path
        )
    with pytest.raises(ValueError, match="loss_path must be one of"):
        tfcnn.make_train_step(keras.Sequential(), loss_path="probs")
    no_logits = keras.Sequential([keras.Input((3,)), L.Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match="logits\\(x\\) method"):
        tfcnn.batch_loss(no_logits, np.zeros((1, 3), "float32"), np.zeros(1, "int64"), "logits")


def test_train_step_eager_and_tf_function_take_the_same_step():
    """One clipped-probs Adam step: same loss (the pre-update one) and same new weights."""
    rng = np.random.default_rng(5)
    images, labels = rng.random((3, 28, 28, 1)), rng.integers(0, 10, 3)
    models = [tfcnn.SeedCNN(seed=9, dtype="float64") for _ in range(2)]
    before = models[0].get_weights()
    loss_before = float(tfcnn.batch_loss(models[0], images, labels))
    steps = [
        tfcnn.make_train_step(m, loss_path="clipped-probs", jit=jit)
        for m, jit in zip(models, (False, True))
    ]
    assert [(s.loss_path, s.jit) for s in steps] == [
        ("clipped-probs", False),
        ("clipped-probs", True),
    ]
    losses = [float(step(images, labels)) for step in steps]
    assert losses == pytest.approx([loss_before] * 2, rel=1e-13)
    eager_w, graph_w = (m.get_weights() for m in models)
    for w0, we, wg in zip(before, eager_w, graph_w):
        assert not np.array_equal(w0, we)  # Adam moved every parameter array
        assert_close(wg, we, "weights after one step, tf.function vs eager")


# ---- to_npcnn / from_npcnn ---------------------------------------------------------------
def every_supported_layer(dtype="float64"):
    kw = {"dtype": dtype}
    return [
        L.Conv2D(3, (3, 2), strides=(2, 1), padding="same", activation="relu", **kw),
        L.MaxPooling2D((2, 3), strides=(1, 2), padding="same", **kw),
        L.Conv2D(2, 2, activation=tf.nn.relu, **kw),
        L.ReLU(**kw),
        L.Activation("linear", **kw),
        L.Flatten(**kw),
        L.Dense(5, activation="relu", **kw),
        L.Activation(tf.nn.relu, **kw),
        L.Reshape((5,), **kw),
        L.Dense(4, **kw),
        L.Softmax(**kw),
    ]


NPCNN_TYPES = [
    npcnn.Conv2D,
    npcnn.MaxPool2D,
    npcnn.Conv2D,
    npcnn.ReLU,
    npcnn.Flatten,
    npcnn.Dense,
    npcnn.ReLU,
    npcnn.Reshape,
    npcnn.Dense,
    npcnn.Softmax,
]  # Activation('linear') becomes nothing


@pytest.mark.parametrize("api", ["sequential", "functional"])
def test_to_npcnn_keeps_every_supported_layer_and_the_outputs(api):
    layers = every_supported_layer()
    if api == "sequential":
        model = keras.Sequential([keras.Input((9, 8, 2), dtype="float64"), *layers])
    else:
        x = inputs = keras.Input((9, 8, 2), dtype="float64")
        for layer in layers:
            x = layer(x)
        model = keras.Model(inputs, x)
    np_model = tfcnn.to_npcnn(model)
    assert [type(layer) for layer in np_model.layers] == NPCNN_TYPES
    assert np_model.dtype == np.float64 and np_model.input_shape == (9, 8, 2)
    images = np.random.default_rng(0).normal(size=(3, 9, 8, 2))
    assert_close(np_model.forward(images), model(images).numpy(), f"{api} outputs")


def test_to_npcnn_reads_seed_cnn_and_adds_its_softmax():
    model = tfcnn.SeedCNN(seed=2, dtype="float64")
    np_model = tfcnn.to_npcnn(model)
    assert [layer.name for layer in np_model.layers][-1] == "softmax"
    assert [type(layer) for layer in np_model.layers] == [
        type(layer) for layer in npcnn.seed_cnn().layers
    ]
    images = np.random.default_rng(0).random((2, 28, 28, 1))
    assert_close(np_model.forward(images), model(images).numpy(), "SeedCNN probabilities")


@pytest.mark.parametrize("kernels", ["fast", "ops"])
def test_to_npcnn_resolves_reshape_minus_one(kernels):
    """Reshape((-1,)) is Keras's other Flatten: to_npcnn converts it and npcnn.Reshape
    resolves the -1 when built."""
    model = keras.Sequential(
        [
            keras.Input((5, 4, 2), dtype="float64"),
            L.Conv2D(3, 2, dtype="float64"),
            L.Reshape((-1,), dtype="float64"),
            L.Dense(2, dtype="float64"),
        ]
    )
    np_model = tfcnn.to_npcnn(model, kernels=kernels)
    assert np_model.kernels == kernels
    assert np_model.layers[1].target_shape == (4 * 3 * 3,)
    images = np.random.default_rng(0).normal(size=(2, 5, 4, 2))
    assert_close(np_model.forward(images), model(images).numpy(), "Reshape((-1,)) outputs")


class TimesTwoDense(L.Dense):
    def call(self, inputs):
        return super().call(inputs) * 2.0


class TimesTwoConv(L.Conv2D):
    def call(self, inputs):
        return super().call(inputs) * 2.0


class StandardizedConv(L.Conv2D):  # call untouched, but what it calls is changed
    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel - keras.ops.mean(kernel))


class RenamedDense(L.Dense):  # only __init__: converted as a Dense
    def __init__(self, units, **kwargs):
        super().__init__(units, **kwargs)


# (layer factory, input shape, text the error must contain); factories, because
# building Keras layers at collection time would slow down every pytest run
UNSUPPORTED = [
    (lambda: L.Conv2D(2, 3, dilation_rate=2), (8, 8, 1), "dilation_rate"),
    (lambda: L.Conv2D(2, 3, data_format="channels_first"), (1, 8, 8), "data_format"),
    (lambda: L.Conv2D(4, 3, groups=2), (8, 8, 4), "groups"),
    (lambda: L.Conv2D(2, 3, activation="elu"), (8, 8, 1), "activation='elu'"),
    (lambda: L.MaxPooling2D(data_format="channels_first"), (1, 8, 8), "data_format"),
    (lambda: L.Dense(3, activation="gelu"), (4,), "activation='gelu'"),
    (lambda: L.Dropout(0.5, noise_shape=(1, 4)), (4,), "noise_shape"),
    (lambda: L.AveragePooling2D(2, data_format="channels_first"), (1, 4, 4), "data_format"),
    (lambda: L.BatchNormalization(axis=1), (4, 4, 2), "axis=1"),
    (lambda: L.BatchNormalization(renorm=True), (4,), "renorm"),
    (lambda: L.GlobalAveragePooling2D(keepdims=True), (4, 4, 2), "keepdims"),
    (lambda: L.Rescaling([1.0, 2.0]), (3, 2), "scale"),
    (lambda: L.GaussianNoise(0.1), (4,), "GaussianNoise"),
    (lambda: L.ReLU(max_value=6.0), (4,), "max_value"),
    (lambda: L.ReLU(negative_slope=0.1), (4,), "negative_slope"),
    (lambda: L.Softmax(axis=1), (3, 4), "axis=1"),
    (lambda: L.Flatten(data_format="channels_first"), (2, 3, 4), "data_format"),
    # a subclass whose math differs from its base class's
    (lambda: TimesTwoDense(3), (4,), "TimesTwoDense, a subclass of Dense that overrides call"),
    (lambda: TimesTwoConv(2, 3), (6, 6, 1), "subclass of Conv2D that overrides call"),
    (lambda: StandardizedConv(2, 3), (6, 6, 1), "overrides convolution_op"),
]


@pytest.mark.parametrize(
    ("make_layer", "input_shape", "message"),
    UNSUPPORTED,
    ids=[case[2] for case in UNSUPPORTED],
)
def test_to_npcnn_names_what_it_cannot_convert(make_layer, input_shape, message):
    layer = make_layer()
    model = keras.Sequential([keras.Input(input_shape), layer])
    with pytest.raises(ValueError, match=layer.name) as error:
        tfcnn.to_npcnn(model)
    assert message in str(error.value)


def test_to_npcnn_refuses_models_it_cannot_read():
    class Custom(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="subclassed model Custom"):
        tfcnn.to_npcnn(Custom())
    with pytest.raises(ValueError, match="build the Sequential"):
        tfcnn.to_npcnn(keras.Sequential([L.Dense(2)]))
    shared = L.Dense(4)
    inputs = keras.Input((4,))
    with pytest.raises(ValueError, match=f"{shared.name}.*not fed by the layer before"):
        tfcnn.to_npcnn(keras.Model(inputs, shared(shared(inputs))))
    half = keras.Sequential([keras.Input((4,)), L.Dense(2, dtype="float16")])
    with pytest.raises(ValueError, match="float16"):
        tfcnn.to_npcnn(half)
    mixed = keras.Sequential([keras.Input((4,)), L.Dense(2, dtype="mixed_float16")])
    with pytest.raises(ValueError, match="float16"):
        tfcnn.to_npcnn(mixed)


def test_to_npcnn_accepts_a_subclass_that_only_renames():
    model = keras.Sequential([keras.Input((4,), dtype="float64"), RenamedDense(3, dtype="float64")])
    x = np.random.default_rng(0).random((2, 4))
    np.testing.assert_allclose(tfcnn.to_npcnn(model).forward(x), model(x).numpy(), rtol=1e-12)


def test_to_npcnn_refuses_a_seed_cnn_subclass_with_its_own_call():
    class Doubled(tfcnn.SeedCNN):
        def call(self, images, training=False):
            return super().call(images) * 2.0

    with pytest.raises(ValueError, match="Doubled, a subclass of SeedCNN that overrides call"):
        tfcnn.to_npcnn(Doubled(seed=0))


def test_tf_learner_is_a_learner():
    from tfcnn.cli import TFLearner

    assert isinstance(TFLearner(TrainConfig(), jit=False), Learner)


def test_from_npcnn_then_to_npcnn_round_trip():
    """Default npcnn names repeat ('conv2d' twice): Keras gets its own, the math is kept."""
    np_model = npcnn.Sequential(
        [
            npcnn.Conv2D(3, 3, strides=2, padding="same", activation="relu"),
            npcnn.MaxPool2D(2, padding="same"),
            npcnn.Conv2D(2, (2, 1)),
            npcnn.ReLU(),
            npcnn.Flatten(),
            npcnn.Dense(4, activation="softmax"),
        ],
        input_shape=(7, 6, 2),
        seed=0,
        dtype="float64",
    )
    keras_model = tfcnn.from_npcnn(np_model)
    assert all(w.dtype == np.float64 for w in keras_model.get_weights())
    for w_keras, w_np in zip(keras_model.get_weights(), np_model.get_weights()):
        np.testing.assert_array_equal(w_keras, w_np)
    images = np.random.default_rng(1).normal(size=(2, 7, 6, 2))
    expected = np_model.forward(images)
    assert_close(keras_model(images).numpy(), expected, "from_npcnn outputs")
    assert_close(tfcnn.to_npcnn(keras_model).forward(images), expected, "round trip outputs")
    with pytest.raises(ValueError, match="build the npcnn model"):
        tfcnn.from_npcnn(npcnn.Sequential([npcnn.ReLU()]))
