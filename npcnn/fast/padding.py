"""Padding, fast: ``npcnn.ops.windows.pad_nhwc`` (read that first) without
``np.pad``'s general machinery: one empty array, its border filled with the
value, the images copied inside, the batch split over threads (``threads.py``).
The same array, element for element.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..ops import windows as readable
from .threads import split_batch


def pad_nhwc(x, pads, value=0.0):
    """``npcnn.ops.windows.pad_nhwc``: ``x`` (N, H, W, C) with ``pads`` =
    ((top, bottom), (left, right)) cells of ``value`` around H and W."""
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    if get_array_module(x) is not np:
        return readable.pad_nhwc(x, pads, value)
    n, height, width, channels = x.shape
    out = np.empty((n, top + height + bottom, left + width + right, channels), dtype=x.dtype)
    rows = slice(top, top + height)

    def fill(lo, hi):  # images lo..hi-1
        part = out[lo:hi]
        part[:, :top] = value  # the border: rows above and below ...
        part[:, top + height :] = value
        part[:, rows, :left] = value  # ... and columns left and right of the image
        part[:, rows, left + width :] = value
        part[:, rows, left : left + width] = x[lo:hi]  # the image inside

    split_batch(fill, n, out.size)
    return out
