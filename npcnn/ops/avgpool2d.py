"""Average pooling (Keras's ``AveragePooling2D``) and global average pooling.

For an input ``x`` (N, H, W, C), window (ph, pw) and strides (sh, sw)::

    y[n, oh, ow, c] = (1 / count[oh, ow]) * sum_{i, j} x_pad[n, oh*sh + i, ow*sw + j, c]

summed over the window's cells (i, j) that lie inside the image: ``count`` is
how many they are. With 'same' padding a border window holds fewer real
cells, and Keras (TensorFlow's ``avg_pool``) averages over those only, never
over the padding. With 'valid' every window is inside, count = ph*pw.

Backward: each output's gradient is shared equally by the cells it averaged,
``dx[cell] += dy[window] / count[window]`` (the local derivative of a mean is
1/count for each of its terms). The loop version is ``npcnn/naive/avgpool2d.py``.

Global average pooling (``GlobalAveragePooling2D``) is the mean over H and W:
(N, H, W, C) -> (N, C); its backward spreads dy / (H*W) over every cell.
"""

from __future__ import annotations

from typing import NamedTuple

from ..backend import get_array_module
from ..validation import check_float, check_rank
from .maxpool2d import pool_geometry
from .windows import pad_nhwc, tap_view


class AvgPool2DCache(NamedTuple):
    """What the backward pass needs from the forward pass."""

    x_shape: tuple  # (N, H, W, C)
    count: object  # (1, H_out, W_out, 1): the real cells of each window
    pads: tuple  # ((top, bottom), (left, right))
    strides: tuple  # (sh, sw)
    out_hw: tuple  # (H_out, W_out)
    taps: list  # the window's cells (i, j)


def avgpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    """Mean over each pooling window's cells inside the image.

    Args as :func:`npcnn.ops.maxpool2d_forward`. Returns y (N, H_out, W_out, C)
    and the cache for :func:`avgpool2d_backward`.
    """
    pool, strides, pads, out_hw = pool_geometry(x, pool_size, strides, padding)
    xp = get_array_module(x)
    taps = [(i, j) for i in range(pool[0]) for j in range(pool[1])]
    x_pad = pad_nhwc(x, pads)  # zeros: they add nothing to a sum
    inside = pad_nhwc(xp.ones((1, *x.shape[1:3], 1), dtype=x.dtype), pads)  # 1 on real cells
    total = sum(tap_view(x_pad, i, j, strides, out_hw) for i, j in taps)
    count = sum(tap_view(inside, i, j, strides, out_hw) for i, j in taps)  # real cells
    return total / count, AvgPool2DCache(x.shape, count, pads, strides, out_hw, taps)


def avgpool2d_backward(dy, cache):
    """dx: each window's dy / count added to each of its cells inside the image."""
    n, height, width, c = cache.x_shape
    if tuple(dy.shape) != (n, *cache.out_hw, c):
        raise ValueError(f"dy must have the output's shape {(n, *cache.out_hw, c)}, got {dy.shape}")
    xp = get_array_module(dy)
    (top, bottom), (left, right) = cache.pads
    dx_pad = xp.zeros((n, top + height + bottom, left + width + right, c), dtype=dy.dtype)
    share = dy / cache.count  # local derivative of a mean: 1/count for each term
    for i, j in cache.taps:
        view = tap_view(dx_pad, i, j, cache.strides, cache.out_hw)
        view += share
    return dx_pad[:, top : top + height, left : left + width, :]  # padding gets nothing


def global_avgpool2d_forward(x):
    """Mean over H and W: (N, H, W, C) -> (N, C). Returns y and the cache (x's shape)."""
    check_rank(x, 4, "x", "N, H, W, C")
    check_float(x, "x")
    return x.mean(axis=(1, 2)), x.shape


def global_avgpool2d_backward(dy, cache):
    """dx (N, H, W, C): dy / (H*W) at every cell of its channel."""
    n, height, width, c = cache
    if tuple(dy.shape) != (n, c):
        raise ValueError(f"dy must have the output's shape {(n, c)}, got {tuple(dy.shape)}")
    xp = get_array_module(dy)
    share = dy / dy.dtype.type(height * width)
    return xp.broadcast_to(share[:, None, None, :], cache).copy()
