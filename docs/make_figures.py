"""Draw the guide's figures with npcnn's own functions: ``python docs/make_figures.py``.

Every number in a picture is computed by npcnn (the convolution, the padding
amounts, the max-pool gradient, the network's shapes, the filters), so a
figure redrawn after a change to npcnn shows what npcnn does now.

The learned-filters figure and the training curves train a small model (the
tutorial's first conv layer, then a pooling layer and a dense layer) for a few
hundred steps on real MNIST, if the four IDX files are found in ``--data-dir``, in
``$NPCNN_DATA_DIR/mnist`` or in ``../shared/data/mnist`` next to the
repository. Nothing is downloaded. Without the data (or with ``--quick``) it
draws freshly Glorot-initialised filters and says so in the figure.

With ``--checkpoint PATH`` (from ``python -m npcnn train --save PATH``) it
draws the tutorial network's own first-layer filters, before and after that run.

Options: ``--out DIR`` (default docs/figures), ``--quick``, ``--steps N``,
``--data-dir DIR``, ``--checkpoint PATH``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a fresh checkout without installing npcnn
    sys.path.insert(0, str(ROOT))

# npcnn first: it sets OPENBLAS_THREAD_TIMEOUT before NumPy loads OpenBLAS
# (chapter 14: idle BLAS threads would spin on the core the timed col2im needs)
import npcnn  # noqa: E402, I001
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

from npcnn.ops import (  # noqa: E402
    conv2d_backward,
    conv2d_forward,
    dense_backward,
    dense_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    relu_backward,
    relu_forward,
    sparse_categorical_crossentropy_backward,
    sparse_categorical_crossentropy_forward,
)
from npcnn.ops.conv2d import col2im, im2col  # noqa: E402
from npcnn.ops.padding import output_hw, padding_amounts  # noqa: E402
from npcnn.ops.windows import tap_view  # noqa: E402

DPI = 100
PAD_COLOUR = "#d9d9d9"
WINDOW_COLOUR = "#d62728"
OUTPUT_COLOUR = "#1f77b4"
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


# ---- drawing helpers ---------------------------------------------------------------
def draw_grid(ax, values, origin=(0, 0), shaded=None, fmt="{:g}", fontsize=9, colour="white"):
    """Draw a 2-D array as a grid of labelled cells; row 0 at the top.

    ``shaded`` is a boolean array of the same shape: those cells are grey (padding).
    Returns nothing; the axes use data coordinates with y pointing down.
    """
    x0, y0 = origin
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            face = PAD_COLOUR if shaded is not None and shaded[r, c] else colour
            ax.add_patch(Rectangle((x0 + c, y0 + r), 1, 1, facecolor=face, edgecolor="#555555"))
            text = fmt.format(values[r, c])
            ax.text(x0 + c + 0.5, y0 + r + 0.5, text, ha="center", va="center", fontsize=fontsize)


def outline(ax, origin, size, colour, width=2.5, style="-"):
    """A thick rectangle around ``size`` = (rows, cols) cells starting at ``origin`` = (x, y)."""
    ax.add_patch(
        Rectangle(
            origin,
            size[1],
            size[0],
            fill=False,
            edgecolor=colour,
            linewidth=width,
            linestyle=style,
        )
    )


def finish(ax, width, height):
    ax.set_xlim(-0.3, width + 0.3)
    ax.set_ylim(height + 0.3, -0.3)
    ax.set_aspect("equal")
    ax.axis("off")


def save(fig, out_dir, name):
    path = Path(out_dir) / name
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


# ---- figure 1: a kernel sliding over the input ------------------------------------------
def figure_conv_sliding(out_dir):
    """Chapter 1's example: a 7x7 edge image, a 3x3 edge kernel, 'valid' -> 5x5 output."""
    image = np.zeros((7, 7))
    image[:, 3:] = 1.0
    kernel = np.array([[-1.0, 0.0, 1.0]] * 3)
    x, w, b = image.reshape(1, 7, 7, 1), kernel.reshape(3, 3, 1, 1), np.zeros(1)
    y, _ = conv2d_forward(x, w, b, padding="valid")
    x_pad = image  # 'valid': no padding

    oh, ow = 1, 1  # the output position we show
    fig, ax = plt.subplots(figsize=(10.5, 4.2))
    draw_grid(ax, x_pad)
    outline(ax, (ow, oh), (3, 3), WINDOW_COLOUR)  # window at (oh, ow)
    outline(ax, (ow + 1, oh), (3, 3), WINDOW_COLOUR, width=1.2, style="--")  # the next one
    ax.text(3.5, 7.6, "input 7x7", ha="center", fontsize=10)

    kx = 8.6
    draw_grid(ax, kernel, origin=(kx, 2))
    outline(ax, (kx, 2), (3, 3), WINDOW_COLOUR)
    ax.text(kx + 1.5, 5.6, "kernel 3x3", ha="center", fontsize=10)

    ox = 13.0
    draw_grid(ax, y[0, :, :, 0], origin=(ox, 1))
    outline(ax, (ox + ow, 1 + oh), (1, 1), OUTPUT_COLOUR, width=3)
    ax.text(ox + 2.5, 6.6, "output 5x5 ('valid')", ha="center", fontsize=10)
    patch = x_pad[oh : oh + 3, ow : ow + 3]
    terms = " + ".join(f"{p:g}*({k:g})" for p, k in zip(patch.ravel(), kernel.ravel()) if k != 0)
    ax.text(
        9.0,
        9.0,
        f"red window times kernel, cell by cell, summed:  output[{oh}, {ow}] = {terms}"
        f" = {y[0, oh, ow, 0]:g}\n(the kernel's zeros are left out of the sum)",
        ha="center",
        fontsize=9,
    )
    arrow = FancyArrowPatch(
        (ow + 3.1, oh + 0.6),
        (ox + ow + 0.5, 1 + oh),
        arrowstyle="->",
        mutation_scale=15,
        color=OUTPUT_COLOUR,
        connectionstyle="arc3,rad=-0.3",
    )
    ax.add_patch(arrow)
    finish(ax, ox + 5, 9.6)
    ax.set_title("Convolution: slide the kernel, multiply, sum (dashed: the next position)")
    save(fig, out_dir, "conv_sliding.png")


# ---- figure 2: 'same' vs 'valid' ------------------------------------------------------
PADDING_CASES = [  # (n, k, s, padding): square inputs and kernels
    (7, 3, 1, "valid"),
    (7, 3, 1, "same"),
    (4, 2, 1, "same"),
    (6, 3, 2, "same"),
]


def figure_same_vs_valid(out_dir):
    """Chapter 3: padded grid, first and last window, output size; TF's odd cell at bottom/right."""
    fig, axes = plt.subplots(1, len(PADDING_CASES), figsize=(13, 4.4))
    for ax, (n, k, s, padding) in zip(axes, PADDING_CASES):
        pads = padding_amounts((n, n), (k, k), (s, s), padding)
        out = output_hw((n, n), (k, k), (s, s), padding)
        (top, bottom), (left, right) = pads
        size = (n + top + bottom, n + left + right)
        is_pad = np.ones(size, dtype=bool)
        is_pad[top : top + n, left : left + n] = False
        labels = np.full(size, "")
        labels[is_pad] = "0"
        draw_grid(ax, labels, shaded=is_pad, fmt="{}", fontsize=8)
        outline(ax, (0, 0), (k, k), WINDOW_COLOUR)  # first window
        last = ((out[0] - 1) * s, (out[1] - 1) * s)
        outline(ax, (last[1], last[0]), (k, k), OUTPUT_COLOUR, style="--")  # last window
        ax.set_title(
            f"{padding!r}: input {n}x{n}, kernel {k}x{k}, stride {s}\n"
            f"-> output {out[0]}x{out[1]}\n"
            f"pad top/bottom {top}/{bottom}, left/right {left}/{right}",
            fontsize=9,
        )
        finish(ax, size[1], size[0])
    fig.suptitle(
        "Grey: zero padding. Red: first window, blue dashed: last window. "
        "An odd padding cell goes bottom/right (TensorFlow's rule).",
        fontsize=10,
    )
    save(fig, out_dir, "same_vs_valid.png")


# ---- figure 3: max-pool gradient routing ----------------------------------------------
def figure_maxpool_gradient(out_dir):
    """Chapters 4/9: forward max over 2x2 windows, backward routes dy to the (first) winner."""
    x = np.array([[1, 3, 2, 1], [4, 2, 0, 1], [5, 6, 7, 7], [1, 0, 7, 2]], dtype=np.float32)
    dy = np.array([[10, 20], [30, 40]], dtype=np.float32)
    y, cache = maxpool2d_forward(x.reshape(1, 4, 4, 1), 2)
    dx = maxpool2d_backward(dy.reshape(1, 2, 2, 1), cache)[0, :, :, 0]
    colours = ["#fde0dd", "#deebf7", "#e5f5e0", "#fff7bc"]
    window_of = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])

    fig, ax = plt.subplots(figsize=(10, 4.6))
    panels = [  # (origin, values, label, is_4x4)
        ((0, 1), x, "forward: x (4x4)", True),
        ((6, 2), y[0, :, :, 0], "y: max of each window", False),
        ((11, 2), dy, "backward: dy", False),
        ((15, 1), dx, "dx: dy goes to the max, 0 elsewhere", True),
    ]
    for (ox, oy), values, label, big in panels:
        rows, cols = values.shape
        for r in range(rows):
            for c in range(cols):
                window = window_of[r, c] if big else 2 * r + c
                ax.add_patch(
                    Rectangle(
                        (ox + c, oy + r), 1, 1, facecolor=colours[window], edgecolor="#555555"
                    )
                )
                ax.text(ox + c + 0.5, oy + r + 0.5, f"{values[r, c]:g}", ha="center", va="center")
        ax.text(ox + cols / 2, oy - 0.4, label, ha="center", fontsize=9)
    # mark the winners in x and dx
    for r, c in zip(*np.nonzero(dx)):
        outline(ax, (r * 0 + c, 1 + r), (1, 1), WINDOW_COLOUR)
        outline(ax, (15 + c, 1 + r), (1, 1), WINDOW_COLOUR)
    ax.annotate(
        "tie: three 7s -- the first\n(row-major) takes it all",
        xy=(2.5, 3.5),
        xytext=(1.2, 6.2),
        fontsize=8,
        arrowprops={"arrowstyle": "->"},
        ha="center",
    )
    for start, end in [((4.2, 3), (5.8, 3)), ((13.2, 3), (14.8, 3))]:
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="->", mutation_scale=15))
    ax.plot([9.9, 9.9], [0.2, 6.5], color="#999999", linewidth=1)
    finish(ax, 19, 6.6)
    ax.set_title("Max-pooling: forward keeps the max, backward routes the gradient to it")
    save(fig, out_dir, "maxpool_gradient.png")


# ---- figure: conv2d's dx, one output at a time ------------------------------------------
def figure_conv_backward(out_dir):
    """Chapter 10: dx is the sum, over outputs, of dy[output] * kernel placed on its window."""
    x = np.arange(1, 10, dtype=np.float64).reshape(1, 3, 3, 1)
    w = np.array([[1.0, 0.0], [0.0, -1.0]]).reshape(2, 2, 1, 1)
    dy = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    _, cache = conv2d_forward(x, w, np.zeros(1), padding="valid")
    dx = conv2d_backward(dy, cache)[0][0, :, :, 0]

    fig, ax = plt.subplots(figsize=(11, 3.0))
    for k, (oh, ow) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        one = np.zeros_like(dy)
        one[0, oh, ow, 0] = dy[0, oh, ow, 0]  # the gradient of this one output only
        part = conv2d_backward(one, cache)[0][0, :, :, 0]
        ox = k * 4.2
        draw_grid(ax, part, origin=(ox, 0))
        outline(ax, (ox + ow, oh), (2, 2), WINDOW_COLOUR)
        ax.text(
            ox + 1.5,
            3.7,
            f"dy[{oh}, {ow}] = {dy[0, oh, ow, 0]:g}, times the kernel",
            ha="center",
            fontsize=8,
        )
        ax.text(ox + 3.6, 1.5, "+" if k < 3 else "=", ha="center", va="center", fontsize=14)
    draw_grid(ax, dx, origin=(4 * 4.2, 0), colour="#deebf7")
    ax.text(4 * 4.2 + 1.5, 3.7, "dx, from conv2d_backward", ha="center", fontsize=8)
    finish(ax, 4 * 4.2 + 3, 4.2)
    ax.set_title(
        "conv2d backward: each output sends dy x kernel back to the cells of its window; "
        "dx adds them up (kernel [[1, 0], [0, -1]])",
        fontsize=10,
    )
    save(fig, out_dir, "conv_backward.png")


# ---- figure: the taps of a window view (chapter 1) ----------------------------------------
def figure_window_taps(out_dir):
    """Chapter 3: window_view and tap_view on a 7x7 input, 3x3 kernel, stride 2."""
    n, k, s = 7, 3, 2
    out = output_hw((n, n), (k, k), (s, s), "valid")
    index = np.arange(n * n).reshape(1, n, n, 1)  # each cell holds its own number
    fig, axes = plt.subplots(1, 3, figsize=(13, 5.0))
    blank = np.full((n, n), "", dtype="<U8")
    # (a) two windows, the taps of the first labelled
    ax = axes[0]
    labels = blank.copy()
    for i in range(k):
        for j in range(k):
            labels[i, j] = f"{i},{j}"
    draw_grid(ax, labels, fmt="{}", fontsize=8)
    outline(ax, (0, 0), (k, k), WINDOW_COLOUR)
    outline(ax, (s, 0), (k, k), OUTPUT_COLOUR, style="--")
    ax.set_title(
        f"window_view: {k}x{k} kernel, stride {s}:\n{out[0]}x{out[1]} windows; "
        "window (0, 0) red,\n(0, 1) blue dashed; labels: taps (i, j)",
        fontsize=9,
    )
    finish(ax, n, n)
    for ax, (i, j) in zip(axes[1:], [(0, 0), (1, 2)]):
        seen = tap_view(index, i, j, (s, s), out)[0, :, :, 0]  # the cells this tap sees
        shaded = np.zeros((n, n), dtype=bool)
        shaded.ravel()[seen.ravel()] = True
        labels = blank.copy()
        for (oh, ow), cell in np.ndenumerate(seen):
            labels.ravel()[cell] = f"{oh},{ow}"
        draw_grid(ax, labels, fmt="{}", fontsize=8)
        for cell in seen.ravel():
            r, c = divmod(int(cell), n)
            ax.add_patch(Rectangle((c, r), 1, 1, facecolor="#fdd0a2", edgecolor="#555555"))
            ax.text(c + 0.5, r + 0.5, labels[r, c], ha="center", va="center", fontsize=8)
        ax.set_title(
            f"tap_view(x_pad, {i}, {j}): what tap ({i}, {j})\nsees in every window, a "
            f"{out[0]}x{out[1]} view;\nlabels: the window (oh, ow)",
            fontsize=9,
        )
        finish(ax, n, n)
    save(fig, out_dir, "window_taps.png")


# ---- figure: a convolution over three channels (chapter 2) --------------------------------
def figure_conv_channels(out_dir):
    """Chapter 2: one 3x3x3 kernel meets three channels; 27 products add into one number."""
    x = np.zeros((1, 5, 5, 3))
    x[0, :, 2:, 0] = 1.0  # red: bright from column 2 on
    x[0, :, :, 2] = 0.5  # blue: 0.5 everywhere
    w = np.zeros((3, 3, 3, 1))
    w[:, :, 0, 0] = [[-1, 0, 1]] * 3  # red layer: an edge detector
    w[:, :, 2, 0] = 1.0  # blue layer: adds up the window
    y, _ = conv2d_forward(x, w, np.zeros(1), padding="valid")
    oh, ow = 0, 1
    names = ["channel 0 (red)", "channel 1 (green)", "channel 2 (blue)"]
    tints = ["#fee0d2", "#e5f5e0", "#deebf7"]
    fig, ax = plt.subplots(figsize=(12, 5.2))
    parts = []
    for c in range(3):
        ox = c * 7.0
        draw_grid(ax, x[0, :, :, c], origin=(ox, 0), colour=tints[c], fontsize=8)
        outline(ax, (ox + ow, oh), (3, 3), WINDOW_COLOUR)
        ax.text(ox + 2.5, -0.5, names[c], ha="center", fontsize=9)
        draw_grid(ax, w[:, :, c, 0], origin=(ox + 1, 6.2), colour=tints[c], fontsize=8)
        outline(ax, (ox + 1, 6.2), (3, 3), WINDOW_COLOUR)
        ax.text(ox + 2.5, 9.8, f"kernel slice w[:, :, {c}, 0]", ha="center", fontsize=8)
        part = float(np.sum(x[0, oh : oh + 3, ow : ow + 3, c] * w[:, :, c, 0]))
        parts.append(part)
        ax.text(ox + 2.5, 10.6, f"window x slice: {part:g}", ha="center", fontsize=9)
        if c < 2:
            ax.text(ox + 6.0, 5.5, "+", ha="center", va="center", fontsize=20)
    ox = 21.5
    draw_grid(ax, y[0, :, :, 0], origin=(ox, 1), fmt="{:g}", fontsize=8)
    outline(ax, (ox + ow, 1 + oh), (1, 1), OUTPUT_COLOUR, width=3)
    ax.text(ox + 1.5, 0.5, "output channel 0", ha="center", fontsize=9)
    ax.text(
        ox + 1.5,
        5.0,
        " + ".join(f"{p:g}" for p in parts) + f"\n= {y[0, oh, ow, 0]:g}",
        ha="center",
        fontsize=9,
        color=OUTPUT_COLOUR,
    )
    finish(ax, ox + 3, 11.0)
    ax.set_title(
        "One kernel is a 3x3x3 cube: slice c meets channel c under the window, and all "
        "27 products add up into one output number.\nA second kernel would give a "
        "second output channel.",
        fontsize=10,
        pad=22,
    )
    save(fig, out_dir, "conv_channels.png")


# ---- figure: im2col and col2im (chapter 10) -------------------------------------------------
def figure_im2col_col2im(out_dir):
    """Chapter 10: im2col copies each window of a 3x3 input into a row; col2im adds back."""
    x = np.arange(1, 10, dtype=np.float64).reshape(1, 3, 3, 1)
    cols = im2col(x, (2, 2), (1, 1), (2, 2))  # (4 windows, 4 taps)
    counts = col2im(np.ones((1, 2, 2, 2, 2, 1)), x.shape, (2, 2), (1, 1), (2, 2))[0, :, :, 0]
    colours = ["#fde0dd", "#deebf7", "#e5f5e0", "#fff7bc"]
    edges = [WINDOW_COLOUR, OUTPUT_COLOUR, "#2ca02c", "#bcbd22"]
    fig, ax = plt.subplots(figsize=(12, 4.4))
    draw_grid(ax, x[0, :, :, 0], origin=(0, 1))
    for k, (oh, ow) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        d = 0.06 * k
        outline(ax, (ow + d, 1 + oh + d), (2 - 2 * d, 2 - 2 * d), edges[k], width=2)
    ax.text(1.5, 0.5, "x_pad 3x3, four 2x2 windows", ha="center", fontsize=9)
    ox = 7.0
    for r in range(4):
        for c in range(4):
            ax.add_patch(
                Rectangle((ox + c, 1 + r), 1, 1, facecolor=colours[r], edgecolor="#555555")
            )
            ax.text(ox + c + 0.5, 1.5 + r, f"{cols[r, c]:g}", ha="center", va="center")
        ax.text(
            ox - 0.2,
            1.5 + r,
            f"window ({r // 2}, {r % 2})",
            ha="right",
            va="center",
            fontsize=8,
            color=edges[r],
        )
    for c in range(4):
        ax.text(ox + c + 0.5, 0.7, f"tap {c // 2},{c % 2}", ha="center", fontsize=7)
    ax.text(ox + 2, 6.0, "cols = im2col(x_pad): one window per row", ha="center", fontsize=9)
    ox2 = 14.5
    draw_grid(ax, counts, origin=(ox2, 1), colour="#fdd0a2")
    ax.text(ox2 + 1.5, 0.5, "col2im(dcols of ones)", ha="center", fontsize=9)
    ax.text(
        ox2 + 1.5,
        5.2,
        "each cell collects one entry\nper window it is in: 1, 2 or 4",
        ha="center",
        fontsize=9,
    )
    for start, end, words in [
        ((3.3, 2.5), (4.6, 2.5), "im2col:\ncopy"),
        ((11.3, 2.5), (14.2, 2.5), "col2im: add each row\nback onto its window"),
    ]:
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="->", mutation_scale=15))
        ax.text((start[0] + end[0]) / 2, 3.6, words, ha="center", fontsize=8)
    finish(ax, ox2 + 3, 6.4)
    ax.set_title("im2col and its adjoint col2im (2x2 kernel, stride 1, 'valid')", fontsize=10)
    save(fig, out_dir, "im2col_col2im.png")


# ---- figure: a computational graph, forward values and backward gradients (chapter 9) -----
def figure_compute_graph(out_dir):
    """Chapter 9: dense -> ReLU -> softmax cross-entropy, values above, gradients below."""
    x = np.array([[1.0, 2.0, 3.0]])
    w = np.array([[1.0, -1.0], [0.0, 1.0], [2.0, -1.0]])
    b = np.array([0.5, 0.0])
    label = np.array([1])
    z, dense_cache = dense_forward(x, w, b)
    a, relu_cache = relu_forward(z)
    loss, ce_cache = sparse_categorical_crossentropy_forward(a, label, from_logits=True)
    da = sparse_categorical_crossentropy_backward(1.0, ce_cache)
    dz = relu_backward(da, relu_cache)
    dx, dw, db = dense_backward(dz, dense_cache)

    def show(v):
        v = np.atleast_2d(np.asarray(v, dtype=float))
        rows = ["[" + ", ".join(f"{e:.3g}" for e in row) + "]" for row in v]
        return rows[0] if len(rows) == 1 else "[" + ", ".join(rows) + "]"

    fig, ax = plt.subplots(figsize=(12, 4.6))
    nodes = [  # (x, y, name, forward value, gradient)
        (0.0, 3.2, "x", show(x), show(dx)),
        (0.0, 1.6, "w", show(w), show(dw)),
        (0.0, 0.0, "b", show(b), show(db)),
        (6.0, 1.6, "z", show(z), show(dz)),
        (10.2, 1.6, "a", show(a), show(da)),
        (15.0, 1.6, "L", f"{float(loss):.3g}", "1"),
    ]
    ops = [
        (3.6, 1.6, "x @ w + b"),
        (8.1, 1.6, "relu"),
        (12.6, 1.6, "softmax +\ncross-\nentropy\n(label 1)"),
    ]
    for ox, oy, name, value, grad in nodes:
        box = {"boxstyle": "round", "facecolor": "#f0f0f0"}
        ax.text(ox, oy + 0.35, f"{name} = {value}", ha="center", fontsize=8, bbox=box)
        ax.text(ox, oy - 0.35, f"dL/d{name} = {grad}", ha="center", fontsize=8, color=WINDOW_COLOUR)
    for ox, oy, label_text in ops:
        circle = {"boxstyle": "circle", "facecolor": "#deebf7"}
        ax.text(ox, oy, label_text, ha="center", va="center", fontsize=8, bbox=circle)
    arrows = [
        ((1.2, 3.1), (3.0, 2.0)),
        ((2.2, 1.6), (2.9, 1.6)),
        ((1.0, 0.1), (3.0, 1.2)),
        ((4.3, 1.6), (5.0, 1.6)),
        ((7.0, 1.6), (7.7, 1.6)),
        ((8.5, 1.6), (9.3, 1.6)),
        ((11.1, 1.6), (11.8, 1.6)),
        ((13.4, 1.6), (14.5, 1.6)),
    ]
    for start, end in arrows:
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="->", mutation_scale=12))
    ax.set_xlim(-2.0, 16.0)
    ax.set_ylim(-0.9, 4.1)
    ax.axis("off")
    ax.set_title(
        "Forward (black, left to right): each node's value. Backward (red, right to left): "
        "dL/d(node),\neach op turning the gradient of its output into the gradients of its "
        "inputs (local derivative x upstream gradient)",
        fontsize=10,
    )
    save(fig, out_dir, "compute_graph.png")


# ---- figure 4: the network's shapes ---------------------------------------------------
def figure_network_shapes(out_dir):
    """Chapter 8: every layer's output shape, from seed_cnn().output_shapes."""
    model = npcnn.seed_cnn(seed=0, kernels="ops")  # one entry of model.layers per layer
    names = ["input"] + [layer.name for layer in model.layers]
    shapes = [model.input_shape] + list(model.output_shapes)
    params = [0] + [sum(p.size for p in layer.params) for layer in model.layers]

    fig, ax = plt.subplots(figsize=(12, 4.2))
    x = 0.0
    for name, shape, count in zip(names, shapes, params):
        if len(shape) == 3:  # (H, W, C): a square of side ~H, stacked ~log2(C) deep
            h, _, c = shape
            side = h / 28 * 2.6
            depth = int(np.log2(c))
            for d in range(depth, -1, -1):
                ax.add_patch(
                    Rectangle(
                        (x + d * 0.12, -side / 2 + d * 0.12),
                        side,
                        side,
                        facecolor="#9ecae1" if name.startswith("conv") else "#c6dbef",
                        edgecolor="#3182bd",
                        linewidth=0.8,
                    )
                )
            width = side + depth * 0.12
        else:  # (D,): a bar of height ~log10(D)
            (d,) = shape
            height = 0.7 * np.log10(d) + 0.3
            ax.add_patch(
                Rectangle((x, -height / 2), 0.3, height, facecolor="#fdae6b", edgecolor="k")
            )
            width = 0.3
        label = " x ".join(str(v) for v in shape)
        extra = f"\n{count:,}\nparams" if count else ""
        ax.text(x + width / 2, -1.9, f"{name}\n{label}{extra}", ha="center", va="top", fontsize=8)
        x += max(width, 1.0) + 0.8
    ax.set_xlim(-0.3, x - 0.5)
    ax.set_ylim(-3.6, 2.2)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(
        f"npcnn.seed_cnn(): the output shape of every layer ({model.count_params():,} "
        "parameters)\nsquares ~ height x width, stack depth ~ log2(channels), "
        "bars ~ log10(length)",
        fontsize=10,
    )
    save(fig, out_dir, "network_shapes.png")


# ---- figure 5: the fast tier (chapter 14) ------------------------------------------------
def meeting_timelines(ax, pieces=14, piece=0.5, time_slice=1.0):
    """Two threads on two cores while another program shares core 2 (a
    schematic, not a measurement). Meeting after every piece of work: each time
    thread 2 waits, the OS lends core 2 to the other program for a time slice,
    and thread 1 waits for thread 2 at the next meeting. Two parts of the batch:
    no waits between, so thread 2 shares its core in long slices, once per step."""
    grey = {"facecolor": "#bdbdbd", "alpha": 0.6, "hatch": "//", "edgecolor": "#777777"}

    def box(x, lane, y0, width, label="", colour="#9ecae1", style=None):
        style = style or {"facecolor": colour, "edgecolor": "#555555"}
        ax.add_patch(Rectangle((x, y0 + lane * 0.45), width, 0.4, **style))
        if label:
            ax.text(x + width / 2, y0 + lane * 0.45 + 0.2, label, ha="center", va="center",
                    fontsize=7)  # fmt: skip

    x = 0.0  # (b1) a meeting (red) after every piece: a matrix product or a pass
    for _ in range(pieces):
        box(x, 0, 0.0, piece)
        box(x, 1, 0.0, time_slice, style=grey)
        box(x + time_slice, 1, 0.0, piece)
        x += time_slice + piece
        ax.plot([x, x], [-0.05, 0.9], color=WINDOW_COLOUR, linewidth=0.8)
    ax.text(x + 0.2, 0.42, f"step ends at {x:.1f}", va="center", fontsize=8)
    y0, work = 1.5, pieces * piece  # (b2) one part per thread: the network on 25 images
    box(0.0, 0, y0, work, "part 0: images 0-24", "#fdae6b")
    x, done = 0.0, 0.0
    while done < work:  # thread 2 and the other program take turns, a whole slice each
        run = min(2 * time_slice, work - done)
        box(x, 1, y0, run, colour="#fdae6b")
        done, x = done + run, x + run
        if done < work:
            box(x, 1, y0, 2 * time_slice, style=grey)
            x += 2 * time_slice
    ax.plot([x, x], [y0 - 0.05, y0 + 0.9], color=WINDOW_COLOUR, linewidth=0.8)
    ax.text(x + 0.2, y0 + 0.42, f"step ends at {x:.1f}", va="center", fontsize=8)
    for y in (0.0, y0):
        for lane, name in enumerate(["thread 1 (core 1)", "thread 2 (core 2)"]):
            ax.text(-0.3, y + lane * 0.45 + 0.2, name, ha="right", va="center", fontsize=8)
    ax.set_xlim(-3, 25)
    ax.set_ylim(y0 + 1.1, -0.8)
    ax.axis("off")
    ax.text(-3, -0.35, "(b1) threads meet (red) after every matrix product and pass:", fontsize=9)
    ax.text(-3, y0 - 0.3, "(b2) one part of the batch per thread, meeting twice per step:",
            fontsize=9)  # fmt: skip
    ax.set_title("(b) two threads on two cores; grey: another program runs on core 2 "
                 "(a schematic, not a measurement)", fontsize=10, loc="left")  # fmt: skip


def figure_fast_tier(out_dir):
    """Chapter 14: the reordering (elements each pass touches, from the network's
    shapes) and the threads' meetings when another program takes a core."""
    model = npcnn.seed_cnn(seed=0)
    conv_elems = int(np.prod(model.output_shapes[0]))  # conv1's output per image
    pool_elems = int(np.prod(model.output_shapes[1]))  # after 2x2 pooling
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.4), height_ratios=[1, 1.15])

    # (a) the same block in two orders; each box is as wide as the data the pass touches
    orders = {
        "TensorFlow / npcnn.ops:\nconv -> + b -> ReLU -> pool": [
            ("conv", conv_elems), ("+ b", conv_elems), ("ReLU", conv_elems),
            ("max-pool", conv_elems)],
        "npcnn.fast (same bits):\nconv -> pool -> + b -> ReLU": [
            ("conv", conv_elems), ("max-pool", conv_elems), ("+ b", pool_elems),
            ("ReLU", pool_elems)],
    }  # fmt: skip
    colours = {"conv": "#9ecae1", "+ b": "#fdae6b", "ReLU": "#a1d99b", "max-pool": "#bcbddc"}
    scale = 1 / 2500
    for row, (title, passes) in enumerate(orders.items()):
        x = 0.0
        top.text(-0.3, row, title, ha="right", va="center", fontsize=9)
        for name, elems in passes:
            width = elems * scale
            top.add_patch(Rectangle((x, row - 0.3), width, 0.6, facecolor=colours[name],
                                    edgecolor="#555555"))  # fmt: skip
            top.text(x + width / 2, row, f"{name}\n{elems:,}", ha="center", va="center",
                     fontsize=8)  # fmt: skip
            x += width + 0.15
    top.set_xlim(-0.3, 4 * conv_elems * scale + 1)
    top.set_ylim(1.6, -0.6)
    top.axis("off")
    top.set_title("(a) Conv2D(relu) + MaxPool2D, conv1: elements each pass reads, per image",
                  fontsize=10, loc="left")  # fmt: skip

    meeting_timelines(bottom)
    save(fig, out_dir, "fast_tier.png")


def figure_rowwise_bands(out_dir, rows=18, out_rows=14, kh=5):
    """Chapter 14: the row-wise convolution's width copy xw (rows hp of every
    image) and the band of rows each kernel row i multiplies by w[i]."""
    fig, ax = plt.subplots(figsize=(10, 3.8))
    colours = ["#fde0dd", "#deebf7", "#e5f5e0", "#fff7bc", "#efedf5"]
    for hp in range(rows):
        ax.add_patch(Rectangle((0, hp * 0.25), 3, 0.25, facecolor="white", edgecolor="#888888"))
        ax.text(-0.1, hp * 0.25 + 0.125, f"hp={hp}", ha="right", va="center", fontsize=6)
    ax.text(1.5, -0.3, "xw: padded row hp, every image n,\nevery output column ow, kw*Cin values",
            ha="center", fontsize=8)  # fmt: skip
    for i in range(kh):
        x0 = 3.6 + i * 1.3
        ax.add_patch(Rectangle((x0, i * 0.25), 1.0, out_rows * 0.25, facecolor=colours[i],
                               edgecolor="#555555"))  # fmt: skip
        ax.text(x0 + 0.5, i * 0.25 + out_rows * 0.125, f"band {i}\nrows\n{i}..{i + out_rows - 1}",
                ha="center", va="center", fontsize=7)  # fmt: skip
        ax.text(x0 + 0.5, -0.15, f"@ w[{i}]", ha="center", fontsize=8)
    ax.text(3.6 + kh * 1.3 + 0.1, out_rows * 0.125, f"= y: {kh} products\nadded in place\n"
            "(BLAS beta=1)", va="center", fontsize=8)  # fmt: skip
    ax.set_xlim(-1, 13)
    ax.set_ylim(rows * 0.25 + 0.1, -0.6)
    ax.axis("off")
    ax.set_title("Row-wise convolution (stride 1, 5x5 kernel, 18 padded rows -> 14): "
                 "kernel row i reads one contiguous band", fontsize=10, loc="left")  # fmt: skip
    save(fig, out_dir, "rowwise_bands.png")


# ---- figure 6: filters ------------------------------------------------------------------
def find_mnist(data_dir=None):
    """The first folder among the candidates that holds MNIST's training files, or None."""
    candidates = [data_dir] if data_dir else []
    if os.environ.get("NPCNN_DATA_DIR"):
        candidates.append(os.path.join(os.environ["NPCNN_DATA_DIR"], "mnist"))
    candidates.append(ROOT.parent / "shared" / "data" / "mnist")
    for folder in candidates:
        folder = Path(folder)
        if all(
            (folder / name).exists() or (folder / f"{name}.gz").exists() for name in MNIST_FILES
        ):
            return folder
    return None


def small_model(seed=0):
    """The tutorial's first conv layer, then just enough to classify: pool, flatten, dense."""
    return npcnn.Sequential(
        [
            npcnn.Conv2D(32, 5, padding="same", activation="relu", name="conv1"),
            npcnn.MaxPool2D(4, name="pool"),
            npcnn.Flatten(name="flatten"),
            npcnn.Dense(10, name="dense"),
            npcnn.Softmax(name="softmax"),
        ],
        input_shape=(28, 28, 1),
        seed=seed,
    )


def train_small_model(folder, steps, seed=0):
    """Train ``small_model`` with the tutorial's loop (Adam 1e-3, batch 50, summed loss).

    Returns the model, its accuracy on 2000 test images and the run's history
    in ``npcnn train``'s format: every batch loss, and the accuracy on the
    first 1000 test images every ``steps // 20`` steps."""
    from npcnn.datasets import load_mnist
    from npcnn.train import images_to_inputs, train_step

    print(f"training a small model for {steps} steps on MNIST from {folder}")
    (x_train, y_train), (x_test, y_test) = load_mnist(folder)
    model, optimizer = small_model(seed), npcnn.Adam(1e-3)
    rng = np.random.default_rng(seed)
    history = {"loss": [], "monitor": [], "monitor_data": "the first 1000 test images"}
    every = max(steps // 20, 1)

    def accuracy_on(n):
        probs = model.predict(images_to_inputs(x_test[:n]))
        return float(np.mean(probs.argmax(axis=1) == y_test[:n]))

    start = time.time()
    history["monitor"].append([0, accuracy_on(1000)])
    for step in range(1, steps + 1):
        idx = rng.integers(0, len(x_train), 50)  # the tutorial's random batches
        x, labels = images_to_inputs(x_train[idx]), y_train[idx].astype(np.int64)
        history["loss"].append(float(train_step(model, optimizer, x, labels)))
        if step % every == 0 or step == steps:
            history["monitor"].append([step, accuracy_on(1000)])
    accuracy = accuracy_on(2000)
    history["eval"], history["eval_data"] = [[steps, accuracy]], "the first 2000 test images"
    print(
        f"trained the small model: {steps} steps in {time.time() - start:.0f} s, "
        f"accuracy on 2000 test images {accuracy:.1%}"
    )
    return model, accuracy, history


def filters_from_checkpoint(path):
    """conv1's kernel before (same seed) and after a ``python -m npcnn train --save`` run."""
    from npcnn.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    learned = np.asarray(ckpt["weights"]["conv1/kernel"])[:, :, 0, :]
    meta = ckpt["meta"]
    seed = meta.get("config", {}).get("seed", 0)
    initial = npcnn.seed_cnn(seed=seed).params[0][:, :, 0, :]  # the run's own initial kernel
    step = meta.get("step", "?")
    accuracy = [acc for _, acc in meta.get("history", {}).get("eval", [])]
    result = f"; test accuracy {accuracy[-1]:.2%}" if accuracy else ""
    title = (
        f"conv1's 32 filters (5x5) of the tutorial network, before and after "
        f"{step} steps of training\n(checkpoint {Path(path).name}{result}). "
    )
    return [("Glorot-initialised", initial), (f"after {step} steps", learned)], title


def figure_filters(out_dir, quick, steps, data_dir=None, checkpoint=None):
    """Chapter 12: the 32 kernels of the first conv layer, before and after training.

    Returns the training history when it trained (for ``figure_training_curves``)."""
    history = None
    initial = small_model().params[0][:, :, 0, :].copy()  # (5, 5, 32): one filter per channel
    folder = None if quick or checkpoint else find_mnist(data_dir)
    if checkpoint:
        rows, title = filters_from_checkpoint(checkpoint)
    elif folder is not None:
        model, accuracy, history = train_small_model(folder, steps)
        learned = model.params[0][:, :, 0, :]
        rows = [("Glorot-initialised", initial), (f"after {steps} steps", learned)]
        title = (
            f"conv1's 32 filters (5x5), before and after {steps} steps of Adam(1e-3) on MNIST\n"
            f"(a small model: conv1 -> pool -> dense -> softmax; test accuracy {accuracy:.0%}). "
        )
    else:
        why = "--quick" if quick else "no MNIST files were found"
        rows = [("Glorot-initialised", initial)]
        title = f"conv1's 32 filters (5x5), Glorot-initialised and NOT trained ({why})\n"
    fig, axes = plt.subplots(2 * len(rows), 16, figsize=(10, 1.55 * len(rows) + 0.5))
    for r, (label, kernel) in enumerate(rows):
        for k in range(32):
            ax = axes[2 * r + k // 16, k % 16]
            f = kernel[:, :, k]
            limit = float(np.abs(f).max()) or 1.0
            ax.imshow(f, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[2 * r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(title + "Red: positive weights, blue: negative.", fontsize=9)
    save(fig, out_dir, "filters.png")
    return history


def figure_training_curves(out_dir, history):
    """Chapter 12: the small model's loss and accuracy curves, drawn by ``npcnn.plots``."""
    path = Path(out_dir) / "training_curves.png"
    if history is not None:
        from npcnn.plots import plot_training_curves

        plot_training_curves(history, path)
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
        return
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.text(0.5, 0.5, "not trained (--quick, or no MNIST files): no curves", ha="center")
    ax.axis("off")
    save(fig, out_dir, "training_curves.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Draw the figures of the npcnn guide.")
    parser.add_argument("--out", default=str(ROOT / "docs" / "figures"), help="output folder")
    parser.add_argument("--quick", action="store_true", help="do not train: untrained filters")
    parser.add_argument("--steps", type=int, default=300, help="training steps for the filters")
    parser.add_argument("--data-dir", default=None, help="folder with MNIST's IDX files")
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="draw the filters of a `python -m npcnn train --save` checkpoint instead",
    )
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    figure_conv_sliding(args.out)
    figure_same_vs_valid(args.out)
    figure_maxpool_gradient(args.out)
    figure_conv_backward(args.out)
    figure_window_taps(args.out)
    figure_conv_channels(args.out)
    figure_im2col_col2im(args.out)
    figure_compute_graph(args.out)
    figure_network_shapes(args.out)
    figure_fast_tier(args.out)
    figure_rowwise_bands(args.out)
    history = figure_filters(args.out, args.quick, args.steps, args.data_dir, args.checkpoint)
    figure_training_curves(args.out, history)


if __name__ == "__main__":
    main()
