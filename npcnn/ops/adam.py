"""Keras's Adam update for one parameter: the three lines of the algorithm."""

from __future__ import annotations

from ..backend import get_array_module


def adam_update(p, g, m, v, alpha, one_minus_b1, one_minus_b2, eps):
    """One Adam step, written into ``p``, ``m`` and ``v`` (the optimizer's state).

    Args:
        p: the parameter (any shape); g: its gradient (same shape and dtype).
        m, v: running means of g and g*g (same shape), updated here.
        alpha: lr * sqrt(1 - beta_2**t) / (1 - beta_1**t), the step size at step t.
        one_minus_b1, one_minus_b2: 1 - beta_1 and 1 - beta_2.
        eps: Keras's epsilon, added to sqrt(v) (not to a bias-corrected sqrt(v_hat)).

    All scalars come in the parameter's dtype, so float32 work stays float32.
    """
    xp = get_array_module(p)
    m += (g - m) * one_minus_b1  # running mean of g
    v += (g * g - v) * one_minus_b2  # running mean of g^2
    p -= m * alpha / (xp.sqrt(v) + eps)  # step against the gradient, scaled per element
