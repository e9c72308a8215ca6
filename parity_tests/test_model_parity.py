"""Whole-model parity: ``npcnn.seed_cnn`` against ``tfcnn.SeedCNN`` (TensorFlow/Keras).

The two models hold the same weights (moved with a plain
``np_model.set_weights(tf_model.get_weights())``) and must then agree on

1. the probabilities, the loss and all eight parameter gradients of one batch;
2. a training trajectory: 20 Adam(1e-3) steps on the same batches, losses
   step by step and the final weights;
3. real MNIST: a SeedCNN trained a few steps in TensorFlow, moved with
   ``tfcnn.to_npcnn``, predicts the same in NumPy.

Which cross-entropy: npcnn's loss is Keras's eager ``from_logits=False``
path (clip the probabilities to [1e-7, 1 - 1e-7], log, softmax cross-entropy),
so the TensorFlow side uses ``loss_path='clipped-probs'`` run eagerly, as
``tfcnn.training`` documents. Test 1 also compares the ``'logits'`` path (what
Keras silently uses under ``tf.function``) with npcnn's ``from_logits=True``,
including saturated outputs where the two paths differ.

Tolerances. Single batch (test 1): every compared array ``a`` must satisfy
``max|npcnn - tf| <= 2 * K * eps * max|tf|`` with ``K = 3136`` (the longest sum
in the network, dense1's) and ``eps`` the dtype's machine epsilon: the
rounding bound of a K-term sum (see ``parity_tests/tolerances.py``), applied to
the array's largest entry. That is 1.4e-12 (float64) and 7.5e-4 (float32);
measured: below 2e-14 and 1e-6. Gradients get that bound times a condition
factor kappa >= 1 (``logit_gradient_condition``) for the cancellation in
dL/dlogits once some probability is near 1; measured error / kappa: < 3e-15.

Trajectory (test 2): training amplifies rounding differences (one Adam step
moves every weight by ~lr whatever the gradient's size), so the bounds are
stated, not derived. float64: every loss to 1e-12 relative, final weights to
1e-10 of each array's largest entry (measured: 4e-16 and 8e-13). float32:
losses to 2e-6 relative, final weights to 1e-3 absolute, a fortieth of the
2 * 20 * lr two runs can drift apart: a weight whose gradient is at rounding
level takes Adam steps of up to lr in either direction (measured: 2e-7 and
2.1e-4 with BLAS on one thread, on both tiers; 2.4e-5 with two). The test is
sensitive: Adam with the paper's epsilon placement (added to sqrt(v_hat))
breaks both float64 bounds within three steps, by orders of magnitude (loss
7e-4, weights 1e-6 to 3e-3; ``test_trajectory_check_catches_...``).
"""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

tf = pytest.importorskip("tensorflow")

import npcnn  # noqa: E402
import tfcnn  # noqa: E402
from npcnn import ops  # noqa: E402
from npcnn.fast import placement, processes, threads  # noqa: E402
from parity_tests.model_helpers import (  # noqa: E402
    PARAM_NAMES,
    npcnn_loss_and_grads,
    trajectory_mismatches,
)

LONGEST_SUM = 7 * 7 * 64  # dense1's input length: the longest reduction in the model
STEPS = 20  # trajectory length
BATCH = 4  # trajectory batch size (small: this runs in CI on 2 cores)
SENSITIVITY_STEPS = 3  # steps after which the paper-epsilon Adam must already differ


# loss_rtol: per-step relative loss error; weight_tol: final-weight error, either
# relative to each array's largest entry (weight_tol_relative) or absolute
TRAJECTORY_TOLERANCE = {
    "float64": {"loss_rtol": 1e-12, "weight_tol": 1e-10, "weight_tol_relative": True},
    "float32": {"loss_rtol": 2e-6, "weight_tol": 1e-3, "weight_tol_relative": False},
}


def single_batch_tolerance(dtype) -> float:
    """2 * K * eps: the rounding bound of the longest sum, relative to an array's max."""
    return 2 * LONGEST_SUM * float(np.finfo(dtype).eps)


def assert_close_to_scale(actual, expected, tol, what):
    """max|actual - expected| <= tol * max|expected|, with shapes and dtypes equal."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shapes {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtypes {actual.dtype} != {expected.dtype}"
    scale = max(float(np.abs(expected).max(initial=0.0)), float(np.finfo(expected.dtype).tiny))
    diff = float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max(initial=0.0))
    assert diff <= tol * scale, f"{what}: max|diff| {diff:.3g} > {tol:.3g} * max|tf| {scale:.3g}"


def logit_gradient_condition(probs, labels, clipped: bool) -> float:
    """kappa >= 1: how much cancellation magnifies rounding in dL/dlogits.

    Every parameter gradient is the backward pass applied to dz = dL/dlogits.
    When the network is confident (a probability near 1), dz is computed as
    a difference of nearly equal numbers -- q - onehot, and for the clipped
    path also softmax's backward p * (dp - sum_k dp_k p_k) -- so its rounding
    error is relative to the *terms*, not to dz. kappa is the largest such
    term over the largest |dz| (the terms' magnitudes are carried through
    the same formulas with every difference replaced by a sum); the
    gradient tolerance is multiplied by it. kappa is 1 to 10 for an untrained
    network and ~1e7 for the saturated one below.
    """
    rows = np.arange(len(labels))
    onehot = np.zeros(probs.shape)
    onehot[rows, labels] = 1.0
    p = probs.astype(np.float64)
    if not clipped:  # dz = softmax(z) - onehot, and softmax(z) is the model's output
        return max(1.0, float((p + onehot).max() / np.abs(p - onehot).max()))
    c = np.clip(p, 1e-7, 1 - 1e-7)
    q = c / c.sum(axis=1, keepdims=True)  # softmax(log c)
    inside = (p >= 1e-7) & (p <= 1 - 1e-7)  # where the clip passes gradient
    dp = np.where(inside, (q - onehot) / c, 0.0)
    dp_terms = np.where(inside, (q + onehot) / c, 0.0)
    dz = p * (dp - (dp * p).sum(axis=1, keepdims=True))
    dz_terms = p * (dp_terms + (dp_terms * p).sum(axis=1, keepdims=True))
    return max(1.0, float(dz_terms.max() / np.abs(dz).max()))


def mnist_like_images(rng, shape, dtype):
    """Pixels in [0, 1) with about half exactly 0, like MNIST's background."""
    pixels = rng.random(shape) * (rng.random(shape) < 0.5)
    return pixels.astype(dtype)


# ---- npcnn's side of one batch -------------------------------------------------------


def npcnn_logits_loss_and_grads(np_model, images, labels):
    """(loss, grads) of npcnn's from_logits=True loss on the pre-softmax scores."""
    layers = np_model.layers[:-1]  # everything but the final Softmax
    assert isinstance(np_model.layers[-1], npcnn.Softmax)
    x = np.asarray(images, dtype=np_model.dtype)
    for layer in layers:
        x = layer.forward(x)
    loss, cache = ops.sparse_categorical_crossentropy_forward(
        x, labels, from_logits=True, reduction="sum"
    )
    dx = ops.sparse_categorical_crossentropy_backward(np.ones((), x.dtype), cache)
    for layer in reversed(layers):
        dx = layer.backward(dx)
    return loss, [g.copy() for layer in layers for g in layer.grads]


@pytest.fixture(scope="module")
def tf_models():
    """One SeedCNN per dtype, reused by the Hypothesis examples (weights reset each time)."""
    return {dtype: tfcnn.SeedCNN(dtype=dtype) for dtype in ("float32", "float64")}


# ---- 1. one batch ----------------------------------------------------------------------
# The three cases that matter are always run (@example); Hypothesis adds a few
# random ones. No shrink phase: the draws are a seed and three switches, and
# shrinking a 1-second example costs minutes without making the report clearer.
@settings(max_examples=2, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(
    seed=st.integers(0, 2**32 - 1),
    batch=st.integers(1, 3),
    dtype=st.sampled_from(["float64", "float32"]),
    saturate=st.booleans(),
    kernels=st.sampled_from(["fast", "ops"]),
)
@example(seed=1, batch=2, dtype="float64", saturate=False, kernels="ops")
@example(seed=1, batch=2, dtype="float64", saturate=False, kernels="fast")
@example(seed=2, batch=2, dtype="float64", saturate=True, kernels="fast")
@example(seed=3, batch=2, dtype="float32", saturate=False, kernels="ops")
@example(seed=3, batch=2, dtype="float32", saturate=False, kernels="fast")
@example(seed=4, batch=40, dtype="float64", saturate=False, kernels="fast")  # two parts
@example(seed=4, batch=40, dtype="float32", saturate=False, kernels="fast")
def test_one_batch_probabilities_loss_and_gradients_match(
    tf_models, seed, batch, dtype, saturate, kernels
):
    """Same weights, same batch: probabilities, loss and 8 gradients agree, on both paths
    and on both tiers of npcnn (the readable ``ops`` and the default ``fast``; a
    batch of 40 runs on the fast tier as two parts, ``npcnn/fast/parallel.py``).

    ``saturate`` (float64 only) scales dense2's kernel by 150 so that some
    probabilities, but not all, fall outside [1e-7, 1 - 1e-7]: the clip is
    active, its gradient is zero there and not elsewhere, and the
    clipped-probs and logits losses differ -- each side must
    still agree with its npcnn twin. (In float32 a probability within
    rounding of the clip bound could be clipped on one side only, so the
    saturated case is float64's.)
    """
    saturate = saturate and dtype == "float64"
    rng = np.random.default_rng(seed)
    np_model = npcnn.seed_cnn(seed=rng, dtype=dtype, kernels=kernels)
    if saturate:
        np_model.params[6] *= 150  # dense2/kernel: logits spread ~0.2 -> ~30
    tf_model = tf_models[dtype]
    tf_model.set_weights(np_model.get_weights())
    images = mnist_like_images(rng, (batch, 28, 28, 1), dtype)
    labels = rng.integers(0, 10, batch)
    tol = single_batch_tolerance(dtype)

    probs, loss, grads = npcnn_loss_and_grads(np_model, images, labels)
    tf_loss, tf_grads = tfcnn.loss_and_gradients(tf_model, images, labels, "clipped-probs")
    assert_close_to_scale(probs, tf_model(images).numpy(), tol, "probabilities")
    assert_close_to_scale(loss, tf_loss.numpy(), tol, "clipped-probs loss")
    assert [name for name, _ in np_model.named_params()] == PARAM_NAMES
    assert len(tf_grads) == len(grads) == 8
    kappa = logit_gradient_condition(probs, labels, clipped=True)
    for name, g, tf_g in zip(PARAM_NAMES, grads, tf_grads):
        assert_close_to_scale(g, tf_g.numpy(), tol * kappa, f"clipped-probs d loss / d {name}")

    logits_loss, logits_grads = npcnn_logits_loss_and_grads(np_model, images, labels)
    tf_logits_loss, tf_logits_grads = tfcnn.loss_and_gradients(tf_model, images, labels, "logits")
    assert_close_to_scale(logits_loss, tf_logits_loss.numpy(), tol, "logits loss")
    kappa = logit_gradient_condition(probs, labels, clipped=False)
    for name, g, tf_g in zip(PARAM_NAMES, logits_grads, tf_logits_grads):
        assert_close_to_scale(g, tf_g.numpy(), tol * kappa, f"logits d loss / d {name}")

    if saturate:  # the case must really exercise the clip, or it proves nothing
        assert (probs < 1e-7).any()
        assert max(float(np.abs(g).max()) for g in grads) > 0  # not clipped everywhere
        assert abs(float(logits_loss) - float(loss)) > 1e-3


@pytest.mark.skipif(not processes.supported(), reason="worker processes: Linux only")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_parts_in_worker_processes_match(tf_models, dtype, monkeypatch):
    """Worker processes (``npcnn/fast/processes.py``): a batch of 40 runs as two
    parts (three in float64), the main process taking one at most, the worker
    the rest, from the second batch of its shape on; its probabilities, loss and
    gradients agree."""
    monkeypatch.setattr(processes, "_workers", "processes")
    monkeypatch.setattr(placement, "dynamic", True)
    claim = processes.PartProcesses._claim  # the main process takes one part at most:
    monkeypatch.setattr(processes.PartProcesses, "_claim", lambda pool: islice(claim(pool), 1))
    before = threads.get_threads()
    threads.set_threads(2)
    try:
        rng = np.random.default_rng(5)
        np_model = npcnn.seed_cnn(seed=rng, dtype=dtype)
        tf_model = tf_models[dtype]
        tf_model.set_weights(np_model.get_weights())
        images = mnist_like_images(rng, (40, 28, 28, 1), dtype)
        labels = rng.integers(0, 10, 40)
        npcnn_loss_and_grads(np_model, images, labels)  # on threads: finds the conv blocks
        probs, loss, grads = npcnn_loss_and_grads(np_model, images, labels)
        assert np_model.parallel.via is not None and len(np_model.parallel.cuts) == {
            "float32": 3, "float64": 4}[dtype]  # fmt: skip
        assert len(np_model.parallel.via.mine) <= 1  # the worker took the others
    finally:
        threads.set_threads(before)
    tol = single_batch_tolerance(dtype)
    tf_loss, tf_grads = tfcnn.loss_and_gradients(tf_model, images, labels, "clipped-probs")
    assert_close_to_scale(probs, tf_model(images).numpy(), tol, "probabilities")
    assert_close_to_scale(loss, tf_loss.numpy(), tol, "clipped-probs loss")
    kappa = logit_gradient_condition(probs, labels, clipped=True)
    for name, g, tf_g in zip(PARAM_NAMES, grads, tf_grads):
        assert_close_to_scale(g, tf_g.numpy(), tol * kappa, f"clipped-probs d loss / d {name}")


# ---- 2. a training trajectory ------------------------------------------------------------
class PaperEpsilonAdam(npcnn.Adam):
    """Adam as printed in the paper: epsilon added to sqrt(v_hat), the bias-corrected v.

    w -= lr * m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - b1^t),
    v_hat = v / (1 - b2^t). Keras (and npcnn.Adam) add eps to the
    *uncorrected* sqrt(v) instead, which is the paper's update with
    eps * sqrt(1 - b2^t) in place of eps.
    """

    def _update(self, p, g, m, v):
        f, t = p.dtype.type, self.iterations
        m += (g - m) * f(1 - self.beta_1)
        v += (g * g - v) * f(1 - self.beta_2)
        m_hat = m / f(1 - self.beta_1**t)
        v_hat = v / f(1 - self.beta_2**t)
        p -= f(self.learning_rate) * m_hat / (np.sqrt(v_hat) + f(self.epsilon))


def trajectory_batches(dtype):
    rng = np.random.default_rng(20240601)
    images = mnist_like_images(rng, (STEPS, BATCH, 28, 28, 1), dtype)
    return images, rng.integers(0, 10, (STEPS, BATCH))


@pytest.fixture(scope="module")
def tf_trajectories():
    """Per dtype: initial weights, batches, TF's losses and weights after each checkpoint.

    TensorFlow side: ``make_train_step(loss_path='clipped-probs', jit=False)``
    (eager, the loss npcnn computes) with ``keras.optimizers.Adam(1e-3)``.
    """
    out = {}
    for dtype in ("float64", "float32"):
        init = npcnn.seed_cnn(seed=7, dtype=dtype).get_weights()
        images, labels = trajectory_batches(dtype)
        model = tfcnn.SeedCNN(dtype=dtype)
        model.set_weights(init)
        step = tfcnn.make_train_step(model, tfcnn.make_optimizer(1e-3), "clipped-probs", jit=False)
        assert step.loss_path == "clipped-probs"
        losses, weights_at = [], {}
        for i in range(STEPS):
            losses.append(float(step(images[i], labels[i])))
            if i + 1 in (SENSITIVITY_STEPS, STEPS):
                weights_at[i + 1] = model.get_weights()
        out[dtype] = dict(
            init=init, images=images, labels=labels, losses=losses, weights=weights_at
        )
    return out


def npcnn_trajectory(init, images, labels, optimizer, steps, dtype, kernels="fast"):
    """Train npcnn.seed_cnn from ``init`` for ``steps`` steps; (losses, final weights)."""
    model = npcnn.seed_cnn(dtype=dtype, kernels=kernels)
    model.set_weights(init)
    losses = []
    for i in range(steps):
        _, loss, grads = npcnn_loss_and_grads(model, images[i], labels[i])
        optimizer.apply_gradients(zip(grads, model.params))
        losses.append(float(loss))
    return losses, model.get_weights()


@pytest.mark.parametrize("kernels", ["fast", "ops"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_adam_trajectory_matches_tensorflow(tf_trajectories, dtype, kernels):
    """20 Adam steps on the same batches: npcnn's losses and final weights track TF's,
    on both tiers (model and optimizer)."""
    run = tf_trajectories[dtype]
    optimizer = npcnn.Adam(1e-3, kernels=kernels)
    losses, weights = npcnn_trajectory(
        run["init"], run["images"], run["labels"], optimizer, STEPS, dtype, kernels
    )
    assert losses[-1] < losses[0], "the trajectory should actually train"
    problems = trajectory_mismatches(
        losses, weights, run["losses"], run["weights"][STEPS], TRAJECTORY_TOLERANCE[dtype]
    )
    assert not problems, problems


def test_trajectory_check_catches_paper_epsilon_placement(tf_trajectories):
    """The float64 check above fails for Adam with epsilon added to sqrt(v_hat).

    Shows the trajectory test is sensitive to a real, small difference: the
    paper's and Keras's Adam differ only in where epsilon sits.
    """
    run = tf_trajectories["float64"]
    losses, weights = npcnn_trajectory(
        run["init"],
        run["images"],
        run["labels"],
        PaperEpsilonAdam(1e-3),
        SENSITIVITY_STEPS,
        "float64",
    )
    problems = trajectory_mismatches(
        losses,
        weights,
        run["losses"][:SENSITIVITY_STEPS],
        run["weights"][SENSITIVITY_STEPS],
        TRAJECTORY_TOLERANCE["float64"],
    )
    assert any(p.startswith("loss") for p in problems), problems
    assert sum("weights" in p for p in problems) >= 4, problems


# ---- 3. real MNIST: train in TF, predict in NumPy ----------------------------------------
def test_train_in_tensorflow_then_predict_in_numpy(mnist_dir):
    """A user's path: train SeedCNN a few steps, ``to_npcnn``, same predictions in NumPy."""
    from npcnn.datasets import load_dataset

    (x_train, y_train), (x_test, _) = load_dataset("mnist", data_dir=mnist_dir)
    x_train = (x_train[:200, :, :, None] / 255.0).astype("float32")
    x_test = (x_test[:300, :, :, None] / 255.0).astype("float32")

    model = tfcnn.SeedCNN(seed=0)
    initial = model.get_weights()
    # The tutorial's own loss call, eagerly (a tf.function would add seconds of tracing).
    step = tfcnn.make_train_step(model, loss_path="tutorial", jit=False)
    losses = [float(step(x_train[i : i + 50], y_train[i : i + 50])) for i in range(0, 200, 50)]
    assert losses[-1] < losses[0]
    assert not np.array_equal(model.get_weights()[4], initial[4])

    np_model = tfcnn.to_npcnn(model)
    np_probs = np_model.predict(x_test)
    tf_probs = tfcnn.predict_probs(model, x_test)
    tol = single_batch_tolerance("float32")
    assert_close_to_scale(np_probs, tf_probs, tol, "MNIST test-set probabilities")
    top2 = np.sort(tf_probs, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * tol  # where rounding cannot swap the winner
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(np_probs.argmax(1)[clear], tf_probs.argmax(1)[clear])
