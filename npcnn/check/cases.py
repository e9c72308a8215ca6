"""Hypothesis strategies: the cases ``npcnn check`` runs a learner's ops on.

A :class:`Case` is one call: the forward's arguments (in order) and the
upstream gradient for the backward. The strategies draw what trips learners
up: odd sizes and 1x1 images, kernels larger than the stride and kernels that
do not divide the image, strides 1..3, 'same' and 'valid', pool windows with
tied maxima, exact zeros for ReLU, huge logits for softmax, probabilities of
exactly 0 and 1 for the loss, float32 and float64. Sizes stay small, so the
shrunk failing case is small enough to print.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..ops.padding import output_length
from .learner import Seeded

DTYPES = (np.float64, np.float32)
GRID = (-1.0, 0.0, 1.0, 2.0)  # few levels: many exact ties and zeros


@dataclass(frozen=True, eq=False)
class Case:
    """One check: ``op``'s forward called with ``args``, its backward with ``upstream``."""

    op: str
    args: tuple  # the forward's positional arguments
    upstream: object  # the backward's first argument (dy, dp or dloss)

    @property
    def dtype(self):
        return self.args[0].dtype


def _floats(dtype, bound=4.0):
    width = np.dtype(dtype).itemsize * 8
    return st.floats(
        -bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=width
    )


def arrays(draw, shape, dtype, elements=None):
    """An array of ``shape``; values from ``elements`` or, half the time, from a few levels."""
    if elements is None:
        grid = draw(st.booleans())
        elements = st.sampled_from(GRID) if grid else _floats(dtype)
    return draw(hnp.arrays(np.dtype(dtype), tuple(shape), elements=elements))


def _pair_or_int(pair):
    """An int when both sides agree (the common call), else the (h, w) pair."""
    return pair[0] if pair[0] == pair[1] else pair


def _sides(draw, window, padding, extra=4):
    low = window if padding == "valid" else 1
    return draw(st.integers(low, low + extra))


def _upstream(draw, shape, dtype):
    return arrays(draw, shape, dtype, elements=_floats(dtype))


@st.composite
def elementwise_cases(draw, dtype, op="relu"):
    """An elementwise op (relu, sigmoid, tanh, leaky_relu with a drawn or the default slope)."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    x = arrays(draw, shape, dtype)
    args = (x,)
    if op == "leaky_relu" and draw(st.booleans()):
        args += (draw(st.sampled_from([0.2, 0.01, 0.5])),)
    return Case(op, args, _upstream(draw, x.shape, dtype))


@st.composite
def dropout_cases(draw, dtype):
    """Training-mode dropout: a rate (0 included) and a seeded generator for the mask; x has
    no zeros, so that a kept value shows the scaling in the forward already."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    x = arrays(draw, shape, dtype, elements=st.sampled_from([1.0, -1.0, 2.0, 0.375]))
    rate = draw(st.sampled_from([0.5, 0.25, 0.8, 0.0]))
    rng = Seeded(draw(st.integers(0, 2**16)))
    return Case("dropout", (x, rate, rng), _upstream(draw, x.shape, dtype))


@st.composite
def dense_cases(draw, dtype):
    n, d_in, d_out = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    x, w = arrays(draw, (n, d_in), dtype), arrays(draw, (d_in, d_out), dtype)
    b = arrays(draw, (d_out,), dtype)
    return Case("dense", (x, w, b), _upstream(draw, (n, d_out), dtype))


@st.composite
def flatten_cases(draw, dtype):
    shape = [draw(st.integers(1, 3))] + draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    x = arrays(draw, shape, dtype)
    features = int(np.prod(shape[1:]))
    return Case("flatten", (x,), _upstream(draw, (shape[0], features), dtype))


@st.composite
def conv2d_cases(draw, dtype, padding):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h, w_ = _sides(draw, kh, padding), _sides(draw, kw, padding)
    n, cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x = arrays(draw, (n, h, w_, cin), dtype)
    w = arrays(draw, (kh, kw, cin, cout), dtype)
    b = arrays(draw, (cout,), dtype)
    out_hw = [output_length(s, k, st_, padding) for s, k, st_ in zip((h, w_), (kh, kw), strides)]
    dy = _upstream(draw, (n, *out_hw, cout), dtype)
    return Case("conv2d", (x, w, b, _pair_or_int(strides), padding), dy)


@st.composite
def pool2d_cases(draw, dtype, padding, default_strides, op="maxpool2d"):
    """Max- or average pooling: a window, strides (or None: the window's), a padding."""
    pool = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    strides = None if default_strides else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h, w = _sides(draw, pool[0], padding), _sides(draw, pool[1], padding)
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    x = arrays(draw, (n, h, w, c), dtype)
    steps = pool if strides is None else strides
    out_hw = [output_length(s, k, st_, padding) for s, k, st_ in zip((h, w), pool, steps)]
    dy = _upstream(draw, (n, *out_hw, c), dtype)
    strides = None if strides is None else _pair_or_int(strides)
    return Case(op, (x, _pair_or_int(pool), strides, padding), dy)


@st.composite
def global_avgpool2d_cases(draw, dtype):
    n, h, w, c = (draw(st.integers(1, 3)) for _ in range(4))
    x = arrays(draw, (n, h, w, c), dtype)
    return Case("global_avgpool2d", (x,), _upstream(draw, (n, c), dtype))


@st.composite
def softmax_cases(draw, dtype):
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 5)))
    z = arrays(draw, shape, dtype)
    shift = draw(st.sampled_from([0.0, 100.0, 1000.0, -1000.0]))  # exp() overflows or underflows
    z = (z + dtype(shift)).astype(dtype)
    return Case("softmax", (z,), _upstream(draw, shape, dtype))


@st.composite
def sparse_categorical_crossentropy_cases(draw, dtype, from_logits, reduction):
    n, k = draw(st.integers(1, 3)), draw(st.integers(2, 4))
    if from_logits:
        y_pred = arrays(draw, (n, k), dtype)
    else:  # rows of probabilities, with exact zeros and ones among them
        raw = arrays(draw, (n, k), dtype, elements=st.sampled_from([0.0, 0.25, 1.0, 3.0]))
        raw[raw.sum(axis=1) == 0, 0] = 1  # every row needs some mass
        y_pred = (raw / raw.sum(axis=1, keepdims=True)).astype(dtype)
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    if reduction == "none":
        dloss = _upstream(draw, (n,), dtype)
    else:
        dloss = np.asarray(draw(_floats(dtype)), dtype=dtype)
    return Case("sparse_categorical_crossentropy", (y_pred, labels, from_logits, reduction), dloss)


@st.composite
def batchnorm_cases(draw, dtype, images):
    """Training-mode batch norm: (N, C) features or (N, H, W, C) images, 2+ values a channel
    (grid values often make a channel constant: var 0, the epsilon's case)."""
    c = draw(st.integers(1, 3))
    shape = (draw(st.integers(2, 4)), c)
    if images:
        shape = (draw(st.integers(2, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3)), c)
    x = arrays(draw, shape, dtype)
    gamma, beta = arrays(draw, (c,), dtype), arrays(draw, (c,), dtype)
    return Case("batchnorm", (x, gamma, beta, 1e-3), _upstream(draw, shape, dtype))


@st.composite
def batchnorm_inference_cases(draw, dtype, images):
    """Inference-mode batch norm: the moving statistics given (variances positive)."""
    case = draw(batchnorm_cases(dtype, images))
    x, gamma, beta, epsilon = case.args
    c = x.shape[-1]
    moving_mean = arrays(draw, (c,), dtype)
    levels = st.sampled_from([0.25, 1.0, 2.5, 4.0])
    moving_var = arrays(draw, (c,), dtype, elements=levels)
    args = (x, gamma, beta, moving_mean, moving_var, epsilon)
    return Case("batchnorm_inference", args, case.upstream)


def _grid(**choices):
    """Every combination of the choices, as keyword dicts (the first value varies slowest)."""
    combos = [{}]
    for name, values in choices.items():
        combos = [{**c, name: v} for c in combos for v in values]
    return combos


# Each op's cases come in variants (dtype, padding, ...) that are searched one after the other,
# so that every variant gets its share of cases: Hypothesis alone, given a few dozen cases,
# may never draw the rarer branch of a choice.
STRATEGIES = {
    "relu": (elementwise_cases, _grid(dtype=DTYPES)),
    "dense": (dense_cases, _grid(dtype=DTYPES)),
    "flatten": (flatten_cases, _grid(dtype=DTYPES)),
    "conv2d": (conv2d_cases, _grid(padding=("valid", "same"), dtype=DTYPES)),
    "maxpool2d": (
        pool2d_cases,
        _grid(padding=("valid", "same"), default_strides=(True, False), dtype=DTYPES),
    ),
    "softmax": (softmax_cases, _grid(dtype=DTYPES)),
    "sparse_categorical_crossentropy": (
        sparse_categorical_crossentropy_cases,
        _grid(from_logits=(True, False), reduction=("sum", "mean", "none"), dtype=DTYPES),
    ),
    "batchnorm": (batchnorm_cases, _grid(images=(False, True), dtype=DTYPES)),
    "batchnorm_inference": (
        batchnorm_inference_cases,
        _grid(images=(False, True), dtype=DTYPES),
    ),
    "dropout": (dropout_cases, _grid(dtype=DTYPES)),
    "avgpool2d": (
        pool2d_cases,
        _grid(
            op=("avgpool2d",),
            padding=("same", "valid"),
            default_strides=(True, False),
            dtype=DTYPES,
        ),
    ),
    "global_avgpool2d": (global_avgpool2d_cases, _grid(dtype=DTYPES)),
    **{
        op: (elementwise_cases, _grid(op=(op,), dtype=DTYPES))
        for op in ("leaky_relu", "sigmoid", "tanh")
    },
}


def variants(op: str):
    """The strategies of one op's variants, in the order they are searched."""
    strategy, choices = STRATEGIES[op]
    return [strategy(**c) for c in choices]


def describe_value(value, prefix: str = "", small: int = 24) -> str:
    """An argument as it reads in a report (``prefix`` is what precedes it on its line):
    small arrays in full, as code you can paste, bigger ones by shape."""
    if isinstance(value, np.ndarray):
        if value.size <= small:
            start = prefix + "np.array("
            body = np.array2string(value, separator=", ", prefix=start, max_line_width=100)
            body = "\n".join(line for line in body.splitlines() if line.strip())
            return f"np.array({body}, dtype=np.{value.dtype})"
        return f"<array of shape {value.shape}, dtype {value.dtype}>"
    return repr(value)
