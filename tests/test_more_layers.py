"""The layers beyond the tutorial's: training and inference modes, the fast tier
against the readable ops (the batch kept whole where the statistics need it),
use_bias=False, gradients, and the round trip through a model file."""

from __future__ import annotations

import numpy as np
import pytest

import npcnn
from npcnn import gradcheck
from npcnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from npcnn.more_layers import (
    Activation,
    AvgPool2D,
    BatchNormalization,
    Dropout,
    GlobalAveragePooling2D,
    LeakyReLU,
    Rescaling,
)
from npcnn.ops import sparse_categorical_crossentropy_backward as xent_backward
from npcnn.ops import sparse_categorical_crossentropy_forward as xent_forward


def modern_layers(keep=(object,)):
    """Every new layer once, in a small conv-BN-ReLU network (those of the classes in ``keep``)."""
    layers = [
        Conv2D(4, 3, padding="same", use_bias=False, kernel_initializer="he_normal"),
        BatchNormalization(),
        ReLU(),
        AvgPool2D(2, padding="same"),
        Conv2D(6, 3, padding="same", activation="tanh", kernel_initializer="he_uniform"),
        LeakyReLU(0.1),
        Dropout(0.3, seed=5),
        GlobalAveragePooling2D(),
        Dense(5, activation="sigmoid", use_bias=False),
        BatchNormalization(center=False, momentum=0.9),
        Activation("leaky_relu"),
        Dense(3, activation="softmax"),
    ]
    return [layer for layer in layers if isinstance(layer, keep)]


COMMON = (Conv2D, ReLU, AvgPool2D, LeakyReLU, GlobalAveragePooling2D, Dense, Activation)
NO_DROPOUT, NO_BATCHNORM = (*COMMON, BatchNormalization), (*COMMON, Dropout)


def modern_model(kernels="fast", dtype="float64", keep=(object,)):
    return npcnn.Sequential(
        modern_layers(keep), input_shape=(7, 7, 2), seed=3, dtype=dtype, kernels=kernels
    )


def images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 7, 7, 2))


def test_weights_are_keras_ordered_with_moving_statistics():
    model = modern_model()
    names = [name for name, _ in model.named_weights()]
    assert names[:5] == [
        "conv2d/kernel",
        "batch_normalization/gamma",
        "batch_normalization/beta",
        "batch_normalization/moving_mean",
        "batch_normalization/moving_variance",
    ]
    assert "batch_normalization_1/beta" not in names  # center=False
    assert "dense/bias" not in names  # use_bias=False
    trainable = [name for name, _ in model.named_params()]
    assert not any("moving" in name for name in trainable)  # never given to an optimizer
    assert len(model.get_weights()) == len(names)


def test_training_mode_moves_the_statistics_and_inference_does_not():
    model, x = modern_model(), images(8) * 3 + 1
    bn = model.layers[1]
    model.predict(x)
    model(x)
    assert np.array_equal(bn.state[0], np.zeros(4)) and np.array_equal(bn.state[1], np.ones(4))
    model(x, training=True)
    conv = model.layers[0].forward(x)  # the batch-norm layer's input
    np.testing.assert_allclose(bn.state[0], 0.01 * conv.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(bn.state[1], 0.99 + 0.01 * conv.var(axis=(0, 1, 2)), rtol=1e-12)


def test_inference_mode_drops_nothing_and_uses_moving_statistics():
    model, x = modern_model(), images(6)
    for _ in range(3):
        model(x, training=True)
    a, b = model(x), model(x)
    assert np.array_equal(a, b)  # no dropout, no batch statistics
    one = np.concatenate([model(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(one, a, rtol=1e-12)  # each image on its own: no batch in it
    assert not np.array_equal(model(x, training=True), model(x, training=True))  # new masks


@pytest.mark.parametrize("n", [50, 70])  # 2 and 3 parts, were the batch split
def test_fast_tier_keeps_the_batch_whole_in_training(n):
    fast, ref = modern_model("fast", keep=NO_DROPOUT), modern_model("ops", keep=NO_DROPOUT)
    x, labels = images(n, 1), np.arange(n) % 3
    for model in (fast, ref):
        out = model(x, training=True)
        _, cache = xent_forward(out, labels)
        model.backward(xent_backward(1.0, cache))
    np.testing.assert_allclose(fast(x, training=False), ref(x, training=False), rtol=1e-10)
    for (name, a), b in zip(fast.named_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13, err_msg=name)
    for name, g, h in zip([n for n, _ in fast.named_params()], fast.grads, ref.grads):
        np.testing.assert_allclose(g, h, rtol=1e-9, atol=1e-12, err_msg=name)


def test_dropout_masks_depend_on_the_seed_alone():
    x = images(40)
    outs = [modern_model(k, keep=NO_BATCHNORM)(x, training=True) for k in ("fast", "ops", "fast")]
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-10)
    assert np.array_equal(outs[0], outs[2])


def test_dropout_scales_what_it_keeps():
    layer = Dropout(0.25, seed=0)
    npcnn.Sequential([layer], input_shape=(1000,), dtype="float64")
    layer.training = True
    y = layer.forward(np.ones((4, 1000)))
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.03


def test_batchnorm_gradients_in_training_mode():
    layers = [Conv2D(3, 3, use_bias=False), BatchNormalization(), ReLU(), Flatten(), Dense(3)]
    layers += [Activation("softmax")]
    model = npcnn.Sequential(layers, input_shape=(5, 5, 2), seed=1, dtype="float64", kernels="ops")
    x, labels = images(4)[:, :5, :5], np.array([0, 1, 2, 1])

    def loss():
        return xent_forward(model.forward(x, training=True), labels)[0]

    _, cache = xent_forward(model.forward(x, training=True), labels)
    model.backward(xent_backward(1.0, cache))
    wrt = {name: (p, g) for (name, p), g in zip(model.named_params(), model.grads)}
    errors = gradcheck.check_gradients(loss, wrt, None, 1e-6, 1e-6, num_checks=12)
    assert max(errors.values()) < 1e-6


def test_use_bias_false_is_a_zero_bias():
    x = images(3)
    plain = npcnn.Sequential(
        [Conv2D(4, 3, use_bias=False), MaxPool2D(), Flatten(), Dense(2, use_bias=False)],
        input_shape=(7, 7, 2), seed=0, dtype="float64",
    )  # fmt: skip
    biased = npcnn.Sequential(
        [Conv2D(4, 3, activation=None), MaxPool2D(), Flatten(), Dense(2)],
        input_shape=(7, 7, 2), seed=0, dtype="float64",
    )  # fmt: skip
    assert [w.shape for w in plain.get_weights()] == [(3, 3, 2, 4), (16, 2)]
    kernel, dense = plain.get_weights()
    biased.set_weights([kernel, np.zeros(4), dense, np.zeros(2)])
    assert np.array_equal(plain(x), biased(x))
    plain.backward(np.ones((3, 2)))
    assert [g.shape for g in plain.grads] == [(3, 3, 2, 4), (16, 2)]


def test_model_file_round_trip_keeps_moving_statistics(tmp_path):
    model, x = modern_model(dtype="float32"), images(9).astype(np.float32)
    for _ in range(2):
        model(x, training=True)
    model.save(tmp_path / "modern.npz")
    loaded = npcnn.load_model(tmp_path / "modern.npz")
    assert loaded.get_config() == model.get_config()
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert np.array_equal(a, b)
    assert np.array_equal(loaded.predict(x), model.predict(x))


def test_fit_trains_in_training_mode(tmp_path):
    from npcnn.optimizers import Adam
    from npcnn.train import train_step

    model = modern_model()
    before = [s.copy() for s in model.layers[1].state]
    train_step(model, Adam(), images(10), np.arange(10) % 3)
    assert not np.array_equal(model.layers[1].state[0], before[0])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BatchNormalization(momentum=1.5), "momentum"),
        (lambda: BatchNormalization(axis=1.5), "axis"),
        (lambda: Dropout(1.0), "rate"),
        (lambda: Dropout(0.5, seed=-1), "seed"),
        (lambda: LeakyReLU(-1), "negative_slope"),
        (lambda: Activation("swish"), "activation"),
        (lambda: Conv2D(2, 3, kernel_initializer="ones"), "kernel_initializer"),
    ],
)
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_batchnorm_refuses_another_axis():
    with pytest.raises(ValueError, match="last axis"):
        npcnn.Sequential([BatchNormalization(axis=1)], input_shape=(4, 4, 2))


def test_rescaling_scales_with_float32_numbers_as_keras():
    layer = Rescaling(1 / 255, offset=-0.5)
    npcnn.Sequential([layer], input_shape=(2,), dtype="float64")
    y = layer.forward(np.array([[255.0, 0.0]]))
    assert y[0, 0] == 255.0 * np.float64(np.float32(1 / 255)) - 0.5
    assert np.array_equal(layer.backward(np.ones((1, 2))), np.full((1, 2), np.float32(1 / 255)))
    with pytest.raises(ValueError, match="scale"):
        Rescaling(float("-inf"))
