"""Networks by name, for ``npcnn train --model NAME``: the tutorial's and a modern small CNN.

- ``seed``: the tutorial's network (:func:`npcnn.model.seed_cnn`).
- ``modern``: conv-BN-ReLU blocks as VGG stacks them (3x3 kernels, no bias before
  a batch norm, He's initialisation) in three stages of 32, 64 and 128 filters
  at 28x28, 14x14 and 7x7, max-pooling between them, global average pooling
  instead of a big dense layer, dropout, softmax: 288 thousand weights against
  the tutorial's 3.3 million (``docs/17-beyond-the-tutorial.md``).
"""

from __future__ import annotations

from .layers import Conv2D, Dense, MaxPool2D
from .model import Sequential, seed_cnn
from .more_layers import Activation, BatchNormalization, Dropout, GlobalAveragePooling2D


def conv_bn_relu(filters):
    """Conv2D(3x3, same, no bias, he_normal) -> BatchNormalization -> ReLU."""
    return [
        Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal"),
        BatchNormalization(),
        Activation("relu"),
    ]


def modern_cnn(seed=None, dtype="float32", kernels="fast", input_shape=(28, 28, 1), classes=10):
    """Two conv-BN-ReLU blocks of 32, pool, two of 64, pool, two of 128, global
    average pooling, Dropout(0.3), Dense(classes, softmax)."""
    layers = [*conv_bn_relu(32), *conv_bn_relu(32), MaxPool2D(2)]
    layers += [*conv_bn_relu(64), *conv_bn_relu(64), MaxPool2D(2)]
    layers += [*conv_bn_relu(128), *conv_bn_relu(128)]
    layers += [GlobalAveragePooling2D(), Dropout(0.3, seed=seed), Dense(classes, "softmax")]
    return Sequential(layers, input_shape=input_shape, seed=seed, dtype=dtype, kernels=kernels)


MODELS = {"seed": seed_cnn, "modern": modern_cnn}


def build_model(name, seed=None, dtype="float32", kernels="fast") -> Sequential:
    """The network called ``name`` (a key of :data:`MODELS`); ``ValueError`` naming it otherwise."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {name!r}")
    return MODELS[name](seed=seed, dtype=dtype, kernels=kernels)
