"""Buffers a block reuses from step to step (speed only).

NumPy gets a big array (conv2's im2col matrix is 31 MB in float32, 63 MB in
float64; its width windows 4 MB) from fresh pages of the OS every time, and
touching them costs more than the work done in them (10-40% of a float64
step, varying call to call). A block keeps its buffers in a ``workspace``
dict and asks for them here: the same memory every step, already mapped and
often still in the CPU's caches.
"""

from __future__ import annotations

from math import prod

from ..backend import get_array_module


def reusable(workspace, name, shape, dtype, xp):
    """An uninitialised array for ``name``: the front of the buffer kept in
    ``workspace`` (a dict) under that name when it is big enough and of that
    dtype and array library, else of a new one, kept there; a new array each
    call when ``workspace`` is None. (A part of 8 images after one of 9 reuses
    the 9's buffer.)"""
    shape = tuple(shape)
    if workspace is None:
        return xp.empty(shape, dtype=dtype)
    size = prod(shape)
    buffer = workspace.get(name)
    fits = buffer is not None and buffer.size >= size and buffer.dtype == dtype
    if not (fits and get_array_module(buffer) is xp):
        buffer = workspace[name] = xp.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)


def zeroed(workspace, name, shape, dtype, xp):
    """:func:`reusable`, filled with zeros."""
    array = reusable(workspace, name, shape, dtype, xp)
    array.fill(0)
    return array
