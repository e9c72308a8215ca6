"""Fully connected layer, fast: the bias is added in place (no second (N, Dout) array).

The backward pass is the readable one (``npcnn/ops/dense.py``), re-used as is.
"""

from __future__ import annotations

from ..ops.dense import DenseCache, dense_backward
from ..validation import check_dense_args

__all__ = ["dense_forward", "dense_backward"]


def dense_forward(x, w, b):
    """``npcnn.ops.dense_forward`` (y = x @ w + b and the cache), with b added in place."""
    check_dense_args(x, w, b)
    y = x @ w
    y += b  # in place: no second (N, Dout) array
    return y, DenseCache(x, w)
