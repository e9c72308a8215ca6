"""What the guide (docs/) says about TensorFlow and Keras, checked against them.

Each test names the chapter whose claim it checks; the guide's own examples
run without TensorFlow in tests/test_docs.py, and its claims about SciPy and
PyTorch are in tests/test_docs_claims.py.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from npcnn import Adam  # noqa: E402
from npcnn.ops import (  # noqa: E402
    conv2d_forward,
    flatten_forward,
    maxpool2d_forward,
    softmax_backward,
    softmax_forward,
    sparse_categorical_crossentropy_backward,
    sparse_categorical_crossentropy_forward,
)


def test_tensorflow_does_not_flip_the_kernel():
    """Chapters 1 and 13: tf.nn.conv2d is cross-correlation, as npcnn."""
    x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    k = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
    theirs = tf.nn.conv2d(x, k, strides=1, padding="VALID").numpy()
    assert theirs[0, 0, 0, 0] == 34.0  # 0*1 + 1*2 + 4*3 + 5*4, the guide's number
    np.testing.assert_array_equal(theirs, conv2d_forward(x, k, np.zeros(1), padding="valid")[0])


@pytest.mark.parametrize(("n", "k", "s"), [(4, 2, 1), (6, 3, 2), (7, 4, 1), (7, 3, 2)])
def test_tensorflow_same_padding_puts_the_odd_cell_after(n, k, s):
    """Chapter 3: the examples' sizes, and the odd cell at the bottom/right."""
    x = np.ones((1, n, n, 1))
    w = np.ones((k, k, 1, 1))
    theirs = tf.nn.conv2d(x, w, strides=s, padding="SAME").numpy()
    ours, _ = conv2d_forward(x, w, np.zeros(1), strides=s, padding="same")
    np.testing.assert_array_equal(theirs, ours)


def test_keras_same_max_pooling_ignores_the_padding():
    """Chapter 4: the all-negative 5x5 example pools to -1, -3, -5, ..."""
    x5 = -1 - np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    theirs = tf.keras.layers.MaxPooling2D(2, padding="same")(x5).numpy()
    np.testing.assert_array_equal(theirs, maxpool2d_forward(x5, 2, padding="same")[0])
    assert theirs[0, :, :, 0].tolist()[0] == [-1.0, -3.0, -5.0]


def test_keras_flatten_is_nhwc_order():
    """Chapter 5: Keras's Flatten reads (h, w, c), channel fastest."""
    x = np.arange(12, dtype=np.float32).reshape(1, 2, 3, 2)
    np.testing.assert_array_equal(tf.keras.layers.Flatten()(x).numpy(), flatten_forward(x)[0])


def _keras_loss_and_grad(probs, labels):
    p = tf.Variable(probs)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.keras.losses.sparse_categorical_crossentropy(labels, p))
    return float(loss), tape.gradient(loss, p).numpy()


def test_keras_loss_on_probabilities_caps_a_wrong_prediction_near_16():
    """Chapter 7: -log(1e-7) + log(1 - 1e-7 + 1e-7) = 16.118."""
    loss, _ = _keras_loss_and_grad(np.array([[1.0, 0.0]]), np.array([1]))
    assert round(loss, 3) == 16.118


def test_keras_clip_zeroes_the_gradient_only_when_every_class_is_clipped():
    """Chapter 13: two classes, both clipped: exactly zero. Three classes,
    one inside the clip range: not zero, though tiny on the logits."""
    label = np.array([0])
    probs, _ = softmax_forward(np.array([[0.0, 30.0]]))
    _, grad = _keras_loss_and_grad(probs, label)
    np.testing.assert_array_equal(grad, 0.0)

    probs3, softmax_cache = softmax_forward(np.array([[0.0, 30.0, 25.0]]))
    _, grad3 = _keras_loss_and_grad(probs3, label)
    _, cache = sparse_categorical_crossentropy_forward(probs3, label)
    ours = sparse_categorical_crossentropy_backward(1.0, cache)
    assert grad3[0, 0] == 0.0 and np.all(grad3[0, 1:] != 0.0)
    np.testing.assert_allclose(grad3, ours, rtol=1e-12)
    dlogits = softmax_backward(ours, softmax_cache)
    assert 0 < np.abs(dlogits).max() < 1e-12


def test_keras_adam_first_step_for_a_tiny_gradient():
    """Chapter 13, convention 8: Keras's first step for g = 1e-6 is 0.00024,
    the paper's would be 0.000909."""
    w = tf.Variable([0.0], dtype=tf.float64)
    optimizer = tf.keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7)
    optimizer.apply_gradients([(tf.constant([1e-6], dtype=tf.float64), w)])
    ours = np.array([0.0])
    Adam(learning_rate=1e-3).apply_gradients([(np.array([1e-6]), ours)])
    assert f"{-w.numpy()[0]:.3g}" == "0.00024" == f"{-ours[0]:.3g}"
