"""``fit`` on data that is not raw MNIST: float images, a channel axis, colour, logits.

- integer images are scaled to [0, 1], float images are used as given;
- a channel axis is added only when the model needs one and the images lack it;
- the loss reads probabilities from a model ending in softmax and logits from
  any other (Keras's ``from_logits`` rule);
- the confusion matrix is as large as the model has classes.

The data are synthetic and small (a bright square whose corner gives the
class), so each run takes a fraction of a second.
"""

from __future__ import annotations

import numpy as np
import pytest

from npcnn import Adam, Conv2D, Dense, Flatten, MaxPool2D, Sequential, Softmax
from npcnn.ops import sparse_categorical_crossentropy_forward
from npcnn.train import NumpyLearner, TrainConfig, fit

CLASSES = 3


def corner_images(n, channels=None, kind="uint8", seed=0):
    """(n, 8, 8[, channels]) images: noise, and a bright 3x3 square in corner ``label``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    images = rng.uniform(0, 0.3, size=(n, 8, 8))
    for i, label in enumerate(labels):
        r, c = [(0, 0), (0, 5), (5, 0)][label]
        images[i, r : r + 3, c : c + 3] = 1.0
    if channels is not None:
        images = np.repeat(images[..., None], channels, axis=-1)
    if kind == "uint8":
        return np.round(images * 255).astype(np.uint8), labels
    return images.astype(kind), labels


def model_for(channels=1, head="softmax", seed=0):
    layers = [Conv2D(4, 3, padding="same", activation="relu"), MaxPool2D(), Flatten()]
    layers += [Dense(CLASSES, activation="softmax")] if head == "softmax" else [Dense(CLASSES)]
    return Sequential(layers, input_shape=(8, 8, channels), seed=seed)


class Spy(NumpyLearner):
    """Records what ``fit`` hands the model and the loss it reports."""

    def __init__(self, model):
        super().__init__(model, Adam(1e-2))
        self.seen, self.losses = [], []

    def train_step(self, x, labels):
        self.seen.append((x.copy(), labels.copy()))
        before = [w.copy() for w in self.model.get_weights()]
        loss = super().train_step(x, labels)
        self.losses.append((loss, before))
        return loss


def _fit(learner, train, test, steps=1):
    config = TrainConfig(steps=steps, batch_size=16, seed=0, eval_batch_size=64)
    return fit(learner, (train, test), config, log=lambda line: None)


def test_float_images_are_used_as_given():
    images, labels = corner_images(40, kind="float32")
    learner = Spy(model_for())
    _fit(learner, (images, labels), (images, labels))
    x, _ = learner.seen[0]
    assert x.shape == (16, 8, 8, 1) and x.dtype == np.float32
    assert x.max() == 1.0  # not divided by 255
    assert any(np.array_equal(x[0, :, :, 0], image) for image in images)


def test_integer_images_are_scaled_to_0_1():
    images, labels = corner_images(40)
    learner = Spy(model_for())
    _fit(learner, (images, labels), (images, labels))
    x, _ = learner.seen[0]
    assert any(np.array_equal(x[0, :, :, 0], image / np.float32(255)) for image in images)


@pytest.mark.parametrize("channels", [1, 3])
def test_images_with_their_channel_axis_keep_it(channels):
    images, labels = corner_images(40, channels=channels)
    learner = Spy(model_for(channels))
    _fit(learner, (images, labels), (images, labels))
    assert learner.seen[0][0].shape == (16, 8, 8, channels)


def test_the_loss_of_a_logits_head_is_taken_from_logits():
    images, labels = corner_images(40)
    learner = Spy(model_for(head="logits"))
    _fit(learner, (images, labels), (images, labels))
    (x, y), (loss, before) = learner.seen[0], learner.losses[0]
    fresh = model_for(head="logits")
    fresh.set_weights(before)
    expected, _ = sparse_categorical_crossentropy_forward(fresh.forward(x), y, True, "sum")
    assert loss == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize(
    ("channels", "kind", "head"),
    [
        (None, "float32", "softmax"),  # floats in [0, 1], (N, H, W)
        (1, "uint8", "softmax"),  # NHWC with its channel axis
        (3, "uint8", "softmax"),  # colour
        (None, "uint8", "logits"),  # a head without softmax
    ],
)
def test_fit_learns_data_that_is_not_raw_mnist(channels, kind, head):
    train = corner_images(400, channels, kind, seed=1)
    test = corner_images(90, channels, kind, seed=2)
    model = model_for(channels or 1, head)
    result = _fit(NumpyLearner(model, Adam(1e-2)), train, test, steps=60)
    assert result["accuracy"] >= 0.9, result["accuracy"]  # chance is 1/3
    assert result["confusion"].shape == (CLASSES, CLASSES)
    assert result["confusion"].sum() == 90


def test_a_model_that_ends_in_a_softmax_layer_outputs_probabilities():
    from npcnn.inputs import outputs_probabilities

    assert outputs_probabilities(model_for(head="softmax"))
    assert not outputs_probabilities(model_for(head="logits"))
    layers = [Flatten(), Dense(CLASSES), Softmax()]
    assert outputs_probabilities(Sequential(layers, input_shape=(8, 8, 1)))
