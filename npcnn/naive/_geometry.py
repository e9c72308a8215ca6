"""Argument checks and output sizes for the loop versions (shared arithmetic only).

The loops never call another tier's forward or backward: they get their
padding and output size from ``npcnn/ops/padding.py`` (TensorFlow's formulas)
and their argument checks from ``npcnn/validation.py``.
"""

from __future__ import annotations

from ..ops.padding import output_hw, padding_amounts
from ..validation import as_pair, check_float, check_rank, normalize_padding


def window_geometry(x, window, strides, padding, window_name="window"):
    """(window, strides, pads, (H_out, W_out)) for a window sliding over x (N, H, W, C)."""
    check_rank(x, 4, "x", "N, H, W, C")
    check_float(x, "x")
    window = as_pair(window, window_name)
    strides = as_pair(strides, "strides")
    padding = normalize_padding(padding)
    in_hw = x.shape[1:3]
    return (
        window,
        strides,
        padding_amounts(in_hw, window, strides, padding),
        output_hw(in_hw, window, strides, padding),
    )
