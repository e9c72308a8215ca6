"""2-D max-pooling, fast: the running max over the window's taps is taken in place,
in one array, instead of a new array per tap, the batch split over threads. Same numbers as
``npcnn/ops/maxpool2d.py``, whose backward pass (first maximum wins, as in
TensorFlow) is re-used as is.
"""

from __future__ import annotations

from ..backend import get_array_module
from ..ops.maxpool2d import MaxPool2DCache, maxpool2d_backward, pool_geometry
from ..ops.windows import tap_view
from .padding import pad_nhwc
from .threads import split_batch

__all__ = ["maxpool2d_forward", "maxpool2d_backward", "window_max"]


def maxpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """``npcnn.ops.maxpool2d_forward``: y (N, H_out, W_out, C) and the cache."""
    pool, strides, pads, out_hw = pool_geometry(x, pool_size, strides, padding)
    xp = get_array_module(x)
    x_pad = pad_nhwc(x, pads, value=-xp.inf)  # -inf: a padded cell never wins the max
    taps = [(i, j) for i in range(pool[0]) for j in range(pool[1])]  # row-major order
    y = window_max(x_pad, taps, strides, out_hw)
    return y, MaxPool2DCache(x.shape, x_pad, y, pads, strides, out_hw, taps)


def window_max(x_pad, taps, strides, out_hw):
    """The max over the taps of every window, y (N, H_out, W_out, C), in one array;
    the batch split over threads (``threads.py``)."""
    xp = get_array_module(x_pad)
    windows = [tap_view(x_pad, i, j, strides, out_hw) for i, j in taps]  # views, no copies
    y = xp.empty(windows[0].shape, dtype=x_pad.dtype)

    def running_max(lo, hi):  # images lo..hi-1
        part = y[lo:hi]
        part[...] = windows[0][lo:hi]
        for window in windows[1:]:
            xp.maximum(part, window[lo:hi], out=part)  # running max, in place

    split_batch(running_max, y.shape[0], x_pad.size, xp)
    return y
