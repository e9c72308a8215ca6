"""Generated architectures: whole Keras models drawn by Hypothesis, against npcnn.

Each example is a :class:`~parity_tests.strategies.ModelSpec` (``model_specs``):
1-3 Conv2D blocks (each maybe followed by a MaxPooling2D), Flatten or Reshape,
0-2 hidden Dense layers and a head. For each drawn model and dtype:

1. Keras builds it (seeded initialisers, every layer in the dtype). A geometry
   Keras refuses (a 'valid' window larger than what is left of the image) is
   discarded with ``assume``: Keras, not the strategy, decides what exists.
2. ``tfcnn.to_npcnn`` converts it, on both tiers (``kernels='fast'`` and ``'ops'``).
3. One batch: the output, the 'sum' loss and every gradient (all kernels and
   biases) agree with TensorFlow within the bound derived in
   ``parity_tests/README.md``, "Generated architectures" (:func:`bounds`).
4. ``from_npcnn`` then ``to_npcnn`` gives back the same weights and the same
   predictions, bit for bit.
5. float64 only: five Adam(1e-3) steps give the same losses and weights.

Which loss path is compared (README, "Which path we compare"): for a
``head='softmax'`` model (``Dense(classes, activation='softmax')``) Keras's
**clipping path**: the TensorFlow side calls
``keras.losses.sparse_categorical_crossentropy(labels, tf.identity(probs))``
eagerly; the identity's output carries no ``_keras_logits``, so Keras clips
to [1e-7, 1 - 1e-7] (asserted with ``tfcnn.keras_crossentropy_path``), as
npcnn's ``from_logits=False`` does. (Called on ``probs`` itself Keras would
silently use the Dense layer's logits instead.) For ``head='logits'``
(``Dense(classes)``) both sides compute the loss ``from_logits=True``.

Gradients are compared when npcnn and TensorFlow took the same branches:
the same ReLU masks, the same max-pool winners and the same clip mask. In
float32 rounding may legitimately put a pre-activation on the other side of
0 (or reorder two nearly equal pool inputs), and the gradient jumps there;
such draws are counted (``hypothesis.event``) and their gradients not
compared. A bug that moves values (padding) fails the forward check first; one
that misroutes gradients (the wrong max) changes no branch and fails the
gradient check.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import assume, event, given, note, settings
from hypothesis import strategies as st

tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

import npcnn  # noqa: E402
import tfcnn  # noqa: E402
from npcnn.ops.crossentropy import EPSILON  # noqa: E402
from parity_tests.model_helpers import (  # noqa: E402
    npcnn_loss_and_grads,
    trajectory_mismatches,
)
from parity_tests.strategies import (  # noqa: E402
    ModelSpec,
    PoolSpec,
    grid_arrays,
    model_specs,
    window_cases,
)
from parity_tests.tolerances import TRANSCENDENTAL_ULPS, assert_within  # noqa: E402

L = keras.layers
KERNELS = ("fast", "ops")
ADAM_STEPS = 5
# float64 trajectory: every loss and each final weight array within 1e-10, relative
# (stated, not derived: Adam's step is ~lr whatever the gradient's size, see the README)
TRAJECTORY_TOLERANCE = {"loss_rtol": 1e-10, "weight_tol": 1e-10, "weight_tol_relative": True}

# ci (the default profile) runs 30 models per test, so this file takes ~16 s on 2 cores;
# any other profile (dev: 500, randomized) keeps its own number.
CI_PROFILE = os.environ.get("NPCNN_HYPOTHESIS_PROFILE", "ci") == "ci"
EXAMPLES = settings(max_examples=30) if CI_PROFILE else settings()


# ---- the model of a spec ---------------------------------------------------------------------
def layer_list(spec: ModelSpec) -> list[tuple[str, object]]:
    """The spec as (kind, config) pairs, one per Keras (and npcnn) layer."""
    layers = []
    for block in spec.blocks:
        layers.append(("conv", block))
        if block.pool is not None:
            layers.append(("pool", block.pool))
    layers.append(("flat", spec.to_flat))
    layers += [("dense", (d.units, d.activation)) for d in spec.dense]
    layers.append(("dense", (spec.classes, "softmax" if spec.head == "softmax" else "linear")))
    return layers


def build_keras_model(spec: ModelSpec, dtype: str):
    """The Keras model of ``spec`` in ``dtype`` (seeded weights, nonzero biases), or the
    ``ValueError`` text with which Keras refused its geometry."""

    def seeded(i):
        return dict(
            kernel_initializer=keras.initializers.GlorotUniform(seed=spec.seed + 2 * i),
            bias_initializer=keras.initializers.RandomUniform(
                -0.3, 0.3, seed=spec.seed + 2 * i + 1
            ),
            dtype=dtype,
        )

    model = keras.Sequential([keras.Input(spec.input_shape, dtype=dtype)])
    try:
        for i, (kind, cfg) in enumerate(layer_list(spec)):
            if kind == "conv":
                layer = L.Conv2D(
                    cfg.filters,
                    cfg.kernel_size,
                    strides=cfg.strides,
                    padding=cfg.padding,
                    activation=cfg.activation,
                    **seeded(i),
                )
            elif kind == "pool":
                layer = L.MaxPooling2D(
                    cfg.pool_size, strides=cfg.strides, padding=cfg.padding, dtype=dtype
                )
            elif kind == "flat" and cfg == "Flatten()":
                layer = L.Flatten(dtype=dtype)
            elif kind == "flat":
                size = math.prod(model.output_shape[1:]) if cfg == "Reshape((n,))" else -1
                layer = L.Reshape((size,), dtype=dtype)
            else:
                layer = L.Dense(cfg[0], activation=cfg[1], **seeded(i))
            model.add(layer)  # Keras computes (and checks) the output shape here
    except ValueError as error:
        return str(error)
    return model


def batch(spec: ModelSpec, dtype: str, steps: int | None = None):
    """Images (N(0, 1), or values from -1, 0, 1, 2 for ``pixels='grid'``: ties) and labels
    from the spec's seed; ``steps`` batches if given."""
    rng = np.random.default_rng(spec.seed)
    lead = (spec.batch,) if steps is None else (steps, spec.batch)
    shape = (*lead, *spec.input_shape)
    if spec.pixels == "grid":
        images = rng.choice([-1.0, 0.0, 1.0, 2.0], size=shape).astype(dtype)
    else:
        images = rng.normal(size=shape).astype(dtype)
    return images, rng.integers(0, spec.classes, lead)


def keras_loss(out, labels, head):
    """The 'sum' of ``keras.losses.sparse_categorical_crossentropy``, eagerly: the clipping
    path on the probabilities (``head='softmax'``) or from the logits (``'logits'``)."""
    labels = tf.constant(labels)
    if head == "logits":
        return tf.reduce_sum(
            keras.losses.sparse_categorical_crossentropy(labels, out, from_logits=True)
        )
    probs = tf.identity(out)  # a copy without _keras_logits: Keras cannot skip the clip
    assert tfcnn.keras_crossentropy_path(probs) == "clipped-probs"
    return tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(labels, probs))


def tf_loss_and_grads(model, images, labels, head):
    with tf.GradientTape() as tape:
        out = model(images)
        loss = keras_loss(out, labels, head)
    grads = tape.gradient(loss, model.trainable_variables)
    return out.numpy(), loss.numpy(), [g.numpy() for g in grads]


# ---- branches taken: ReLU masks, max-pool winners, the clip ------------------------------------
def same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding of one axis, written out here (not npcnn's padding.py,
    which the tests must be able to catch being wrong): the odd cell goes after."""
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def pool_taps(x, pool, strides, padding, pad):
    """The strided views of (padded) ``x`` seen by each window tap, row-major.

    ``pad(x, pads)`` pads with what must never win (NumPy: -inf; TF magnitudes: 0).
    """
    pads = [(0, 0), (0, 0), (0, 0), (0, 0)]
    if padding == "same":
        pads[1], pads[2] = (same_pads(x.shape[i], pool[i - 1], strides[i - 1]) for i in (1, 2))
        x = pad(x, pads)
    out = [(x.shape[i] - pool[i - 1]) // strides[i - 1] + 1 for i in (1, 2)]
    return [
        x[
            :,
            i : i + strides[0] * (out[0] - 1) + 1 : strides[0],
            j : j + strides[1] * (out[1] - 1) + 1 : strides[1],
            :,
        ]
        for i in range(pool[0])
        for j in range(pool[1])
    ]


def first_max_taps(x, pool):
    """For each window, the tap index of its first maximum (TensorFlow's gradient goes there)."""
    views = pool_taps(
        x,
        pool.pool_size,
        pool.strides,
        pool.padding,
        lambda a, p: np.pad(a, p, constant_values=-np.inf),
    )
    best, winner = views[0], np.zeros(views[0].shape, dtype=np.int64)
    for tap, view in enumerate(views[1:], start=1):
        wins = view > best  # strict: ties stay with the earlier tap
        winner[wins], best = tap, np.where(wins, view, best)
    return winner


def branches(layers, outputs, head):
    """{layer index: ReLU mask or max-pool winners} and the clip mask under key 'clip',
    read from one implementation's per-layer ``outputs`` (outputs[0] is the input)."""
    taken = {}
    for i, (kind, cfg) in enumerate(layers):
        out = outputs[i + 1]
        if kind == "pool":
            taken[i] = first_max_taps(outputs[i], cfg)
        elif relu_inside(kind, cfg):
            taken[i] = out > 0
    if head == "softmax":
        p = outputs[-1]
        taken["clip"] = (p >= p.dtype.type(EPSILON)) & (p <= p.dtype.type(1 - EPSILON))
    return taken


def relu_inside(kind, cfg) -> bool:
    """Whether a layer ends in a ReLU (``activation='relu'``)."""
    return (kind == "conv" and cfg.activation == "relu") or (kind == "dense" and cfg[1] == "relu")


def same_branches(a, b) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def keras_layer_outputs(model, images):
    outputs, x = [images], tf.constant(images)
    for layer in model.layers:
        x = layer(x)
        outputs.append(x.numpy())
    return outputs


def npcnn_layer_outputs(np_model, images):
    """Layer by layer, unfused (the fast tier's fused Conv2D(relu)+MaxPool2D block takes the
    same branches: ``npcnn/fast/fused.py``)."""
    outputs, x = [images], images
    for layer in np_model.layers:
        x = layer.forward(x)
        outputs.append(x)
    return outputs


# ---- the bound ----------------------------------------------------------------------------------
def rounding_counts(layers, outputs, batch_size):
    """Per layer (forward c, backward c', weight-gradient c_w): roundings in units of eps
    (README, "Tolerances"; sums of K terms count K)."""
    counts = []
    for i, (kind, cfg) in enumerate(layers):
        x, y = outputs[i], outputs[i + 1]
        if kind == "conv":
            kh, kw = cfg.kernel_size
            counts.append(
                (
                    kh * kw * x.shape[3] + 1,
                    kh * kw * y.shape[3],
                    batch_size * y.shape[1] * y.shape[2],
                )
            )
        elif kind == "pool":
            (ph, pw), (sh, sw) = cfg.pool_size, cfg.strides
            counts.append((0, -(-ph // sh) * -(-pw // sw), 0))
        elif kind == "dense":
            counts.append((x.shape[1] + 1, y.shape[1], batch_size))
        else:
            counts.append((0, 0, 0))
    return counts


def magnitude_network(layers, weights, images, taken=None):
    """The network on |x|, |w|, |b| in float64 (TF ops), up to the logits, without softmax.

    ``taken=None``: ReLUs dropped and max-pool over the magnitudes: bounds |value| and the
    forward rounding error whatever branches were taken. ``taken`` (the branches both
    sides took): ReLU masks applied and each window passes its winner's magnitude, so the
    gradient of this network is the backward pass on magnitudes. Returns (logits magnitude,
    tape, |weights| watched)."""
    a = tf.constant(np.abs(images).astype(np.float64))
    absw = [tf.constant(np.abs(w).astype(np.float64)) for w in weights]
    params = iter(absw)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(absw)
        for i, (kind, cfg) in enumerate(layers):
            if kind == "conv":
                a = tf.nn.conv2d(a, next(params), list(cfg.strides), cfg.padding.upper())
                a = a + next(params)
            elif kind == "dense":
                a = tf.matmul(a, next(params)) + next(params)
            elif kind == "flat":
                a = tf.reshape(a, (a.shape[0], -1))
            elif taken is None:  # pool
                a = tf.nn.max_pool2d(a, cfg.pool_size, cfg.strides, cfg.padding.upper())
            else:
                views = pool_taps(a, cfg.pool_size, cfg.strides, cfg.padding, tf.pad)
                a = sum(
                    v * tf.constant((taken[i] == t).astype(np.float64)) for t, v in enumerate(views)
                )
            if taken is not None and kind != "pool" and i in taken:
                a = a * tf.constant(taken[i].astype(np.float64))
    return a, tape, absw


def softmax64(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def bounds(spec, layers, weights, images, labels, tf_out, counts, dtype, taken=None):
    """Elementwise bounds on |npcnn - tf| (both sides' rounding, the factor 2 included):
    {'output', 'loss'} and, given the branches ``taken``, 'grads' (one per weight array).

    README, "Generated architectures": a layer's output is off by at most
    C * (eps * M + tiny), C the forward roundings summed over the layers so far and M
    the magnitude network's output; softmax, the loss and dL/dlogits add their own
    roundings and their sensitivity to the logits' error; each gradient array is off
    by at most (C_before + C'_above + c_w) * (eps * g(G) + tiny) + g(err_G), g the
    weight gradient of the magnitude network with the same branches, G the magnitude
    of dL/dlogits and err_G its error.
    """
    info = np.finfo(dtype)
    eps, tiny = float(info.eps), float(info.tiny)
    n, k = tf_out.shape
    ln_ulps = TRANSCENDENTAL_ULPS
    forward = [c for c, _, _ in counts]
    m_logits = magnitude_network(layers, weights, images)[0].numpy()
    e_logits = sum(forward) * (eps * m_logits + tiny)  # one side's logits error
    r_z = e_logits.max(axis=1, keepdims=True)
    rows = np.arange(n)
    onehot = np.zeros((n, k))
    onehot[rows, labels] = 1.0
    out = tf_out.astype(np.float64)
    if spec.head == "logits":
        q = softmax64(out)
        lse = np.log(np.exp(out - out.max(1, keepdims=True)).sum(1)) + out.max(1)
        per_example = 2 * r_z[:, 0] + (k + 2 * ln_ulps + 1) * (
            eps * (1 + np.abs(lse) + np.abs(out[rows, labels])) + tiny
        )
        losses = lse - out[rows, labels]
        out_err = e_logits
        g_mag = q + np.abs(q - onehot)
        g_err = 2 * q * r_z + (k + 2 * ln_ulps) * (eps * g_mag + tiny)
    else:  # probabilities: softmax, then Keras's clip, log, softmax cross-entropy
        p = out
        r_p = 2 * r_z + (k + ln_ulps + 2) * eps  # relative error of p
        out_err = p * r_p + (k + ln_ulps + 2) * tiny
        lo, hi = float(np.dtype(dtype).type(EPSILON)), float(np.dtype(dtype).type(1 - EPSILON))
        c = np.clip(p, lo, hi)
        log_c = np.log(c)
        r_c = r_p / hi  # clipping is 1-Lipschitz and c >= hi * p
        r_log = r_c + ln_ulps * eps * np.abs(log_c).max(axis=1, keepdims=True) + tiny
        q = c / c.sum(axis=1, keepdims=True)
        lse = np.log(c.sum(axis=1))
        per_example = 2 * r_log[:, 0] + (k + 2 * ln_ulps + 1) * (
            eps * (1 + np.abs(lse) + np.abs(log_c[rows, labels])) + tiny
        )
        losses = lse - log_c[rows, labels]
        inside = (p >= lo) & (p <= hi)
        dp_mag = np.where(inside, (q + onehot) / c, 0.0)
        g_mag = p * (dp_mag + (dp_mag * p).sum(axis=1, keepdims=True))  # |dL/dz| terms
        r_q = 2 * r_log + (k + ln_ulps + 2) * eps
        r_dp = r_q + r_c + (k + 2 * ln_ulps + 2) * eps
        g_err = (3 * r_p + r_dp + (2 * k + 8) * eps) * g_mag + (3 * k + 20) * tiny
    loss_err = per_example.sum() + n * (eps * np.abs(losses).sum() + tiny)
    result = {"output": 2 * out_err, "loss": 2 * loss_err}
    if taken is None:
        return result
    logits, tape, absw = magnitude_network(layers, weights, images, taken)
    grad_g = tape.gradient(logits, absw, output_gradients=tf.constant(g_mag))
    grad_err = tape.gradient(logits, absw, output_gradients=tf.constant(g_err))
    owners = [i for i, (kind, _) in enumerate(layers) if kind in ("conv", "dense") for _ in "kb"]
    grads = []
    for j, owner in enumerate(owners):
        c = sum(forward[:owner]) + sum(b for _, b, _ in counts[owner + 1 :]) + counts[owner][2]
        grads.append(2 * (c * (eps * grad_g[j].numpy() + tiny) + grad_err[j].numpy()))
    result["grads"] = grads
    return result


# ---- the tests -------------------------------------------------------------------------------
def keras_model_or_reject(spec, dtype):
    model = build_keras_model(spec, dtype)
    if isinstance(model, str):
        event("Keras rejected the geometry")
        note(f"Keras: {model.splitlines()[-1] if model.strip() else model}")
    assume(not isinstance(model, str))
    return model


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@EXAMPLES
@given(spec=model_specs())
def test_generated_model_matches_tensorflow(spec, dtype):
    """Output, 'sum' loss and every gradient of a drawn model, both tiers, within the
    derived bound; then the round trip npcnn -> Keras -> npcnn is exact."""
    model = keras_model_or_reject(spec, dtype)
    layers = layer_list(spec)
    images, labels = batch(spec, dtype)
    tf_out, tf_loss, tf_grads = tf_loss_and_grads(model, images, labels, spec.head)
    tf_outputs = keras_layer_outputs(model, images)
    note(f"layer outputs: {[tuple(o.shape[1:]) for o in tf_outputs]}")
    tf_taken = branches(layers, tf_outputs, spec.head)
    weights = model.get_weights()
    counts = rounding_counts(layers, tf_outputs, spec.batch)
    bound = bounds(spec, layers, weights, images, labels, tf_out, counts, dtype, tf_taken)
    names = None
    for kernels in KERNELS:
        np_model = tfcnn.to_npcnn(model, kernels=kernels)
        names = names or [name for name, _ in np_model.named_params()]
        assert len(names) == len(tf_grads)
        same = same_branches(
            branches(layers, npcnn_layer_outputs(np_model, images), spec.head), tf_taken
        )
        out, loss, grads = npcnn_loss_and_grads(
            np_model, images, labels, from_logits=spec.head == "logits"
        )
        assert_within(out, tf_out, bound["output"], f"{kernels}: model output")
        assert_within(loss, tf_loss, bound["loss"], f"{kernels}: loss ({spec.head} head)")
        if same:
            for name, g, tf_g, b in zip(names, grads, tf_grads, bound["grads"]):
                assert_within(g, tf_g, b, f"{kernels}: d loss / d {name}")
        else:
            event(f"{dtype}: a ReLU, max-pool or clip branch differs by rounding; no gradients")

        back = tfcnn.from_npcnn(np_model)  # the round trip: npcnn -> Keras -> npcnn
        again = tfcnn.to_npcnn(back, kernels=kernels)
        for name, w, w_back, w_again in zip(
            names, weights, back.get_weights(), again.get_weights()
        ):
            np.testing.assert_array_equal(w_back, w, err_msg=f"from_npcnn: {name}")
            np.testing.assert_array_equal(w_again, w, err_msg=f"round trip: {name}")
        np.testing.assert_array_equal(again.forward(images), out, err_msg="round trip output")
        np.testing.assert_array_equal(back(images).numpy(), tf_out, err_msg="Keras copy output")


@EXAMPLES
@given(spec=model_specs())
def test_generated_model_adam_trajectory_float64(spec):
    """Five Adam(1e-3) steps on five batches: npcnn's losses and final weights track Keras's
    (``keras.optimizers.Adam`` applied eagerly), both tiers, float64 only (README)."""
    model = keras_model_or_reject(spec, "float64")
    images, labels = batch(spec, "float64", steps=ADAM_STEPS)
    np_models = {kernels: tfcnn.to_npcnn(model, kernels=kernels) for kernels in KERNELS}
    optimizer = tfcnn.make_optimizer(1e-3)
    tf_losses = []
    for x, y in zip(images, labels):
        with tf.GradientTape() as tape:
            loss = keras_loss(model(x), y, spec.head)
        optimizer.apply_gradients(
            zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        )
        tf_losses.append(float(loss))
    for kernels, np_model in np_models.items():
        optimizer = npcnn.Adam(1e-3, kernels=kernels)
        losses = []
        for x, y in zip(images, labels):
            _, loss, grads = npcnn_loss_and_grads(np_model, x, y, from_logits=spec.head == "logits")
            optimizer.apply_gradients(zip(grads, np_model.params))
            losses.append(float(loss))
        assert optimizer.iterations == ADAM_STEPS
        names = [name for name, _ in np_model.named_params()]
        problems = trajectory_mismatches(
            losses,
            np_model.get_weights(),
            tf_losses,
            model.get_weights(),
            TRAJECTORY_TOLERANCE,
            names=names,
        )
        assert not problems, f"{kernels}: {problems}"


@settings(max_examples=20)
@given(case=window_cases(max_batch=2), data=st.data())
def test_pool_winners_are_where_tensorflow_routes_the_gradient(case, data):
    """The branch check and the gradient bound find max-pool winners with this file's own
    padding rule and first-maximum scan (``first_max_taps``) and pass gradients through
    them (``magnitude_network``): that must be TF's own routing, ties included."""
    x = data.draw(grid_arrays(case.input_shape, np.float64), label="x")
    shape = (case.batch, *case.output_hw, case.channels)
    dy = tf.constant(np.arange(1.0, 1.0 + math.prod(shape)).reshape(shape))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf.nn.max_pool2d(xt, case.window, case.strides, case.padding.upper())
    expected = tape.gradient(y, xt, output_gradients=dy).numpy()
    winner = first_max_taps(x, PoolSpec(case.window, case.strides, case.padding))
    with tf.GradientTape() as tape:  # the pool of magnitude_network, with these winners
        tape.watch(xt)
        taps = pool_taps(xt, case.window, case.strides, case.padding, tf.pad)
        out = sum(v * tf.constant((winner == t).astype(np.float64)) for t, v in enumerate(taps))
    np.testing.assert_array_equal(tape.gradient(out, xt, output_gradients=dy).numpy(), expected)
