"""Layer classes with Keras's names and arguments, each a thin wrapper over one op.

A layer holds its parameters (``params``, the live arrays an optimizer updates
in place, named by ``param_names``), the gradients of its last backward pass
(``grads``, same order) and the cache of its last forward pass.
``build(input_shape, rng, dtype)`` creates the parameters once the input shape
(without the batch axis) is known and returns the output shape.

Which implementation of the ops a layer calls is its ``kernels`` module:
``npcnn.fast`` by default, or ``npcnn.ops``, the readable reference (same
numbers); ``Sequential(..., kernels="ops")`` sets it for every layer.
"""

from __future__ import annotations

import math
import re

from . import fast, ops
from .initializers import glorot_uniform, zeros
from .ops.padding import output_hw
from .validation import (
    as_pair,
    check_bool,
    check_unique_names,
    normalize_padding,
    positive_int,
)

KERNELS = {"fast": fast, "ops": ops}  # name -> the module holding the ops
ACTIVATIONS = ("relu", "softmax")
LAYER_CLASSES: dict[str, type] = {}  # class name -> class: what a model file may name


def register_layer(cls):
    """Add a layer class to :data:`LAYER_CLASSES` under its name (and its Keras name), so a
    model file (``npcnn.load_model``) may hold it; returns the class (a decorator)."""
    for name in {cls.__name__, cls.keras_class_name or cls.__name__}:
        LAYER_CLASSES[name] = cls
    return cls


def kernels_module(kernels):
    """The ops module for ``kernels='fast'`` (default) or ``'ops'`` (the readable reference)."""
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be 'fast' or 'ops', got {kernels!r}")
    return KERNELS[kernels]


def snake_case(class_name: str) -> str:
    """Keras's automatic layer-name prefix: 'Conv2D' -> 'conv2d', 'MaxPooling2D' ->
    'max_pooling2d', 'ReLU' -> 're_lu' (``keras.src.utils.naming.to_snake_case``)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def number_names(layers) -> None:
    """Give each unnamed layer of one model a name unique in it, numbered as Keras does.

    Per prefix, in order: ``conv2d``, ``conv2d_1``, ``conv2d_2``, ...; a name a
    layer was given (``name=``) is kept, and the numbering skips it. Two layers
    given the same name raise ``ValueError`` naming it, before any layer is
    renamed: parameters are stored by name, so a shared name would lose one.
    """
    given = [layer.name for layer in layers if not layer.auto_named]
    check_unique_names(given, "layer names")  # before any layer is renamed
    taken, counts = set(given), {}
    for layer in layers:
        if not layer.auto_named:
            continue
        prefix = snake_case(layer.keras_class_name or type(layer).__name__)
        while True:
            n = counts.get(prefix, 0)
            counts[prefix] = n + 1
            name = prefix if n == 0 else f"{prefix}_{n}"
            if name not in taken:
                break
        layer.name = name
        layer.auto_named = False  # the name stays, as Keras's: a layer reused elsewhere keeps it
        taken.add(name)


def _check_activation(activation):
    if activation in (None, "linear"):
        return None
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be None, 'linear', 'relu' or 'softmax', got {activation!r}"
        )
    return activation


class Layer:
    """Base class: no parameters, output shape = input shape."""

    param_names: tuple[str, ...] = ()  # names of ``params``, in order (e.g. kernel, bias)
    keras_class_name: str | None = None  # the Keras class, where its name differs from ours

    def __init__(self, name: str | None = None):
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"name must be None or a non-empty str without '/', got {name!r}")
        self.auto_named = name is None  # its model numbers it: conv2d, conv2d_1, ...
        self.name = name or snake_case(self.keras_class_name or type(self).__name__)
        self.kernels = fast  # the ops module; Sequential(kernels=...) may set npcnn.ops
        self.params: list = []
        self.grads: list = []
        self.cache = None

    def build(self, input_shape, rng, dtype):
        """Create parameters for inputs of shape (batch, *input_shape); return output shape."""
        return tuple(input_shape)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy, need_dx=True):
        """dL/dy -> dL/dx (filling ``grads``). need_dx=False lets a layer with
        parameters skip dL/dx (return None) when nobody needs it: the first layer."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """The arguments that rebuild this layer, as plain data: ``type(self)(**config)``."""
        return {"name": self.name}

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


class _WithActivation(Layer):
    """A layer whose output may go through an activation (Keras's ``activation=``)."""

    def __init__(self, activation=None, name=None):
        super().__init__(name)
        self.activation = _check_activation(activation)
        self.activation_cache = None

    def activate(self, y):
        if self.activation is None:
            return y
        forward, _ = self._activation_ops()
        y, self.activation_cache = forward(y)
        return y

    def activation_backward(self, dy):
        if self.activation is None:
            return dy
        _, backward = self._activation_ops()
        return backward(dy, self.activation_cache)

    def _activation_ops(self):
        """(forward, backward) of this layer's activation, from its kernels module."""
        k = self.kernels
        pairs = {
            "relu": (k.relu_forward, k.relu_backward),
            "softmax": (k.softmax_forward, k.softmax_backward),
        }
        return pairs[self.activation]


@register_layer
class Conv2D(_WithActivation):
    """2-D convolution, ``keras.layers.Conv2D``: kernel (kh, kw, Cin, filters), bias (filters,)."""

    param_names = ("kernel", "bias")

    def __init__(
        self, filters, kernel_size, strides=1, padding="valid", activation=None, name=None
    ):
        super().__init__(activation, name)
        self.filters = positive_int(filters, "filters")
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.strides = as_pair(strides, "strides")
        self.padding = normalize_padding(padding)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "activation": self.activation,
        }

    def build(self, input_shape, rng, dtype):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name} expects inputs (H, W, C), got {tuple(input_shape)}")
        h, w, cin = input_shape
        kernel = glorot_uniform((*self.kernel_size, cin, self.filters), rng, dtype)
        self.params = [kernel, zeros((self.filters,), dtype=dtype)]
        out = output_hw((h, w), self.kernel_size, self.strides, self.padding, what=self.name)
        return (*out, self.filters)

    def forward(self, x):
        kernel, bias = self.params
        y, self.cache = self.kernels.conv2d_forward(x, kernel, bias, self.strides, self.padding)
        return self.activate(y)

    def backward(self, dy, need_dx=True):
        need_dx = check_bool(need_dx, "need_dx")
        dx, dw, db = self.kernels.conv2d_backward(self.activation_backward(dy), self.cache, need_dx)
        self.grads = [dw, db]
        return dx


@register_layer
class Dense(_WithActivation):
    """Fully connected layer, ``keras.layers.Dense``: kernel (Din, units), bias (units,)."""

    param_names = ("kernel", "bias")

    def __init__(self, units, activation=None, name=None):
        super().__init__(activation, name)
        self.units = positive_int(units, "units")

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "activation": self.activation}

    def build(self, input_shape, rng, dtype):
        if len(input_shape) != 1:
            raise ValueError(
                f"{self.name} expects flat inputs (features,), got {tuple(input_shape)}: "
                "put a Flatten or Reshape before it"
            )
        kernel = glorot_uniform((input_shape[0], self.units), rng, dtype)
        self.params = [kernel, zeros((self.units,), dtype=dtype)]
        return (self.units,)

    def forward(self, x):
        kernel, bias = self.params
        y, self.cache = self.kernels.dense_forward(x, kernel, bias)
        return self.activate(y)

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        dx, dw, db = self.kernels.dense_backward(self.activation_backward(dy), self.cache)
        self.grads = [dw, db]
        return dx


@register_layer
class MaxPool2D(Layer):
    """Max-pooling, ``keras.layers.MaxPool2D`` (strides=None means pool_size)."""

    keras_class_name = "MaxPooling2D"  # unnamed ones are max_pooling2d, max_pooling2d_1, ...

    def __init__(self, pool_size=2, strides=None, padding="valid", name=None):
        super().__init__(name)
        self.pool_size = as_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else as_pair(strides, "strides")
        self.padding = normalize_padding(padding)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
        }

    def build(self, input_shape, rng, dtype):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name} expects inputs (H, W, C), got {tuple(input_shape)}")
        h, w, c = input_shape
        return (*output_hw((h, w), self.pool_size, self.strides, self.padding, self.name), c)

    def forward(self, x):
        y, self.cache = self.kernels.maxpool2d_forward(
            x, self.pool_size, self.strides, self.padding
        )
        return y

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        return self.kernels.maxpool2d_backward(dy, self.cache)


MaxPooling2D = MaxPool2D  # Keras's other name for it


# ReLU and Softmax share their shape on purpose: one op each, each read on its own.
@register_layer
class ReLU(Layer):
    """``keras.layers.ReLU``: max(x, 0)."""

    def forward(self, x):
        y, self.cache = self.kernels.relu_forward(x)
        return y

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        return self.kernels.relu_backward(dy, self.cache)


@register_layer
class Softmax(Layer):
    """``keras.layers.Softmax`` over the last axis."""

    def forward(self, x):
        y, self.cache = self.kernels.softmax_forward(x)
        return y

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        return self.kernels.softmax_backward(dy, self.cache)


@register_layer
class Flatten(Layer):
    """``keras.layers.Flatten``: (N, H, W, C) -> (N, H*W*C) in NHWC order."""

    def build(self, input_shape, rng, dtype):
        return (math.prod(input_shape),)

    def forward(self, x):
        y, self.cache = self.kernels.flatten_forward(x)
        return y

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        return self.kernels.flatten_backward(dy, self.cache)


@register_layer
class Reshape(Layer):
    """``keras.layers.Reshape(target_shape)``: reshape everything but the batch axis.

    As in Keras, one size may be -1 (``Reshape((-1,))`` flattens): ``build``
    replaces it by what the input's size leaves, so ``target_shape`` of a built
    layer holds every size.
    """

    def __init__(self, target_shape, name=None):
        super().__init__(name)
        if not isinstance(target_shape, (tuple, list)):
            raise ValueError(f"target_shape must be a tuple of positive ints, got {target_shape!r}")
        sizes = tuple(-1 if d == -1 else positive_int(d, "target_shape") for d in target_shape)
        if sizes.count(-1) > 1:
            raise ValueError(f"target_shape may hold one -1 at most, got {sizes!r}")
        self.target_shape = sizes

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": list(self.target_shape)}

    def build(self, input_shape, rng, dtype):
        size, known = math.prod(input_shape), math.prod(d for d in self.target_shape if d != -1)
        target = tuple(size // known if d == -1 else d for d in self.target_shape)
        if math.prod(target) != size:
            raise ValueError(
                f"{self.name} cannot reshape {tuple(input_shape)} to {self.target_shape}: "
                f"{size} != {math.prod(target)} values"
            )
        self.target_shape = target
        return target

    def forward(self, x):
        self.cache = x.shape
        return x.reshape(x.shape[0], *self.target_shape)

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        return dy.reshape(self.cache)
