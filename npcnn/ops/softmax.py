"""Softmax over the last axis, numerically stable."""

from __future__ import annotations

from ..backend import get_array_module
from ..validation import check_float


def softmax(z):
    """p[..., k] = exp(z[..., k]) / sum_j exp(z[..., j]), over the last axis.

    Subtracting the row maximum first changes nothing mathematically (the
    factor exp(-max) cancels) but keeps exp() from overflowing.
    """
    xp = get_array_module(z)
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z):
    """log(softmax(z)) computed as z - max - log(sum exp(z - max)), without log(0)."""
    xp = get_array_module(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_forward(z):
    """Softmax of logits ``z`` (..., K) over the last axis. Returns p and the cache (p)."""
    check_float(z, "z")
    if z.ndim < 1 or z.shape[-1] == 0:
        raise ValueError(f"z must have a non-empty last (class) axis, got shape {tuple(z.shape)}")
    p = softmax(z)
    return p, p


def softmax_backward(dp, cache):
    """dz = p * (dp - sum_k dp_k p_k), the softmax Jacobian applied to dp.

    From dp_k/dz_j = p_k (1[k=j] - p_j): dz_j = sum_k dp_k p_k (1[k=j] - p_j)
    = p_j (dp_j - sum_k dp_k p_k).
    """
    p = cache
    if dp.shape != p.shape:
        raise ValueError(f"dp must have the output's shape {tuple(p.shape)}, got {tuple(dp.shape)}")
    return p * (dp - (dp * p).sum(axis=-1, keepdims=True))
