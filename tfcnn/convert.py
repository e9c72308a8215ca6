"""Move a model between Keras and npcnn: ``to_npcnn`` and ``from_npcnn``.

For the tutorial network no conversion is needed at all -- the parameter
orders agree, so weights move with ``set_weights``::

    np_model = npcnn.seed_cnn()
    np_model.set_weights(tf_model.get_weights())     # tfcnn.SeedCNN -> npcnn
    tf_model.set_weights(np_model.get_weights())     # and back

``to_npcnn(keras_model)`` goes further: it builds the matching
``npcnn.Sequential`` for any Keras model made of layers npcnn has, and copies
the weights. It accepts

- a ``keras.Sequential``;
- a functional ``keras.Model`` whose layers form a single chain (one input,
  each layer fed by the one before, output = last layer);
- :class:`tfcnn.SeedCNN` (a subclassed model: its ``call`` cannot be read,
  so it is handled explicitly: its seven layers, then a ``Softmax`` for the
  ``tf.nn.softmax`` that ends its ``call``).

Supported layers and options (anything else raises a ``ValueError`` that
names the layer and the option):

==================  ===========================================================
Keras layer         npcnn layer, and what must hold
==================  ===========================================================
Conv2D              ``Conv2D``; channels_last, dilation_rate 1, groups 1
MaxPooling2D        ``MaxPool2D``; channels_last
Dense               ``Dense``; on flat inputs
ReLU                ``ReLU``; max_value None, negative_slope 0, threshold 0
Softmax             ``Softmax``; over the last axis
Activation          ``ReLU`` / ``Softmax`` / ``Activation`` / nothing (linear)
Flatten             ``Flatten``; channels_last
Reshape             ``Reshape`` (a -1 size included)
InputLayer          (nothing: gives the input shape)
Sequential          its layers, in line (a ``keras.Sequential`` used as a layer)
==================  ===========================================================

and the layers real CNNs add (batch normalization, dropout, average pooling,
leaky ReLU, rescaling): ``convert_more.py`` has their table.

Only these exact classes are converted. A user's subclass of one of them
(or of ``keras.Sequential``, ``keras.Model`` or :class:`tfcnn.SeedCNN`) is
refused by name when it overrides ``call`` or any other method (only
``__init__``, ``get_config`` and ``from_config`` may differ): npcnn cannot read
what an overridden method computes. A ``dtype_policy`` other than the model's
dtype is refused on every layer.

Activations (``activation=`` of Conv2D, Dense, Activation) may be 'relu',
'softmax', 'sigmoid', 'tanh', 'leaky_relu', 'linear' or None, as Keras names or
as ``tf.nn`` functions. What changes training but not what the model computes
is ignored: regularizers (kernel, bias, activity), constraints, ``trainable``
(the npcnn model trains every layer, without penalties). LoRA and quantization
change the output and are refused. All weights must share one dtype, float32 or
float64; the npcnn model gets that dtype.

``from_npcnn(np_model)`` is the reverse: a ``keras.Sequential`` with the same
layers and weights.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import npcnn

from .convert_more import MORE_LAYERS, convert_more, keras_more
from .model import INPUT_SHAPE, SeedCNN

# activation function (as Keras stores it on the layer) -> npcnn's activation name
_ACTIVATION_NAMES = {
    keras.activations.relu: "relu",
    tf.nn.relu: "relu",
    keras.activations.softmax: "softmax",
    tf.nn.softmax: "softmax",
    keras.activations.linear: None,
    keras.activations.sigmoid: "sigmoid",
    tf.nn.sigmoid: "sigmoid",
    tf.sigmoid: "sigmoid",
    keras.activations.tanh: "tanh",
    tf.nn.tanh: "tanh",
    tf.tanh: "tanh",
    keras.activations.leaky_relu: "leaky_relu",
}


def _unsupported(layer, what: str) -> ValueError:
    return ValueError(
        f"to_npcnn: layer {layer.name!r} ({type(layer).__name__}) has {what}, which npcnn "
        "does not support"
    )


def _activation_name(layer, activation):
    """npcnn's name ('relu', 'softmax' or None) for a Keras activation function."""
    if activation is None:
        return None
    try:
        return _ACTIVATION_NAMES[activation]
    except (KeyError, TypeError):
        name = getattr(activation, "__name__", repr(activation))
        raise _unsupported(
            layer,
            f"activation={name!r} (only relu, softmax, sigmoid, tanh, leaky_relu, linear or None)",
        ) from None


def _check_options(layer, **allowed):
    """Raise unless every ``layer.<option>`` equals the value npcnn implements."""
    for option, wanted in allowed.items():
        value = getattr(layer, option, wanted)
        if isinstance(value, (tuple, list)):
            value = tuple(value)
        if value != wanted:
            raise _unsupported(layer, f"{option}={value!r} (npcnn needs {wanted!r})")


def _check_no_extras(layer):
    """LoRA and quantization change what the layer computes: refuse rather than ignore."""
    if getattr(layer, "lora_enabled", False):
        raise _unsupported(layer, "LoRA enabled")
    if getattr(layer, "quantization_mode", None) is not None:
        raise _unsupported(layer, f"quantization_mode={layer.quantization_mode!r}")


# methods a subclass may define without changing what the layer or model computes
_HARMLESS_OVERRIDES = {"__init__", "get_config", "from_config"}


def _check_exact_class(obj, bases, what):
    """The class in ``bases`` that ``obj`` is (or harmlessly subclasses), or None.

    A subclass that overrides ``call`` or any other method is refused by name:
    the conversion would reproduce the base class, not what the subclass computes.
    """
    cls = type(obj)
    for base in bases:
        if not isinstance(obj, base):
            continue
        for klass in cls.__mro__[: cls.__mro__.index(base)]:
            changed = sorted(
                key
                for key, value in vars(klass).items()
                if key not in _HARMLESS_OVERRIDES
                and (callable(value) or isinstance(value, (property, classmethod, staticmethod)))
                and not (key.startswith("__") and key != "__call__")
            )
            if changed:
                name = getattr(obj, "name", cls.__name__)
                raise ValueError(
                    f"to_npcnn: {what} {name!r} is a {cls.__name__}, a subclass of "
                    f"{base.__name__} that overrides {', '.join(changed)}; npcnn converts only "
                    f"the exact Keras classes (their computation is known)"
                )
        return base
    return None


_KNOWN_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.Conv2D,
    keras.layers.MaxPooling2D,
    keras.layers.Dense,
    keras.layers.ReLU,
    keras.layers.Softmax,
    keras.layers.Activation,
    keras.layers.Flatten,
    keras.layers.Reshape,
    *MORE_LAYERS,
)


def _convert_layer(layer) -> list:
    """The npcnn layers (zero, one) computing what Keras ``layer`` computes."""
    L = keras.layers
    name = layer.name
    if isinstance(layer, keras.Model):  # a model used as a layer
        return _convert_nested(layer)
    _check_exact_class(layer, _KNOWN_LAYERS, "layer")
    if isinstance(layer, L.InputLayer):
        return []
    if isinstance(layer, L.Conv2D):
        return [_conv2d(layer)]
    if isinstance(layer, L.MaxPooling2D):
        _check_options(layer, data_format="channels_last")
        pool = tuple(layer.pool_size)
        return [npcnn.MaxPool2D(pool, tuple(layer.strides), layer.padding, name=name)]
    if isinstance(layer, L.Dense):
        _check_no_extras(layer)
        activation = _activation_name(layer, layer.activation)
        return [npcnn.Dense(layer.units, activation, use_bias=layer.use_bias, name=name)]
    if isinstance(layer, L.ReLU):
        _check_options(layer, max_value=None, negative_slope=0.0, threshold=0.0)
        return [npcnn.ReLU(name=name)]
    if isinstance(layer, L.Softmax):
        if layer.axis not in (-1, [-1], (-1,)):
            raise _unsupported(layer, f"axis={layer.axis!r} (npcnn's Softmax is over axis -1)")
        return [npcnn.Softmax(name=name)]
    if isinstance(layer, L.Activation):
        activation = _activation_name(layer, layer.activation)
        if activation is None:
            return []
        if activation in ("relu", "softmax"):
            return [npcnn.ReLU(name=name) if activation == "relu" else npcnn.Softmax(name=name)]
        return [npcnn.Activation(activation, name=name)]
    if isinstance(layer, L.Flatten):
        _check_options(layer, data_format="channels_last")
        return [npcnn.Flatten(name=name)]
    if isinstance(layer, L.Reshape):
        return [npcnn.Reshape(layer.target_shape, name=name)]
    more = convert_more(layer, _check_options, _unsupported)
    if more is not None:
        return [more]
    raise ValueError(
        f"to_npcnn: layer {layer.name!r} is a {type(layer).__name__}, which npcnn does not have "
        f"(supported: {', '.join(cls.__name__ for cls in _KNOWN_LAYERS[1:])})"
    )


def _conv2d(layer):
    """npcnn's Conv2D for Keras's ``layer`` (channels last, no dilation or groups)."""
    _check_options(layer, data_format="channels_last", dilation_rate=(1, 1), groups=1)
    _check_no_extras(layer)
    return npcnn.Conv2D(
        layer.filters,
        tuple(layer.kernel_size),
        strides=tuple(layer.strides),
        padding=layer.padding,
        activation=_activation_name(layer, layer.activation),
        use_bias=layer.use_bias,
        name=layer.name,
    )


def _convert_nested(model) -> list:
    """A ``keras.Sequential`` inside the model: its layers, in line (the weights follow
    in the same order). Any other nested model is refused with what to do instead."""
    if _check_exact_class(model, (keras.Sequential,), "layer") is None:
        raise ValueError(
            f"to_npcnn: layer {model.name!r} is a nested {type(model).__name__} model; npcnn "
            "converts a single chain of layers: put its layers in the outer model, or convert "
            "a keras.Sequential of them"
        )
    return [np_layer for inner in model.layers for np_layer in _convert_layer(inner)]


def _layer_chain(model):
    """(keras layers in order, input shape without batch axis, ends_in_tf_softmax)."""
    functional = keras.src.models.functional.Functional
    _check_exact_class(model, (SeedCNN, keras.Sequential, functional), "model")
    if isinstance(model, SeedCNN):
        return model.feature_layers, INPUT_SHAPE, True
    if isinstance(model, keras.Sequential):
        if not model.built or not model.inputs:
            raise ValueError(
                "to_npcnn: build the Sequential model first (start it with keras.Input(shape))"
            )
        return list(model.layers), tuple(model.inputs[0].shape[1:]), False
    if isinstance(model, keras.src.models.functional.Functional):
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ValueError("to_npcnn: the functional model must have one input and one output")
        layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        previous = model.inputs[0]
        for layer in layers:
            if len(layer._inbound_nodes) != 1 or layer.input is not previous:
                raise ValueError(
                    f"to_npcnn: layer {layer.name!r} is not fed by the layer before it; npcnn "
                    "models are single chains of layers"
                )
            previous = layer.output
        if model.outputs[0] is not previous:
            raise ValueError("to_npcnn: the model's output is not its last layer's output")
        return layers, tuple(model.inputs[0].shape[1:]), False
    raise ValueError(
        f"to_npcnn: cannot read the call() of the subclassed model {type(model).__name__}; "
        "give a keras.Sequential, a single-chain functional model or a tfcnn.SeedCNN"
    )


def _common_dtype(keras_layers, weights) -> str:
    """The one dtype every weight has and every layer computes in: float32 or float64.

    npcnn runs a whole model in one dtype; a Keras layer whose compute dtype
    differs (a float32 ReLU in a float64 model, a mixed-precision policy)
    would round differently, so it is refused by name.
    """
    dtypes = sorted({np.dtype(w.dtype).name for w in weights})
    if len(dtypes) > 1:
        raise ValueError(f"to_npcnn: the weights mix dtypes {dtypes}; npcnn needs one")
    layers = [layer for layer in keras_layers if not isinstance(layer, keras.layers.InputLayer)]
    if not dtypes:  # no weights: the layers' compute dtype decides
        dtypes = [np.dtype(layers[0].dtype_policy.compute_dtype).name] if layers else ["float32"]
    dtype = dtypes[0]
    if dtype not in ("float32", "float64"):
        raise ValueError(f"to_npcnn: npcnn computes in float32 or float64, the model in {dtype}")
    for layer in layers:
        compute = np.dtype(layer.dtype_policy.compute_dtype).name
        if compute != dtype:
            raise _unsupported(layer, f"compute dtype {compute} in a {dtype} model")
    return dtype


def to_npcnn(keras_model, kernels="fast") -> npcnn.Sequential:
    """An ``npcnn.Sequential`` equal to ``keras_model``, holding copies of its weights.

    ``kernels`` picks npcnn's tier, as in ``npcnn.Sequential``: 'fast' (the
    default) or 'ops' (the readable reference). Raises ``ValueError`` naming
    the first unsupported layer or option (see the module docstring for what
    is supported).
    """
    keras_layers, input_shape, ends_in_softmax = _layer_chain(keras_model)
    if None in input_shape:
        raise ValueError(f"to_npcnn: the input shape {input_shape} must be fully known")
    np_layers, weights = [], []
    for layer in keras_layers:
        np_layers += _convert_layer(layer)
        weights += layer.get_weights()  # kernel then bias, npcnn's order
    if ends_in_softmax:
        np_layers.append(npcnn.Softmax(name="softmax"))
    dtype = _common_dtype(keras_layers, weights)
    np_model = npcnn.Sequential(np_layers, input_shape=input_shape, dtype=dtype, kernels=kernels)
    np_model.set_weights(weights)
    return np_model


def _keras_layer(layer, dtype, name):
    """The Keras layer for one npcnn layer (``name``: its name, or None to let Keras pick)."""
    L = keras.layers
    if isinstance(layer, npcnn.Conv2D):
        return L.Conv2D(
            layer.filters,
            layer.kernel_size,
            strides=layer.strides,
            padding=layer.padding,
            activation=layer.activation,
            use_bias=layer.use_bias,
            name=name,
            dtype=dtype,
        )
    if isinstance(layer, npcnn.MaxPool2D):
        return L.MaxPooling2D(
            layer.pool_size, strides=layer.strides, padding=layer.padding, name=name, dtype=dtype
        )
    if isinstance(layer, npcnn.Dense):
        return L.Dense(
            layer.units, activation=layer.activation, use_bias=layer.use_bias, name=name,
            dtype=dtype,
        )  # fmt: skip
    if isinstance(layer, npcnn.ReLU):
        return L.ReLU(name=name, dtype=dtype)
    if isinstance(layer, npcnn.Softmax):
        return L.Softmax(name=name, dtype=dtype)
    if isinstance(layer, npcnn.Flatten):
        return L.Flatten(name=name, dtype=dtype)
    if isinstance(layer, npcnn.Reshape):
        return L.Reshape(layer.target_shape, name=name, dtype=dtype)
    more = keras_more(layer, dtype, name)
    if more is None:
        raise ValueError(f"from_npcnn: no Keras layer for npcnn layer {layer!r}")
    return more


def from_npcnn(np_model) -> keras.Sequential:
    """A ``keras.Sequential`` with ``np_model``'s layers, dtype and (copied) weights."""
    if not np_model.built:
        raise ValueError("from_npcnn: build the npcnn model (give input_shape) first")
    dtype = np_model.dtype.name
    names = [layer.name for layer in np_model.layers]
    if len(set(names)) != len(names):  # Keras needs distinct names: let it choose them
        names = [None] * len(names)
    model = keras.Sequential(
        [keras.Input(np_model.input_shape, dtype=dtype)]
        + [_keras_layer(layer, dtype, name) for layer, name in zip(np_model.layers, names)]
    )
    model.set_weights(np_model.get_weights())
    return model
