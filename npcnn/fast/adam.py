"""Keras's Adam update, in place and in cache-sized chunks (fast tier).

Same operations in the same order as ``npcnn/ops/adam.py`` (so the same
numbers, bit for bit), but written into the parameter's own memory, slice by
slice, with two scratch buffers instead of a new array per operation; the
slices are shared out over threads (``threads.py``).

How big a slice: alone, a thread works on slices that stay in its core's cache
(``CHUNK_BYTES``). Shared over threads, the slices are four times bigger
(``SHARED_CHUNK_BYTES``): each of the update's twelve NumPy calls per slice
takes Python's GIL as it starts and as it ends, and two threads making
hundreds of short calls keep waiting for each other's GIL (on a virtual
machine, each wait can cost a sleep and a wake-up of the core). The seed
network's dense1 update (3.2 M weights) on the 2-core AMD EPYC took, on two
threads, 3.9-4.1 ms with 256 KiB slices against 2.75 with 1 MiB ones (in
another hour, with cheaper wake-ups, 2.60 against 2.76), on one thread 3.8-4.0
against 4.0-4.1; the training step at batch 50 on two threads took 21.5 ms
against 22.6 (float64: 44.3 against 46.7).
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .threads import get_threads, split_batch

CHUNK_BYTES = 1 << 18  # bytes per in-place slice of each array, one thread (256 KiB: in L2)
SHARED_CHUNK_BYTES = 1 << 20  # the same, when threads share the update: fewer, longer calls


def adam_update(p, g, m, v, alpha, one_minus_b1, one_minus_b2, eps):
    """One Adam step on parameter ``p`` with gradient ``g`` and moments ``m``, ``v``, in place.

    Args are as in :func:`npcnn.ops.adam.adam_update`; the scalars are already
    in the parameter's dtype.
    """
    xp = get_array_module(p)
    if not p.flags.c_contiguous:  # reshape(-1) below must be a view of p
        raise ValueError(f"Adam updates parameters in place; got a non-contiguous {p.shape}")
    p, g, m, v = p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)
    size = SHARED_CHUNK_BYTES if get_threads() > 1 else CHUNK_BYTES  # see the module docstring
    chunk = size // p.itemsize if xp is np else max(p.size, 1)  # on the GPU, one slice

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
