"""Input checks shared by the ops: clear ``ValueError`` messages for bad input.

These helpers only validate and normalise arguments; the math lives in the op
modules. Every message names the argument and the shapes involved.
"""

from __future__ import annotations

import numpy as np

PADDINGS = ("same", "valid")


def check_float(x, name: str) -> None:
    """Reject arrays that are not floating point (ints, bools, objects)."""
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be a floating-point array, got dtype {x.dtype}")


def check_rank(x, rank: int, name: str, layout: str) -> None:
    """Reject an array whose number of axes is not ``rank`` (layout e.g. 'N,H,W,C')."""
    if x.ndim != rank:
        raise ValueError(f"{name} must have {rank} axes ({layout}), got shape {tuple(x.shape)}")


def check_same_dtype(a, b, name_a: str, name_b: str) -> None:
    """TensorFlow refuses to mix float32 and float64; so do we."""
    if a.dtype != b.dtype:
        raise ValueError(f"{name_a} and {name_b} must share a dtype, got {a.dtype} and {b.dtype}")


def as_pair(value, name: str) -> tuple[int, int]:
    """Normalise an int or an (h, w) pair of positive ints to a tuple (h, w)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    else:
        try:
            pair = tuple(int(v) for v in value)
        except TypeError:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}") from None
        if len(pair) != 2:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return pair


def normalize_padding(padding) -> str:
    """Accept 'same'/'valid' in any case; reject anything else by name."""
    word = str(padding).lower()
    if word not in PADDINGS:
        raise ValueError(f"padding must be 'same' or 'valid' (any case), got {padding!r}")
    return word
