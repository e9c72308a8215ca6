"""``npcnn exercise``: a file to start from, with the signatures, shapes and math of each op.

The same source makes the ``.py`` stub and the Jupyter notebook: the notebook's
code cell *is* :func:`exercise_source`, followed by a cell that checks it.
"""

from __future__ import annotations

import json
import os

from ..atomicwrite import atomic_write
from .more_exercises import MORE_DOCS
from .spec import OPS, op_named

DOCS = {
    "relu": (
        """ReLU, elementwise: y = max(x, 0).

    Args:
        x: any shape, float32 or float64.
    Returns:
        (y, cache): y has x's shape and dtype; the cache is whatever your
        backward pass needs.
    """,
        """dx = local derivative of max(x, 0) times the upstream gradient dy.

    The local derivative is 1 where x > 0 and 0 where x < 0; at exactly
    x = 0, take 0 (TensorFlow does).

    Args:
        dy: dL/dy, y's shape.  cache: what relu_forward returned.
    Returns:
        dx, x's shape and dtype.
    """,
    ),
    "dense": (
        """Fully connected layer: y[n, o] = sum_i x[n, i] * w[i, o] + b[o].

    Args:
        x: (N, Din), float32 or float64.  w: (Din, Dout).  b: (Dout,).
    Returns:
        (y, cache): y (N, Dout), the dtype of x.
    """,
        """Gradients of y = x @ w + b.

    Args:
        dy: dL/dy (N, Dout).  cache: what dense_forward returned.
    Returns:
        (dx, dw, db): (N, Din), (Din, Dout), (Dout,), shaped like x, w, b.
        Every y[n, o] used b[o] once and w[i, o] once per example n.
    """,
    ),
    "flatten": (
        """Flatten each example: (N, d1, d2, ...) -> (N, d1 * d2 * ...).

    Keras's order (NHWC, row-major): x[n, h, w, c] goes to column
    (h * W + w) * C + c.

    Args:
        x: (N, ...), any number of axes after the batch axis.
    Returns:
        (y, cache).
    """,
        """Flattening moves numbers without changing them: put each gradient back.

    Args:
        dy: dL/dy (N, d1 * d2 * ...).  cache: what flatten_forward returned.
    Returns:
        dx, x's shape.
    """,
    ),
    "conv2d": (
        """2-D convolution (cross-correlation: the kernel is not flipped), NHWC and HWIO.

        y[n, oh, ow, co] = b[co] + sum_{i,j,ci} x_pad[n, oh*sh+i, ow*sw+j, ci] * w[i,j,ci,co]

    Args:
        x: (N, H, W, Cin), float32 or float64.  w: (kh, kw, Cin, Cout).  b: (Cout,).
        strides: an int or a pair (sh, sw).
        padding: 'valid': no padding, H_out = (H - kh) // sh + 1.
            'same': H_out = ceil(H / sh); add total = max((H_out - 1) * sh + kh - H, 0)
            rows of zeros, total // 2 on top and the rest (the odd one) at the
            bottom; the same for the columns (left, right).
    Returns:
        (y, cache): y (N, H_out, W_out, Cout), the dtype of x.
    """,
        """Gradients of the convolution.

    Every output y[n, oh, ow, co] is a sum of products x_pad[...] * w[...] plus
    b[co]: each product sends dy[n, oh, ow, co] times the other factor to its
    factors. Windows that overlap send gradient to the same input cell: it
    gets the sum. Padding cells get gradient too, but are not part of x.

    Args:
        dy: dL/dy (N, H_out, W_out, Cout).  cache: what conv2d_forward returned.
    Returns:
        (dx, dw, db): shaped like x (N, H, W, Cin), w (kh, kw, Cin, Cout), b (Cout,).
    """,
    ),
    "maxpool2d": (
        """2-D max-pooling, NHWC: the largest value of each window, channel by channel.

        y[n, oh, ow, c] = max_{i < ph, j < pw} x_pad[n, oh*sh + i, ow*sw + j, c]

    Args:
        x: (N, H, W, C), float32 or float64.
        pool_size: an int or a pair (ph, pw).
        strides: an int, a pair, or None: then the stride is the pool size.
        padding: 'valid' or 'same', with conv2d's arithmetic; 'same' pads
            with -inf, so a padded cell is never the maximum.
    Returns:
        (y, cache): y (N, H_out, W_out, C).
    """,
        """The gradient of a max goes to the cell that was the maximum; the others get 0.

    When several cells of a window tie for the maximum, only the first in
    row-major order (top row first, left to right) gets it. A cell that is the
    maximum of several overlapping windows gets the sum of their gradients.

    Args:
        dy: dL/dy (N, H_out, W_out, C).  cache: what maxpool2d_forward returned.
    Returns:
        dx (N, H, W, C).
    """,
    ),
    "softmax": (
        """Softmax over the last axis: p[..., k] = exp(z[..., k]) / sum_j exp(z[..., j]).

    exp() of a large logit overflows: subtracting each row's maximum first
    changes nothing in the math and keeps it finite.

    Args:
        z: (..., K) logits, float32 or float64.
    Returns:
        (p, cache): p of z's shape.
    """,
        """dz_j = sum_k dp_k * dp_k/dz_j, where dp_k/dz_j = p_k * (1[k == j] - p_j).

    Args:
        dp: dL/dp, p's shape.  cache: what softmax_forward returned.
    Returns:
        dz, z's shape.
    """,
    ),
    "sparse_categorical_crossentropy": (
        """Cross-entropy between integer labels and predicted classes, as Keras computes it.

    The loss of example n is -log q[n, labels[n]], where q is a probability vector:
    - from_logits=True: y_pred holds logits and q = softmax(y_pred);
    - from_logits=False: y_pred holds probabilities p; Keras clips them to
      [1e-7, 1 - 1e-7], c = clip(p), and renormalises: q = c / sum_k c[k]
      (that is, q = softmax(log c)).

    Args:
        y_pred: (N, K), float32 or float64.  labels: (N,) ints in [0, K).
        from_logits: see above.
        reduction: 'sum' (the total), 'mean' (total / N) or 'none' (one loss
            per example, shape (N,)).
    Returns:
        (loss, cache): the loss in y_pred's dtype (a 0-d array or NumPy scalar,
        or (N,) for 'none').
    """,
        """The gradient of the loss with respect to y_pred.

    With respect to the logits, the loss of one example has gradient
    q - onehot(label). For probabilities, the logits were log(clip(p)): chain
    through the log, and through the clip (which passes no gradient where it
    changed p). Multiply by dloss: one number for 'sum' and 'mean' ('mean'
    also divides by N), one per example for 'none'.

    Args:
        dloss: dL/dloss, a scalar ('sum', 'mean') or (N,) ('none').
        cache: what sparse_categorical_crossentropy_forward returned.
    Returns:
        dy_pred (N, K).
    """,
    ),
    **MORE_DOCS,
}


def _names(ops) -> list:
    if isinstance(ops, str):
        ops = [ops]
    if list(ops) == ["all"]:
        return [op.name for op in OPS]
    return list(dict.fromkeys(op_named(o).name for o in ops))


def exercise_source(ops, check_command: str = "npcnn check my_ops.py") -> str:
    """The stub file for ``ops`` (a name, a list of names, or 'all'): signatures,
    docstrings with the shapes and the math, bodies raising NotImplementedError."""
    names = _names(ops)
    title = ", ".join(names)
    parts = [
        f'''"""Exercise: write {title} yourself, forward and backward.

Replace each `raise NotImplementedError` by your code (NumPy only), then check:

    {check_command}

It runs your functions on many small cases (odd sizes, strides, 'same' and
'valid', ties, zeros, float32 and float64), compares the forward with npcnn's,
and the backward, run from *your* forward's cache, with npcnn's gradients.
When something is off it prints the smallest failing case and, if it knows
the mistake, names it. Keep the dtype of the inputs (float32 in, float32 out)
and do not change the input arrays in place.
"""

import numpy as np
'''
    ]
    for name in names:
        spec = op_named(name)
        forward_doc, backward_doc = DOCS[name]
        parts.append(
            f'''
def {spec.forward_signature().replace("'", '"')}:
    """{forward_doc}"""
    raise NotImplementedError("{spec.forward}: write me")


def {spec.backward_signature()}:
    """{backward_doc}"""
    raise NotImplementedError("{spec.backward}: write me")
'''
        )
    return "\n".join(parts)


def exercise_notebook(ops) -> dict:
    """The same exercise as a Jupyter notebook (nbformat 4.5, as a dict): the stub in one
    code cell, the check in the next. Every cell has the id nbformat 4.5 requires."""

    def cell(kind, text):
        lines = text.splitlines(keepends=True)
        base = {"cell_type": kind, "metadata": {}, "source": lines}
        return {**base, "execution_count": None, "outputs": []} if kind == "code" else base

    names = _names(ops)
    cells = [
        cell(
            "markdown",
            f"# Write {', '.join(names)} yourself\n\n"
            "Fill in the functions in the next cell, run it, then run the check below it. "
            "Run both again after every change.",
        ),
        cell("code", exercise_source(names, "npcnn.check(globals()) in the cell below")),
        cell(
            "markdown",
            "## Check it\n\nEach op gets one line; a failure shows the "
            "smallest failing case and, when it recognises the mistake, names it.",
        ),
        cell("code", "import npcnn\n\nreport = npcnn.check(globals())\nprint(report)"),
    ]
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "cells": [{"id": f"cell-{k}", **c} for k, c in enumerate(cells, 1)],
    }


def write_exercise(ops, out=None, *, force=False) -> str:
    """Write the exercise for ``ops`` to ``out`` (default ``my_<op>.py``); a name ending in
    .ipynb gets the notebook. Refuses to replace an existing file unless ``force``.
    Returns the path written."""
    names = _names(ops)
    if out is None:
        out = f"my_{names[0]}.py" if len(names) == 1 else "my_ops.py"
    out = os.fspath(out)
    if os.path.isdir(out):
        raise ValueError(f"{out} is a directory; give a file name such as {out}/my_ops.py")
    if os.path.lexists(out) and not force:
        raise FileExistsError(f"{out} already exists; not replacing it (use --force to replace)")
    if out.endswith(".ipynb"):
        text = json.dumps(exercise_notebook(names), indent=1) + "\n"
    else:
        text = exercise_source(names, f"npcnn check {out}")
    atomic_write(out, lambda f: f.write(text.encode("utf-8")))
    return out
