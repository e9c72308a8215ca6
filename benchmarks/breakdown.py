"""Where the training step's time goes: every layer's forward and backward, the
loss and Adam, for npcnn (and another checkout of it), beside TensorFlow's ops
for the same parts of the network.

npcnn's step is timed through its public API, whatever layers the model holds:
the forward of each element of ``model.layers`` in order, the tutorial's loss
(``npcnn.ops``), the backward of each layer in reverse (``need_dx=False`` for
the first, as ``train_step`` does), then ``Adam.apply_gradients``. The real
``npcnn.train.train_step`` runs in the same rounds as "step"; "other" is its
time minus the parts' sum (Python glue; negative when ``Sequential`` itself
runs the layers differently from one by one). The loss's forward and backward
count in the last block's backward row, where TF's part runs its forward again.

TensorFlow's parts are the ops its own step runs (``tf.nn`` forward ops and
``MaxPoolGrad``, ``ReluGrad``, ``Conv2DBackpropFilter``/``Input``,
``BiasAddGrad``, ``MatMul`` for backward; Keras's Adam), each part a
``tf.function`` timed alone, grouped as the network's blocks (:data:`GROUPS`);
its "step" is the compiled training step.
"""

from __future__ import annotations

import time

import numpy as np

from .checkouts import submodule
from .workloads import mnist_like_batch

GROUPS = ["conv1 + pool1", "conv2 + pool2", "dense1", "dense2 + softmax + loss"]
LAYER_GROUP = {
    "conv1": GROUPS[0], "pool1": GROUPS[0], "conv2": GROUPS[1], "pool2": GROUPS[1],
    "flatten": GROUPS[2], "dense1": GROUPS[2], "dense2": GROUPS[3], "softmax": GROUPS[3],
    "loss": GROUPS[3],
}  # fmt: skip


def group_of(segment: str) -> str:
    """The block a segment ("conv2 forward", "adam update") belongs to: the group of
    the first layer name it contains, so a fused block layer named after its conv
    lands in that conv's group; "Adam update" and unknown names stay themselves."""
    name, phase = segment.rsplit(" ", 1)
    phase = "backward" if phase == "forward+backward" else phase  # the loss: with backward
    for layer, group in LAYER_GROUP.items():
        if layer in name:
            return f"{group} {phase}"
    return segment


class LayerTimer:
    """``package``'s seed network, stepped layer by layer with a stopwatch around
    each part; ``timer()`` returns {segment: seconds}."""

    def __init__(self, package, n=50, dtype="float32"):
        self.model = package.seed_cnn(seed=0, dtype=dtype)
        self.optimizer = package.Adam(1e-3)
        self.ops = submodule(package, "ops")
        self.images, self.labels = mnist_like_batch(n, dtype)
        self.one = np.dtype(dtype).type(1)

    def __call__(self):
        times = {}
        clock = time.perf_counter
        x = self.images
        for layer in self.model.layers:
            start = clock()
            x = layer.forward(x)
            times[f"{layer.name} forward"] = clock() - start
        start = clock()
        _, cache = self.ops.sparse_categorical_crossentropy_forward(x, self.labels, reduction="sum")
        dy = self.ops.sparse_categorical_crossentropy_backward(self.one, cache)
        times["loss forward+backward"] = clock() - start
        layers = self.model.layers
        for i in reversed(range(len(layers))):
            start = clock()
            dy = layers[i].backward(dy, need_dx=i > 0)
            times[f"{layers[i].name} backward"] = clock() - start
        start = clock()
        self.optimizer.apply_gradients(zip(self.model.grads, self.model.params))
        times["Adam update"] = clock() - start
        return times


def tf_segments(tf, n=50):
    """{segment: compiled function} running TF's ops for each block, and "step"."""
    import keras

    from .workloads import TfNetwork

    rng = np.random.default_rng(0)
    images, labels = (tf.constant(a) for a in mnist_like_batch(n, "float32"))
    net = TfNetwork(tf, "float32")
    w1, b1, w2, b2, w3, b3, w4, b4 = net.model.trainable_variables

    def conv_block(x, w, b):
        r = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "SAME"), b))
        return r, tf.nn.max_pool2d(r, 2, 2, "VALID")

    def conv_block_grad(x, w, r, p, dp, need_dx):
        g = tf.raw_ops.MaxPoolGrad(
            orig_input=r, orig_output=p, grad=dp, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
            padding="VALID",
        )  # fmt: skip
        g = tf.raw_ops.ReluGrad(gradients=g, features=r)
        grads = [
            tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=tf.shape(w), out_backprop=g, strides=[1, 1, 1, 1],
                padding="SAME",
            ),
            tf.raw_ops.BiasAddGrad(out_backprop=g),
        ]  # fmt: skip
        if need_dx:
            grads.append(tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x), filter=w, out_backprop=g, strides=[1, 1, 1, 1],
                padding="SAME",
            ))  # fmt: skip
        return grads

    def head(h):
        probs = tf.nn.softmax(tf.matmul(h, w4) + b4)
        return tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(labels, probs))

    def head_grad(h):
        with tf.GradientTape() as tape:
            tape.watch(h)
            loss = head(h)
        return tape.gradient(loss, [h, w4, b4])

    r1, p1 = conv_block(images, w1, b1)
    r2, p2 = conv_block(p1, w2, b2)
    flat = tf.reshape(p2, (n, -1))
    h = tf.nn.relu(tf.matmul(flat, w3) + b3)
    dp1, dp2, dh = (
        tf.constant(rng.standard_normal(t.shape).astype(np.float32)) for t in (p1, p2, h)
    )

    def dense1_grad():
        g = tf.raw_ops.ReluGrad(gradients=dh, features=h)
        dx = tf.reshape(tf.matmul(g, w3, transpose_b=True), p2.shape)
        return dx, tf.matmul(flat, g, transpose_a=True), tf.reduce_sum(g, 0)

    variables = net.model.trainable_variables
    grads = [tf.constant(rng.standard_normal(v.shape).astype(np.float32) * 1e-3) for v in variables]
    functions = {
        f"{GROUPS[0]} forward": lambda: conv_block(images, w1, b1)[1],
        f"{GROUPS[1]} forward": lambda: conv_block(p1, w2, b2)[1],
        f"{GROUPS[2]} forward": lambda: tf.nn.relu(tf.matmul(tf.reshape(p2, (n, -1)), w3) + b3),
        f"{GROUPS[3]} forward": lambda: head(h),
        f"{GROUPS[3]} backward": lambda: head_grad(h),
        f"{GROUPS[2]} backward": dense1_grad,
        f"{GROUPS[1]} backward": lambda: conv_block_grad(p1, w2, r2, p2, dp2, True),
        f"{GROUPS[0]} backward": lambda: conv_block_grad(images, w1, r1, p1, dp1, False),
        "Adam update": lambda: net.optimizer.apply_gradients(zip(grads, variables)),
    }
    compiled = {s: tf.function(f) for s, f in functions.items()}
    compiled["step"] = lambda: net.train_step_function(images, labels)
    return compiled
