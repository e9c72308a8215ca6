"""Weight initialisers with Keras's fan rules, drawn from a ``numpy.random.Generator``.

``glorot_uniform`` draws from U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out));
``he_uniform`` from U(-limit, limit) with limit = sqrt(6 / fan_in); ``he_normal``
from a normal truncated at two standard deviations (values further out are drawn
again), stddev = sqrt(2 / fan_in) / 0.87962566103423978: the truncation shrinks
the spread by that factor, so the drawn values keep variance 2 / fan_in
(Keras's ``VarianceScaling(2.0, "fan_in", "truncated_normal")``). He's rules
keep the variance of a ReLU network's activations from layer to layer (ReLU
zeroes half of them); Glorot's keep it for a linear one, forward and backward.

- dense kernel (Din, Dout): fan_in = Din, fan_out = Dout;
- conv kernel (kh, kw, Cin, Cout): fan_in = kh*kw*Cin, fan_out = kh*kw*Cout.

The numbers differ from Keras's (different random generators), the
distribution is the same; a seed reproduces an npcnn model exactly.
"""

from __future__ import annotations

import math

import numpy as np


def compute_fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel, as Keras computes them."""
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[:-2])  # kh * kw for a conv kernel
    return receptive_field * shape[-2], receptive_field * shape[-1]


def glorot_uniform(shape, rng: np.random.Generator, dtype="float32"):
    """Glorot (Xavier) uniform: U(-sqrt(6/(fan_in+fan_out)), +sqrt(...))."""
    fan_in, fan_out = compute_fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def he_uniform(shape, rng: np.random.Generator, dtype="float32"):
    """He uniform: U(-sqrt(6/fan_in), +sqrt(6/fan_in))."""
    fan_in, _ = compute_fans(shape)
    limit = math.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def truncated_normal(shape, stddev, rng: np.random.Generator):
    """N(0, stddev^2) with every value beyond 2 * stddev drawn again (TensorFlow's rule)."""
    out = rng.normal(0.0, stddev, size=shape)
    outside = np.abs(out) > 2 * stddev
    while outside.any():
        out[outside] = rng.normal(0.0, stddev, size=int(outside.sum()))
        outside = np.abs(out) > 2 * stddev
    return out


def he_normal(shape, rng: np.random.Generator, dtype="float32"):
    """He normal: truncated normal with stddev sqrt(2/fan_in) / 0.87962566103423978."""
    fan_in, _ = compute_fans(shape)
    stddev = math.sqrt(2.0 / fan_in) / 0.87962566103423978  # the truncation's correction
    return truncated_normal(shape, stddev, rng).astype(dtype)


def zeros(shape, rng: np.random.Generator | None = None, dtype="float32"):
    """All zeros (Keras's default bias initialiser). ``rng`` is unused."""
    return np.zeros(shape, dtype=dtype)


KERNEL_INITIALIZERS = {
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}


def kernel_initializer(name):
    """The initialiser named ``name`` (Keras's string identifiers); ``ValueError`` otherwise."""
    if name not in KERNEL_INITIALIZERS:
        raise ValueError(
            f"kernel_initializer must be one of {', '.join(KERNEL_INITIALIZERS)}, got {name!r}"
        )
    return KERNEL_INITIALIZERS[name]
