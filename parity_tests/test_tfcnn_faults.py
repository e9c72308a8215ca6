"""tfcnn with bad input: ``to_npcnn`` converts only what it can read, TFLearner is a Learner."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

import tfcnn  # noqa: E402
from npcnn.train import Learner, TrainConfig  # noqa: E402

L = keras.layers


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


@pytest.mark.parametrize(
    ("layer", "input_shape", "message"),
    [
        (lambda: TimesTwoDense(3), (4,), "TimesTwoDense, a subclass of Dense that overrides call"),
        (lambda: TimesTwoConv(2, 3), (6, 6, 1), "subclass of Conv2D that overrides call"),
        (lambda: StandardizedConv(2, 3), (6, 6, 1), "overrides convolution_op"),
        (lambda: L.Dense(3, activity_regularizer="l2"), (4,), "activity_regularizer"),
        (lambda: L.ReLU(activity_regularizer="l2"), (4,), "activity_regularizer"),
        (lambda: L.Flatten(activity_regularizer="l1"), (2, 2), "activity_regularizer"),
        (lambda: L.Dense(3, trainable=False), (4,), "trainable=False"),
    ],
)
def test_to_npcnn_refuses_what_it_would_get_wrong(layer, input_shape, message):
    layer = layer()
    model = keras.Sequential([keras.Input(input_shape), layer])
    with pytest.raises(ValueError, match=layer.name) as info:
        tfcnn.to_npcnn(model)
    assert message in str(info.value)


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


def test_tfcnn_cli_validates_numbers_too(capsys):
    from tfcnn.cli import main

    with pytest.raises(SystemExit) as info:
        main(["train", "--batch-size", "0"])
    assert info.value.code == 2 and "--batch-size" in capsys.readouterr().err
