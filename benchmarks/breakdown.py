"""Where the training step's time goes, op by op: npcnn before and after, and TF.

    python -m benchmarks.breakdown [--old CHECKOUT] [--rounds 9] [--out DIR]

The tutorial's step at batch 50, float32, cut into the same segments for every
implementation (forward and backward of each block, then Adam):

- npcnn: the real ``train_step`` through the public API, with every layer's
  forward and backward, the fused blocks, the loss and the optimizer wrapped in
  a stopwatch (``StepTimer``); "other" is the step's time left over (Python glue);
- npcnn before: the same for another checkout (``--old``, loaded side by side
  by ``checkouts.py``), e.g. the commit before issue 12's work;
- TF: the ops TF's own step runs for each segment (``tf.nn`` forward ops, and
  ``MaxPoolGrad``, ``ReluGrad``, ``Conv2DBackpropFilter``/``Input``,
  ``BiasAddGrad``, ``MatMul`` for backward; Keras's Adam), each segment a
  ``tf.function`` timed alone; "other" is TF's whole compiled step minus their sum
  (negative when the whole graph overlaps the segments).

Every implementation is timed in the same interleaved rounds (medians), each
round a few steps (or segment calls) back to back, as a training loop runs
them, with a pause between NumPy and TF for OpenBLAS's idle threads. Writes
``breakdown.md``, ``breakdown.json`` and the plot ``step_breakdown.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict

import numpy as np

import npcnn

from .checkouts import load_checkout, submodule
from .workloads import mnist_like_batch

GROUPS = ["conv1 + pool1", "conv2 + pool2", "dense1", "dense2 + softmax + loss"]
LAYER_GROUP = {
    "conv1": GROUPS[0], "pool1": GROUPS[0], "conv2": GROUPS[1], "pool2": GROUPS[1],
    "flatten": GROUPS[2], "dense1": GROUPS[2], "dense2": GROUPS[3], "softmax": GROUPS[3],
}  # fmt: skip
SEGMENTS = [(g, "forward") for g in GROUPS] + [(g, "backward") for g in reversed(GROUPS)]
SEGMENTS += [("Adam", "update")]
OTHER = ("other", "")


def label(segment):
    group, phase = segment
    return f"{group} {phase}".strip()


class StepTimer:
    """``package``'s training step with a stopwatch around every segment."""

    def __init__(self, package, n=50, dtype="float32"):
        train, model_module = submodule(package, "train"), submodule(package, "model")
        model, optimizer = package.seed_cnn(seed=0, dtype=dtype), package.Adam(1e-3)
        images, labels = mnist_like_batch(n, dtype)
        self.times = defaultdict(float)
        self.originals = []  # (owner, attr, function) to put back in restore()
        for layer in model.layers:
            group = LAYER_GROUP[layer.name]
            self._wrap(layer, "forward", lambda *a, g=group: (g, "forward"))
            self._wrap(layer, "backward", lambda *a, g=group: (g, "backward"))
        for name, phase in (("fused_forward", "forward"), ("fused_backward", "backward")):
            if hasattr(model_module, name):  # the fused block (after issue 12)
                segment = lambda conv, *a, p=phase: (LAYER_GROUP[conv.name], p)  # noqa: E731
                self._wrap(model_module, name, segment)
        for name, phase in (("forward", "forward"), ("backward", "backward")):
            loss = f"sparse_categorical_crossentropy_{name}"
            self._wrap(train, loss, lambda *a, p=phase: (GROUPS[3], p))
        self._wrap(optimizer, "apply_gradients", lambda *a: ("Adam", "update"))
        self.step = lambda: train.train_step(model, optimizer, images, labels)

    def _wrap(self, owner, attr, segment_of):
        function = getattr(owner, attr)
        self.originals.append((owner, attr, function))

        def timed(*args, **kwargs):
            start = time.perf_counter()
            out = function(*args, **kwargs)
            self.times[segment_of(*args)] += time.perf_counter() - start
            return out

        setattr(owner, attr, timed)

    def restore(self):
        """Unwrap everything (the model's module functions are shared with other code)."""
        for owner, attr, function in reversed(self.originals):
            setattr(owner, attr, function)
        self.originals.clear()

    def __call__(self):
        """One step: {segment: seconds}, "other" being what the segments leave."""
        self.times.clear()
        start = time.perf_counter()
        self.step()
        total = time.perf_counter() - start
        out = dict(self.times)
        out[OTHER] = total - sum(out.values())
        out["step"] = total
        return out


def tf_segments(tf, n=50):
    """{segment: compiled function} running TF's ops for each segment, and "step"."""
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
        (GROUPS[0], "forward"): lambda: conv_block(images, w1, b1)[1],
        (GROUPS[1], "forward"): lambda: conv_block(p1, w2, b2)[1],
        (GROUPS[2], "forward"): lambda: tf.nn.relu(tf.matmul(tf.reshape(p2, (n, -1)), w3) + b3),
        (GROUPS[3], "forward"): lambda: head(h),
        (GROUPS[3], "backward"): lambda: head_grad(h),
        (GROUPS[2], "backward"): dense1_grad,
        (GROUPS[1], "backward"): lambda: conv_block_grad(p1, w2, r2, p2, dp2, True),
        (GROUPS[0], "backward"): lambda: conv_block_grad(images, w1, r1, p1, dp1, False),
        ("Adam", "update"): lambda: net.optimizer.apply_gradients(zip(grads, variables)),
    }
    compiled = {s: tf.function(f) for s, f in functions.items()}
    compiled["step"] = lambda: net.train_step_function(images, labels)
    return compiled


def measure(rounds, old=None, pause=0.1, calls=4):
    """{implementation: {segment label: median ms}} over interleaved rounds; in
    each round an implementation runs ``calls`` steps back to back (a training
    loop's steady state), their mean one sample."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    timers = {"npcnn": StepTimer(npcnn)}
    if old is not None:
        timers = {"npcnn before": StepTimer(load_checkout(old)), **timers}
    tf_functions = tf_segments(tf)

    def run_tf(function):
        start = time.perf_counter()
        out = function()
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
        return time.perf_counter() - start

    samples = defaultdict(lambda: defaultdict(list))
    for r in range(rounds + 2):  # two warm-up rounds
        sums = defaultdict(lambda: defaultdict(float))
        for name, timer in timers.items():
            for _ in range(calls):
                for segment, seconds in timer().items():
                    sums[name][segment] += seconds / calls
            time.sleep(pause)
        for segment, function in tf_functions.items():
            for _ in range(calls):
                sums["TensorFlow"][segment] += run_tf(function) / calls
        tf_sums = sums["TensorFlow"]
        tf_sums[OTHER] = tf_sums["step"] - sum(v for k, v in tf_sums.items() if k != "step")
        time.sleep(pause)
        if r >= 2:
            for name, per_segment in sums.items():
                for segment, seconds in per_segment.items():
                    samples[name][segment].append(seconds)
    medians = {}
    for impl, per_segment in samples.items():
        medians[impl] = {
            (label(s) if s != "step" else "step"): statistics.median(v) * 1e3
            for s, v in per_segment.items()
        }
    for timer in timers.values():
        timer.restore()
    return medians


def markdown(result):
    impls = list(result)
    rows = [label(s) for s in SEGMENTS] + [label(OTHER), "step"]
    lines = ["| segment | " + " | ".join(f"{i} (ms)" for i in impls) + " | npcnn / TF |"]
    lines.append("|---|" + "---|" * (len(impls) + 1))
    for row in rows:
        cells = [f"{result[i].get(row, float('nan')):.2f}" for i in impls]
        ratio = result["npcnn"].get(row, np.nan) / result["TensorFlow"].get(row, np.nan)
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {ratio:.2f}x |")
    return "\n".join(lines) + "\n"


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    impls = [i for i in ("TensorFlow", "npcnn before", "npcnn") if i in result]
    tab = plt.get_cmap("tab20").colors  # pairs: dark (forward), light (backward)
    colors = {label(s): tab[2 * GROUPS.index(s[0]) + (s[1] == "backward")] for s in SEGMENTS[:-1]}
    colors |= {"Adam update": tab[8], "other": "lightgrey"}
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.7 * len(impls)))
    for row, impl in enumerate(impls):
        left = 0.0
        for segment, color in colors.items():
            width = max(result[impl].get(segment, 0.0), 0.0)  # TF's "other" may be < 0
            ax.barh(row, width, left=left, color=color, edgecolor="white",
                    label=segment if row == 0 else None)  # fmt: skip
            left += width
        ax.text(left + 0.5, row, f"{result[impl]['step']:.1f} ms", va="center")
    ax.invert_yaxis()
    ax.set_yticks(range(len(impls)), impls)
    ax.set_xlabel("training step, batch 50, float32 (ms)")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.breakdown", description=__doc__.split("\n")[0]
    )
    p.add_argument("--old", help="another npcnn checkout to time as 'npcnn before'")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--out", default="benchmark_results")
    args = p.parse_args(argv)
    result = measure(args.rounds, args.old)
    write(result, args.out)
    print(markdown(result))
    return 0


def write(result, out):
    """``breakdown.md``, ``breakdown.json`` and ``step_breakdown.png`` into ``out``."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "breakdown.md"), "w") as f:
        f.write(markdown(result))
    with open(os.path.join(out, "breakdown.json"), "w") as f:
        json.dump(result, f, indent=1)
    plot(result, os.path.join(out, "step_breakdown.png"))


if __name__ == "__main__":
    sys.exit(main())
