"""The converter's table for the layers beyond the tutorial's (``convert.py`` has the rest).

==========================  ====================================================
Keras layer                 npcnn layer, and what must hold
==========================  ====================================================
BatchNormalization          ``BatchNormalization``; the last axis, no renorm,
                            not synchronized; its moving statistics copied
Dropout                     ``Dropout``; no noise_shape
AveragePooling2D            ``AvgPool2D``; channels_last
GlobalAveragePooling2D      ``GlobalAveragePooling2D``; channels_last, no keepdims
LeakyReLU                   ``LeakyReLU``
Rescaling                   ``Rescaling``; a number for scale and for offset
==========================  ====================================================
"""

from __future__ import annotations

import keras
import numpy as np

import npcnn

L = keras.layers

MORE_LAYERS = (
    L.BatchNormalization,
    L.Dropout,
    L.AveragePooling2D,
    L.GlobalAveragePooling2D,
    L.LeakyReLU,
    L.Rescaling,
)


def _number(layer, option, unsupported):
    value = getattr(layer, option)
    if np.ndim(value) != 0:
        raise unsupported(layer, f"{option}={value!r} (npcnn needs one number)")
    return float(value)


def convert_more(layer, check_options, unsupported):
    """The npcnn layer for Keras ``layer`` (one of :data:`MORE_LAYERS`), or None.

    ``check_options(layer, option=wanted, ...)`` and ``unsupported(layer, what)``
    are ``convert.py``'s (a refusal names the layer and the option)."""
    name = layer.name
    if isinstance(layer, L.BatchNormalization):
        check_options(layer, renorm=False, synchronized=False)
        rank = len(layer.input.shape) if hasattr(layer, "input") else None
        if layer.axis not in (-1, None if rank is None else rank - 1):
            raise unsupported(layer, f"axis={layer.axis!r} (npcnn normalizes the last axis)")
        return npcnn.BatchNormalization(
            -1, float(layer.momentum), float(layer.epsilon), layer.center, layer.scale, name=name
        )
    if isinstance(layer, L.Dropout):
        check_options(layer, noise_shape=None)
        return npcnn.Dropout(float(layer.rate), seed=layer.seed, name=name)
    if isinstance(layer, L.AveragePooling2D):
        check_options(layer, data_format="channels_last")
        pool, strides = tuple(layer.pool_size), tuple(layer.strides)
        return npcnn.AvgPool2D(pool, strides=strides, padding=layer.padding, name=name)
    if isinstance(layer, L.GlobalAveragePooling2D):
        check_options(layer, data_format="channels_last", keepdims=False)
        return npcnn.GlobalAveragePooling2D(name=name)
    if isinstance(layer, L.LeakyReLU):
        return npcnn.LeakyReLU(float(layer.negative_slope), name=name)
    if isinstance(layer, L.Rescaling):
        scale = _number(layer, "scale", unsupported)
        return npcnn.Rescaling(scale, _number(layer, "offset", unsupported), name=name)
    return None


def keras_more(layer, dtype, name):
    """The Keras layer for one npcnn layer of this table (``from_npcnn``), or None."""
    if isinstance(layer, npcnn.BatchNormalization):
        return L.BatchNormalization(
            momentum=layer.momentum, epsilon=layer.epsilon, center=layer.center,
            scale=layer.scale, name=name, dtype=dtype,
        )  # fmt: skip
    if isinstance(layer, npcnn.Dropout):
        return L.Dropout(layer.rate, seed=layer.seed, name=name, dtype=dtype)
    if isinstance(layer, npcnn.AvgPool2D):
        return L.AveragePooling2D(
            layer.pool_size, strides=layer.strides, padding=layer.padding, name=name, dtype=dtype
        )
    if isinstance(layer, npcnn.GlobalAveragePooling2D):
        return L.GlobalAveragePooling2D(name=name, dtype=dtype)
    if isinstance(layer, npcnn.LeakyReLU):
        return L.LeakyReLU(negative_slope=layer.negative_slope, name=name, dtype=dtype)
    if isinstance(layer, npcnn.Rescaling):
        return L.Rescaling(layer.scale, layer.offset, name=name, dtype=dtype)
    if isinstance(layer, npcnn.Activation):
        return L.Activation(layer.activation or "linear", name=name, dtype=dtype)
    return None
