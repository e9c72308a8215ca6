"""``Sequential``: layers applied in order; backward runs them in reverse.

The parameter order of ``params``, ``grads`` and ``get_weights()`` is Keras's
``model.get_weights()`` order for the same architecture (layer by layer,
kernel before bias), so ``np_model.set_weights(keras_model.get_weights())``
loads a Keras model and nothing else is needed.
"""

from __future__ import annotations

import numpy as np

from .backend import get_array_module, to_device, to_numpy
from .checkpoint import save_checkpoint
from .fast.blocks import ConvReluPool
from .fast.parallel import DataParallel
from .layers import (
    LAYER_CLASSES,
    Conv2D,
    Dense,
    Layer,
    MaxPool2D,
    Reshape,
    Softmax,
    kernels_module,
)
from .names import number_names
from .validation import check_bool, positive_int

INFERENCE_CHUNK = 16  # images per chunk in predict, on the CPU (speed only: cache-sized)


def as_batch(x, dtype, name="x"):
    """``x`` as an array of ``dtype`` (NumPy or CuPy, as given).

    Accepted: a NumPy/CuPy array or a (nested) list of numbers, of a real
    numeric dtype (bool, int, uint or float; ints are cast as Keras casts
    them). A string, None, a ragged list, objects or complex numbers raise
    ``ValueError`` naming ``name``.
    """
    xp = get_array_module(x)
    if xp is np:
        if isinstance(x, (str, bytes)) or x is None:
            raise ValueError(f"{name} must be a numeric array, got {type(x).__name__}")
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{name} must be a numeric array ({exc})") from None
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a numeric array, got dtype {x.dtype}")
    if x.ndim < 1:
        raise ValueError(f"{name} must be a batch (N, ...), got a scalar")
    return x.astype(dtype, copy=False)


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
        if isinstance(layers, (str, bytes, Layer)) or not hasattr(layers, "__iter__"):
            raise ValueError(f"layers must be a list of npcnn layers, got {layers!r}")
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ValueError(f"layers[{i}] is not an npcnn layer: {layer!r}")
            if any(layer is other for other in layers[:i]):
                raise ValueError(
                    f"layers[{i}] ({layer.name}) is listed twice; a layer belongs to one place "
                    "in a model: create another one"
                )
        module = kernels_module(kernels)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        if not (seed is None or isinstance(seed, np.random.Generator)):
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError(f"seed must be None, an int >= 0 or a Generator, got {seed!r}")
        number_names(layers)  # conv2d, conv2d_1, ... as Keras; refuses a repeated name
        self.layers = layers
        self.kernels = kernels
        for layer in self.layers:
            layer.kernels = module
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.input_shape = None
        self.output_shapes = []
        self.training = False  # the mode of the last pass (``forward(x, training=...)``)
        # the fast tier runs the layers as blocks, on parts of the batch on every core
        self.parallel = self._data_parallel() if kernels == "fast" else None
        if input_shape is not None:
            self.build(input_shape)

    def build(self, input_shape):
        """Create every layer's parameters for examples of shape ``input_shape``.

        Atomic: if any layer refuses the shape (``ValueError`` naming it), every
        layer, the model and its random generator are left as they were.
        """
        if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
            raise ValueError(f"input_shape must be a tuple of positive ints, got {input_shape!r}")
        input_shape = tuple(positive_int(d, "input_shape") for d in input_shape)
        saved = [(layer.params, layer.grads, layer.cache) for layer in self.layers]
        rng_state = self.rng.bit_generator.state
        shape, output_shapes = input_shape, []
        try:
            for layer in self.layers:
                shape = tuple(layer.build(shape, self.rng, self.dtype))
                output_shapes.append(shape)
        except BaseException:
            for layer, (params, grads, cache) in zip(self.layers, saved):
                layer.params, layer.grads, layer.cache = params, grads, cache
            self.rng.bit_generator.state = rng_state
            raise
        self.input_shape, self.output_shapes = input_shape, output_shapes
        return shape

    @property
    def built(self) -> bool:
        return self.input_shape is not None

    # ---- forward and backward -------------------------------------------------
    def forward(self, x, training=False):
        """Run the layers in order on a batch ``x`` (N, *input_shape); return the output.

        ``x`` is cast to the model's dtype, as Keras casts inputs; see
        :func:`as_batch` for what it may be (an array or a list of numbers).
        ``training`` is Keras's: True normalizes with the batch's statistics
        (and moves BatchNormalization's averages) and drops values (Dropout);
        False (the default, as ``keras_model(x)``) uses the moving statistics and
        drops nothing. ``fit`` trains with True; ``predict`` runs with False.
        """
        training = check_bool(training, "training")  # before anything changes
        x = self._batch(x)
        self.set_training(training)
        if self.parallel is not None:  # the fast tier: npcnn/fast/parallel.py
            return self.parallel.forward(x, self.training)
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def set_training(self, training) -> None:
        """Tell every layer the mode of the next pass (``Layer.training``)."""
        self.training = check_bool(training, "training")
        for layer in self.layers:
            layer.training = self.training

    def _batch(self, x):
        """``x`` as a batch of the model's dtype and input shape (built on first use)."""
        x = as_batch(x, self.dtype)
        if not self.built:
            self.build(x.shape[1:])
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"expected a batch of shape (N, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}"
            )
        return x

    def backward(self, dy, need_dx=True):
        """Back-propagate dL/dy through the layers in reverse; fill ``grads``; return dL/dx.

        ``need_dx=False`` skips dL/dx of the first layer (returns None):
        training needs no gradient for the images, and TensorFlow skips it too.
        """
        need_dx = check_bool(need_dx, "need_dx")
        if self.parallel is not None:
            return self.parallel.backward(dy, need_dx)
        for i in reversed(range(len(self.layers))):
            dy = self.layers[i].backward(dy, need_dx=need_dx or i > 0)
        return dy

    def predict(self, x, batch_size=None):
        """The forward pass over ``x`` in chunks of ``batch_size`` examples, concatenated.

        Chunks bound the memory, and on a CPU they are also faster: a few dozen
        images at a time keep every layer's arrays small enough to stay in cache
        and to be reused by the memory allocator, where 1000 images at once need
        fresh pages for 100 MB of conv1 output alone. The fast tier shares the
        chunks out over the threads, keeps nothing for a backward pass, and on
        the CPU runs the layers that see images on at most ``INFERENCE_CHUNK``
        images at once, the dense layers on the flat features of groups of 256
        (``npcnn/fast/parallel.py``; predict on 10,000 images peaked at 20 MB
        against TensorFlow's 66 MB). A GPU
        wants big launches instead, so None means ``INFERENCE_CHUNK`` examples
        with NumPy arrays and 1024 with CuPy.
        """
        x = self._batch(x)
        xp = get_array_module(x)
        if batch_size is None:
            batch_size = INFERENCE_CHUNK if xp is np else 1024
        step = positive_int(batch_size, "batch_size")
        self.set_training(False)
        if self.parallel is not None:  # chunks of at most INFERENCE_CHUNK: cache-sized
            return self.parallel.predict(x, min(step, INFERENCE_CHUNK) if xp is np else step)
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

    def named_weights(self) -> list[tuple[str, object]]:
        """Every layer's parameters then its state (BatchNormalization's moving
        statistics), as Keras's ``model.weights``: what files hold."""
        out = []
        for layer in self.layers:
            for kind, p in zip(layer.weight_names, [*layer.params, *layer.state]):
                out.append((f"{layer.name}/{kind}", p))
        return out

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights (parameters and state) as host NumPy arrays, in
        Keras's ``get_weights()`` order."""
        return [to_numpy(p).copy() for _, p in self.named_weights()]

    def set_weights(self, weights) -> None:
        """Copy ``weights`` (Keras's order) into the parameters, in place.

        The arrays are cast to the model's dtype; a count or shape mismatch, a
        weight that is not numeric, or a parameter made read-only raises a
        ``ValueError`` naming the parameter.
        Atomic: every weight is checked and converted before any is copied, so
        on an error the model is unchanged.
        """
        if not self.built:
            raise ValueError("build the model (give input_shape) before set_weights")
        if isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__"):
            raise ValueError(f"weights must be a list of arrays, got {type(weights).__name__}")
        weights = list(weights)
        named = self.named_weights()
        if len(weights) != len(named):
            raise ValueError(
                f"expected {len(named)} weight arrays ({', '.join(n for n, _ in named)}), "
                f"got {len(weights)}"
            )
        ready = []
        for (name, p), w in zip(named, weights):
            if not getattr(p.flags, "writeable", True):  # CuPy arrays are always writeable
                raise ValueError(f"parameter {name} is read-only (flags.writeable is False)")
            try:
                w = np.asarray(to_numpy(w))
            except (ValueError, TypeError):
                raise ValueError(f"weight for {name} is not a numeric array") from None
            if w.dtype.kind not in "biuf":
                raise ValueError(f"weight for {name} must be numeric, got dtype {w.dtype}")
            if w.shape != tuple(p.shape):
                raise ValueError(
                    f"weight for {name} has shape {w.shape}, the model needs {tuple(p.shape)}"
                )
            ready.append(to_device(w.astype(self.dtype), get_array_module(p)))
        for (_, p), w in zip(named, ready):  # nothing can fail from here on
            p[...] = w

    def to(self, xp):
        """Move the parameters to array module ``xp`` (numpy or cupy), in place; returns self."""
        for layer in self.layers:
            layer.params = [to_device(to_numpy(p), xp) for p in layer.params]
            layer.state = [to_device(to_numpy(p), xp) for p in layer.state]
            layer.grads = []
        if self.parallel is not None:  # its buffers are on the old device
            self.parallel = self._data_parallel()
        return self

    def _data_parallel(self):
        """The fast tier's runner of the blocks on parts of the batch (``parallel.py``)."""
        return DataParallel(self.layers, fast_blocks, rebuildable=rebuildable_in_a_worker)

    # ---- the model as data ------------------------------------------------------
    def get_config(self) -> dict:
        """The architecture as plain data (Keras's ``get_config`` style), JSON-ready:
        ``{"input_shape": [...], "dtype": ..., "layers": [{"class_name", "config"}]}``."""
        return {
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "dtype": self.dtype.name,
            "layers": [
                {"class_name": type(layer).__name__, "config": layer.get_config()}
                for layer in self.layers
            ],
        }

    def save(self, path) -> None:
        """Write the whole model -- architecture and weights -- to one ``.npz`` file.

        ``npcnn.load_model(path)`` reads it back with NumPy alone (no pickle: the
        architecture is JSON, the weights plain arrays). Written atomically, as
        checkpoints are: a crash never leaves half a file under ``path``.
        """
        if not self.built:
            raise ValueError("build the model (give input_shape, or run it once) before save")
        weights = [(name, to_numpy(p)) for name, p in self.named_weights()]
        save_checkpoint(path, weights, meta={"kind": "model"}, architecture=self.get_config())

    def count_params(self) -> int:
        return int(sum(p.size for p in self.params))

    def summary(self, print_fn=print) -> str:
        """A Keras-like table of layers, output shapes and parameter counts."""
        lines = [f"{'Layer (type)':<28}{'Output shape':<22}{'Param #':>10}", "=" * 60]
        shapes = self.output_shapes or [None] * len(self.layers)
        for layer, shape in zip(self.layers, shapes):
            n = sum(p.size for p in [*layer.params, *layer.state])
            shape_txt = "?" if shape is None else str((None, *shape))
            lines.append(
                f"{layer.name + ' (' + type(layer).__name__ + ')':<28}{shape_txt:<22}{n:>10,}"
            )
        lines += ["=" * 60, f"Total params: {self.count_params():,} ({self.dtype})"]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text


def fast_blocks(layers) -> list:
    """The blocks the fast tier runs ``layers`` as, chosen from their classes and
    arguments: each ``Conv2D(activation="relu")`` followed by a ``MaxPool2D`` as one
    :class:`~npcnn.fast.blocks.ConvReluPool` (conv -> pool -> bias -> ReLU, the
    same numbers), every other layer as itself."""
    blocks, i = [], 0
    while i < len(layers):
        layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        fusable = type(layer) is Conv2D and layer.activation == "relu" and layer.use_bias
        if fusable and type(after) is MaxPool2D:
            blocks.append(ConvReluPool(layer, after))
            i += 2
        else:
            blocks.append(layer)
            i += 1
    return blocks


def rebuildable_in_a_worker(layer) -> bool:
    """Whether a worker process (``npcnn/worker.py``) can rebuild ``layer`` from its
    ``get_config``: one of npcnn's own layer classes, without state."""
    return LAYER_CLASSES.get(type(layer).__name__) is type(layer) and not layer.state


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
