"""Optimizers that update parameter arrays in place: ``SGD`` and Keras's ``Adam``.

Use them as in Keras::

    model.backward(dloss)
    optimizer.apply_gradients(zip(model.grads, model.params))
"""

from __future__ import annotations

import numpy as np

from .backend import get_array_module, to_device, to_numpy
from .layers import kernels_module


class SGD:
    """Plain gradient descent: w -= learning_rate * g."""

    def __init__(self, learning_rate=0.01):
        self.learning_rate = learning_rate
        self.iterations = 0

    def apply_gradients(self, grads_and_params):
        for g, p in grads_and_params:
            p -= p.dtype.type(self.learning_rate) * g
        self.iterations += 1

    def get_state(self) -> dict:
        return {"iterations": np.array(self.iterations)}

    def set_state(self, state: dict, params=None) -> None:
        self.iterations = int(state["iterations"])


class Adam:
    """Adam with Keras's exact update (``keras.optimizers.Adam``).

    At step t (1, 2, ...), for each parameter w with gradient g::

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m += (g - m) * (1 - beta_1)          # running mean of g
        v += (g*g - v) * (1 - beta_2)        # running mean of g^2
        w -= m * alpha / (sqrt(v) + epsilon)

    Note where epsilon sits: Keras adds it to sqrt(v) *without* bias-correcting
    v first (the paper adds it to sqrt(v_hat)). With Keras's eps = 1e-7 the two
    differ visibly early in training. Everything is computed in the
    parameters' dtype, as Keras does. The update itself is ``adam_update`` of
    the ``kernels`` module: ``npcnn/ops/adam.py`` is those three lines;
    ``npcnn.fast`` (the default) computes the same numbers in place.
    """

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7, kernels="fast"):
        self.kernels = kernels_module(kernels)
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.iterations = 0
        self.m: list = []  # first moments, one per parameter
        self.v: list = []  # second moments

    def apply_gradients(self, grads_and_params):
        pairs = list(grads_and_params)
        if not self.m:
            self.m = [get_array_module(p).zeros_like(p) for _, p in pairs]
            self.v = [get_array_module(p).zeros_like(p) for _, p in pairs]
        if len(self.m) != len(pairs):
            raise ValueError(f"Adam was built for {len(self.m)} parameters, got {len(pairs)}")
        self.iterations += 1
        for (g, p), m, v in zip(pairs, self.m, self.v):
            self._update(p, g, m, v)

    def _update(self, p, g, m, v):
        f = p.dtype.type  # compute the scalars in the parameter's dtype, as Keras does
        t = f(self.iterations)
        # Rounding exactly as Keras (TF backend) does, bit for bit: lr lives in a
        # float32 variable and the betas inside alpha pass through float32 before
        # the cast to p's dtype, while 1 - beta is computed in Python (float64)
        # and rounded once; f(1) - f(b) would differ by ~1e-5 relative in float32.
        lr, b1, b2 = (f(np.float32(h)) for h in (self.learning_rate, self.beta_1, self.beta_2))
        one_minus_b1, one_minus_b2 = f(1 - self.beta_1), f(1 - self.beta_2)
        eps = f(self.epsilon)
        alpha = lr * np.sqrt(f(1) - b2**t) / (f(1) - b1**t)
        self.kernels.adam_update(p, g, m, v, alpha, one_minus_b1, one_minus_b2, eps)

    def get_state(self) -> dict:
        """Host arrays for a checkpoint: iterations, m_0.., v_0.."""
        state = {"iterations": np.array(self.iterations)}
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            state[f"m_{i}"], state[f"v_{i}"] = to_numpy(m), to_numpy(v)
        return state

    def set_state(self, state: dict, params) -> None:
        """Restore from :meth:`get_state`; ``params`` gives the shapes and device."""
        self.iterations = int(state["iterations"])
        self.m, self.v = [], []
        if self.iterations == 0 and "m_0" not in state:
            return
        for i, p in enumerate(params):
            xp = get_array_module(p)
            self.m.append(to_device(np.asarray(state[f"m_{i}"], dtype=p.dtype), xp))
            self.v.append(to_device(np.asarray(state[f"v_{i}"], dtype=p.dtype), xp))
