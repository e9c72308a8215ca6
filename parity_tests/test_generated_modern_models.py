"""Generated Keras models of the layers beyond the tutorial's, converted and compared.

Hypothesis draws a chain of Conv2D (with or without bias, any activation npcnn
has), BatchNormalization, AveragePooling2D or MaxPooling2D ('same' or 'valid'),
LeakyReLU, Dropout and Rescaling layers, then GlobalAveragePooling2D or Flatten,
a Dense head (softmax or logits). Keras builds it in float64 with random
weights (every BatchNormalization with random moving statistics, variances
positive); a geometry Keras refuses is discarded. For each model:

1. ``tfcnn.to_npcnn`` converts it, on both tiers; inference (``predict``, and
   Keras's ``training=False``) agrees with Keras;
2. in training mode (batch statistics; models whose Dropout drops nothing,
   rate 0, as masks come from another generator) the outputs agree, so do
   the gradients of every parameter (for an upstream gradient drawn with the
   model) and the moving statistics after the step;
3. the model file round trip gives the same predictions, bit for bit.

The tolerance is stated, not derived (``parity_tests/README.md`` derives the
bounds of the tutorial's layers): float64, 1e-9 relative to the largest output
magnitude, about 10^7 times float64's rounding unit, far below any bug here
(a wrong variance denominator or averaged padding moves outputs by 1e-2).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install -e '.[test]')")

import keras  # noqa: E402
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import npcnn  # noqa: E402
import tfcnn  # noqa: E402

L = keras.layers
DTYPE = "float64"
RTOL = 1e-9
ACTIVATIONS = ["relu", "linear", "sigmoid", "tanh", "leaky_relu"]


@st.composite
def modern_layers(draw):
    """(input shape, Keras layer factories, drops values in training, a seed)."""
    side = draw(st.integers(4, 9))
    shape = (side, draw(st.integers(4, 9)), draw(st.integers(1, 3)))
    makers, dropout = [], False
    if draw(st.booleans()):
        scale, offset = draw(st.sampled_from([(1 / 255, 0.0), (2.0, -1.0), (0.5, 0.25)]))
        makers.append(lambda: L.Rescaling(scale, offset, dtype=DTYPE))
    for _ in range(draw(st.integers(1, 3))):
        filters, kernel = draw(st.integers(1, 6)), draw(st.integers(1, 3))
        padding, bias = draw(st.sampled_from(["same", "valid"])), draw(st.booleans())
        activation = draw(st.sampled_from(ACTIVATIONS))
        makers.append(
            lambda f=filters, k=kernel, p=padding, b=bias, a=activation: L.Conv2D(
                f, k, padding=p, use_bias=b, activation=a, dtype=DTYPE
            )
        )
        extra = draw(st.sampled_from(["bn", "avg", "max", "leaky", "dropout", "none"]))
        pool, pool_padding = draw(st.integers(1, 3)), draw(st.sampled_from(["same", "valid"]))
        momentum, center = draw(st.sampled_from([0.99, 0.5])), draw(st.booleans())
        rate = draw(st.sampled_from([0.3, 0.0]))
        makers.append(
            {
                "bn": lambda m=momentum, c=center: L.BatchNormalization(
                    momentum=m, center=c, dtype=DTYPE
                ),
                "avg": lambda q=pool, p=pool_padding: L.AveragePooling2D(q, padding=p, dtype=DTYPE),
                "max": lambda q=pool, p=pool_padding: L.MaxPooling2D(q, padding=p, dtype=DTYPE),
                "leaky": lambda: L.LeakyReLU(0.2, dtype=DTYPE),
                "dropout": lambda r=rate: L.Dropout(r, seed=1, dtype=DTYPE),
                "none": None,
            }[extra]
        )
        dropout |= extra == "dropout" and rate > 0
    makers = [m for m in makers if m is not None]
    head = draw(st.sampled_from(["gap", "flatten"]))
    makers.append(
        lambda: L.GlobalAveragePooling2D(dtype=DTYPE) if head == "gap" else L.Flatten(dtype=DTYPE)
    )
    activation = draw(st.sampled_from(["softmax", "linear"]))
    makers.append(lambda: L.Dense(3, activation=activation, dtype=DTYPE))
    return shape, makers, dropout, draw(st.integers(0, 2**16))


def keras_model(shape, makers, seed):
    try:
        model = keras.Sequential([keras.Input(shape, dtype=DTYPE)] + [make() for make in makers])
    except ValueError:
        return None
    rng = np.random.default_rng(seed)
    weights = []
    for v in model.weights:
        w = rng.standard_normal(tuple(v.shape))
        weights.append(np.abs(w) + 0.5 if "variance" in v.path else w)
    model.set_weights(weights)
    return model


def assert_close(ours, theirs, what):
    scale = max(1.0, float(np.abs(theirs).max(initial=0.0)))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=RTOL * scale, err_msg=what)


@settings(max_examples=20, deadline=None)
@given(drawn=modern_layers(), kernels=st.sampled_from(["fast", "ops"]))
def test_generated_modern_model_matches_keras(drawn, kernels, tmp_path_factory):
    shape, makers, dropout, seed = drawn
    model = keras_model(shape, makers, seed)
    assume(model is not None)
    x = np.random.default_rng(seed + 1).standard_normal((5, *shape))
    np_model = tfcnn.to_npcnn(model, kernels=kernels)
    expected = model(x, training=False).numpy()
    assert_close(np_model.predict(x), expected, "inference")
    path = tmp_path_factory.mktemp("modern") / "m.npz"
    np_model.save(path)
    assert np.array_equal(npcnn.load_model(path, kernels=kernels).predict(x), np_model.predict(x))
    if dropout:
        return
    out, grads = keras_training_step(model, x, seed)
    assert_close(np_model(x, training=True), out, "training")
    np_model.backward(np.random.default_rng(seed + 2).standard_normal(out.shape), need_dx=False)
    named = np_model.named_params()
    assert len(named) == len(grads)
    for (name, _), ours, theirs in zip(named, np_model.grads, grads):
        assert_close(ours, theirs, f"gradient of {name}")
    for (name, a), b in zip(np_model.named_weights(), model.get_weights()):
        assert_close(a, b, name)


def keras_training_step(model, x, seed):
    """Keras's training-mode output and the gradients of <upstream, output> by each
    trainable variable (upstream from ``seed``), as npcnn's ``named_params`` order them."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        out = model(x, training=True)
        upstream = np.random.default_rng(seed + 2).standard_normal(tuple(out.shape))
        total = tf.reduce_sum(out * upstream)
    grads = tape.gradient(total, model.trainable_variables)
    return out.numpy(), [g.numpy() for g in grads]
