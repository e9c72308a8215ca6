"""``SeedCNN``: the tutorial's network as a Keras 3 subclassed model.

The layers and ``call`` are the tutorial's, line for line::

    conv1   = Conv2D(32, [5, 5], padding='same', activation=tf.nn.relu)   # (N, 28, 28, 32)
    pool1   = MaxPool2D([2, 2], strides=2)                               # (N, 14, 14, 32)
    conv2   = Conv2D(64, [5, 5], padding='same', activation=tf.nn.relu)   # (N, 14, 14, 64)
    pool2   = MaxPool2D([2, 2], strides=2)                               # (N,  7,  7, 64)
    flatten = Reshape((7 * 7 * 64,))                                      # (N, 3136)
    dense1  = Dense(1024, activation=tf.nn.relu)                          # (N, 1024)
    dense2  = Dense(10)                                                   # (N, 10) logits
    call(x) = tf.nn.softmax(dense2(...))                                  # (N, 10) probabilities

Two additions the tutorial does not need but twins and tests do:

- ``logits(x)``: everything but the final softmax, so a training step can
  compute the cross-entropy from logits explicitly (``loss_path='logits'`` in
  :mod:`tfcnn.training`); ``call(x)`` is ``tf.nn.softmax(self.logits(x))``.
- ``build`` runs in ``__init__``: the weights exist as soon as the model is
  constructed, so ``get_weights()`` / ``set_weights()`` work before any call.

``get_weights()`` returns the eight parameters in the order
conv1/kernel (5,5,1,32), conv1/bias (32,), conv2/kernel (5,5,32,64),
conv2/bias (64,), dense1/kernel (3136,1024), dense1/bias (1024,),
dense2/kernel (1024,10), dense2/bias (10,) -- exactly the order of
``npcnn.seed_cnn().get_weights()``, so weights move either way with a plain
``set_weights(other.get_weights())``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

INPUT_SHAPE = (28, 28, 1)  # one MNIST image, NHWC without the batch axis
NUM_CLASSES = 10
DTYPES = ("float32", "float64")


class SeedCNN(keras.Model):
    """The tutorial CNN; ``call`` returns class probabilities (N, 10).

    Args:
        seed: int seed for the Glorot-uniform kernel initialisers (each layer
            gets ``seed + i``), or None for Keras's global random state.
            Biases start at zero, as Keras's default.
        dtype: 'float32' (default) or 'float64' (None: ``keras.config.floatx()``);
            used for the weights and all computation (float inputs are cast
            to it by the layers).
    """

    def __init__(self, seed=None, dtype="float32", name="seed_cnn", **kwargs):
        if dtype is None:  # Keras's meaning: the global float type
            dtype = keras.config.floatx()
        try:
            dtype = np.dtype(dtype).name
        except TypeError:  # e.g. "mixed_float16", a DTypePolicy: not a NumPy dtype
            pass
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.seed = seed

        def glorot(i):
            return keras.initializers.GlorotUniform(seed=None if seed is None else seed + i)

        conv = dict(padding="same", activation=tf.nn.relu, dtype=dtype)
        self.conv1 = keras.layers.Conv2D(
            32, [5, 5], kernel_initializer=glorot(0), name="conv1", **conv
        )
        self.pool1 = keras.layers.MaxPool2D([2, 2], strides=2, name="pool1", dtype=dtype)
        self.conv2 = keras.layers.Conv2D(
            64, [5, 5], kernel_initializer=glorot(1), name="conv2", **conv
        )
        self.pool2 = keras.layers.MaxPool2D([2, 2], strides=2, name="pool2", dtype=dtype)
        self.flatten = keras.layers.Reshape((7 * 7 * 64,), name="flatten", dtype=dtype)
        self.dense1 = keras.layers.Dense(
            1024, activation=tf.nn.relu, kernel_initializer=glorot(2), name="dense1", dtype=dtype
        )
        self.dense2 = keras.layers.Dense(
            NUM_CLASSES, kernel_initializer=glorot(3), name="dense2", dtype=dtype
        )
        self.build((None, *INPUT_SHAPE))

    @property
    def feature_layers(self) -> list:
        """The seven layers in the order ``call`` applies them (softmax not included)."""
        return [
            self.conv1,
            self.pool1,
            self.conv2,
            self.pool2,
            self.flatten,
            self.dense1,
            self.dense2,
        ]

    def build(self, input_shape):
        """Create every layer's weights for inputs of shape (batch, 28, 28, 1)."""
        shape = tuple(input_shape)
        if shape[1:] != INPUT_SHAPE:
            raise ValueError(f"SeedCNN takes inputs (N, 28, 28, 1), got {shape}")
        for layer in self.feature_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def logits(self, x):
        """The pre-softmax scores (N, 10): every layer of ``call`` except the softmax."""
        for layer in self.feature_layers:
            x = layer(x)
        return x

    def call(self, x):
        """Class probabilities (N, 10), exactly as the tutorial: tf.nn.softmax(dense2(...))."""
        return tf.nn.softmax(self.logits(x))

    def get_config(self):
        return {"seed": self.seed, "dtype": self.dtype_policy.name, "name": self.name}
