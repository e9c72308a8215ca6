"""The TensorFlow side of the op-by-op parity tests.

Each function runs one op forward in TensorFlow (eagerly) under a
``tf.GradientTape`` and returns NumPy arrays: the output and the gradients
of ``sum(upstream * output)`` with respect to every input, i.e. the
vector-Jacobian product that the matching npcnn ``*_backward`` computes.

Import this module only after ``pytest.importorskip("tensorflow")``; the
TensorFlow configuration (threads, oneDNN, determinism) is in ``conftest.py``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _vjp(forward, inputs, upstream):
    """Run ``forward(*tensors)`` and return (output, gradients w.r.t. ``inputs``)."""
    tensors = [tf.constant(a) for a in inputs]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        out = forward(*tensors)
    grads = tape.gradient(out, tensors, output_gradients=tf.constant(upstream))
    missing = [i for i, g in enumerate(grads) if g is None]
    if missing:
        raise AssertionError(f"TensorFlow returned no gradient for inputs {missing}")
    return out.numpy(), [g.numpy() for g in grads]


def conv2d(x, w, b, dy, strides, padding):
    """``tf.nn.conv2d(x, w) + b``; returns y, (dx, dw, db)."""

    def forward(x, w, b):
        return tf.nn.conv2d(x, w, strides=list(strides), padding=padding.upper()) + b

    return _vjp(forward, [x, w, b], dy)


def maxpool2d(x, dy, window, strides, padding):
    """``tf.nn.max_pool2d``; returns y, (dx,)."""

    def forward(x):
        return tf.nn.max_pool2d(
            x, ksize=list(window), strides=list(strides), padding=padding.upper()
        )

    return _vjp(forward, [x], dy)


def dense(x, w, b, dy):
    """``tf.matmul(x, w) + b``; returns y, (dx, dw, db)."""
    return _vjp(lambda x, w, b: tf.matmul(x, w) + b, [x, w, b], dy)


def relu(x, dy):
    """``tf.nn.relu``; returns y, (dx,)."""
    return _vjp(tf.nn.relu, [x], dy)


def flatten(x, dy):
    """``tf.reshape`` to (N, H*W*C), as Keras ``Flatten``; returns y, (dx,)."""
    rows, features = x.shape[0], int(np.prod(x.shape[1:]))
    return _vjp(lambda x: tf.reshape(x, (rows, features)), [x], dy)


def softmax(z, dp):
    """``tf.nn.softmax`` over the last axis; returns p, (dz,)."""
    return _vjp(tf.nn.softmax, [z], dp)


def sparse_categorical_crossentropy(y_pred, labels, dloss, from_logits, reduction):
    """``keras.losses.sparse_categorical_crossentropy`` then a reduction over the batch.

    Runs *eagerly*, so with ``from_logits=False`` Keras takes its clipping
    path: clip(p, 1e-7, 1 - 1e-7), log, softmax cross-entropy. (Inside a
    ``tf.function``, on the output of a softmax op, Keras would instead reach
    back to the softmax's logits and never clip.)

    Reductions: 'none' per example, 'sum' ``tf.reduce_sum`` (the tutorial's),
    'mean' sum / N with ``divide_no_nan`` -- what Keras's
    ``reduction="sum_over_batch_size"`` computes (0 for an empty batch).
    Returns loss, (dy_pred,).
    """
    assert tf.executing_eagerly(), "the parity reference must run eagerly (clipping path)"
    labels = tf.constant(labels)

    def forward(y_pred):
        per_example = keras.losses.sparse_categorical_crossentropy(
            labels, y_pred, from_logits=from_logits
        )
        if reduction == "none":
            return per_example
        total = tf.reduce_sum(per_example)
        if reduction == "sum":
            return total
        return tf.math.divide_no_nan(total, tf.cast(tf.size(per_example), total.dtype))

    return _vjp(forward, [y_pred], dloss)


def conv2d_relu_maxpool2d(x, w, b, dy, strides, padding, pool, pool_strides, pool_padding):
    """``max_pool2d(relu(conv2d(x, w) + b))``, the order TF runs the tutorial's
    Conv2D(relu) + MaxPool2D; returns y, (dx, dw, db)."""

    def forward(x, w, b):
        z = tf.nn.conv2d(x, w, strides=list(strides), padding=padding.upper()) + b
        return tf.nn.max_pool2d(
            tf.nn.relu(z),
            ksize=list(pool),
            strides=list(pool_strides),
            padding=pool_padding.upper(),
        )

    return _vjp(forward, [x, w, b], dy)
