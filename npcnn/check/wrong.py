"""The wrong code of each known mistake (``mistakes.py`` names them and says what is wrong).

Each function is one half of an op written the wrong way a learner writes it:
a forward takes the forward's arguments and returns the wrong output; a
backward takes the forward's arguments and the upstream gradient and returns
the wrong gradients by name (only those it gets wrong). None means the case
cannot show the mistake (it would give the right answer there).
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..ops.conv2d import im2col
from ..ops.crossentropy import EPSILON
from ..ops.padding import output_hw, padding_amounts
from ..ops.softmax import softmax
from ..ops.windows import pad_nhwc, tap_view
from ..validation import as_pair


# ---- conv2d -------------------------------------------------------------------------------
def _conv(x, w, b, strides, pads, out_hw):
    """y = im2col(x padded by ``pads``) @ w + b, for the given geometry."""
    kh, kw, cin, cout = w.shape
    cols = im2col(pad_nhwc(x, pads), (kh, kw), strides, out_hw)
    return (cols @ w.reshape(-1, cout) + b).reshape(x.shape[0], *out_hw, cout)


def _geometry(x, window, strides, padding):
    strides = as_pair(strides, "strides")
    hw = x.shape[1:3]
    return (
        strides,
        padding_amounts(hw, window, strides, padding),
        output_hw(hw, window, strides, padding),
    )


def conv_pad_top_left(x, w, b, strides=1, padding="same"):
    strides, pads, out_hw = _geometry(x, w.shape[:2], strides, padding)
    return _conv(x, w, b, strides, tuple(p[::-1] for p in pads), out_hw)


def conv_pad_k_over_2(x, w, b, strides=1, padding="same"):
    if padding != "same":
        return None
    strides = as_pair(strides, "strides")
    pads = tuple((k // 2, k // 2) for k in w.shape[:2])
    out_hw = tuple(
        (n + 2 * p[0] - k) // s + 1 for n, p, k, s in zip(x.shape[1:3], pads, w.shape[:2], strides)
    )
    return _conv(x, w, b, strides, pads, out_hw) if min(out_hw) > 0 else None


def conv_kernel_flipped(x, w, b, strides=1, padding="same"):
    return ops.conv2d_forward(x, w[::-1, ::-1].copy(), b, strides, padding)[0]


def conv_no_bias(x, w, b, strides=1, padding="same"):
    return ops.conv2d_forward(x, w, np.zeros_like(b), strides, padding)[0]


def conv_forward_ignores_strides(x, w, b, strides=1, padding="same"):
    return ops.conv2d_forward(x, w, b, 1, padding)[0]


def conv_bias_grad_mean(args, dy):
    return {"db": dy.mean(axis=(0, 1, 2))}


def _conv_windows(args):
    """(x_pad, strides, pads) of a conv2d case, as the forward computed them."""
    x, w, _, strides, padding = args
    strides, pads, _ = _geometry(x, w.shape[:2], strides, padding)
    return pad_nhwc(x, pads), strides, pads


def conv_dw_overwritten(args, dy):
    x_pad, (sh, sw), _ = _conv_windows(args)
    kh, kw = args[1].shape[:2]
    n, oh, ow = dy.shape[0] - 1, dy.shape[1] - 1, dy.shape[2] - 1  # the last window wins
    window = x_pad[n, oh * sh : oh * sh + kh, ow * sw : ow * sw + kw, :]
    return {"dw": window[..., None] * dy[n, oh, ow]}


def conv_dx_overwritten(args, dy):
    x, w = args[0], args[1]
    x_pad, (sh, sw), ((top, _), (left, _)) = _conv_windows(args)
    kh, kw = w.shape[:2]
    dx_pad = np.zeros_like(x_pad)
    for n in range(dy.shape[0]):
        for oh in range(dy.shape[1]):
            for ow in range(dy.shape[2]):  # '=' where '+=' belongs: the last window wins
                dx_pad[n, oh * sh : oh * sh + kh, ow * sw : ow * sw + kw, :] = w @ dy[n, oh, ow]
    return {"dx": dx_pad[:, top : top + x.shape[1], left : left + x.shape[2], :]}


def conv_backward_ignores_strides(args, dy):
    x, w = args[0], args[1]
    x_pad, _, ((top, _), (left, _)) = _conv_windows(args)
    kh, kw, cin, cout = w.shape
    out_hw = dy.shape[1:3]
    need = (out_hw[0] - 1 + kh, out_hw[1] - 1 + kw)  # windows at stride 1 may run past x_pad
    grow = (
        (0, 0),
        (0, max(need[0] - x_pad.shape[1], 0)),
        (0, max(need[1] - x_pad.shape[2], 0)),
        (0, 0),
    )
    x_big = np.pad(x_pad, grow)
    dx_big = np.zeros_like(x_big)
    dw = np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            taps = tap_view(x_big, i, j, (1, 1), out_hw)  # window (oh, ow) starts at (oh, ow)
            dw[i, j] = np.einsum("nhwc,nhwo->co", taps, dy)
            tap_view(dx_big, i, j, (1, 1), out_hw)[...] += dy @ w[i, j].T
    return {"dx": dx_big[:, top : top + x.shape[1], left : left + x.shape[2], :], "dw": dw}


def _dx_pad(args, dy):
    """The correct gradient of the *padded* input, and the pads ((top, bottom), (left, right))."""
    x_pad, strides, pads = _conv_windows(args)
    w = args[1]
    zero_bias = np.zeros(w.shape[3], dtype=x_pad.dtype)
    _, cache = ops.conv2d_forward(x_pad, w, zero_bias, strides, "valid")  # the same windows
    return ops.conv2d_backward(dy, cache)[0], pads


def conv_dx_uncropped(args, dy):
    dx_pad, pads = _dx_pad(args, dy)
    if not any(any(p) for p in pads):
        return None  # no padding: dx_pad is dx
    return {"dx": dx_pad}  # the padding's rows and columns left on


def conv_dx_crop_wrong_corner(args, dy):
    x = args[0]
    dx_pad, ((top, bottom), (left, right)) = _dx_pad(args, dy)
    if (top, left) == (bottom, right):
        return None  # even padding: both corners give the same crop
    # cut from (bottom, right) on: the odd extra row and column taken off the top/left
    return {"dx": dx_pad[:, bottom : bottom + x.shape[1], right : right + x.shape[2], :]}


# ---- maxpool2d ----------------------------------------------------------------------------
def _pool_geometry(x, pool_size, strides, padding):
    pool = as_pair(pool_size, "pool_size")
    steps = pool if strides is None else as_pair(strides, "strides")
    hw = x.shape[1:3]
    return (
        pool,
        steps,
        padding_amounts(hw, pool, steps, padding),
        output_hw(hw, pool, steps, padding),
    )


def pool_pad_zero(x, pool_size=2, strides=None, padding="valid"):
    pool, steps, pads, out_hw = _pool_geometry(x, pool_size, strides, padding)
    x_pad = pad_nhwc(x, pads, value=0.0)  # zeros can win the max
    taps = [tap_view(x_pad, i, j, steps, out_hw) for i in range(pool[0]) for j in range(pool[1])]
    return np.max(np.stack(taps), axis=0)


def pool_default_stride_1(x, pool_size=2, strides=None, padding="valid"):
    if strides is not None:
        return None
    return ops.maxpool2d_forward(x, pool_size, 1, padding)[0]


def _pool_grad(args, dy, route):
    """dx with each window's gradient sent to the taps ``route`` picks among its maxima."""
    x = args[0]
    pool, steps, pads, out_hw = _pool_geometry(*args)
    x_pad = pad_nhwc(x, pads, value=-np.inf)
    taps = [(i, j) for i in range(pool[0]) for j in range(pool[1])]
    stack = np.stack([tap_view(x_pad, i, j, steps, out_hw) for i, j in taps])
    wins = route(stack == stack.max(axis=0))
    dx_pad = np.zeros(x_pad.shape, dtype=dy.dtype)
    for k, (i, j) in enumerate(taps):
        tap_view(dx_pad, i, j, steps, out_hw)[...] += np.where(wins[k], dy, 0)
    (top, _), (left, _) = pads
    return {"dx": dx_pad[:, top : top + x.shape[1], left : left + x.shape[2], :]}


def pool_grad_all_maxima(args, dy):
    return _pool_grad(args, dy, lambda is_max: is_max)


def pool_grad_last_max(args, dy):
    def last(is_max):
        after = np.flip(np.cumsum(np.flip(is_max, 0), axis=0), 0)  # maxima from here on
        return is_max & (after == 1)

    return _pool_grad(args, dy, last)


# ---- relu, dense, flatten -------------------------------------------------------------------
def relu_grad_at_zero(args, dy):
    return {"dx": np.where(args[0] >= 0, dy, 0)}


def relu_mask_from_dy(args, dy):
    return {"dx": np.where(dy > 0, dy, 0)}


def dense_no_bias(x, w, b):
    return x @ w


def dense_bias_grad_mean(args, dy):
    return {"db": dy.mean(axis=0)}


def dense_dw_transposed(args, dy):
    return {"dw": dy.T @ args[0]}


def flatten_nchw(x):
    if x.ndim != 4:
        return None
    return x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)


def relu_ignores_upstream(args, dy):
    return {"dx": (args[0] > 0).astype(dy.dtype)}


# ---- softmax and the loss -------------------------------------------------------------------
def softmax_no_max(z):
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_wrong_axis(z):
    if z.ndim < 2:
        return None
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def softmax_grad_diagonal(args, dp):
    p = softmax(args[0])
    return {"dz": dp * p * (1 - p)}


def _per_example(y_pred, reduction, dloss, divide=True):
    n = y_pred.shape[0]
    if reduction == "none":
        return np.asarray(dloss, dtype=y_pred.dtype)
    scale = n if (reduction == "mean" and divide) else 1
    return np.full(n, np.asarray(dloss, dtype=y_pred.dtype) / y_pred.dtype.type(scale))


def _clip(p):
    t = p.dtype.type
    return np.clip(p, t(EPSILON), t(1 - EPSILON))


def _to_y_pred(dlogits, y_pred, from_logits):
    """dL/dy_pred from dL/dlogits: for probabilities, logits = log(clip(p))."""
    if from_logits:
        return dlogits
    t = y_pred.dtype.type
    inside = (y_pred >= t(EPSILON)) & (y_pred <= t(1 - EPSILON))
    return np.where(inside, dlogits / _clip(y_pred), 0)


def _xent_grad(args, dloss, *, onehot=True, divide=True, upstream=True):
    y_pred, labels, from_logits, reduction = args
    logits = y_pred if from_logits else np.log(_clip(y_pred))
    dlogits = softmax(logits)
    if onehot:
        dlogits[np.arange(len(labels)), labels] -= 1
    if upstream:
        dlogits = dlogits * _per_example(y_pred, reduction, dloss, divide)[:, None]
    return {"dy_pred": _to_y_pred(dlogits, y_pred, from_logits)}


def _reduce(each, reduction):
    if reduction == "none":
        return each
    return each.sum() / each.dtype.type(len(each) if reduction == "mean" else 1)


def xent_no_clip(y_pred, labels, from_logits=False, reduction="sum"):
    if from_logits:
        return None
    return _reduce(-np.log(y_pred[np.arange(len(labels)), labels]), reduction)


def xent_no_renormalise(y_pred, labels, from_logits=False, reduction="sum"):
    if from_logits:
        return None
    return _reduce(-np.log(_clip(y_pred)[np.arange(len(labels)), labels]), reduction)


def xent_mean_not_divided(y_pred, labels, from_logits=False, reduction="sum"):
    if reduction != "mean":
        return None
    return ops.sparse_categorical_crossentropy_forward(y_pred, labels, from_logits, "sum")[0]


def xent_grad_no_onehot(args, dloss):
    return _xent_grad(args, dloss, onehot=False)


def xent_grad_mean_not_divided(args, dloss):
    return _xent_grad(args, dloss, divide=False) if args[3] == "mean" else None


def xent_grad_ignores_upstream(args, dloss):
    return _xent_grad(args, dloss, upstream=False)


def xent_grad_only_label(args, dloss):
    y_pred, labels, from_logits, reduction = args
    if from_logits:
        return None
    rows = np.arange(len(labels))
    dlogits = np.zeros_like(y_pred)
    dlogits[rows, labels] = -1  # d(-log p[t]) = -1/p[t] at the label, and nothing else
    dlogits *= _per_example(y_pred, reduction, dloss)[:, None]
    return {"dy_pred": _to_y_pred(dlogits, y_pred, from_logits)}
