"""Numerical gradient checking: is a hand-written backward pass right?

Central differences estimate each partial derivative::

    dL/dx_i ~= (L(x + h e_i) - L(x - h e_i)) / (2h)

with error O(h^2). We compare it with the analytic gradient by the relative
error of the CS231n notes::

    rel_error = max_i |a_i - n_i| / max(1e-8, |a_i| + |n_i|)

In float64 a correct backward gives about 1e-7 or less (kinks such as ReLU at
0 or a max-pool tie can give more if x sits within h of one); a wrong one
usually gives 1e-2 to 1. Use float64: float32 round-off swamps the difference.

Works with any callable: an op, a layer or a whole model, e.g.::

    x = rng.standard_normal((2, 5, 5, 3))
    w, b = rng.standard_normal((3, 3, 3, 4)), rng.standard_normal(4)
    y, cache = conv2d_forward(x, w, b)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = conv2d_backward(dy, cache)
    check_gradients(lambda: conv2d_forward(x, w, b)[0], {"x": (x, dx), "w": (w, dw)}, dy)
"""

from __future__ import annotations

import numpy as np


class GradientCheckError(AssertionError):
    """An analytic gradient disagrees with the numerical estimate."""


def relative_error(a, b) -> float:
    """max |a - b| / max(1e-8, |a| + |b|), elementwise; 0.0 for empty arrays."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def numerical_gradient(f, x, dout=None, h=1e-6, indices=None):
    """Central-difference estimate of the gradient of sum(dout * f()) with respect to ``x``.

    Args:
        f: a callable of no arguments whose result depends on ``x`` (it reads
           ``x``, which we perturb in place and restore).
        x: the float64 array to differentiate with respect to.
        dout: upstream gradient with the shape of f()'s result (default: ones,
           i.e. the gradient of sum(f())).
        h: the step.
        indices: optional list of index tuples to estimate (others are left 0):
           checking a random sample keeps big layers affordable.
    Returns:
        an array shaped like ``x``.
    """
    if x.dtype != np.float64:
        raise ValueError(f"numerical gradients need float64 inputs, got {x.dtype}")
    grad = np.zeros_like(x)
    for idx in indices if indices is not None else np.ndindex(*x.shape):
        old = x[idx]
        # np.array copies: f() may return a view of x (flatten, reshape), which
        # the next perturbation would change under our feet
        x[idx] = old + h
        f_plus = np.array(f(), dtype=np.float64)
        x[idx] = old - h
        f_minus = np.array(f(), dtype=np.float64)
        x[idx] = old  # restore
        diff = f_plus - f_minus
        grad[idx] = np.sum(diff if dout is None else diff * dout) / (2 * h)
    return grad


def check_gradients(f, wrt, dout=None, h=1e-6, tol=1e-6, num_checks=None, seed=0):
    """Compare analytic gradients with central differences; raise if any disagrees.

    Args:
        f: callable of no arguments returning the output (reads the arrays in ``wrt``).
        wrt: {name: (array, analytic_gradient)}; arrays must be float64.
        dout: upstream gradient for f()'s output (default ones).
        tol: the largest relative error accepted.
        num_checks: if given, check only this many random entries of each array.
    Returns:
        {name: relative error}.
    Raises:
        GradientCheckError naming the arrays whose error exceeds ``tol``.
    """
    rng = np.random.default_rng(seed)
    errors, bad = {}, []
    for name, (x, analytic) in wrt.items():
        analytic = np.asarray(analytic, dtype=np.float64)
        if analytic.shape != x.shape:
            raise ValueError(f"gradient for {name} has shape {analytic.shape}, not {x.shape}")
        if num_checks is None or num_checks >= x.size:
            indices = None
            numeric = numerical_gradient(f, x, dout, h)
            errors[name] = relative_error(analytic, numeric)
        else:
            flat = rng.choice(x.size, size=num_checks, replace=False)
            indices = [np.unravel_index(i, x.shape) for i in flat]
            numeric = numerical_gradient(f, x, dout, h, indices)
            rows = tuple(np.array(ix) for ix in zip(*indices))
            errors[name] = relative_error(analytic[rows], numeric[rows])
        if not errors[name] <= tol:
            bad.append(f"{name}: relative error {errors[name]:.3g} > {tol:g}")
    if bad:
        raise GradientCheckError("gradient check failed; " + "; ".join(bad))
    return errors


def check_model(model, x, labels, num_checks=20, h=1e-6, tol=1e-5, seed=0):
    """Gradient-check every parameter of a ``Sequential`` (float64) with a summed
    sparse cross-entropy loss on its output (probabilities). Returns {name: error}."""
    from .ops import (
        sparse_categorical_crossentropy_backward,
        sparse_categorical_crossentropy_forward,
    )

    def loss():
        return sparse_categorical_crossentropy_forward(model.forward(x), labels)[0]

    value, cache = sparse_categorical_crossentropy_forward(model.forward(x), labels)
    model.backward(sparse_categorical_crossentropy_backward(1.0, cache))
    wrt = {name: (p, g) for (name, p), g in zip(model.named_params(), model.grads)}
    return check_gradients(loss, wrt, None, h, tol, num_checks, seed)
