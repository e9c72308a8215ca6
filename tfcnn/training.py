"""The tutorial's training step, and the two cross-entropies hiding inside it.

The tutorial trains with::

    with tf.GradientTape() as tape:
        probs = model(images)
        loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(labels, probs))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))   # Adam(1e-3)

``sparse_categorical_crossentropy(labels, probs)`` (``from_logits=False``) does
not always compute the same thing. In the installed Keras 3
(``keras/src/backend/tensorflow/nn.py``: ``sparse_categorical_crossentropy``
calls ``_get_logits(output, from_logits, "Softmax", ...)``):

1. If ``probs`` carries a ``_keras_logits`` attribute, Keras uses those
   logits and sets ``from_logits=True``. Keras's own softmax sets it, eager
   tensors included: ``keras.ops.softmax``, ``keras.activations.softmax``,
   ``Dense(..., activation="softmax")``, ``keras.layers.Softmax``. So a
   model ending in a *Keras* softmax takes the logits path always.
   ``tf.nn.softmax`` (the tutorial's, and :class:`tfcnn.SeedCNN`'s) does not.
2. Else, if ``probs`` is a *graph* tensor (not an ``EagerTensor``) whose
   producing op has type ``"Softmax"`` -- which is what ``tf.nn.softmax``
   makes inside a ``tf.function`` -- Keras takes ``probs.op.inputs[0]`` (the
   logits) and sets ``from_logits=True``.
3. Otherwise (eager execution of the tutorial, whose ``call`` ends in
   ``tf.nn.softmax``), it clips: ``p = clip_by_value(probs, 1e-7, 1 - 1e-7)``,
   then ``tf.nn.sparse_softmax_cross_entropy_with_logits(labels, log(p))``,
   i.e. ``-log p[t] + log sum_k p[k]`` (it renormalises the clipped row).

So the *same* tutorial code takes path 3 when run eagerly and path 2 when
wrapped in ``tf.function`` (and path 1 either way if the softmax were
Keras's). The two agree while every probability lies in [1e-7, 1 - 1e-7];
they part once the network is confident: the clipped loss
of one example is capped near -log(1e-7) = 16.1 and its gradient is exactly
zero wherever the clip is active, while the logits loss is unbounded and
always has a gradient. ``npcnn``'s loss (``from_logits=False``) is path 3.

This module names the paths and lets a caller pick one, eager or not:

==================  =========================================================
``loss_path``       cross-entropy computed
==================  =========================================================
``"clipped-probs"`` path 3 written out with the same TF ops Keras uses, so it
                    stays the clipping path under ``tf.function`` too, and
                    for any model's softmax. This is what ``npcnn``
                    computes; it is the default.
``"logits"``        ``sparse_softmax_cross_entropy_with_logits`` on
                    ``model.logits(x)`` (the model needs a ``logits``
                    method, as :class:`tfcnn.SeedCNN` has).
``"tutorial"``      the tutorial's literal Keras call; for a model ending in
                    ``tf.nn.softmax`` it resolves to ``"clipped-probs"``
                    eagerly and to ``"logits"`` under ``tf.function``
                    (:func:`resolve_loss_path`); what it resolved to for a
                    given output is :func:`keras_crossentropy_path`.
==================  =========================================================

Every loss is summed over the batch (``reduce_sum``), as in the tutorial.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from npcnn.ops.crossentropy import EPSILON  # keras.config.epsilon(), the clip bound
from npcnn.schedules import CosineDecay
from npcnn.validation import check_bool

LOSS_PATHS = ("clipped-probs", "logits", "tutorial")


def _check_loss_path(loss_path):
    if loss_path not in LOSS_PATHS:
        raise ValueError(f"loss_path must be one of {LOSS_PATHS}, got {loss_path!r}")


def resolve_loss_path(loss_path: str, jit: bool) -> str:
    """The cross-entropy actually computed, 'clipped-probs' or 'logits', for a model
    whose output is made by ``tf.nn.softmax`` (as :class:`tfcnn.SeedCNN`'s).

    Only 'tutorial' depends on ``jit``: eagerly Keras clips; under
    ``tf.function`` it sees the ``Softmax`` op and uses its logits.
    """
    _check_loss_path(loss_path)
    jit = check_bool(jit, "jit")
    if loss_path != "tutorial":
        return loss_path
    return "logits" if jit else "clipped-probs"


def keras_crossentropy_path(probs) -> str:
    """Which path ``keras.losses.sparse_categorical_crossentropy(y, probs)`` takes for ``probs``.

    Mirrors ``_get_logits`` in ``keras/src/backend/tensorflow/nn.py`` (see
    the module docstring): 'logits' when ``probs`` has ``_keras_logits`` or
    is a non-eager tensor made by a ``Softmax`` op, else 'clipped-probs'.
    Call it where the loss would be computed (inside the ``tf.function``).
    """
    if hasattr(probs, "_keras_logits"):
        return "logits"
    is_graph_tensor = hasattr(probs, "op") and not isinstance(
        probs, (tf.__internal__.EagerTensor, tf.Variable)
    )
    if is_graph_tensor and probs.op.type == "Softmax":
        return "logits"
    return "clipped-probs"


# ---- the per-example cross-entropies ----------------------------------------------
def clipped_probs_crossentropy(labels, probs):
    """-log q[t] with q = clip(p) / sum(clip(p)), per example (N,); Keras's eager path.

    The same ops as Keras: clip_by_value(p, eps, 1 - eps) -> log -> softmax
    cross-entropy on those "logits". Written out by hand so no Keras logic
    can swap in the softmax's logits, even inside a ``tf.function``.
    """
    clipped = tf.clip_by_value(probs, EPSILON, 1.0 - EPSILON)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int64), logits=tf.math.log(clipped)
    )


def logits_crossentropy(labels, logits):
    """-log softmax(z)[t] per example (N,), from the pre-softmax scores z."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int64), logits=logits
    )


def tutorial_crossentropy(labels, probs):
    """The tutorial's call, ``keras.losses.sparse_categorical_crossentropy(labels, probs)``.

    Which cross-entropy this is depends on ``probs`` (see
    :func:`keras_crossentropy_path`).
    """
    return keras.losses.sparse_categorical_crossentropy(labels, probs)


def per_example_crossentropy(model, images, labels, loss_path="clipped-probs", training=False):
    """(losses (N,), path): the cross-entropy chosen by ``loss_path``, and the path computed.

    ``training`` is Keras's: True runs BatchNormalization and Dropout as in
    training (batch statistics, dropped units), False as at inference.

    ``path`` is 'clipped-probs' or 'logits'; for 'tutorial' it is what Keras
    takes for this model's output here (:func:`keras_crossentropy_path`), so
    call this where the loss is computed (inside the ``tf.function``, if any).
    """
    _check_loss_path(loss_path)
    if loss_path == "logits":
        if not hasattr(model, "logits"):
            raise ValueError(
                "loss_path='logits' needs a model with a logits(x) method (as tfcnn.SeedCNN "
                f"has); {type(model).__name__} has none"
            )
        return logits_crossentropy(labels, model.logits(images)), "logits"
    probs = model(images, training=training)
    if loss_path == "clipped-probs":
        return clipped_probs_crossentropy(labels, probs), "clipped-probs"
    return tutorial_crossentropy(labels, probs), keras_crossentropy_path(probs)


def batch_loss(model, images, labels, loss_path="clipped-probs"):
    """Sum over the batch of the cross-entropy chosen by ``loss_path`` (a scalar tensor)."""
    per_example, _ = per_example_crossentropy(model, images, labels, loss_path)
    return tf.reduce_sum(per_example)


def loss_and_gradients(model, images, labels, loss_path="clipped-probs"):
    """(loss, grads): the batch loss and d loss / d ``model.trainable_variables``.

    For :class:`tfcnn.SeedCNN` the eight gradients come in ``get_weights()``
    order, the same order as ``npcnn`` model's ``grads``.
    """
    with tf.GradientTape() as tape:
        loss = batch_loss(model, images, labels, loss_path)
    return loss, tape.gradient(loss, model.trainable_variables)


def make_optimizer(learning_rate=1e-3):
    """The tutorial's optimizer: ``keras.optimizers.Adam`` (beta 0.9/0.999, epsilon 1e-7).

    ``learning_rate``: a number, or ``npcnn.schedules.CosineDecay`` (made
    Keras's ``CosineDecay`` with the same settings).

    Keras adds epsilon to sqrt(v), not to the bias-corrected sqrt(v_hat) of
    the Adam paper; ``npcnn.Adam`` does the same (see its docstring).
    """
    if isinstance(learning_rate, CosineDecay):
        learning_rate = keras.optimizers.schedules.CosineDecay(**learning_rate.get_config())
    return keras.optimizers.Adam(
        learning_rate=learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7
    )


def make_train_step(model, optimizer=None, loss_path="clipped-probs", jit=False):
    """A function ``step(images, labels) -> loss`` doing one tutorial training step.

    One step, as the tutorial writes it: the batch loss under a
    ``tf.GradientTape``, its gradients, ``optimizer.apply_gradients``. The
    returned loss is the batch's loss *before* the update; the model runs with
    ``training=True`` (BatchNormalization and Dropout as in training).

    Args:
        model: a Keras model (``loss_path='logits'`` needs a ``logits`` method).
        optimizer: a Keras optimizer; None means :func:`make_optimizer` ().
        loss_path: 'clipped-probs' (default, what npcnn computes), 'logits' or
            'tutorial' (see the module docstring).
        jit: False runs eagerly; True wraps the step in ``tf.function``
            (graph mode; no XLA).
    Returns:
        ``step``, with attributes ``step.jit``, ``step.optimizer`` and
        ``step.loss_path``: the cross-entropy computed, 'clipped-probs' or
        'logits'. It starts as :func:`resolve_loss_path`'s answer (right for
        models ending in ``tf.nn.softmax``, like SeedCNN) and is set to the
        path actually taken each time the step's Python code runs (every
        eager call; each trace under ``tf.function``).
    """
    _check_loss_path(loss_path)
    jit = check_bool(jit, "jit")
    if optimizer is None:
        optimizer = make_optimizer()

    def train_step(images, labels):
        with tf.GradientTape() as tape:
            per_example, taken = per_example_crossentropy(
                model, images, labels, loss_path, training=True
            )
            loss = tf.reduce_sum(per_example)
        run.loss_path = taken  # plain Python: runs eagerly, or once per trace
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    step = tf.function(train_step, reduce_retracing=True) if jit else train_step

    def run(images, labels):
        return step(images, labels)

    run.loss_path = resolve_loss_path(loss_path, jit)
    run.jit = bool(jit)
    run.optimizer = optimizer
    return run


def predict_probs(model, images, batch_size=1000) -> np.ndarray:
    """``model(images)`` in batches, as a NumPy array (N, num_classes)."""
    outs = [
        np.asarray(model(images[i : i + batch_size])) for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(outs) if outs else np.asarray(model(images))
