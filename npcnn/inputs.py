"""Data in, predictions out: images as a model's inputs, and the accuracy of its answers.

:func:`images_to_inputs` turns a dataset's images into what a model takes:

- **integer images** (MNIST's uint8 pixels 0-255, any integer dtype) are
  scaled to floats in [0, 1], as the tutorial does; **float images** are used
  as given (already scaled, standardised, ...): scale them yourself if needed;
- a **channel axis** is added only when it is missing: (N, 28, 28) for a model
  taking (28, 28, 1) images becomes (N, 28, 28, 1); images that already have
  their channels -- (N, 28, 28, 1), (N, 32, 32, 3) -- are left as they are.

:func:`evaluate` scores a model on labelled images: the accuracy and the
confusion matrix, as large as the model has classes. :func:`outputs_probabilities`
says which loss a model's output takes: from probabilities or from logits.
"""

from __future__ import annotations

import numpy as np

from .layers import Softmax


def outputs_probabilities(model) -> bool:
    """Keras's rule for ``from_logits``: a model ending in ``Softmax`` or
    ``activation='softmax'`` outputs probabilities; any other, logits."""
    last = model.layers[-1] if model.layers else None
    return isinstance(last, Softmax) or getattr(last, "activation", None) == "softmax"


def images_to_inputs(images, dtype="float32", input_shape=None):
    """Images (N, ...) -> float inputs of ``dtype`` for a model taking ``input_shape``.

    Integer images are divided by 255 (pixels 0-255 -> [0, 1]); float images
    keep their values. A channel axis of 1 is appended when the images lack
    it: when ``input_shape`` is (H, W, 1) and the images are (N, H, W), or,
    with ``input_shape`` None (unknown), when the images are (N, H, W).
    """
    dtype = np.dtype(dtype)
    images = np.asarray(images)
    if images.dtype.kind in "iu":
        x = images.astype(dtype) / dtype.type(255.0)
    else:
        x = images.astype(dtype, copy=False)
    if input_shape is None:
        missing = x.ndim == 3
    else:
        shape = tuple(input_shape)
        missing = len(shape) >= 1 and shape[-1] == 1 and tuple(x.shape[1:]) == shape[:-1]
    return x[..., None] if missing else x


def evaluate(learner, images, labels, batch_size=1000, dtype="float32", num_classes=None):
    """Accuracy and confusion matrix (rows: true class, columns: predicted).

    ``num_classes`` None: as many as the model outputs (and at least one more
    than the largest label), so a 3-class model gets a 3x3 matrix.
    """
    input_shape = getattr(learner, "input_shape", None)
    predictions, width = [], 0
    for start in range(0, len(images), batch_size):
        x = images_to_inputs(images[start : start + batch_size], dtype, input_shape)
        out = learner.predict(x)  # the model picks its chunks
        width = max(width, out.shape[-1])
        predictions.append(np.argmax(out, axis=1))
    predicted = np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if num_classes is None:
        num_classes = max(width, int(labels.max()) + 1 if len(labels) else 1)
    confusion = np.bincount(
        labels * num_classes + predicted, minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)
    accuracy = float(np.mean(predicted == labels)) if len(labels) else float("nan")
    return accuracy, confusion
