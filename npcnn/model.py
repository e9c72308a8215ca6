"""``Sequential``: layers applied in order; backward runs them in reverse.

The parameter order of ``params``, ``grads`` and ``get_weights()`` is Keras's
``model.get_weights()`` order for the same architecture (layer by layer,
kernel before bias), so ``np_model.set_weights(keras_model.get_weights())``
loads a Keras model and nothing else is needed.
"""

from __future__ import annotations

import numpy as np

from . import fast
from .backend import get_array_module, to_device, to_numpy
from .layers import Conv2D, Dense, MaxPool2D, Reshape, Softmax, kernels_module


class Sequential:
    """A stack of layers.

    Args:
        layers: the layers, first to last.
        input_shape: shape of one example (e.g. (28, 28, 1)); builds the
            parameters at once. Without it they are built on the first forward.
        seed: seed (or ``numpy.random.Generator``) for the initialisers.
        dtype: 'float32' (default) or 'float64'.
        kernels: 'fast' (default: every speed trick, ``npcnn.fast``) or 'ops'
            (the readable reference, ``npcnn.ops``); the numbers are the same.
    """

    def __init__(self, layers, input_shape=None, seed=None, dtype="float32", kernels="fast"):
        self.layers = list(layers)
        self.kernels = kernels
        for layer in self.layers:
            layer.kernels = kernels_module(kernels)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.input_shape = None
        self.output_shapes = []
        if input_shape is not None:
            self.build(input_shape)

    def build(self, input_shape):
        """Create every layer's parameters for examples of shape ``input_shape``."""
        self.input_shape = tuple(int(d) for d in input_shape)
        shape = self.input_shape
        self.output_shapes = []
        for layer in self.layers:
            shape = layer.build(shape, self.rng, self.dtype)
            self.output_shapes.append(shape)
        return shape

    @property
    def built(self) -> bool:
        return self.input_shape is not None

    # ---- forward and backward -------------------------------------------------
    def forward(self, x):
        """Run the layers in order on a batch ``x`` (N, *input_shape); return the output.

        ``x`` is cast to the model's dtype, as Keras casts inputs.
        """
        xp = get_array_module(x)
        x = xp.asarray(x, dtype=self.dtype)
        if not self.built:
            self.build(x.shape[1:])
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"expected a batch of shape (N, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}"
            )
        if self._fused_blocks():  # the fast tier fuses Conv2D(relu) + MaxPool2D
            return self._forward_fused(x)
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def _forward_fused(self, x):
        """``forward`` with each Conv2D(relu) + MaxPool2D pair run as one block
        (``npcnn/fast/fused.py``: conv -> pool -> bias -> ReLU, same numbers)."""
        fused = self._fused_blocks()
        for i, layer in enumerate(self.layers):
            if i in fused:
                x = fused_forward(layer, self.layers[i + 1], x)
            elif i - 1 not in fused:
                x = layer.forward(x)
        return x

    def _fused_blocks(self):
        """Indexes of the Conv2D(relu) layers followed by a MaxPool2D, on the fast tier."""
        if self.kernels != "fast":
            return set()
        pairs = zip(self.layers, self.layers[1:])
        return {
            i
            for i, (a, b) in enumerate(pairs)
            if isinstance(a, Conv2D) and a.activation == "relu" and isinstance(b, MaxPool2D)
        }

    __call__ = forward

    def backward(self, dy, need_dx=True):
        """Back-propagate dL/dy through the layers in reverse; fill ``grads``; return dL/dx.

        ``need_dx=False`` skips dL/dx of the first layer (returns None):
        training needs no gradient for the images, and TensorFlow skips it too.
        """
        if self._fused_blocks():
            return self._backward_fused(dy, need_dx)
        for i in reversed(range(len(self.layers))):
            dy = self.layers[i].backward(dy, need_dx=need_dx or i > 0)
        return dy

    def _backward_fused(self, dy, need_dx):
        fused = self._fused_blocks()
        for i in reversed(range(len(self.layers))):
            if i in fused:
                dy = fused_backward(self.layers[i], dy, need_dx=need_dx or i > 0)
            elif i - 1 not in fused:
                dy = self.layers[i].backward(dy, need_dx=need_dx or i > 0)
        return dy

    def predict(self, x, batch_size=None):
        """The forward pass over ``x`` in chunks of ``batch_size`` examples, concatenated.

        Chunks bound the memory, and on a CPU they are also faster: 128 images
        at a time keep every layer's arrays small enough to stay in cache and
        to be reused by the memory allocator, where 1000 images at once need
        fresh pages for 100 MB of conv1 output alone (1.1-1.5x faster and much
        steadier on a 2-core CPU, benchmarks/RESULTS.md). A GPU wants big launches
        instead, so None means 128 examples with NumPy arrays and 1024 with CuPy.
        """
        xp = get_array_module(x)
        if batch_size is None:
            batch_size = 128 if xp is np else 1024
        step = int(batch_size)
        if step < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        outs = [self.forward(x[i : i + step]) for i in range(0, len(x), step)]
        if not outs:
            return self.forward(x)
        return xp.concatenate(outs)

    # ---- parameters ------------------------------------------------------------
    @property
    def params(self) -> list:
        """The live parameter arrays, in Keras's ``get_weights()`` order."""
        return [p for layer in self.layers for p in layer.params]

    @property
    def grads(self) -> list:
        """Gradients from the last ``backward``, same order as ``params``."""
        return [g for layer in self.layers for g in layer.grads]

    def named_params(self) -> list[tuple[str, object]]:
        """[(\"conv1/kernel\", array), (\"conv1/bias\", array), ...]."""
        out = []
        for layer in self.layers:
            for kind, p in zip(layer.param_names, layer.params):
                out.append((f"{layer.name}/{kind}", p))
        return out

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters as host NumPy arrays, in Keras's order."""
        return [to_numpy(p).copy() for p in self.params]

    def set_weights(self, weights) -> None:
        """Copy ``weights`` (Keras's order) into the parameters, in place.

        The arrays are cast to the model's dtype; a count or shape mismatch
        raises a ``ValueError`` naming the parameter and both shapes.
        """
        if not self.built:
            raise ValueError("build the model (give input_shape) before set_weights")
        weights = list(weights)
        named = self.named_params()
        if len(weights) != len(named):
            raise ValueError(
                f"expected {len(named)} weight arrays ({', '.join(n for n, _ in named)}), "
                f"got {len(weights)}"
            )
        for (name, p), w in zip(named, weights):
            if tuple(np.shape(w)) != tuple(p.shape):
                raise ValueError(
                    f"weight for {name} has shape {tuple(np.shape(w))}, the model needs {p.shape}"
                )
        for (_, p), w in zip(named, weights):
            p[...] = to_device(np.asarray(w, dtype=self.dtype), get_array_module(p))

    def to(self, xp):
        """Move the parameters to array module ``xp`` (numpy or cupy), in place; returns self."""
        for layer in self.layers:
            layer.params = [to_device(to_numpy(p), xp) for p in layer.params]
            layer.grads = []
        return self

    def count_params(self) -> int:
        return int(sum(p.size for p in self.params))

    def summary(self, print_fn=print) -> str:
        """A Keras-like table of layers, output shapes and parameter counts."""
        lines = [f"{'Layer (type)':<28}{'Output shape':<22}{'Param #':>10}", "=" * 60]
        shapes = self.output_shapes or [None] * len(self.layers)
        for layer, shape in zip(self.layers, shapes):
            n = sum(p.size for p in layer.params)
            shape_txt = "?" if shape is None else str((None, *shape))
            lines.append(
                f"{layer.name + ' (' + type(layer).__name__ + ')':<28}{shape_txt:<22}{n:>10,}"
            )
        lines += ["=" * 60, f"Total params: {self.count_params():,} ({self.dtype})"]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text


def fused_forward(conv, pool, x):
    """Conv2D(relu) then MaxPool2D through the fast tier's fused block; the cache
    lives on the conv layer (the pool layer keeps none)."""
    kernel, bias = conv.params
    y, conv.cache = fast.conv2d_relu_maxpool2d_forward(
        x, kernel, bias, conv.strides, conv.padding, pool.pool_size, pool.strides, pool.padding
    )
    pool.cache = None
    return y


def fused_backward(conv, dy, need_dx):
    dx, dw, db = fast.conv2d_relu_maxpool2d_backward(dy, conv.cache, need_dx)
    conv.grads = [dw, db]
    return dx


def seed_cnn(seed=None, dtype="float32", kernels="fast") -> Sequential:
    """The tutorial's network, built for 28x28x1 images, outputting probabilities.

    Conv2D(32, 5x5, same, relu) -> MaxPool(2) -> Conv2D(64, 5x5, same, relu)
    -> MaxPool(2) -> Reshape(7*7*64) -> Dense(1024, relu) -> Dense(10) -> softmax

    ``kernels='ops'`` runs it on the readable ops instead of the fast tier.
    """
    return Sequential(
        [
            Conv2D(32, 5, padding="same", activation="relu", name="conv1"),
            MaxPool2D(2, strides=2, name="pool1"),
            Conv2D(64, 5, padding="same", activation="relu", name="conv2"),
            MaxPool2D(2, strides=2, name="pool2"),
            Reshape((7 * 7 * 64,), name="flatten"),
            Dense(1024, activation="relu", name="dense1"),
            Dense(10, name="dense2"),
            Softmax(name="softmax"),
        ],
        input_shape=(28, 28, 1),
        seed=seed,
        dtype=dtype,
        kernels=kernels,
    )
