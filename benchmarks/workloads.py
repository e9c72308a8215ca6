"""The workloads: every op of the tutorial network, the training step, Adam
and inference, for npcnn (fast tier and naive loops) and for TensorFlow (eager
and ``tf.function``), with the FLOPs each one does.

Shapes are the network's (MNIST 28x28x1, batch N)::

    conv1  (N,28,28,1)  * (5,5,1,32)   'same'  -> (N,28,28,32)
    pool1  (N,28,28,32) 2x2 stride 2           -> (N,14,14,32)
    conv2  (N,14,14,32) * (5,5,32,64)  'same'  -> (N,14,14,64)
    pool2  (N,14,14,64)                        -> (N,7,7,64)
    dense1 (N,3136) @ (3136,1024)              -> (N,1024)
    dense2 (N,1024) @ (1024,10)                -> (N,10)
    relu   on conv1's output (N,28,28,32), the largest activation
    softmax+loss: softmax of (N,10) logits, then the tutorial's
        reduce_sum(sparse_categorical_crossentropy(labels, probs))

FLOPs count a multiply-add as 2. A conv or dense forward does
2*N*(output positions)*(window size)*Cout; its backward does the same twice
(dW and dX), so forward+backward = 3x forward. Pooling, ReLU, softmax and Adam
are memory-bound: no FLOP count, no GFLOP/s.
"""

from __future__ import annotations

import numpy as np

import npcnn
from npcnn import fast, naive

CONV = {  # name: (H, W, Cin, Cout), 5x5 kernels, 'same'
    "conv1": (28, 28, 1, 32),
    "conv2": (14, 14, 32, 64),
}
POOL = {"pool1": (28, 28, 32), "pool2": (14, 14, 64)}  # name: (H, W, C), 2x2 stride 2
DENSE = {"dense1": (3136, 1024), "dense2": (1024, 10)}  # name: (Din, Dout)
RELU_SHAPE = (28, 28, 32)
NUM_CLASSES = 10
OP_NAMES = ["conv1", "pool1", "conv2", "pool2", "dense1", "dense2", "relu", "softmax+loss"]
NAIVE_OPS = ["conv1", "pool1", "conv2", "pool2"]  # npcnn.naive has loop versions of these
KINDS = ["forward", "forward+backward"]


def conv_flops(name, n):
    h, w, cin, cout = CONV[name]
    return 2.0 * n * h * w * 5 * 5 * cin * cout


def dense_flops(name, n):
    din, dout = DENSE[name]
    return 2.0 * n * din * dout


def op_flops(name, kind, n):
    """FLOPs of one call of an op; None for memory-bound ops."""
    if name in CONV:
        forward = conv_flops(name, n)
    elif name in DENSE:
        forward = dense_flops(name, n)
    else:
        return None
    return forward if kind == "forward" else 3 * forward


def forward_flops(n):
    """The network's forward pass: 27.8 MFLOP per image."""
    return sum(conv_flops(c, n) for c in CONV) + sum(dense_flops(d, n) for d in DENSE)


def train_flops(n):
    """One training step: forward, then dW and dX of every layer, except conv1's dX
    (the gradient of the images, which no system computes): 82.1 MFLOP per image."""
    return 3 * forward_flops(n) - conv_flops("conv1", n)


# ---------------------------------------------------------------- inputs
def make_inputs(name, n, dtype, seed=0):
    """Host (NumPy) arrays for one op: the input, the parameters, the upstream gradient."""
    rng = np.random.default_rng(seed)

    def rand(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    if name in CONV:
        h, w, cin, cout = CONV[name]
        limit = np.sqrt(6.0 / (25 * cin + 25 * cout))
        return {
            "x": rand(n, h, w, cin),
            "w": rng.uniform(-limit, limit, (5, 5, cin, cout)).astype(dtype),
            "b": rand(cout, scale=0.1),
            "dy": rand(n, h, w, cout),
        }
    if name in POOL:
        h, w, c = POOL[name]
        return {"x": rand(n, h, w, c), "dy": rand(n, h // 2, w // 2, c)}
    if name in DENSE:
        din, dout = DENSE[name]
        limit = np.sqrt(6.0 / (din + dout))
        return {
            "x": rand(n, din),
            "w": rng.uniform(-limit, limit, (din, dout)).astype(dtype),
            "b": rand(dout, scale=0.1),
            "dy": rand(n, dout),
        }
    if name == "relu":
        return {"x": rand(n, *RELU_SHAPE), "dy": rand(n, *RELU_SHAPE)}
    if name == "softmax+loss":
        return {"x": rand(n, NUM_CLASSES), "labels": rng.integers(0, NUM_CLASSES, n)}
    raise ValueError(f"unknown op {name!r}")


def mnist_like_batch(n, dtype, seed=0):
    """Random images in [0, 1) and labels: the speed does not depend on the pixels."""
    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28, 1)).astype(dtype), rng.integers(0, NUM_CLASSES, n)


# ---------------------------------------------------------------- npcnn
def npcnn_op(name, kind, arrays, use_naive=False):
    """A zero-argument function running npcnn's op, forward or forward then backward:
    the fast tier's (``npcnn.fast``, what the layers run), or the naive loops."""
    forward, backward = _op_pair(name, naive if use_naive else fast, arrays)
    if kind == "forward":
        return forward

    def forward_backward():
        _, cache = forward()
        return backward(cache)

    return forward_backward


def _op_pair(name, impl, a):
    """(forward(), backward(cache)) of op ``name`` on the arrays ``a``."""
    if name in CONV:
        return (lambda: impl.conv2d_forward(a["x"], a["w"], a["b"], 1, "same"),
                lambda cache: impl.conv2d_backward(a["dy"], cache))  # fmt: skip
    if name in POOL:
        return (lambda: impl.maxpool2d_forward(a["x"], 2, 2, "valid"),
                lambda cache: impl.maxpool2d_backward(a["dy"], cache))  # fmt: skip
    if name in DENSE:
        return (lambda: fast.dense_forward(a["x"], a["w"], a["b"]),
                lambda cache: fast.dense_backward(a["dy"], cache))  # fmt: skip
    if name == "relu":
        return (lambda: fast.relu_forward(a["x"]),
                lambda cache: fast.relu_backward(a["dy"], cache))  # fmt: skip
    if name == "softmax+loss":
        return _softmax_loss_pair(a)
    raise ValueError(f"unknown op {name!r}")


def _softmax_loss_pair(a):
    """Softmax then the summed cross-entropy, and back to the logits' gradient."""
    one = a["x"].dtype.type(1)

    def forward():
        p, softmax_cache = fast.softmax_forward(a["x"])
        loss, loss_cache = fast.sparse_categorical_crossentropy_forward(p, a["labels"])
        return loss, (softmax_cache, loss_cache)

    def backward(cache):
        softmax_cache, loss_cache = cache
        dp = fast.sparse_categorical_crossentropy_backward(one, loss_cache)
        return fast.softmax_backward(dp, softmax_cache)

    return forward, backward


class NpcnnNetwork:
    """The seed network with Adam through npcnn's public API (``seed_cnn``, ``Adam``,
    ``npcnn.train.train_step``, ``Sequential.predict``), on NumPy or CuPy arrays;
    ``kernels``: 'fast' (the fast tier) or 'ops' (the readable ops)."""

    def __init__(self, dtype, xp=np, seed=0, kernels="fast"):
        from npcnn.train import train_step

        self.model = npcnn.seed_cnn(seed=seed, dtype=dtype, kernels=kernels)
        if xp is not np:
            self.model.to(xp)
        self.optimizer = npcnn.Adam(1e-3)
        self._train_step = train_step

    def train_step(self, images, labels):
        """Forward, the tutorial's loss (the sum of Keras's cross-entropy on the
        probabilities), backward without the images' gradient, Adam."""
        return self._train_step(self.model, self.optimizer, images, labels)

    def predict(self, images):
        """``Sequential.predict``: the forward pass in the model's default chunks
        (``npcnn.model.INFERENCE_CHUNK`` images on the CPU, 1024 on a GPU)."""
        return self.model.predict(images)


# ---------------------------------------------------------------- TensorFlow
def tf_op(tf, name, kind, arrays, compiled):
    """A zero-argument function running the op in TF: ``tf.nn`` ops, and for
    forward+backward a GradientTape giving the gradients of the input and the
    parameters (the same outputs npcnn's backward returns). ``compiled`` wraps it
    in ``tf.function``. Must be called inside the wanted ``tf.device`` scope."""
    import keras

    x = tf.constant(arrays["x"])
    params = {}
    if "w" in arrays:
        params = {"w": tf.Variable(arrays["w"]), "b": tf.Variable(arrays["b"])}
    dy = tf.constant(arrays["dy"]) if "dy" in arrays else None
    labels = tf.constant(arrays["labels"]) if "labels" in arrays else None

    def forward(x):
        if name in CONV:
            return tf.nn.bias_add(tf.nn.conv2d(x, params["w"], 1, "SAME"), params["b"])
        if name in POOL:
            return tf.nn.max_pool2d(x, 2, 2, "VALID")
        if name in DENSE:
            return tf.matmul(x, params["w"]) + params["b"]
        if name == "relu":
            return tf.nn.relu(x)
        probs = tf.nn.softmax(x)  # softmax+loss
        return tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(labels, probs))

    if kind == "forward":

        def run():
            return forward(x)

    else:
        sources = [x, *params.values()]

        def run():
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = forward(x)
            return tape.gradient(y, sources, output_gradients=dy)

    return tf.function(run) if compiled else run


class TfNetwork:
    """The seed network in Keras with keras.optimizers.Adam: the tutorial's step."""

    def __init__(self, tf, dtype, seed=0):
        import keras

        import tfcnn

        self.tf = tf
        self.model = tfcnn.SeedCNN(seed=seed, dtype=dtype)
        self.optimizer = keras.optimizers.Adam(1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
        self.train_step_function = tf.function(self.train_step)
        self.predict_function = tf.function(self.predict)

    def train_step(self, images, labels):
        """GradientTape, reduce_sum(sparse_categorical_crossentropy(labels, probs)), Adam.
        (Under tf.function Keras computes this loss from the softmax's logits.)"""
        import keras

        tf = self.tf
        with tf.GradientTape() as tape:
            probs = self.model(images)
            loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(labels, probs))
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        return loss

    def predict(self, images):
        return self.model(images, training=False)
