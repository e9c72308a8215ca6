"""Layer classes with Keras's names and arguments, each a thin wrapper over ``npcnn.ops``.

A layer holds its parameters (``params``, the live arrays an optimizer updates
in place), the gradients of its last backward pass (``grads``, same order) and
the cache of its last forward pass. ``build(input_shape, rng, dtype)`` creates
the parameters once the input shape (without the batch axis) is known and
returns the output shape.
"""

from __future__ import annotations

import math

from . import ops
from .initializers import glorot_uniform, zeros
from .ops._checks import as_pair, normalize_padding
from .ops.padding import output_hw


def relu_in_place(y):
    """ReLU written over ``y``: a layer's pre-activation is its own fresh array,
    held by nobody else, so no second array is needed (speed only)."""
    return ops.relu_forward(y, out=y)


# activation name -> (forward, backward) applied to a layer's output; None means the identity
ACTIVATIONS = {
    "relu": (relu_in_place, ops.relu_backward),
    "softmax": (ops.softmax_forward, ops.softmax_backward),
}


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

    def __init__(self, name: str | None = None):
        self.name = name or type(self).__name__.lower()
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
        y, self.activation_cache = ACTIVATIONS[self.activation][0](y)
        return y

    def activation_backward(self, dy):
        if self.activation is None:
            return dy
        return ACTIVATIONS[self.activation][1](dy, self.activation_cache)


class Conv2D(_WithActivation):
    """2-D convolution, ``keras.layers.Conv2D``: kernel (kh, kw, Cin, filters), bias (filters,)."""

    def __init__(
        self, filters, kernel_size, strides=1, padding="valid", activation=None, name=None
    ):
        super().__init__(activation, name)
        if int(filters) < 1:
            raise ValueError(f"filters must be a positive int, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.strides = as_pair(strides, "strides")
        self.padding = normalize_padding(padding)

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
        y, self.cache = ops.conv2d_forward(x, kernel, bias, self.strides, self.padding)
        return self.activate(y)

    def backward(self, dy, need_dx=True):
        dx, dw, db = ops.conv2d_backward(self.activation_backward(dy), self.cache, need_dx)
        self.grads = [dw, db]
        return dx


class Dense(_WithActivation):
    """Fully connected layer, ``keras.layers.Dense``: kernel (Din, units), bias (units,)."""

    def __init__(self, units, activation=None, name=None):
        super().__init__(activation, name)
        if int(units) < 1:
            raise ValueError(f"units must be a positive int, got {units!r}")
        self.units = int(units)

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
        y, self.cache = ops.dense_forward(x, kernel, bias)
        return self.activate(y)

    def backward(self, dy, need_dx=True):
        dx, dw, db = ops.dense_backward(self.activation_backward(dy), self.cache)
        self.grads = [dw, db]
        return dx


class MaxPool2D(Layer):
    """Max-pooling, ``keras.layers.MaxPool2D`` (strides=None means pool_size)."""

    def __init__(self, pool_size=2, strides=None, padding="valid", name=None):
        super().__init__(name)
        self.pool_size = as_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else as_pair(strides, "strides")
        self.padding = normalize_padding(padding)

    def build(self, input_shape, rng, dtype):
        h, w, c = input_shape
        return (*output_hw((h, w), self.pool_size, self.strides, self.padding, self.name), c)

    def forward(self, x):
        y, self.cache = ops.maxpool2d_forward(x, self.pool_size, self.strides, self.padding)
        return y

    def backward(self, dy, need_dx=True):
        return ops.maxpool2d_backward(dy, self.cache)


MaxPooling2D = MaxPool2D  # Keras's other name for it


class ReLU(Layer):
    """``keras.layers.ReLU``: max(x, 0)."""

    def forward(self, x):
        y, self.cache = ops.relu_forward(x)
        return y

    def backward(self, dy, need_dx=True):
        return ops.relu_backward(dy, self.cache)


class Softmax(Layer):
    """``keras.layers.Softmax`` over the last axis."""

    def forward(self, x):
        y, self.cache = ops.softmax_forward(x)
        return y

    def backward(self, dy, need_dx=True):
        return ops.softmax_backward(dy, self.cache)


class Flatten(Layer):
    """``keras.layers.Flatten``: (N, H, W, C) -> (N, H*W*C) in NHWC order."""

    def build(self, input_shape, rng, dtype):
        return (math.prod(input_shape),)

    def forward(self, x):
        y, self.cache = ops.flatten_forward(x)
        return y

    def backward(self, dy, need_dx=True):
        return ops.flatten_backward(dy, self.cache)


class Reshape(Layer):
    """``keras.layers.Reshape(target_shape)``: reshape everything but the batch axis."""

    def __init__(self, target_shape, name=None):
        super().__init__(name)
        self.target_shape = tuple(int(d) for d in target_shape)

    def build(self, input_shape, rng, dtype):
        if math.prod(input_shape) != math.prod(self.target_shape):
            raise ValueError(
                f"{self.name} cannot reshape {tuple(input_shape)} to {self.target_shape}: "
                f"{math.prod(input_shape)} != {math.prod(self.target_shape)} values"
            )
        return self.target_shape

    def forward(self, x):
        self.cache = x.shape
        return x.reshape(x.shape[0], *self.target_shape)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self.cache)
