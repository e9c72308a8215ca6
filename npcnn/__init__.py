"""npcnn: a convolutional neural network written from scratch in NumPy.

Start reading at ``npcnn/naive`` (the loops), then ``npcnn/ops`` (one file per
op, forward and backward), then ``layers.py`` and ``model.py``.
"""

from . import fast, gradcheck, initializers, naive, ops
from .layers import Conv2D, Dense, Flatten, MaxPool2D, MaxPooling2D, ReLU, Reshape, Softmax
from .model import Sequential, seed_cnn
from .optimizers import SGD, Adam

__version__ = "0.1.0"

__all__ = [
    "ops",
    "fast",
    "naive",
    "gradcheck",
    "initializers",
    "Conv2D",
    "Dense",
    "Flatten",
    "MaxPool2D",
    "MaxPooling2D",
    "ReLU",
    "Reshape",
    "Softmax",
    "Sequential",
    "seed_cnn",
    "SGD",
    "Adam",
]
