"""Weight initialisers with Keras's fan rules, drawn from a ``numpy.random.Generator``.

``glorot_uniform`` draws from U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)):

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


def zeros(shape, rng: np.random.Generator | None = None, dtype="float32"):
    """All zeros (Keras's default bias initialiser). ``rng`` is unused."""
    return np.zeros(shape, dtype=dtype)
