"""Keras's Adam update, in place and in cache-sized chunks (fast tier).

Same operations in the same order as ``npcnn/ops/adam.py`` (so the same
numbers, bit for bit), but written into the parameter's own memory, slice by
slice, with two scratch buffers instead of a new array per operation; the
slices are shared out over threads (``threads.py``).
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .threads import split_batch

CHUNK_BYTES = 1 << 18  # bytes per in-place slice of each array (256 KiB): six such fit a core's L2


def adam_update(p, g, m, v, alpha, one_minus_b1, one_minus_b2, eps):
    """One Adam step on parameter ``p`` with gradient ``g`` and moments ``m``, ``v``, in place.

    Args are as in :func:`npcnn.ops.adam.adam_update`; the scalars are already
    in the parameter's dtype.
    """
    xp = get_array_module(p)
    if not p.flags.c_contiguous:  # reshape(-1) below must be a view of p
        raise ValueError(f"Adam updates parameters in place; got a non-contiguous {p.shape}")
    p, g, m, v = p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)
    chunk = CHUNK_BYTES // p.itemsize if xp is np else max(p.size, 1)  # on the GPU, one slice

    def work(lo, hi):  # chunks lo..hi-1
        _update_slices(
            xp, p, g, m, v, lo * chunk, hi * chunk, chunk, alpha, one_minus_b1, one_minus_b2, eps
        )

    split_batch(work, -(-p.size // chunk), p.size, xp)  # chunks over threads (``threads.py``)


def _update_slices(xp, p, g, m, v, start, stop, chunk, alpha, one_minus_b1, one_minus_b2, eps):
    """The update on elements start..stop-1 of the flat arrays, ``chunk`` at a time."""
    stop = min(stop, p.size)
    tmp = xp.empty(min(chunk, stop - start), dtype=p.dtype)
    step = xp.empty_like(tmp)
    for first in range(start, stop, chunk):
        s = slice(first, min(first + chunk, stop))
        ps, gs, ms, vs = p[s], g[s], m[s], v[s]
        tmp_s, step_s = tmp[: ps.size], step[: ps.size]
        xp.subtract(gs, ms, out=tmp_s)  # m += (g - m) * (1 - b1)
        tmp_s *= one_minus_b1
        ms += tmp_s
        xp.multiply(gs, gs, out=tmp_s)  # v += (g*g - v) * (1 - b2)
        tmp_s -= vs
        tmp_s *= one_minus_b2
        vs += tmp_s
        xp.sqrt(vs, out=tmp_s)  # w -= m * alpha / (sqrt(v) + epsilon)
        tmp_s += eps
        xp.multiply(ms, alpha, out=step_s)
        step_s /= tmp_s
        ps -= step_s
