"""npcnn: a convolutional neural network written from scratch in NumPy.

Start reading at ``npcnn/naive`` (the loops), then ``npcnn/ops`` (one file per
op, forward and backward), then ``layers.py`` and ``model.py``.

The package, bottom up (each part imports only what lies below it;
``tests/test_architecture.py`` checks it):

- ``backend``, ``validation``, ``initializers``: the array library, argument checks, weights;
- ``ops``, ``naive``, ``fast``: the three tiers of the same ops; ``gradcheck`` checks them;
- ``names``: layer names numbered as Keras numbers them;
- ``layers``, ``more_layers``, ``model``, ``optimizers``: Keras-named layers (batch norm,
  dropout, average pooling, more activations in ``more_layers``), ``Sequential``, the optimizers;
- ``modelfile``: ``load_model``, a whole model from one ``.npz`` (``model.save``);
- ``checkpoint``, ``datasets``, ``train``, ``plots``: files, MNIST, the training loop;
- ``cli``: ``npcnn train`` and ``npcnn evaluate`` (``atomicwrite``, ``bars``: writing
  files safely and progress bars, for the parts above).
"""

import os as _os

# OpenBLAS's idle threads spin for ~0.1 s after every matrix product and so hold
# the cores that the fast tier's own threads need between products
# (npcnn/fast/threads.py). With this they go to sleep after 2**16 cycles (~25 us).
# OpenBLAS reads it once, when NumPy loads it: it applies only if NumPy was not
# imported before npcnn (docs/14-making-it-fast.md). It changes no number.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

# npcnn.check(path) checks a learner's own ops (npcnn/check/)
from . import check, fast, gradcheck, initializers, naive, ops, schedules
from .layers import Conv2D, Dense, Flatten, MaxPool2D, MaxPooling2D, ReLU, Reshape, Softmax
from .model import Sequential, seed_cnn
from .modelfile import load_model
from .more_layers import (
    Activation,
    AveragePooling2D,
    AvgPool2D,
    BatchNormalization,
    Dropout,
    GlobalAveragePooling2D,
    LeakyReLU,
    Rescaling,
)
from .optimizers import SGD, Adam, RMSprop

__version__ = "0.1.0"

__all__ = [
    "ops",
    "fast",
    "naive",
    "gradcheck",
    "check",
    "initializers",
    "schedules",
    "Conv2D",
    "Dense",
    "Flatten",
    "MaxPool2D",
    "MaxPooling2D",
    "ReLU",
    "Reshape",
    "Softmax",
    "AvgPool2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "LeakyReLU",
    "Activation",
    "BatchNormalization",
    "Dropout",
    "Rescaling",
    "Sequential",
    "seed_cnn",
    "load_model",
    "SGD",
    "RMSprop",
    "Adam",
]
