"""Argument checks shared by every tier, the layers, the model and training.

Clear ``ValueError`` messages for bad input: each names the argument, what it
should be and what it got (shapes, dtypes, values). These helpers only validate
and normalise arguments; the math lives in the op modules.
"""

from __future__ import annotations

import argparse
import math
import os

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

    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if is_int(value):
        pair = (int(value), int(value))
    else:
        # a string, a float or a pair holding non-ints (2.5, '2') is rejected, not truncated
        items = tuple(value) if isinstance(value, (tuple, list, np.ndarray)) else ()
        if len(items) != 2 or not all(is_int(v) for v in items):
            raise ValueError(f"{name} must be an int or an (h, w) pair of ints, got {value!r}")
        pair = (int(items[0]), int(items[1]))
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return pair


def positive_int(value, name: str) -> int:
    """``value`` as an int >= 1; a bool, a float (even 3.0) or a string is refused by name."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def non_negative_int(value, name: str) -> int:
    """``value`` as an int >= 0; a bool, a float or a string is refused by name."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return int(value)


def check_bool(value, name: str) -> bool:
    """``value`` as a Python bool if it is a ``bool`` or ``numpy.bool_``.

    Anything else -- the string 'False' (which is truthy), 0, 1, None, a
    one-element array -- raises ``ValueError`` naming ``name`` and the value.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def normalize_padding(padding) -> str:
    """Accept 'same'/'valid' in any case; reject anything else by name."""
    word = str(padding).lower()
    if word not in PADDINGS:
        raise ValueError(f"padding must be 'same' or 'valid' (any case), got {padding!r}")
    return word


def check_conv2d_args(x, w, b):
    """Shapes and dtypes of a convolution's arguments, with errors that name them."""
    check_rank(x, 4, "x", "N, H, W, Cin")
    check_rank(w, 4, "w", "kh, kw, Cin, Cout")
    check_rank(b, 1, "b", "Cout")
    check_float(x, "x")
    check_same_dtype(x, w, "x", "w")
    check_same_dtype(x, b, "x", "b")
    if w.shape[2] != x.shape[3]:
        raise ValueError(
            f"channel mismatch: x has {x.shape[3]} input channels (shape {tuple(x.shape)}) "
            f"but w expects {w.shape[2]} (shape {tuple(w.shape)})"
        )
    if b.shape[0] != w.shape[3]:
        raise ValueError(
            f"b must have shape ({w.shape[3]},) to match w {tuple(w.shape)}, got {tuple(b.shape)}"
        )


# check_conv2d_args's shape, kept apart: each names its own axes in its messages.
def check_dense_args(x, w, b):
    """Shapes and dtypes of a dense layer's arguments, with errors that name them."""
    check_rank(x, 2, "x", "N, Din")
    check_rank(w, 2, "w", "Din, Dout")
    check_rank(b, 1, "b", "Dout")
    check_float(x, "x")
    check_same_dtype(x, w, "x", "w")
    check_same_dtype(x, b, "x", "b")
    if x.shape[1] != w.shape[0]:
        raise ValueError(
            f"x has {x.shape[1]} features (shape {tuple(x.shape)}) "
            f"but w expects {w.shape[0]} (shape {tuple(w.shape)})"
        )
    if b.shape[0] != w.shape[1]:
        raise ValueError(
            f"b must have shape ({w.shape[1]},) to match w {tuple(w.shape)}, got {tuple(b.shape)}"
        )


# ---- argparse types: every number is checked before any work starts --------------------
def number_type(parse, accept, expected: str):
    """An argparse type: ``parse(text)`` (``int`` or ``float``), refused unless
    ``accept(value)``, with the message "expected <expected>, got '<text>'"."""

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return convert


COUNT = number_type(int, lambda n: n >= 1, "a positive integer")  # steps, batch sizes, limits
SEED = number_type(int, lambda n: n >= 0, "an integer >= 0")
RATE = number_type(float, lambda x: math.isfinite(x) and x > 0, "a finite positive number")


def check_unique_names(names, what) -> None:
    """Raise ``ValueError`` naming every name that occurs more than once in ``names``."""
    seen, repeated = set(), []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    if repeated:
        raise ValueError(
            f"{what} must be unique, but {', '.join(map(repr, repeated))} occurs more than "
            "once: weights are stored by name, so one of them would be lost; give each layer "
            "its own name= (or none: unnamed layers are numbered conv2d, conv2d_1, ...)"
        )


def check_writable_file(path, what: str) -> None:
    """Raise ``ValueError`` unless a file can be written at ``path`` (checked up front).

    ``path`` must not be a directory, and its nearest existing ancestor must be
    a directory we may write into (missing folders are created on write).
    """
    if not path:
        raise ValueError(f"{what}: empty path")
    if os.path.isdir(path):
        raise ValueError(f"{what} {path} is a directory; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"{what} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {path}: cannot write into {parent} (permission denied)")


def check_writable_dir(path, what: str) -> None:
    """Raise ``ValueError`` unless ``path`` is, or can be created as, a writable directory."""
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ValueError(f"{what} {path} exists and is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ValueError(f"{what} {path}: permission denied")
        return
    check_writable_file(path, what)
