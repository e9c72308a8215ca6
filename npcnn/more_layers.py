"""The layers real CNNs add to the tutorial's: pooling by averages, more activations,
batch normalization and dropout -- each a thin wrapper over its op, as in ``layers.py``.

Two of them behave differently in training and at inference, as Keras's do:
``BatchNormalization`` normalizes with the batch's statistics in training (and
moves its averages toward them) and with the moving averages at inference;
``Dropout`` zeroes values in training and passes them through at inference.
``Sequential.forward(x, training=...)`` sets the mode (``Layer.training``).
In training both need the whole batch at once (``needs_whole_batch``): the fast
tier then runs the batch as one part (``npcnn/fast/parallel.py``).
"""

from __future__ import annotations

import numpy as np

from .layers import Layer, _Pool2D, _WithActivation, register_layer
from .ops.batchnorm import moving_average
from .validation import check_bool


def _rate(value, name, low=0.0, high=1.0):
    """``value`` as a float in [low, high); ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number in [{low}, {high}), got {value!r}")
    if not low <= float(value) < high:
        raise ValueError(f"{name} must be a number in [{low}, {high}), got {value!r}")
    return float(value)


@register_layer
class AvgPool2D(_Pool2D):
    """Average pooling, ``keras.layers.AveragePooling2D``: the mean of each window's
    cells inside the image ('same' never averages the padding)."""

    keras_class_name = "AveragePooling2D"
    op = "avgpool2d"


AveragePooling2D = AvgPool2D  # Keras's other name for it


@register_layer
class GlobalAveragePooling2D(Layer):
    """``keras.layers.GlobalAveragePooling2D``: the mean over H and W, (N, H, W, C) -> (N, C)."""

    def build(self, input_shape, rng, dtype):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name} expects inputs (H, W, C), got {tuple(input_shape)}")
        return (input_shape[-1],)

    def forward(self, x):
        y, self.cache = self.kernels.global_avgpool2d_forward(x)
        return y

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        return self.kernels.global_avgpool2d_backward(dy, self.cache)


@register_layer
class LeakyReLU(Layer):
    """``keras.layers.LeakyReLU``: x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope=0.3, name=None):
        super().__init__(name)
        self.negative_slope = _rate(negative_slope, "negative_slope", 0.0, float("inf"))

    def get_config(self) -> dict:
        return {**super().get_config(), "negative_slope": self.negative_slope}

    def forward(self, x):
        y, self.cache = self.kernels.leaky_relu_forward(x, self.negative_slope)
        return y

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        return self.kernels.leaky_relu_backward(dy, self.cache)


@register_layer
class Activation(_WithActivation):
    """``keras.layers.Activation(name_of_activation)``: 'relu', 'sigmoid', 'tanh',
    'leaky_relu' (slope 0.2, as ``keras.activations.leaky_relu``), 'softmax' or 'linear'."""

    def __init__(self, activation, name=None):
        super().__init__(activation, name)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": self.activation or "linear"}

    def forward(self, x):
        return self.activate(x)

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        return self.activation_backward(dy)


@register_layer
class BatchNormalization(Layer):
    """``keras.layers.BatchNormalization`` over the last axis (channels of NHWC).

    Weights, in Keras's order: gamma (C,) if ``scale``, beta (C,) if ``center``
    (trainable), then moving_mean and moving_variance (C,) (``state``: saved,
    never trained). Training: ``npcnn.ops.batchnorm_forward`` with the batch's
    statistics, then ``moving = moving * momentum + batch * (1 - momentum)``;
    inference: ``batchnorm_inference`` with the moving ones.
    """

    state_names = ("moving_mean", "moving_variance")
    needs_whole_batch = True  # the statistics are over the whole batch, as Keras's

    def __init__(
        self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, name=None
    ):  # fmt: skip
        super().__init__(name)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"axis must be an int (the channels' axis), got {axis!r}")
        self.axis = int(axis)
        self.momentum = _rate(momentum, "momentum")
        self.epsilon = _rate(epsilon, "epsilon", 0.0, float("inf"))
        self.center = check_bool(center, "center")
        self.scale = check_bool(scale, "scale")
        self.param_names = ("gamma",) * self.scale + ("beta",) * self.center

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }

    def build(self, input_shape, rng, dtype):
        if self.axis not in (-1, len(input_shape)):  # the batch axis is 0
            raise ValueError(
                f"{self.name} normalizes the last axis only (axis=-1 or {len(input_shape)}), "
                f"got axis={self.axis}"
            )
        c = input_shape[-1]
        ones, zeros = np.ones(c, dtype=dtype), np.zeros(c, dtype=dtype)
        self.params = [ones.copy()] * self.scale + [zeros.copy()] * self.center
        self.state = [zeros.copy(), ones.copy()]
        return tuple(input_shape)

    def gamma_beta(self):
        """(gamma, beta) for the op: ones and zeros where ``scale``/``center`` is False."""
        moving_mean = self.state[0]
        gamma = self.params[0] if self.scale else moving_mean * 0 + 1
        beta = self.params[-1] if self.center else moving_mean * 0
        return gamma, beta

    def forward(self, x):
        gamma, beta = self.gamma_beta()
        k, (moving_mean, moving_var) = self.kernels, self.state
        if not self.training:
            y, self.cache = k.batchnorm_inference(
                x, gamma, beta, moving_mean, moving_var, self.epsilon
            )
            return y
        y, self.cache, (mean, var) = k.batchnorm_forward(x, gamma, beta, self.epsilon)
        moving_mean[...] = moving_average(moving_mean, mean, self.momentum)  # in place:
        moving_var[...] = moving_average(moving_var, var, self.momentum)  # replicas share them
        return y

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        dx, dgamma, dbeta = self.kernels.batchnorm_backward(dy, self.cache)
        self.grads = [dgamma] * self.scale + [dbeta] * self.center
        return dx


@register_layer
class Dropout(Layer):
    """``keras.layers.Dropout(rate, seed)``: in training each value is zeroed with
    probability ``rate`` and the rest scaled by 1 / (1 - rate); at inference x
    passes unchanged. The masks come from the layer's generator, seeded by
    ``seed``: the same seed, the same masks, on either tier."""

    needs_whole_batch = True  # one mask for the batch, drawn in one place

    def __init__(self, rate, seed=None, name=None):
        super().__init__(name)
        self.rate = _rate(rate, "rate")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be None or an int >= 0, got {seed!r}")
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}

    def forward(self, x):
        if not self.training or self.rate == 0:
            self.cache = None
            return x
        y, self.cache = self.kernels.dropout_forward(x, self.rate, self.rng)
        return y

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        if self.cache is None:  # the forward passed x through
            return dy
        return self.kernels.dropout_backward(dy, self.cache)


@register_layer
class Rescaling(Layer):
    """``keras.layers.Rescaling(scale, offset)``: y = x * scale + offset (e.g. 1/255 for
    pixels). Keras casts both numbers from float32 tensors: so does this layer."""

    def __init__(self, scale, offset=0.0, name=None):
        super().__init__(name)
        for what, value in (("scale", scale), ("offset", offset)):
            if not np.isfinite(_rate(value, what, -np.inf, np.inf)):  # a number, not -inf
                raise ValueError(f"{what} must be a finite number, got {value!r}")
        self.scale, self.offset = float(scale), float(offset)

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}

    def _number(self, value, x):
        return x.dtype.type(np.float32(value))

    def forward(self, x):
        self.cache = self._number(self.scale, x)
        return x * self.cache + self._number(self.offset, x)

    def backward(self, dy, need_dx=True):
        check_bool(need_dx, "need_dx")
        return dy * self.cache.astype(dy.dtype)


GENERATOR_PREFIX = "generator/"  # a Dropout's generator state in an optimizer-state dict
_WORD = (1 << 64) - 1


def generator_states(layers) -> dict:
    """Each Dropout's random generator, as ``{"generator/<name>": uint64 array}``: a
    checkpoint keeps them beside the optimizer's state, so a resumed run draws the
    masks the uninterrupted run would have drawn (Keras keeps them out of the weights too)."""
    out = {}
    for layer in layers:
        if isinstance(layer, Dropout):
            s = layer.rng.bit_generator.state  # PCG64: two 128-bit numbers and a spare word
            words = [s["state"]["state"], s["state"]["inc"]]
            flat = [w >> 64 for w in words] + [w & _WORD for w in words]
            out[GENERATOR_PREFIX + layer.name] = np.array(
                [*flat, s["has_uint32"], s["uinteger"]], dtype=np.uint64
            )
    return out


def set_generator_states(layers, state) -> dict:
    """Restore :func:`generator_states`'s entries of ``state`` (all checked first; none
    at all leaves the generators as they are); returns the other entries."""
    dropouts = {
        GENERATOR_PREFIX + layer.name: layer for layer in layers if isinstance(layer, Dropout)
    }
    ours = {str(k): np.asarray(v) for k, v in state.items() if str(k).startswith(GENERATOR_PREFIX)}
    if ours and set(ours) != set(dropouts):
        raise ValueError(
            f"the saved generator states ({', '.join(sorted(ours))}) are not this model's "
            f"Dropout layers' ({', '.join(sorted(dropouts)) or 'none'})"
        )
    for key, a in ours.items():
        if a.shape != (6,) or a.dtype.kind not in "iu":
            raise ValueError(f"{key} must be 6 unsigned words, got {a.shape} {a.dtype}")
    for key, a in ours.items():
        w = [int(v) for v in a]
        dropouts[key].rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": (w[0] << 64) | w[2], "inc": (w[1] << 64) | w[3]},
            "has_uint32": w[4],
            "uinteger": w[5],
        }
    return {k: v for k, v in state.items() if not str(k).startswith(GENERATOR_PREFIX)}
