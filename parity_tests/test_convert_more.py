"""``tfcnn.to_npcnn`` on the layers beyond the tutorial's: batch normalization (its
moving statistics copied), dropout, average pooling, leaky ReLU, sigmoid and tanh,
rescaling, use_bias=False; what changes only training (regularizers, constraints,
``trainable``) is ignored. Each converted model predicts what Keras predicts
(inference mode) and saves and loads with the model file."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install -e '.[test]')")

import keras  # noqa: E402

import npcnn  # noqa: E402
import tfcnn  # noqa: E402

L = keras.layers
RTOL = {"float32": 1e-4, "float64": 1e-10}


def modern_keras(dtype):
    layers = [
        keras.Input((13, 13, 3), dtype=dtype),
        L.Rescaling(1 / 255.0, offset=-0.5),
        L.Conv2D(8, 3, padding="same", use_bias=False, kernel_regularizer="l2"),
        L.BatchNormalization(momentum=0.9),
        L.ReLU(),
        L.AveragePooling2D(2, padding="same", trainable=False),
        L.Conv2D(
            6,
            3,
            activation="tanh",
            kernel_constraint=keras.constraints.MaxNorm(2.0),
            trainable=False,  # frozen weights still predict: converted all the same
        ),
        L.LeakyReLU(0.1),
        L.Dropout(0.4, seed=3),
        L.GlobalAveragePooling2D(activity_regularizer="l1"),
        L.Dense(5, activation="sigmoid", use_bias=False),
        L.BatchNormalization(center=False, epsilon=1e-2),
        L.Activation("leaky_relu"),
        L.Dense(4, bias_regularizer="l1"),
        L.Activation("softmax"),
    ]
    return keras.Sequential([layers[0]] + [_typed(layer, dtype) for layer in layers[1:]])


def _typed(layer, dtype):
    config = layer.get_config()
    config["dtype"] = dtype
    return type(layer).from_config(config)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_converted_model_predicts_what_keras_predicts(dtype, tmp_path):
    model = modern_keras(dtype)
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(w.shape).astype(dtype) for w in model.get_weights()]
    for layer in model.layers:  # moving variances must be positive
        if isinstance(layer, L.BatchNormalization):
            layer.set_weights(
                [rng.standard_normal(w.shape) ** 2 + 0.5 if "variance" in v.path else w
                 for w, v in zip(layer.get_weights(), layer.weights)]
            )  # fmt: skip
    model.set_weights([w if "variance" not in v.path else v.numpy()
                       for w, v in zip(weights, model.weights)])  # fmt: skip
    x = rng.uniform(0, 255, (6, 13, 13, 3)).astype(dtype)
    expected = model(x, training=False).numpy()
    np_model = tfcnn.to_npcnn(model, kernels="ops")
    assert np_model.dtype == dtype
    names = [type(layer).__name__ for layer in np_model.layers]
    assert "BatchNormalization" in names and "Rescaling" in names and "Dropout" in names
    np.testing.assert_allclose(np_model.predict(x), expected, rtol=RTOL[dtype], atol=1e-6)
    np_model.save(tmp_path / "modern.npz")
    loaded = npcnn.load_model(tmp_path / "modern.npz")
    np.testing.assert_array_equal(loaded.predict(x), np_model.predict(x))
    back = tfcnn.from_npcnn(loaded)  # and back to Keras
    np.testing.assert_allclose(
        back(x, training=False).numpy(), expected, rtol=RTOL[dtype], atol=1e-6
    )


def test_training_mode_batchnorm_matches_keras():
    """One training-mode forward: Keras and npcnn normalize with the batch's
    statistics and move the averages the same way."""
    model = keras.Sequential(
        [keras.Input((5, 5, 2), dtype="float64"),
         L.Conv2D(3, 3, dtype="float64"), L.BatchNormalization(momentum=0.8, dtype="float64")]
    )  # fmt: skip
    np_model = tfcnn.to_npcnn(model)
    x = np.random.default_rng(1).standard_normal((40, 5, 5, 2))
    np.testing.assert_allclose(
        np_model(x, training=True), model(x, training=True).numpy(), rtol=1e-10, atol=1e-12
    )
    for a, b in zip(np_model.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
