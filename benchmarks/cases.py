"""The cases other than the whole network, inside a system's worker: a square
matmul (the machine's peak), one op forward or with its gradients, the Adam
update alone, a part of npcnn's training step (``breakdown.py``), a fused CUDA
kernel (``--device gpu``), the explorer's answer to one drawing."""

from __future__ import annotations

import numpy as np

from . import workloads as wl
from .systems import NotApplicable

OP_SYSTEMS = ("npcnn", "npcnn-naive", "tf-eager", "tf-function", "torch-eager", "jax-jit", "mygrad")


def other(system, spec):
    """(fn, sync) of a matmul, op, update or kernel case of ``system`` (systems.System)."""
    kind, name, n, dtype = spec["kind"], spec["name"], spec["batch"], spec["dtype"]
    if kind == "matmul" and system.name in ("numpy", "npcnn"):
        rng = np.random.default_rng(0)
        a, b = (system.xp.asarray(rng.random((n, n)).astype(dtype)) for _ in range(2))
        return (lambda: a @ b), system.sync()
    if kind in wl.KINDS and system.name in OP_SYSTEMS:
        return op(system, name, kind, wl.make_inputs(name, n, dtype))
    if kind == "update" and (system.name == "npcnn" or system.name.startswith("tf-")):
        return adam(system, dtype)
    if kind == "drawing" and system.name == "npcnn" and system.xp is np:
        return drawing(), None
    if kind == "breakdown" and system.name == "npcnn" and system.xp is np:
        from . import breakdown

        images, labels = wl.mnist_like_batch(n, dtype)
        return breakdown.case(system.net(dtype), name, images, labels)
    if kind == "call" and system.xp.__name__ == "cupy":
        from .gpu import kernel_workloads

        return kernel_workloads(system.xp, n)[name][spec["variant"]], system.sync()
    raise NotApplicable(f"{system.name} has no {kind} case")


def op(system, name, kind, arrays):
    if system.name == "npcnn":
        dev = {k: system.xp.asarray(v) for k, v in arrays.items()}
        return wl.npcnn_op(name, kind, dev), system.sync()
    if system.name == "npcnn-naive":
        if name not in wl.NAIVE_OPS:
            raise NotApplicable(f"npcnn.naive has no {name}")
        return wl.npcnn_op(name, kind, arrays, use_naive=True), None
    if system.name.startswith("tf-"):
        fn = wl.tf_op(system.framework, name, kind, arrays, system.name == "tf-function")
        return fn, system.sync()
    net = system.net("float32")
    return net.op(name, kind, arrays), net.sync


def adam(system, dtype):
    """Adam's update of all 3.27 M parameters with fixed gradients: npcnn's or Keras's."""
    rng = np.random.default_rng(0)
    params = system.net(dtype).model.params if system.name == "npcnn" else None
    if system.name == "npcnn":
        grads = [system.xp.asarray(rng.standard_normal(p.shape).astype(dtype)) for p in params]
        optimizer = system.net(dtype).optimizer
        return (lambda: optimizer.apply_gradients(zip(grads, params))), system.sync()
    tf = system.framework
    net = wl.TfNetwork(tf, dtype)
    variables = net.model.trainable_variables
    grads = [tf.constant(rng.standard_normal(v.shape).astype(dtype)) for v in variables]

    def apply():  # closes over its tensors: tf.function would trace arguments as inputs
        return net.optimizer.apply_gradients(zip(grads, variables))

    return (tf.function(apply) if system.name == "tf-function" else apply), system.sync()


def drawing():
    """The explorer's work for one drawing: /api/predict (every layer's output) and
    /api/gradients (one class's loss at every layer), each encoded as JSON."""
    import json

    import npcnn
    from npcnn.explore import Explorer

    explorer = Explorer(npcnn.seed_cnn(seed=0, kernels="ops"))
    image = np.zeros((28, 28))
    image[4:24, 12:16] = 1.0
    body = {"image": image.tolist(), "label": 3}

    def answer():
        json.dumps(explorer.answer("/api/predict", body))
        json.dumps(explorer.answer("/api/gradients", body))

    return answer
