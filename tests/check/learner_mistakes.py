"""Each known mistake, made the way a learner makes it: one change to a copy of learners/good.py.

``MISTAKEN`` maps a mistake's name (``npcnn/check/mistakes.py``) to the op it
breaks and the (old, new) text of the change; ``old`` occurs exactly once in
good.py. The tests write the changed copy to a temporary folder and check it.
"""

from __future__ import annotations

from pathlib import Path

GOOD = Path(__file__).parent / "learners" / "good.py"

MISTAKEN = {
    "batchnorm-inference-batch-statistics": (
        "batchnorm_inference",
        "    inv = 1 / np.sqrt(moving_var + x.dtype.type(epsilon))\n"
        "    x_hat = (x - moving_mean) * inv\n",
        "    axes = tuple(range(x.ndim - 1))\n"
        "    mean, var = x.mean(axis=axes), x.var(axis=axes)\n"
        "    inv = 1 / np.sqrt(var + x.dtype.type(epsilon))\n"
        "    x_hat = (x - mean) * inv\n",
    ),
    "batchnorm-inference-updates-moving-averages": (  # in place, as a layer's update is written
        "batchnorm_inference",
        "    inv = 1 / np.sqrt(moving_var + x.dtype.type(epsilon))\n",
        "    axes = tuple(range(x.ndim - 1))\n"
        "    moving_mean *= 0.99\n"
        "    moving_mean += 0.01 * x.mean(axis=axes)\n"
        "    moving_var *= 0.99\n"
        "    moving_var += 0.01 * x.var(axis=axes)\n"
        "    inv = 1 / np.sqrt(moving_var + x.dtype.type(epsilon))\n",
    ),
    "dropout-not-rescaled": (
        "dropout",
        "    return np.where(keep, x * scale, 0).astype(x.dtype), (keep, scale)\n",
        "    return np.where(keep, x, 0).astype(x.dtype), (keep, scale)\n",
    ),
    "dropout-times-keep-probability": (
        "dropout",
        "    scale = x.dtype.type(1 / (1 - rate))\n",
        "    scale = x.dtype.type(1 - rate)\n",
    ),
    "dropout-keeps-rate": (
        "dropout",
        "    keep = rng.random(x.shape) >= rate\n",
        "    keep = rng.random(x.shape) < rate\n",
    ),
    "dropout-grad-not-rescaled": (
        "dropout",
        "    return np.where(keep, dy * scale, 0).astype(dy.dtype)\n",
        "    return np.where(keep, dy, 0).astype(dy.dtype)\n",
    ),
    "avgpool2d-same-averages-padding": (
        "avgpool2d",
        "            count[i, j] = inside[i * sh : i * sh + ph, j * sw : j * sw + pw].sum()\n",
        "            count[i, j] = ph * pw\n",
    ),
    "avgpool2d-default-stride-1": (
        "avgpool2d",
        "    sh, sw = _pair(strides) if strides is not None else (ph, pw)\n",
        "    sh, sw = _pair(strides) if strides is not None else (1, 1)\n",
    ),
    "avgpool2d-grad-not-divided": (
        "avgpool2d",
        "            share = dy[:, i, j, :] / count[i, j]\n",
        "            share = dy[:, i, j, :]\n",
    ),
    "avgpool2d-grad-same-averages-padding": (
        "avgpool2d",
        "            share = dy[:, i, j, :] / count[i, j]\n",
        "            share = dy[:, i, j, :] / (ph * pw)\n",
    ),
    "global-avgpool2d-grad-not-divided": (
        "global_avgpool2d",
        "    share = dy / dy.dtype.type(h * w)\n",
        "    share = dy\n",
    ),
    "leaky-relu-grad-at-zero": (
        "leaky_relu",
        "    return np.where(x > 0, dy, a * dy)\n",
        "    return np.where(x >= 0, dy, a * dy)\n",
    ),
    "leaky-relu-slope-0.01": (
        "leaky_relu",
        "def leaky_relu_forward(x, negative_slope=0.3):",
        "def leaky_relu_forward(x, negative_slope=0.01):",
    ),
    "sigmoid-grad-from-input": ("sigmoid", "    return s, s\n", "    return s, x\n"),
    "tanh-grad-from-input": ("tanh", "    return t, t\n", "    return t, x\n"),
    "tanh-grad-not-squared": (
        "tanh",
        "    return dy * (1 - t * t)\n",
        "    return dy * (1 - t)\n",
    ),
    "batchnorm-unbiased-variance": (
        "batchnorm",
        "    var = ((x - mean) ** 2).mean(axis=axes)\n",
        "    var = ((x - mean) ** 2).sum(axis=axes) / (x.size // x.shape[-1] - 1)\n",
    ),
    "batchnorm-dx-no-mean-term": (
        "batchnorm",
        "(m * g - g.sum(axis=axes) - x_hat",
        "(m * g - x_hat",
    ),
    "batchnorm-dx-no-variance-term": (
        "batchnorm",
        " - x_hat * (g * x_hat).sum(axis=axes))\n",
        ")\n",
    ),
    "batchnorm-dx-as-constants": (
        "batchnorm",
        "    dx = (inv / m) * (m * g - g.sum(axis=axes) - x_hat * (g * x_hat).sum(axis=axes))\n",
        "    dx = g * inv\n",
    ),
    "conv2d-same-pad-top-left": (
        "conv2d",
        "    return out, total // 2, total - total // 2\n",
        "    return out, total - total // 2, total // 2\n",
    ),
    "conv2d-kernel-flipped": (
        "conv2d",
        "                    y[n, i, j, c] = np.sum(window * w[:, :, :, c]) + b[c]",
        "                    y[n, i, j, c] = np.sum(window * w[::-1, ::-1, :, c]) + b[c]",
    ),
    "conv2d-no-bias": (
        "conv2d",
        "                    y[n, i, j, c] = np.sum(window * w[:, :, :, c]) + b[c]",
        "                    y[n, i, j, c] = np.sum(window * w[:, :, :, c])",
    ),
    "conv2d-bias-grad-mean": (
        "conv2d",
        "    h, wd = x.shape[1], x.shape[2]\n",
        "    db = db / (dy.shape[0] * dy.shape[1] * dy.shape[2])\n"
        "    h, wd = x.shape[1], x.shape[2]\n",
    ),
    "conv2d-dw-not-summed": (
        "conv2d",
        "                    dw[:, :, :, c] += g * window",
        "                    dw[:, :, :, c] = g * window",
    ),
    "conv2d-dx-overwritten": (
        "conv2d",
        "                    dx_pad[n, i * sh : i * sh + kh, j * sw : j * sw + kw, :] += "
        "g * w[:, :, :, c]",
        "                    dx_pad[n, i * sh : i * sh + kh, j * sw : j * sw + kw, :] = "
        "np.tensordot(w, dy[n, i, j], axes=([3], [0]))",
    ),
    "conv2d-dx-uncropped": (
        "conv2d",
        "    dx = dx_pad[:, pad_h[0] : pad_h[0] + h, pad_w[0] : pad_w[0] + wd, :]\n",
        "    dx = dx_pad\n",
    ),
    "conv2d-dx-crop-wrong-corner": (
        "conv2d",
        "    dx = dx_pad[:, pad_h[0] : pad_h[0] + h, pad_w[0] : pad_w[0] + wd, :]\n",
        "    dx = dx_pad[:, pad_h[1] : pad_h[1] + h, pad_w[1] : pad_w[1] + wd, :]\n",
    ),
    "conv2d-backward-ignores-strides": (
        "conv2d",
        "    x, w, (sh, sw), (pad_h, pad_w) = cache\n",
        "    x, w, (sh, sw), (pad_h, pad_w) = cache\n    sh = sw = 1\n"
        "    x = np.pad(x, ((0, 0), (0, dy.shape[1] + w.shape[0]), (0, dy.shape[2] + w.shape[1]),"
        " (0, 0)))[:, : x.shape[1], : x.shape[2]]\n",
    ),
    "maxpool2d-same-pad-zero": (
        "maxpool2d",
        "constant_values=-np.inf)",
        "constant_values=0)",
    ),
    "maxpool2d-default-stride-1": (
        "maxpool2d",
        "    sh, sw = _pair(pool_size if strides is None else strides)\n",
        "    sh, sw = _pair(1 if strides is None else strides)\n",
    ),
    "maxpool2d-grad-to-all-maxima": (
        "maxpool2d",
        "                    a, b = np.unravel_index(np.argmax(window), window.shape)\n"
        "                    dx_pad[n, i * sh + a, j * sw + b, c] += dy[n, i, j, c]\n",
        "                    mask = window == window.max()\n"
        "                    dx_pad[n, i * sh : i * sh + ph, j * sw : j * sw + pw, c] += "
        "mask * dy[n, i, j, c]\n",
    ),
    "maxpool2d-grad-to-last-max": (
        "maxpool2d",
        "                    a, b = np.unravel_index(np.argmax(window), window.shape)\n",
        "                    last = window.size - 1 - np.argmax(window.ravel()[::-1])\n"
        "                    a, b = np.unravel_index(last, window.shape)\n",
    ),
    "relu-grad-at-zero": ("relu", "    return dy * (x > 0)\n", "    return dy * (x >= 0)\n"),
    "relu-mask-from-dy": ("relu", "    return dy * (x > 0)\n", "    return dy * (dy > 0)\n"),
    "relu-ignores-upstream": (
        "relu",
        "    return dy * (x > 0)\n",
        "    return (x > 0).astype(dy.dtype)\n",
    ),
    "dense-no-bias": ("dense", "    return x @ w + b, (x, w)\n", "    return x @ w, (x, w)\n"),
    "dense-bias-grad-mean": ("dense", "    db = dy.sum(axis=0)\n", "    db = dy.mean(axis=0)\n"),
    "dense-dw-transposed": ("dense", "    dw = x.T @ dy\n", "    dw = dy.T @ x\n"),
    "flatten-nchw": (
        "flatten",
        "    return x.reshape(x.shape[0], -1), x.shape\n",
        "    y = x.transpose(0, 3, 1, 2) if x.ndim == 4 else x\n"
        "    return y.reshape(x.shape[0], -1), x.shape\n",
    ),
    "softmax-no-max-subtraction": (
        "softmax",
        "    e = np.exp(z - z.max(axis=-1, keepdims=True))\n",
        "    e = np.exp(z)\n",
    ),
    "softmax-wrong-axis": (
        "softmax",
        "    e = np.exp(z - z.max(axis=-1, keepdims=True))\n"
        "    p = e / e.sum(axis=-1, keepdims=True)\n",
        "    e = np.exp(z - z.max(axis=0, keepdims=True))\n"
        "    p = e / e.sum(axis=0, keepdims=True)\n",
    ),
    "softmax-grad-diagonal-only": (
        "softmax",
        "    return p * (dp - np.sum(dp * p, axis=-1, keepdims=True))\n",
        "    return dp * p * (1 - p)\n",
    ),
    "xent-no-clip": (
        "sparse_categorical_crossentropy",
        "        clipped = np.clip(y_pred, y_pred.dtype.type(EPS), y_pred.dtype.type(1 - EPS))\n"
        "        logits = np.log(clipped)\n",
        "        logits = np.log(y_pred)\n",
    ),
    "xent-mean-not-divided": (
        "sparse_categorical_crossentropy",
        "        loss = losses.sum() / y_pred.dtype.type(n)\n",
        "        loss = losses.sum()\n",
    ),
    "xent-grad-no-onehot": (
        "sparse_categorical_crossentropy",
        "    dlogits[np.arange(n), labels] -= 1\n",
        "",
    ),
    "xent-grad-mean-not-divided": (
        "sparse_categorical_crossentropy",
        "        per = np.full(n, dloss / y_pred.dtype.type(n), dtype=y_pred.dtype)\n",
        "        per = np.full(n, dloss, dtype=y_pred.dtype)\n",
    ),
    "xent-grad-ignores-upstream": (
        "sparse_categorical_crossentropy",
        "    dlogits = dlogits * per[:, None]\n",
        "",
    ),
    "conv2d-same-pad-k-over-2": (
        "conv2d",
        "            out, before, after = _same_pads(n, k, s)\n",
        "            before = after = k // 2\n            out = (n + 2 * before - k) // s + 1\n",
    ),
    "conv2d-forward-ignores-strides": (
        "conv2d",
        "    sh, sw = _pair(strides)\n    kh, kw, cin, cout = w.shape\n",
        "    sh, sw = 1, 1\n    kh, kw, cin, cout = w.shape\n",
    ),
    "xent-no-renormalise": (
        "sparse_categorical_crossentropy",
        "    losses = -log_q[np.arange(n), labels]\n",
        "    if not from_logits:\n        log_q = np.log(clipped)\n"
        "    losses = -log_q[np.arange(n), labels]\n",
    ),
    "xent-grad-only-at-label": (
        "sparse_categorical_crossentropy",
        "    lo, hi = y_pred.dtype.type(EPS), y_pred.dtype.type(1 - EPS)\n",
        "    lo, hi = y_pred.dtype.type(EPS), y_pred.dtype.type(1 - EPS)\n"
        "    dlogits = np.zeros_like(q)\n    dlogits[np.arange(n), labels] = -per\n",
    ),
}


def mistaken_source(name: str) -> str:
    """good.py with the mistake ``name`` made in it."""
    _, old, new = MISTAKEN[name]
    text = GOOD.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{name}: the old text occurs {text.count(old)} times"
    return text.replace(old, new)
