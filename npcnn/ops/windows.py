"""Sliding a window over an NHWC image, the way conv2d and maxpool2d both do.

A window of size (kh, kw) moved with strides (sh, sw) visits output position
(oh, ow) at the input cells ``x_pad[oh*sh + i, ow*sw + j]`` for every *tap*
(i, j) of the window. Instead of looping over the output positions, we loop
over the (few) taps: for a fixed tap, the cells it touches at all output
positions form one strided slice of the padded input, :func:`tap_view`.
:func:`window_view` shows all taps at once, as a view with two extra axes.
"""

from __future__ import annotations

from ..backend import get_array_module


def pad_nhwc(x, pads, value=0.0):
    """Pad the H and W axes of ``x`` (N, H, W, C) with ``value``.

    ``pads`` is ((top, bottom), (left, right)), e.g. from ``padding_amounts``.
    Returns ``x`` itself when there is nothing to pad.
    """
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    xp = get_array_module(x)
    return xp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def tap_view(x_pad, i: int, j: int, strides, out_hw):
    """The cells that window tap (i, j) touches, for every output position.

    ``tap_view(x_pad, i, j)[n, oh, ow, c] == x_pad[n, oh*sh + i, ow*sw + j, c]``

    Shape (N, H_out, W_out, C). It is a *view* (basic slicing), so writing into
    it (``view += g``) writes into ``x_pad``: the backward passes use that to
    scatter gradients back to the input.
    """
    (sh, sw), (out_h, out_w) = strides, out_hw
    return x_pad[:, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw, :]


def window_view(x_pad, window_hw, strides, out_hw):
    """Every window of ``x_pad`` at once, as a read-only view (nothing is copied).

    ``window_view(x_pad, ...)[n, oh, ow, i, j, c] == x_pad[n, oh*sh + i, ow*sw + j, c]``

    Shape (N, H_out, W_out, kh, kw, C). Moving one output row down moves
    sh input rows down, moving one tap down moves one input row down, so both
    axes step through memory with multiples of the input's own row stride:
    the view is just ``x_pad``'s memory read with these strides. Overlapping
    windows share memory, which is why the view must never be written to.
    Copying it (``.reshape(N*H_out*W_out, -1)``) gives im2col's matrix.
    """
    xp = get_array_module(x_pad)
    (kh, kw), (sh, sw), (out_h, out_w) = window_hw, strides, out_hw
    n, _, _, c = x_pad.shape
    step_n, step_h, step_w, step_c = x_pad.strides  # bytes between neighbours on each axis
    return xp.lib.stride_tricks.as_strided(
        x_pad,
        shape=(n, out_h, out_w, kh, kw, c),
        strides=(step_n, step_h * sh, step_w * sw, step_h, step_w, step_c),
    )
