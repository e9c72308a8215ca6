"""Learning-rate schedules, Keras's exactly: a learning rate that changes with the step.

An optimizer takes a schedule where it takes a number (``Adam(CosineDecay(1e-3,
6000))``, as ``keras.optimizers.Adam`` does) and asks it for the rate of each
update, giving it the number of updates made before this one (0, 1, 2, ...),
as Keras gives its optimizer's ``iterations``.

``CosineDecay`` (Loshchilov and Hutter's SGDR, without restarts) lowers the rate
along half a cosine, from ``initial_learning_rate`` at step 0 to
``alpha * initial_learning_rate`` at ``decay_steps`` and after::

    decayed(step) = (1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps)) + alpha
    lr(step)      = initial_learning_rate * decayed(step)

Large steps early, while the weights are far from a minimum; small steps at the
end, so the last updates settle into it instead of bouncing around it (a
batch-normalized network, whose test accuracy moves from epoch to epoch at a
constant rate, gains most).
"""

from __future__ import annotations

import math

import numpy as np

from .validation import positive_int

SCHEDULES = ("constant", "cosine")  # npcnn train --lr-schedule


class CosineDecay:
    """``keras.optimizers.schedules.CosineDecay(initial_learning_rate, decay_steps, alpha)``
    (no warm-up); computed in float32 as Keras computes it."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0):
        from .optimizers import check_hyperparameter

        self.initial_learning_rate = check_hyperparameter(
            initial_learning_rate, "initial_learning_rate"
        )
        self.decay_steps = positive_int(decay_steps, "decay_steps")
        self.alpha = check_hyperparameter(alpha, "alpha", 0.0, 1.0, open_low=False)

    def __call__(self, step) -> np.float32:
        """The learning rate of the update made after ``step`` updates (step >= 0)."""
        f = np.float32
        completed = f(min(step, self.decay_steps)) / f(self.decay_steps)
        cosine = f(0.5) * (f(1) + np.cos(f(math.pi) * completed))  # from 1 down to 0
        decayed = f(1 - self.alpha) * cosine + f(self.alpha)
        return f(self.initial_learning_rate) * decayed

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
        }

    def __repr__(self):
        return f"CosineDecay({self.initial_learning_rate}, {self.decay_steps}, alpha={self.alpha})"


def learning_rate_schedule(name, learning_rate, decay_steps=None):
    """``learning_rate`` as ``npcnn train --lr-schedule name`` uses it: the number itself
    ('constant') or a :class:`CosineDecay` from it to 0 over ``decay_steps`` ('cosine')."""
    if name not in SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {name!r}")
    if name == "constant":
        return learning_rate
    if decay_steps is None:
        raise ValueError("lr_schedule 'cosine' needs decay_steps (the run's number of steps)")
    return CosineDecay(learning_rate, decay_steps)
