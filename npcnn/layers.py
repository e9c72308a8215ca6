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

from . import fast, ops
from .backend import get_array_module
from .initializers import kernel_initializer, zeros
from .names import number_names, snake_case  # noqa: F401 (model.py imports number_names here)
from .ops.padding import output_hw
from .validation import (
    as_pair,
    check_bool,
    normalize_padding,
    positive_int,
)

KERNELS = {"fast": fast, "ops": ops}  # name -> the module holding the ops
ACTIVATIONS = ("relu", "softmax", "sigmoid", "tanh", "leaky_relu")  # Keras's names
LEAKY_RELU_SLOPE = 0.2  # activation="leaky_relu": keras.activations.leaky_relu's default
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


def _check_activation(activation):
    if activation in (None, "linear"):
        return None
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be None, 'linear' or one of {', '.join(ACTIVATIONS)}, "
            f"got {activation!r}"
        )
    return activation


class Layer:
    """Base class: no parameters, output shape = input shape.

    ``training`` is the mode of the pass under way (set by ``Sequential`` before
    each forward: True in training, False at inference), which BatchNormalization
    and Dropout read. ``state`` holds a layer's non-trainable arrays (named by
    ``state_names``: BatchNormalization's moving statistics), saved with the
    weights but never given to an optimizer.
    """

    param_names: tuple[str, ...] = ()  # names of ``params``, in order (e.g. kernel, bias)
    state_names: tuple[str, ...] = ()  # names of ``state``, in order
    keras_class_name: str | None = None  # the Keras class, where its name differs from ours
    needs_whole_batch = False  # True: in training its output depends on the whole batch

    def __init__(self, name: str | None = None):
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"name must be None or a non-empty str without '/', got {name!r}")
        self.auto_named = name is None  # its model numbers it: conv2d, conv2d_1, ...
        self.name = name or snake_case(self.keras_class_name or type(self).__name__)
        self.kernels = fast  # the ops module; Sequential(kernels=...) may set npcnn.ops
        self.params: list = []
        self.grads: list = []
        self.state: list = []
        self.training = False
        self.cache = None

    @property
    def weight_names(self) -> tuple[str, ...]:
        """Names of ``params`` then ``state``: Keras's ``layer.weights`` order."""
        return (*self.param_names, *self.state_names)

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
            "sigmoid": (k.sigmoid_forward, k.sigmoid_backward),
            "tanh": (k.tanh_forward, k.tanh_backward),
            "leaky_relu": (
                lambda x: k.leaky_relu_forward(x, LEAKY_RELU_SLOPE),
                k.leaky_relu_backward,
            ),
        }
        return pairs[self.activation]


class _Affine(_WithActivation):
    """Conv2D and Dense: a kernel, a bias unless ``use_bias=False``, an initializer."""

    def __init__(self, activation, use_bias, kernel_initializer_name, name):
        super().__init__(activation, name)
        self.use_bias = check_bool(use_bias, "use_bias")
        kernel_initializer(kernel_initializer_name)  # a ValueError for an unknown name
        self.kernel_initializer = kernel_initializer_name
        self.param_names = ("kernel", "bias") if self.use_bias else ("kernel",)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
        }

    def make_params(self, kernel_shape, rng, dtype):
        kernel = kernel_initializer(self.kernel_initializer)(kernel_shape, rng, dtype)
        bias = [zeros((kernel_shape[-1],), dtype=dtype)] if self.use_bias else []
        self.params = [kernel, *bias]

    def kernel_and_bias(self):
        """(kernel, bias) for the op: zeros for the bias when ``use_bias`` is False
        (the op adds them: x + 0 is x)."""
        if self.use_bias:
            return tuple(self.params)
        kernel = self.params[0]
        return kernel, get_array_module(kernel).zeros((kernel.shape[-1],), dtype=kernel.dtype)

    def set_grads(self, dw, db):
        self.grads = [dw, db] if self.use_bias else [dw]


@register_layer
class Conv2D(_Affine):
    """2-D convolution, ``keras.layers.Conv2D``: kernel (kh, kw, Cin, filters), bias (filters,)."""

    def __init__(
        self, filters, kernel_size, strides=1, padding="valid", activation=None,
        use_bias=True, kernel_initializer="glorot_uniform", name=None,
    ):  # fmt: skip
        super().__init__(activation, use_bias, kernel_initializer, name)
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
        }

    def build(self, input_shape, rng, dtype):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name} expects inputs (H, W, C), got {tuple(input_shape)}")
        h, w, cin = input_shape
        self.make_params((*self.kernel_size, cin, self.filters), rng, dtype)
        out = output_hw((h, w), self.kernel_size, self.strides, self.padding, what=self.name)
        return (*out, self.filters)

    def forward(self, x):
        kernel, bias = self.kernel_and_bias()
        y, self.cache = self.kernels.conv2d_forward(x, kernel, bias, self.strides, self.padding)
        return self.activate(y)

    def backward(self, dy, need_dx=True):
        need_dx = check_bool(need_dx, "need_dx")
        dx, dw, db = self.kernels.conv2d_backward(self.activation_backward(dy), self.cache, need_dx)
        self.set_grads(dw, db)
        return dx


@register_layer
class Dense(_Affine):
    """Fully connected layer, ``keras.layers.Dense``: kernel (Din, units), bias (units,)."""

    def __init__(
        self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
        name=None,
    ):  # fmt: skip
        super().__init__(activation, use_bias, kernel_initializer, name)
        self.units = positive_int(units, "units")

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}

    def build(self, input_shape, rng, dtype):
        if len(input_shape) != 1:
            raise ValueError(
                f"{self.name} expects flat inputs (features,), got {tuple(input_shape)}: "
                "put a Flatten or Reshape before it"
            )
        self.make_params((input_shape[0], self.units), rng, dtype)
        return (self.units,)

    def forward(self, x):
        kernel, bias = self.kernel_and_bias()
        y, self.cache = self.kernels.dense_forward(x, kernel, bias)
        return self.activate(y)

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        dx, dw, db = self.kernels.dense_backward(self.activation_backward(dy), self.cache)
        self.set_grads(dw, db)
        return dx


class _Pool2D(Layer):
    """A pooling layer over (pool_size, strides, padding) windows: ``op`` names its ops."""

    op = ""  # 'maxpool2d' or 'avgpool2d': the kernels module's *_forward / *_backward

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
        forward = getattr(self.kernels, f"{self.op}_forward")
        y, self.cache = forward(x, self.pool_size, self.strides, self.padding)
        return y

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        return getattr(self.kernels, f"{self.op}_backward")(dy, self.cache)


@register_layer
class MaxPool2D(_Pool2D):
    """Max-pooling, ``keras.layers.MaxPool2D`` (strides=None means pool_size)."""

    keras_class_name = "MaxPooling2D"  # unnamed ones are max_pooling2d, max_pooling2d_1, ...
    op = "maxpool2d"


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
