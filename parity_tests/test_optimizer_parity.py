"""SGD (momentum, Nesterov), RMSprop and Adam, with a constant learning rate or
Keras's cosine schedule, against Keras's optimizers, step by step.

The same parameters and gradients go to ``keras.optimizers.SGD``/``RMSprop``
(TensorFlow backend, eager) and to npcnn's; after every step the parameters
must be equal bit for bit: npcnn computes each update with the same
operations, in the same order and dtype (the learning rate through float32,
as Keras keeps it in a float32 variable). Halfway through, npcnn's optimizer
is saved (``get_state``) into a fresh one, which must carry on identically.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import npcnn  # noqa: E402

STEPS = 6
SHAPES = [(3, 3, 2, 4), (4,), (7, 3)]


def cosine(m):
    """The same cosine schedule, npcnn's (m is npcnn) or Keras's (m is keras.optimizers);
    it ends two steps before the run, so the rate held at its floor is compared too."""
    schedules = npcnn.schedules if m is npcnn else m.schedules
    return schedules.CosineDecay(0.05, STEPS - 2, alpha=0.1)


CASES = {  # name -> (npcnn optimizer, Keras optimizer), the same arguments
    "sgd": lambda m: m.SGD(learning_rate=0.05),
    "sgd-momentum": lambda m: m.SGD(learning_rate=0.05, momentum=0.9),
    "sgd-nesterov": lambda m: m.SGD(learning_rate=0.03, momentum=0.8, nesterov=True),
    "rmsprop": lambda m: m.RMSprop(learning_rate=0.01),
    "rmsprop-momentum": lambda m: m.RMSprop(learning_rate=0.01, rho=0.8, momentum=0.7),
    "sgd-momentum-cosine": lambda m: m.SGD(learning_rate=cosine(m), momentum=0.9),
    "rmsprop-cosine": lambda m: m.RMSprop(learning_rate=cosine(m)),
    "adam-cosine": lambda m: m.Adam(learning_rate=cosine(m)),
}


def keras_run(case, params, grads, dtype):
    variables = [tf.Variable(p.astype(dtype)) for p in params]
    optimizer = CASES[case](keras.optimizers)
    history = []
    for step_grads in grads:
        optimizer.apply_gradients(
            [(tf.constant(g.astype(dtype)), v) for g, v in zip(step_grads, variables)]
        )
        history.append([v.numpy() for v in variables])
    return history


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES)
def test_optimizer_matches_keras_bit_for_bit(case, dtype):
    rng = np.random.default_rng(7)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    expected = keras_run(case, params, grads, dtype)
    ours = [p.astype(dtype) for p in params]
    optimizer = CASES[case](npcnn)
    for step, step_grads in enumerate(grads):
        if step == STEPS // 2:  # a checkpoint: a fresh optimizer from the saved state
            state = optimizer.get_state()
            optimizer = CASES[case](npcnn)
            optimizer.set_state(state, ours)
        optimizer.apply_gradients([(g.astype(dtype), p) for g, p in zip(step_grads, ours)])
        for i, (a, b) in enumerate(zip(ours, expected[step])):
            np.testing.assert_array_equal(a, b, err_msg=f"step {step + 1}, parameter {i}")
