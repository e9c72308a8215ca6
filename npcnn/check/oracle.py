"""The right answers: ``npcnn.ops`` (the default) or TensorFlow's own ops (``--against tf``).

An oracle maps a :class:`~npcnn.check.cases.Case` to the reference output and
the reference gradients (a tuple, in the order the backward returns them).
"""

from __future__ import annotations

import os

import numpy as np

from .. import ops
from ..validation import as_pair
from .learner import copy_args
from .spec import BY_NAME


def as_tuple(grads):
    return tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)


def numpy_reference(case):
    """npcnn.ops: forward, then backward from our own cache."""
    spec = BY_NAME[case.op]
    forward_name, backward_name = spec.reference or (spec.forward, spec.backward)
    forward, backward = getattr(ops, forward_name), getattr(ops, backward_name)
    out, cache = forward(*copy_args(case.args))[:2]  # batchnorm also returns its statistics
    return np.asarray(out), as_tuple(backward(case.upstream, cache))


class TensorFlowMissing(ImportError):
    """``--against tf`` without TensorFlow installed."""


def tensorflow_reference():
    """An oracle running TensorFlow's ops eagerly under a GradientTape (imports TF now)."""
    tf = _import_tensorflow()

    def reference(case):
        forward, inputs = _tf_forward(tf, case)
        return _vjp(tf, forward, inputs, case.upstream)

    return reference


def _import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ chatter, before import
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise TensorFlowMissing(
            "--against tf needs TensorFlow, which is not installed here "
            "(pip install tensorflow); without --against, npcnn.ops is the reference"
        ) from exc
    return tf


def _vjp(tf, forward, inputs, upstream):
    """forward(*inputs) and the gradients of <upstream, forward(*inputs)> by each input."""
    tensors = [tf.constant(a) for a in inputs]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        out = forward(*tensors)
    grads = tape.gradient(out, tensors, output_gradients=tf.constant(upstream))
    return out.numpy(), tuple(g.numpy() for g in grads)


def _pair(v):
    return list(as_pair(v, "strides"))


def _tf_forward(tf, case):
    """(TensorFlow's function of the differentiated inputs, those inputs) for ``case``."""
    args = case.args
    if case.op == "conv2d":
        x, w, b, strides, padding = args
        return (
            lambda x, w, b: tf.nn.conv2d(x, w, _pair(strides), padding.upper()) + b,
            [x, w, b],
        )
    if case.op == "maxpool2d":
        x, pool, strides, padding = args
        steps = pool if strides is None else strides
        return lambda x: tf.nn.max_pool2d(x, _pair(pool), _pair(steps), padding.upper()), [x]
    if case.op == "dense":
        return lambda x, w, b: tf.matmul(x, w) + b, list(args)
    if case.op == "relu":
        return tf.nn.relu, list(args)
    if case.op == "flatten":
        return lambda x: tf.reshape(x, (x.shape[0], -1)), [args[0]]
    if case.op == "softmax":
        return tf.nn.softmax, list(args)
    if case.op in _MORE:
        return _MORE[case.op](tf, *args)
    if case.op == "batchnorm":  # training mode: the batch's mean and biased variance
        x, gamma, beta, epsilon = args
        axes = list(range(x.ndim - 1))

        def batchnorm(x, gamma, beta):
            mean, var = tf.nn.moments(x, axes)
            return tf.nn.batch_normalization(x, mean, var, beta, gamma, epsilon)

        return batchnorm, [x, gamma, beta]
    return _tf_loss(tf, *args[1:]), [args[0]]


def _tf_avgpool2d(tf, x, pool, strides, padding):
    steps = pool if strides is None else strides
    return lambda x: tf.nn.avg_pool2d(x, _pair(pool), _pair(steps), padding.upper()), [x]


def _tf_batchnorm_inference(tf, x, gamma, beta, moving_mean, moving_var, epsilon=1e-3):
    def batchnorm(x, gamma, beta):
        return tf.nn.batch_normalization(x, moving_mean, moving_var, beta, gamma, epsilon)

    return batchnorm, [x, gamma, beta]


def _tf_dropout(tf, x, rate, rng):
    """TensorFlow draws its masks from a generator of its own: the mask here is npcnn's
    (``rng.random(x.shape) >= rate``), the scaling TensorFlow's."""
    keep = copy_args((rng,))[0].random(x.shape) >= rate
    return lambda x: tf.where(keep, x / (1 - rate), tf.zeros_like(x)), [x]


_MORE = {  # op -> (tf, *case.args) -> (TensorFlow's function, the differentiated inputs)
    "avgpool2d": _tf_avgpool2d,
    "global_avgpool2d": lambda tf, x: (lambda x: tf.reduce_mean(x, axis=(1, 2)), [x]),
    "batchnorm_inference": _tf_batchnorm_inference,
    "dropout": _tf_dropout,
    "leaky_relu": lambda tf, x, a=0.3: (lambda x: tf.nn.leaky_relu(x, a), [x]),
    "sigmoid": lambda tf, x: (tf.math.sigmoid, [x]),
    "tanh": lambda tf, x: (tf.math.tanh, [x]),
}


def _tf_loss(tf, labels, from_logits, reduction):
    """Keras's sparse categorical cross-entropy of y_pred, reduced as npcnn reduces it."""
    import keras

    def loss(y_pred):
        each = keras.losses.sparse_categorical_crossentropy(
            tf.constant(labels), y_pred, from_logits=from_logits
        )
        if reduction == "none":
            return each
        total = tf.reduce_sum(each)
        return total if reduction == "sum" else total / tf.cast(tf.size(each), total.dtype)

    return loss
