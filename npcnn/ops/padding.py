"""TensorFlow's padding arithmetic: output sizes and where the zeros go.

For one spatial axis of length ``n``, a window of ``k`` and a stride ``s``::

    'valid':  out = floor((n - k) / s) + 1          (no padding; needs n >= k)
    'same':   out = ceil(n / s)
              total = max((out - 1) * s + k - n, 0) (cells of padding needed)
              before = total // 2,  after = total - before

so when ``total`` is odd the extra row/column goes at the *bottom/right*. This
is TensorFlow's rule (Caffe and PyTorch put it elsewhere), and it matters: a
network trained in Keras gives different answers if the pad goes top/left.
"""

from __future__ import annotations


def output_length(n: int, k: int, s: int, padding: str) -> int:
    """Output length along one axis (see module docstring)."""
    if padding == "same":
        return -(-n // s)  # ceil(n / s)
    return (n - k) // s + 1


def same_padding(n: int, k: int, s: int) -> tuple[int, int]:
    """(before, after) cells of 'same' padding along one axis; odd extra goes after."""
    total = max((output_length(n, k, s, "same") - 1) * s + k - n, 0)
    before = total // 2
    return before, total - before


def padding_amounts(
    in_hw: tuple[int, int], window: tuple[int, int], strides: tuple[int, int], padding: str
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) padding for an NHWC input of spatial size ``in_hw``."""
    if padding == "valid":
        return (0, 0), (0, 0)
    return (
        same_padding(in_hw[0], window[0], strides[0]),
        same_padding(in_hw[1], window[1], strides[1]),
    )


def output_hw(
    in_hw: tuple[int, int],
    window: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
    what: str = "input",
) -> tuple[int, int]:
    """Spatial output size (H_out, W_out); a clear error when 'valid' leaves nothing."""
    out = (
        output_length(in_hw[0], window[0], strides[0], padding),
        output_length(in_hw[1], window[1], strides[1], padding),
    )
    if min(out) < 1:
        raise ValueError(
            f"{what} of spatial size {tuple(in_hw)} is smaller than the window "
            f"{tuple(window)}: padding={padding!r} would give an empty output {out}"
        )
    return out
