"""PNG plots for people who would rather look than read (needs matplotlib).

- training curves: the loss of every step (and its running mean), and the
  accuracy on held-out images along the way (``history["monitor"]``, a subset
  of the test set, named in the legend) and at the evaluations;
- the learned first-layer filters (32 kernels of 5x5);
- the first layer's feature maps for one digit;
- a confusion matrix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise RuntimeError("plots need matplotlib: pip install 'npcnn[plot]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(plt, images, title, path, cmap="gray"):
    """Show a stack of 2-D images (K, H, W) in a grid and save it."""
    k = len(images)
    n_cols = int(np.ceil(np.sqrt(k)))
    rows = int(np.ceil(k / n_cols))
    fig, axes = plt.subplots(rows, n_cols, figsize=(1.3 * n_cols, 1.3 * rows + 0.4))
    for ax, i in zip(np.ravel(axes), range(rows * n_cols)):
        ax.axis("off")
        if i < k:
            ax.imshow(images[i], cmap=cmap, interpolation="nearest")
            ax.set_title(str(i), fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_training_curves(history, path):
    plt = _pyplot()
    loss = np.asarray(history["loss"], dtype=float)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot(loss, lw=0.5, alpha=0.4, label="batch loss (sum over batch)")
    if len(loss) >= 10:
        window = max(len(loss) // 50, 10)
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax[0].plot(np.arange(window - 1, len(loss)), smooth, label=f"mean of {window}")
    ax[0].set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
    ax[0].legend()
    curve = np.asarray(history.get("monitor", []), dtype=float).reshape(-1, 2)
    if len(curve):
        what = history.get("monitor_data", "a held-out subset")
        ax[1].plot(curve[:, 0], curve[:, 1], ".-", label=f"along the way: {what}")
    evals = np.asarray(history["eval"], dtype=float).reshape(-1, 2)
    what = history.get("eval_data", "the test set")
    ax[1].plot(evals[:, 0], evals[:, 1], "o", ms=7, label=f"evaluation: {what}")
    ax[1].set(xlabel="step", ylabel="accuracy", title="accuracy on images never trained on")
    ax[1].set_ylim(0, 1.02)  # the whole range: chance (0.1) looks like chance
    ax[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_filters(kernel, path):
    """kernel (kh, kw, 1, filters): one grey image per filter."""
    kernel = np.asarray(kernel)
    return _grid(_pyplot(), np.moveaxis(kernel[:, :, 0, :], -1, 0), "first-layer filters", path)


def plot_feature_maps(learner, image, path, dtype="float32"):
    """The first conv layer's outputs (after ReLU) for one 28x28 uint8 image."""
    from .ops import conv2d_forward, relu_forward
    from .train import images_to_inputs

    weights = dict(learner.named_params())
    kernel, bias = weights["conv1/kernel"], weights["conv1/bias"]
    x = images_to_inputs(image[None], kernel.dtype)
    maps = relu_forward(conv2d_forward(x, kernel, bias, 1, "same")[0])[0][0]
    return _grid(
        _pyplot(), np.moveaxis(maps, -1, 0), "conv1 feature maps of one digit", path, cmap="viridis"
    )


def plot_confusion(confusion, out_dir):
    plt = _pyplot()
    path = Path(out_dir) / "confusion.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    shade = np.log1p(confusion)
    im = ax.imshow(shade, cmap="Blues")
    dark = shade > shade.max() / 2  # white numbers on the dark cells, black on the light
    for (i, j), c in np.ndenumerate(confusion):
        color = "white" if dark[i, j] else "black"
        ax.text(j, i, str(c), ha="center", va="center", fontsize=7, color=color)
    ax.set(
        xlabel="predicted",
        ylabel="true",
        title="confusion matrix",
        xticks=range(confusion.shape[1]),
        yticks=range(confusion.shape[0]),
    )
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def training_plots(out_dir, history, learner, image, confusion, dtype="float32"):
    """Write every plot of a finished run into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = dict(learner.named_params())
    return [
        plot_training_curves(history, out / "training_curves.png"),
        plot_filters(weights["conv1/kernel"], out / "filters_conv1.png"),
        plot_feature_maps(learner, image, out / "feature_maps_conv1.png", dtype),
        plot_confusion(confusion, out),
    ]
