"""Every op of npcnn.ops written out the way a learner would: loops, NumPy, nothing else.

``npcnn check`` must pass this file; the tests make each known mistake by
changing one line of a copy of it.
"""

import numpy as np


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _same_pads(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return out, total // 2, total - total // 2


def _geometry(x, window, strides, padding):
    """(out_h, out_w), ((top, bottom), (left, right))"""
    outs, pads = [], []
    for n, k, s in zip(x.shape[1:3], window, strides):
        if padding.lower() == "same":
            out, before, after = _same_pads(n, k, s)
        else:
            out, before, after = (n - k) // s + 1, 0, 0
        outs.append(out)
        pads.append((before, after))
    return outs, pads


def relu_forward(x):
    out = np.maximum(x, 0)
    return out, x


def relu_backward(dy, cache):
    x = cache
    return dy * (x > 0)


def dense_forward(x, w, b):
    return x @ w + b, (x, w)


def dense_backward(dy, cache):
    x, w = cache
    dx = dy @ w.T
    dw = x.T @ dy
    db = dy.sum(axis=0)
    return dx, dw, db


def flatten_forward(x):
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dy, cache):
    return dy.reshape(cache)


def conv2d_forward(x, w, b, strides=1, padding="same"):
    sh, sw = _pair(strides)
    kh, kw, cin, cout = w.shape
    (out_h, out_w), (pad_h, pad_w) = _geometry(x, (kh, kw), (sh, sw), padding)
    x_pad = np.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
    y = np.zeros((x.shape[0], out_h, out_w, cout), dtype=x.dtype)
    for n in range(x.shape[0]):
        for i in range(out_h):
            for j in range(out_w):
                window = x_pad[n, i * sh : i * sh + kh, j * sw : j * sw + kw, :]
                for c in range(cout):
                    y[n, i, j, c] = np.sum(window * w[:, :, :, c]) + b[c]
    return y, (x, w, (sh, sw), (pad_h, pad_w))


def conv2d_backward(dy, cache):
    x, w, (sh, sw), (pad_h, pad_w) = cache
    kh, kw, cin, cout = w.shape
    x_pad = np.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.zeros_like(w[0, 0, 0])
    for n in range(dy.shape[0]):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                window = x_pad[n, i * sh : i * sh + kh, j * sw : j * sw + kw, :]
                for c in range(cout):
                    g = dy[n, i, j, c]
                    dx_pad[n, i * sh : i * sh + kh, j * sw : j * sw + kw, :] += g * w[:, :, :, c]
                    dw[:, :, :, c] += g * window
                    db[c] += g
    h, wd = x.shape[1], x.shape[2]
    dx = dx_pad[:, pad_h[0] : pad_h[0] + h, pad_w[0] : pad_w[0] + wd, :]
    return dx, dw, db


def maxpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    ph, pw = _pair(pool_size)
    sh, sw = _pair(pool_size if strides is None else strides)
    (out_h, out_w), (pad_h, pad_w) = _geometry(x, (ph, pw), (sh, sw), padding)
    x_pad = np.pad(x, ((0, 0), pad_h, pad_w, (0, 0)), constant_values=-np.inf)
    y = np.zeros((x.shape[0], out_h, out_w, x.shape[3]), dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            window = x_pad[:, i * sh : i * sh + ph, j * sw : j * sw + pw, :]
            y[:, i, j, :] = window.max(axis=(1, 2))
    return y, (x_pad, x.shape, (ph, pw), (sh, sw), (pad_h, pad_w))


def maxpool2d_backward(dy, cache):
    x_pad, x_shape, (ph, pw), (sh, sw), (pad_h, pad_w) = cache
    dx_pad = np.zeros_like(x_pad)
    for n in range(dy.shape[0]):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                for c in range(dy.shape[3]):
                    window = x_pad[n, i * sh : i * sh + ph, j * sw : j * sw + pw, c]
                    a, b = np.unravel_index(np.argmax(window), window.shape)
                    dx_pad[n, i * sh + a, j * sw + b, c] += dy[n, i, j, c]
    return dx_pad[:, pad_h[0] : pad_h[0] + x_shape[1], pad_w[0] : pad_w[0] + x_shape[2], :]


def softmax_forward(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return p, p


def softmax_backward(dp, cache):
    p = cache
    return p * (dp - np.sum(dp * p, axis=-1, keepdims=True))


EPS = 1e-7


def sparse_categorical_crossentropy_forward(y_pred, labels, from_logits=False, reduction="sum"):
    n = y_pred.shape[0]
    if from_logits:
        logits = y_pred
    else:
        clipped = np.clip(y_pred, y_pred.dtype.type(EPS), y_pred.dtype.type(1 - EPS))
        logits = np.log(clipped)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_q = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    losses = -log_q[np.arange(n), labels]
    if reduction == "sum":
        loss = losses.sum()
    elif reduction == "mean":
        loss = losses.sum() / y_pred.dtype.type(n)
    else:
        loss = losses
    return loss, (y_pred, labels, from_logits, reduction, np.exp(log_q))


def sparse_categorical_crossentropy_backward(dloss, cache):
    y_pred, labels, from_logits, reduction, q = cache
    n = y_pred.shape[0]
    if reduction == "none":
        per = dloss
    elif reduction == "mean":
        per = np.full(n, dloss / y_pred.dtype.type(n), dtype=y_pred.dtype)
    else:
        per = np.full(n, dloss, dtype=y_pred.dtype)
    dlogits = q.copy()
    dlogits[np.arange(n), labels] -= 1
    dlogits = dlogits * per[:, None]
    if from_logits:
        return dlogits
    lo, hi = y_pred.dtype.type(EPS), y_pred.dtype.type(1 - EPS)
    clipped = np.clip(y_pred, lo, hi)
    inside = (y_pred >= lo) & (y_pred <= hi)
    return np.where(inside, dlogits / clipped, 0).astype(y_pred.dtype)


def batchnorm_forward(x, gamma, beta, epsilon=1e-3):
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes)
    var = ((x - mean) ** 2).mean(axis=axes)
    inv = 1 / np.sqrt(var + x.dtype.type(epsilon))
    x_hat = (x - mean) * inv
    return gamma * x_hat + beta, (x_hat, gamma, inv), (mean, var)


def batchnorm_backward(dy, cache):
    x_hat, gamma, inv = cache
    axes = tuple(range(dy.ndim - 1))
    m = x_hat.size // x_hat.shape[-1]
    g = dy * gamma
    dx = (inv / m) * (m * g - g.sum(axis=axes) - x_hat * (g * x_hat).sum(axis=axes))
    return dx, (dy * x_hat).sum(axis=axes), dy.sum(axis=axes)


def batchnorm_inference_forward(x, gamma, beta, moving_mean, moving_var, epsilon=1e-3):
    inv = 1 / np.sqrt(moving_var + x.dtype.type(epsilon))
    x_hat = (x - moving_mean) * inv
    return gamma * x_hat + beta, (x_hat, gamma, inv)


def batchnorm_inference_backward(dy, cache):
    x_hat, gamma, inv = cache
    axes = tuple(range(dy.ndim - 1))
    return dy * gamma * inv, (dy * x_hat).sum(axis=axes), dy.sum(axis=axes)


def dropout_forward(x, rate, rng):
    keep = rng.random(x.shape) >= rate
    scale = x.dtype.type(1 / (1 - rate))
    return np.where(keep, x * scale, 0).astype(x.dtype), (keep, scale)


def dropout_backward(dy, cache):
    keep, scale = cache
    return np.where(keep, dy * scale, 0).astype(dy.dtype)


def avgpool2d_forward(x, pool_size=2, strides=None, padding="valid"):
    ph, pw = _pair(pool_size)
    sh, sw = _pair(strides) if strides is not None else (ph, pw)
    (out_h, out_w), (pad_h, pad_w) = _geometry(x, (ph, pw), (sh, sw), padding)
    x_pad = np.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
    inside = np.pad(np.ones(x.shape[1:3], dtype=x.dtype), (pad_h, pad_w))
    y = np.zeros((x.shape[0], out_h, out_w, x.shape[3]), dtype=x.dtype)
    count = np.zeros((out_h, out_w), dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            window = x_pad[:, i * sh : i * sh + ph, j * sw : j * sw + pw, :]
            count[i, j] = inside[i * sh : i * sh + ph, j * sw : j * sw + pw].sum()
            y[:, i, j, :] = window.sum(axis=(1, 2)) / count[i, j]
    return y, (x.shape, count, (ph, pw), (sh, sw), (pad_h, pad_w))


def avgpool2d_backward(dy, cache):
    x_shape, count, (ph, pw), (sh, sw), (pad_h, pad_w) = cache
    height, width = x_shape[1] + sum(pad_h), x_shape[2] + sum(pad_w)
    dx_pad = np.zeros((x_shape[0], height, width, x_shape[3]), dtype=dy.dtype)
    for i in range(dy.shape[1]):
        for j in range(dy.shape[2]):
            share = dy[:, i, j, :] / count[i, j]
            dx_pad[:, i * sh : i * sh + ph, j * sw : j * sw + pw, :] += share[:, None, None, :]
    return dx_pad[:, pad_h[0] : pad_h[0] + x_shape[1], pad_w[0] : pad_w[0] + x_shape[2], :]


def global_avgpool2d_forward(x):
    return x.mean(axis=(1, 2)), x.shape


def global_avgpool2d_backward(dy, cache):
    n, h, w, c = cache
    share = dy / dy.dtype.type(h * w)
    return np.broadcast_to(share[:, None, None, :], cache).copy()


def leaky_relu_forward(x, negative_slope=0.3):
    a = x.dtype.type(negative_slope)
    return np.where(x > 0, x, a * x), (x, a)


def leaky_relu_backward(dy, cache):
    x, a = cache
    return np.where(x > 0, dy, a * dy)


def sigmoid_forward(x):
    e = np.exp(-np.abs(x))
    s = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)
    return s, s


def sigmoid_backward(dy, cache):
    s = cache
    return dy * s * (1 - s)


def tanh_forward(x):
    t = np.tanh(x)
    return t, t


def tanh_backward(dy, cache):
    t = cache
    return dy * (1 - t * t)
