"""Dropout (Keras's ``Dropout``): inverted dropout, identity at inference.

In training, each value is kept with probability 1 - rate and scaled by
1 / (1 - rate), or set to 0::

    keep = uniform(0, 1) >= rate            (one draw per value)
    y    = x / (1 - rate) where keep, else 0

so the expected value of y is x, and inference needs no rescaling: there
the layer passes x through unchanged. Backward: dx = dy * keep / (1 - rate),
the same mask and scale (the local derivative of y wrt x).

The mask comes from a ``numpy.random.Generator`` the caller owns (the layer's,
seeded): the same seed gives the same masks, run after run.
"""

from __future__ import annotations

from ..backend import get_array_module
from ..validation import check_float


def dropout_forward(x, rate, rng):
    """Training-mode dropout of ``x`` (any shape). Returns y and the cache (keep, scale)."""
    check_float(x, "x")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"rate must be a number in [0, 1), got {rate!r}")
    xp = get_array_module(x)
    keep = rng.random(x.shape) >= rate  # drawn on the host, so the seed alone decides
    scale = x.dtype.type(1 / (1 - rate))  # in x's dtype (a float64 scalar upcasts float32)
    keep = xp.asarray(keep)
    return xp.where(keep, x * scale, 0), (keep, scale)  # 0, not x*0: inf stays out


def dropout_backward(dy, cache):
    """dx = dy / (1 - rate) where the value was kept, else 0."""
    keep, scale = cache
    if dy.shape != keep.shape:
        raise ValueError(f"dy must have the output's shape {keep.shape}, got {dy.shape}")
    return get_array_module(dy).where(keep, dy * scale, 0)
