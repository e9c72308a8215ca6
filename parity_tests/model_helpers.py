"""What the whole-model parity tests share (``test_model_parity.py`` and
``test_generated_models.py``): npcnn's loss and gradients of one batch, and the
check of a training trajectory against TensorFlow's."""

from __future__ import annotations

import numpy as np

from npcnn import ops

PARAM_NAMES = [
    f"{layer}/{kind}"
    for layer in ("conv1", "conv2", "dense1", "dense2")
    for kind in ("kernel", "bias")
]


def npcnn_loss_and_grads(np_model, images, labels, from_logits=False):
    """(output, loss, grads) of npcnn's cross-entropy, summed over the batch: from the
    model's probabilities (Keras's clipping path), or from its logits."""
    out = np_model.forward(images)
    loss, cache = ops.sparse_categorical_crossentropy_forward(
        out, labels, from_logits=from_logits, reduction="sum"
    )
    np_model.backward(ops.sparse_categorical_crossentropy_backward(np.ones((), out.dtype), cache))
    return out, loss, [g.copy() for g in np_model.grads]


def trajectory_mismatches(
    losses, weights, tf_losses, tf_weights, tol, names=PARAM_NAMES
) -> list[str]:
    """Every way (npcnn losses, weights) break the trajectory tolerance ``tol``;
    ``names`` names the weight arrays (SeedCNN's by default)."""
    assert len(names) == len(weights) == len(tf_weights), "one name per weight array"
    problems = []
    loss_err = np.abs(np.subtract(losses, tf_losses)) / np.abs(tf_losses)
    if not loss_err.max() <= tol["loss_rtol"]:
        step = int(np.argmax(loss_err))
        problems.append(f"loss at step {step} off by {loss_err[step]:.3g} relative")
    for name, w, tf_w in zip(names, weights, tf_weights):
        bound = tol["weight_tol"] * (np.abs(tf_w).max() if tol["weight_tol_relative"] else 1.0)
        diff = np.abs(w.astype(np.float64) - tf_w).max()
        if not diff <= bound:
            problems.append(f"{name} weights off by {diff:.3g} > {bound:.3g}")
    return problems
