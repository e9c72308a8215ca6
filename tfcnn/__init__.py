"""tfcnn: the npcnn tutorial network's TensorFlow 2 / Keras 3 twin.

- :class:`SeedCNN` (``tfcnn/model.py``): the tutorial's subclassed
  ``keras.Model``; ``call`` returns ``tf.nn.softmax`` probabilities,
  ``logits`` the scores before it. Its ``get_weights()`` order is npcnn's.
- ``tfcnn/training.py``: the tutorial's GradientTape + Adam step,
  :func:`make_train_step`, with the cross-entropy path stated and chosen:
  'clipped-probs' (Keras's eager behaviour, and npcnn's), 'logits' (what Keras
  silently does under ``tf.function``) or 'tutorial' (the literal Keras call).
- ``tfcnn/convert.py``: :func:`to_npcnn` / :func:`from_npcnn`, whole models
  with their weights, for the layers both libraries have.

Weights of the tutorial network move with no conversion::

    np_model = npcnn.seed_cnn()
    np_model.set_weights(tfcnn.SeedCNN().get_weights())

``tfcnn`` imports ``npcnn``; ``npcnn`` never imports TensorFlow.
"""

from .convert import from_npcnn, to_npcnn
from .model import INPUT_SHAPE, NUM_CLASSES, SeedCNN
from .training import (
    LOSS_PATHS,
    batch_loss,
    clipped_probs_crossentropy,
    keras_crossentropy_path,
    logits_crossentropy,
    loss_and_gradients,
    make_optimizer,
    make_train_step,
    per_example_crossentropy,
    predict_probs,
    resolve_loss_path,
    tutorial_crossentropy,
)

__all__ = [
    "SeedCNN",
    "INPUT_SHAPE",
    "NUM_CLASSES",
    "LOSS_PATHS",
    "batch_loss",
    "clipped_probs_crossentropy",
    "logits_crossentropy",
    "tutorial_crossentropy",
    "keras_crossentropy_path",
    "resolve_loss_path",
    "loss_and_gradients",
    "make_optimizer",
    "make_train_step",
    "per_example_crossentropy",
    "predict_probs",
    "to_npcnn",
    "from_npcnn",
]
