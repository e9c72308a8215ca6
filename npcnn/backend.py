"""Which array library runs the math: NumPy by default, CuPy for CuPy arrays.

Every op starts with ``xp = get_array_module(x)`` and then writes ``xp.zeros``,
``xp.maximum``... instead of ``np.zeros``. That is the whole GPU mechanism: the
same lines of math run on NumPy arrays (CPU) or CuPy arrays (GPU), and nothing
imports CuPy unless it is handed a CuPy array.
"""

from __future__ import annotations

import numpy as np


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    for a in arrays:
        if type(a).__module__.split(".")[0] == "cupy":
            import cupy  # imported only when a CuPy array is already in hand

            return cupy
    return np


def to_numpy(a):
    """Copy an array to the host as a NumPy array (a no-op for NumPy arrays)."""
    if type(a).__module__.split(".")[0] == "cupy":
        return a.get()
    return np.asarray(a)


def to_device(a, xp):
    """Move a host array onto the array module ``xp`` (NumPy or CuPy)."""
    return a if xp is np else xp.asarray(a)


def require_cupy():
    """Import CuPy for ``--device gpu``, with a clear error when it or a GPU is missing."""
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            "--device gpu needs CuPy: pip install 'npcnn[gpu]' (or the cupy wheel for your CUDA)"
        ) from exc
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or no device
        raise RuntimeError(f"--device gpu: CuPy found no usable GPU ({exc})") from exc
    return cupy
