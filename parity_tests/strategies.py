"""Hypothesis strategies shared by the parity tests (ops and model).

Everything here draws *named, small* values so that a shrunk counterexample
reads like a bug report: ``ConvCase(batch=1, height=3, width=2, ...)`` rather
than a seed. Arrays are drawn separately (with ``data.draw(..., label=...)``)
so Hypothesis can shrink their values towards 0.

Conventions: NHWC activations, HWIO kernels, TensorFlow's padding rules (see
``npcnn/ops/padding.py``). Nothing here imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from npcnn.ops.padding import output_length

DTYPES = (np.float32, np.float64)

# Kernels 1..5 (odd and even), strides 1..3, per axis.
WINDOW_SIDES = st.integers(min_value=1, max_value=5)
STRIDE_SIDES = st.integers(min_value=1, max_value=3)
PADDINGS = st.sampled_from(["valid", "same"])


def batch_sizes(max_size: int = 3):
    """Batch sizes 0..max_size; Hypothesis shrinks towards the empty batch."""
    return st.integers(min_value=0, max_value=max_size)


def pairs(sides):
    """(h, w) pairs whose two sides are drawn independently (non-square windows)."""
    return st.tuples(sides, sides)


def finite_floats(dtype, bound: float = 4.0):
    """Finite floats in [-bound, bound] of the given width, without subnormals.

    Subnormals are excluded because TensorFlow's CPU kernels flush them to
    zero (FTZ/DAZ) while NumPy keeps them: that is a hardware setting, not a
    difference in the math under test.
    """
    width = np.dtype(dtype).itemsize * 8
    return st.floats(
        min_value=-bound,
        max_value=bound,
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
        width=width,
    )


def float_arrays(shape, dtype, bound: float = 4.0):
    """Arrays of ``shape``/``dtype`` with finite values in [-bound, bound]."""
    return hnp.arrays(np.dtype(dtype), tuple(shape), elements=finite_floats(dtype, bound))


def grid_arrays(shape, dtype, levels=(-1.0, 0.0, 1.0, 2.0)):
    """Arrays whose values come from a few ``levels``: lots of exact ties and zeros."""
    return hnp.arrays(np.dtype(dtype), tuple(shape), elements=st.sampled_from(levels))


def label_arrays(batch: int, num_classes: int):
    """Integer class ids (batch,) in [0, num_classes), int64 like Keras casts them."""
    return hnp.arrays(np.int64, (batch,), elements=st.integers(0, num_classes - 1))


def spatial_sides(window: int, padding: str, extra: int = 4):
    """One spatial side for a window: 'valid' needs side >= window, 'same' does not."""
    low = window if padding == "valid" else 1
    return st.integers(min_value=low, max_value=low + extra)


@dataclass(frozen=True)
class WindowCase:
    """Geometry of a sliding-window op (conv2d or max-pool) on an NHWC input.

    ``channels`` is the input channel count; ``out_channels`` is used by conv2d
    only (max-pool keeps the channels).
    """

    batch: int
    height: int
    width: int
    channels: int
    window: tuple[int, int]
    strides: tuple[int, int]
    padding: str
    out_channels: int = 0

    @property
    def input_shape(self):
        return (self.batch, self.height, self.width, self.channels)

    @property
    def kernel_shape(self):
        return (*self.window, self.channels, self.out_channels)

    @property
    def output_hw(self):
        return tuple(
            output_length(n, k, s, self.padding)
            for n, k, s in zip((self.height, self.width), self.window, self.strides)
        )


@st.composite
def window_cases(draw, max_batch=3, max_channels=3, max_out_channels=0, paddings=PADDINGS):
    """A :class:`WindowCase`: window 1..5 per axis, strides 1..3 per axis, a padding,
    a batch (0 allowed), channels, and a spatial size valid for that padding.

    With ``max_out_channels > 0`` an output channel count is drawn too (conv2d).
    """
    window = draw(pairs(WINDOW_SIDES))
    strides = draw(pairs(STRIDE_SIDES))
    padding = draw(paddings)
    height = draw(spatial_sides(window[0], padding))
    width = draw(spatial_sides(window[1], padding))
    out_channels = draw(st.integers(1, max_out_channels)) if max_out_channels else 0
    return WindowCase(
        batch=draw(batch_sizes(max_batch)),
        height=height,
        width=width,
        channels=draw(st.integers(1, max_channels)),
        window=window,
        strides=strides,
        padding=padding,
        out_channels=out_channels,
    )


def _same_total(n: int, k: int, s: int) -> int:
    """Cells of 'same' padding along one axis (npcnn/ops/padding.py's formula)."""
    return max((output_length(n, k, s, "same") - 1) * s + k - n, 0)


# Every (side, window, stride) with side <= 8 where 'same' padding is uneven:
# the odd extra cell goes bottom/right. Hypothesis alone rarely draws this on
# both axes at once, so asymmetric_same_cases samples from this list.
UNEVEN_SAME_AXES = tuple(
    (n, k, s)
    for k in range(1, 6)
    for s in range(1, 4)
    for n in range(1, 9)
    if _same_total(n, k, s) % 2 == 1
)


@st.composite
def asymmetric_same_cases(draw, max_batch=2, max_channels=2, max_out_channels=0):
    """'same' geometries where TensorFlow pads unevenly on *both* axes."""
    height, kh, sh = draw(st.sampled_from(UNEVEN_SAME_AXES))
    width, kw, sw = draw(st.sampled_from(UNEVEN_SAME_AXES))
    out_channels = draw(st.integers(1, max_out_channels)) if max_out_channels else 0
    return WindowCase(
        batch=draw(st.integers(1, max_batch)),
        height=height,
        width=width,
        channels=draw(st.integers(1, max_channels)),
        window=(kh, kw),
        strides=(sh, sw),
        padding="same",
        out_channels=out_channels,
    )


# ---- whole models (test_generated_models.py) ----------------------------------------------
# Kernels 1..6 (odd and even), strides 1..3, pools 2..3 with strides 1..3,
# inputs 5..20 pixels wide with 1..3 channels, 1..3 conv blocks and 0..2 hidden Dense layers.
MODEL_KERNEL_SIDES = (1, 6)
MODEL_POOL_SIDES = (2, 3)
MODEL_SIDES = (5, 20)
TO_FLAT = ("Flatten()", "Reshape((n,))", "Reshape((-1,))")  # how the features become a vector


@dataclass(frozen=True)
class PoolSpec:
    """``MaxPooling2D(pool_size, strides, padding)``."""

    pool_size: tuple[int, int]
    strides: tuple[int, int]
    padding: str


@dataclass(frozen=True)
class ConvSpec:
    """``Conv2D(filters, kernel_size, strides, padding, activation)``, then ``pool`` if any."""

    filters: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int]
    padding: str
    activation: str  # 'relu' or 'linear'
    pool: PoolSpec | None = None


@dataclass(frozen=True)
class DenseSpec:
    """A hidden ``Dense(units, activation)``."""

    units: int
    activation: str  # 'relu' or 'linear'


@dataclass(frozen=True)
class ModelSpec:
    """A whole Keras model npcnn supports, as drawn by :func:`model_specs`.

    Layers: ``blocks`` (each a Conv2D, maybe a MaxPooling2D), ``to_flat``
    (``Flatten()``, ``Reshape((n,))`` with n computed, or ``Reshape((-1,))``),
    the hidden ``dense`` layers, and the head: ``Dense(classes,
    activation='softmax')`` (``head='softmax'``: probabilities, the loss takes
    Keras's clipping path) or ``Dense(classes)`` (``head='logits'``: the loss
    is computed from logits). ``batch`` images and labels and every initial
    weight come from ``seed``; ``pixels='grid'`` images take only the values
    -1, 0, 1, 2 (equal receptive fields give exact ties in the max-pools),
    'normal' ones are drawn from N(0, 1).
    """

    input_shape: tuple[int, int, int]
    blocks: tuple[ConvSpec, ...]
    to_flat: str
    dense: tuple[DenseSpec, ...]
    classes: int
    head: str  # 'softmax' or 'logits'
    batch: int
    seed: int
    pixels: str = "normal"  # 'normal' or 'grid'


def _window_side(draw, low, high, size, padding):
    """One window side in [low, high]. With 'valid' it usually fits the current ``size``
    (a few draws do not: Keras itself must then reject the model, see ``model_specs``)."""
    fits = padding == "same" or size >= high or draw(st.integers(0, 9)) > 0
    if fits and padding == "valid" and size < high:
        high = max(low, size)
    return draw(st.integers(low, high))


def _window_layer(draw, sides, size, padding):
    """(window, strides, new size) for one sliding-window layer on spatial ``size``."""
    window = tuple(_window_side(draw, *sides, n, padding) for n in size)
    strides = draw(pairs(STRIDE_SIDES))
    new = tuple(
        output_length(n, k, s, padding) if n > 0 else n for n, k, s in zip(size, window, strides)
    )
    return window, strides, new


@st.composite
def model_specs(draw, max_blocks=3, max_dense=2, max_filters=16, max_units=16, max_classes=5):
    """A :class:`ModelSpec`: 1..3 conv blocks, Flatten/Reshape, 0..2 Dense layers, a head.

    The construction keeps most geometries valid (a 'valid' window usually
    fits what is left of the image), but not all: the test builds the model
    in Keras and rejects (``assume``) what Keras refuses, so Keras, not this
    strategy, is the judge of which models exist.
    """
    size = (draw(st.integers(*MODEL_SIDES)), draw(st.integers(*MODEL_SIDES)))
    input_shape = (*size, draw(st.integers(1, 3)))
    blocks = []
    for _ in range(draw(st.integers(1, max_blocks))):
        padding = draw(PADDINGS)
        kernel, strides, size = _window_layer(draw, MODEL_KERNEL_SIDES, size, padding)
        filters = draw(st.integers(1, max_filters))
        activation = draw(st.sampled_from(["relu", "linear"]))
        pool = None
        if draw(st.booleans()):
            pool_padding = draw(PADDINGS)
            window, pool_strides, size = _window_layer(draw, MODEL_POOL_SIDES, size, pool_padding)
            pool = PoolSpec(window, pool_strides, pool_padding)
        blocks.append(ConvSpec(filters, kernel, strides, padding, activation, pool))
    to_flat = draw(st.sampled_from(TO_FLAT))
    dense = tuple(
        DenseSpec(draw(st.integers(1, max_units)), draw(st.sampled_from(["relu", "linear"])))
        for _ in range(draw(st.integers(0, max_dense)))
    )
    return ModelSpec(
        input_shape=input_shape,
        blocks=tuple(blocks),
        to_flat=to_flat,
        dense=dense,
        classes=draw(st.integers(2, max_classes)),
        head=draw(st.sampled_from(["softmax", "logits"])),
        batch=draw(st.integers(1, 3)),
        seed=draw(st.integers(0, 2**16)),
        pixels=draw(st.sampled_from(["normal", "grid"])),
    )
