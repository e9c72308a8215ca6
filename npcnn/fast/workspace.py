"""Buffers a block reuses from step to step (speed only).

NumPy gets a big array (conv2's im2col matrix is 31 MB in float32, 63 MB in
float64; its width windows 4 MB) from fresh pages of the OS every time, and
touching them costs more than the work done in them (10-40% of a float64
step, varying call to call). A block keeps its buffers in a ``workspace``
dict and asks for them here: the same memory every step, already mapped and
often still in the CPU's caches.
"""

from __future__ import annotations

from ..backend import get_array_module


def reusable(workspace, name, shape, dtype, xp):
    """An uninitialised array for ``name``: the one kept in ``workspace`` (a dict)
    when its shape, dtype and array library match, else a new one, kept there;
    a new one each call when ``workspace`` is None."""
    shape = tuple(shape)
    if workspace is None:
        return xp.empty(shape, dtype=dtype)
    array = workspace.get(name)
    fits = array is not None and array.shape == shape and array.dtype == dtype
    if not (fits and get_array_module(array) is xp):
        array = workspace[name] = xp.empty(shape, dtype=dtype)
    return array


def zeroed(workspace, name, shape, dtype, xp):
    """:func:`reusable`, filled with zeros."""
    array = reusable(workspace, name, shape, dtype, xp)
    array.fill(0)
    return array
