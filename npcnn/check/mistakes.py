"""The mistakes learners make, each written out as the wrong code it is, with a teacher's words.

When a learner's op fails, ``npcnn check`` runs the failing case through every
mistake of that op here and names the one whose output (or gradient) equals
the learner's. Each mistake is a standalone wrong implementation of one half
of an op, in ``wrong.py`` (``more_mistakes.py`` for the layers beyond the
tutorial's, with their catalogue): a ``forward`` mistake takes the forward's
arguments and returns the wrong output; a ``backward`` mistake takes the
forward's arguments and the upstream gradient and returns the wrong gradients
by name (only those it gets wrong), or None when the case cannot show it.
"""

from __future__ import annotations

import numpy as np

from . import more_mistakes, wrong
from .learner import copy_args
from .spec import Mistake

MISTAKES = (
    Mistake(
        "conv2d-same-pad-top-left",
        "conv2d",
        "forward",
        "'same' padding puts the odd extra row and column of zeros at the bottom/right "
        "(TensorFlow's rule); you put them at the top/left.",
        wrong.conv_pad_top_left,
    ),
    Mistake(
        "conv2d-same-pad-k-over-2",
        "conv2d",
        "forward",
        "'same' padding is not k//2 zeros on every side: TensorFlow pads just enough for "
        "ceil(H / stride) outputs, total = max((H_out - 1) * stride + k - H, 0) cells, "
        "the odd one at the bottom/right.",
        wrong.conv_pad_k_over_2,
    ),
    Mistake(
        "conv2d-kernel-flipped",
        "conv2d",
        "forward",
        "the kernel is flipped: a CNN's convolution is cross-correlation, "
        "y[oh, ow] = sum x[oh*s + i, ow*s + j] * w[i, j], with no flip.",
        wrong.conv_kernel_flipped,
    ),
    Mistake(
        "conv2d-no-bias",
        "conv2d",
        "forward",
        "the bias is missing: every output channel co adds b[co] to its sum.",
        wrong.conv_no_bias,
    ),
    Mistake(
        "conv2d-forward-ignores-strides",
        "conv2d",
        "forward",
        "the stride is ignored: window (oh, ow) starts at row oh * sh and column ow * sw, "
        "so there are fewer of them.",
        wrong.conv_forward_ignores_strides,
    ),
    Mistake(
        "conv2d-bias-grad-mean",
        "conv2d",
        "backward",
        "the bias gradient is the sum of dy over the batch and every position, not the "
        "mean: b[co] was added to each of those outputs once.",
        wrong.conv_bias_grad_mean,
    ),
    Mistake(
        "conv2d-dw-not-summed",
        "conv2d",
        "backward",
        "dw is not summed over the output positions: each window adds window * dy to dw "
        "('+='), you kept only the last one ('=').",
        wrong.conv_dw_overwritten,
    ),
    Mistake(
        "conv2d-dx-overwritten",
        "conv2d",
        "backward",
        "where windows overlap, an input cell gets the sum of their gradients: "
        "dx_pad[window] += ..., you wrote '=' and kept only the last window's.",
        wrong.conv_dx_overwritten,
    ),
    Mistake(
        "conv2d-dx-uncropped",
        "conv2d",
        "backward",
        "dx has the padded input's shape (the report says dx's shape is wrong, larger by "
        "the padding): the forward padded x, so the backward must cut the padding off "
        "dx_pad again, dx = dx_pad[:, top : top + H, left : left + W, :].",
        wrong.conv_dx_uncropped,
    ),
    Mistake(
        "conv2d-dx-crop-wrong-corner",
        "conv2d",
        "backward",
        "dx is cut out of dx_pad from the wrong corner (its values sit one row or column "
        "off, so the edges differ): 'same' padding puts the odd extra row and column at "
        "the bottom/right, so the crop starts at (pad_top, pad_left), the smaller pads.",
        wrong.conv_dx_crop_wrong_corner,
    ),
    Mistake(
        "conv2d-backward-ignores-strides",
        "conv2d",
        "backward",
        "the backward pass ignores the stride: window (oh, ow) read x_pad[oh * sh + i, "
        "ow * sw + j], so that is where its gradient goes back to (dx) and what it "
        "multiplies (dw).",
        wrong.conv_backward_ignores_strides,
    ),
    Mistake(
        "maxpool2d-same-pad-zero",
        "maxpool2d",
        "forward",
        "'same' max-pooling pads with -inf, not 0: a padded cell must never be the maximum "
        "(all-negative windows at the border show it).",
        wrong.pool_pad_zero,
    ),
    Mistake(
        "maxpool2d-default-stride-1",
        "maxpool2d",
        "forward",
        "strides=None means the stride equals the pool size (windows side by side), not 1.",
        wrong.pool_default_stride_1,
    ),
    Mistake(
        "maxpool2d-grad-to-all-maxima",
        "maxpool2d",
        "backward",
        "max-pool's gradient goes to the first maximum of a window only (row-major order); "
        "you gave it to every cell that ties for the maximum.",
        wrong.pool_grad_all_maxima,
    ),
    Mistake(
        "maxpool2d-grad-to-last-max",
        "maxpool2d",
        "backward",
        "max-pool's gradient goes to the first maximum of a window in row-major order, "
        "you gave it to the last one.",
        wrong.pool_grad_last_max,
    ),
    Mistake(
        "relu-grad-at-zero",
        "relu",
        "backward",
        "ReLU's gradient at exactly 0 is 0 (TensorFlow's choice): use x > 0, not x >= 0.",
        wrong.relu_grad_at_zero,
    ),
    Mistake(
        "relu-mask-from-dy",
        "relu",
        "backward",
        "the mask comes from the forward's input: dx = dy where x > 0; you tested dy > 0.",
        wrong.relu_mask_from_dy,
    ),
    Mistake(
        "relu-ignores-upstream",
        "relu",
        "backward",
        "the chain rule multiplies the local derivative by the upstream gradient: "
        "dx = dy * (x > 0), not just (x > 0).",
        wrong.relu_ignores_upstream,
    ),
    Mistake(
        "dense-no-bias",
        "dense",
        "forward",
        "the bias is missing: y = x @ w + b.",
        wrong.dense_no_bias,
    ),
    Mistake(
        "dense-bias-grad-mean",
        "dense",
        "backward",
        "the bias gradient is the sum over the batch, not the mean: db = dy.sum(axis=0), "
        "since b was added to every row.",
        wrong.dense_bias_grad_mean,
    ),
    Mistake(
        "dense-dw-transposed",
        "dense",
        "backward",
        "dw = x.T @ dy, of w's shape (Din, Dout); dy.T @ x is its transpose.",
        wrong.dense_dw_transposed,
    ),
    Mistake(
        "flatten-nchw",
        "flatten",
        "forward",
        "flatten order is NHWC, as Keras: x[n, h, w, c] goes to column (h * W + w) * C + c "
        "(a plain reshape); you flattened channels first (NCHW, PyTorch's order).",
        wrong.flatten_nchw,
    ),
    Mistake(
        "softmax-no-max-subtraction",
        "softmax",
        "forward",
        "subtract each row's maximum before exp(): the result is the same, but exp(z) of "
        "large logits overflows to inf (and inf / inf is nan).",
        wrong.softmax_no_max,
    ),
    Mistake(
        "softmax-wrong-axis",
        "softmax",
        "forward",
        "softmax normalises each row (one example's class scores, the last axis); you "
        "normalised each column, across the batch.",
        wrong.softmax_wrong_axis,
    ),
    Mistake(
        "softmax-grad-diagonal-only",
        "softmax",
        "backward",
        "every output p_k depends on every input z_j: dz = p * (dp - sum(dp * p)), "
        "not dp * p * (1 - p), which keeps only the diagonal of the Jacobian.",
        wrong.softmax_grad_diagonal,
    ),
    Mistake(
        "xent-no-clip",
        "sparse_categorical_crossentropy",
        "forward",
        "probabilities are clipped to [1e-7, 1 - 1e-7] before the log (Keras), so a "
        "probability of 0 gives a large loss, not inf.",
        wrong.xent_no_clip,
    ),
    Mistake(
        "xent-no-renormalise",
        "sparse_categorical_crossentropy",
        "forward",
        "Keras renormalises the clipped probabilities: loss = -log clip(p)[t] + "
        "log sum_k clip(p)[k]; you left out the second term.",
        wrong.xent_no_renormalise,
    ),
    Mistake(
        "xent-mean-not-divided",
        "sparse_categorical_crossentropy",
        "forward",
        "reduction='mean' divides the summed loss by the batch size N.",
        wrong.xent_mean_not_divided,
    ),
    Mistake(
        "xent-grad-no-onehot",
        "sparse_categorical_crossentropy",
        "backward",
        "the softmax cross-entropy gradient with respect to the logits is q - onehot(t): "
        "you forgot to subtract 1 at the true class.",
        wrong.xent_grad_no_onehot,
    ),
    Mistake(
        "xent-grad-mean-not-divided",
        "sparse_categorical_crossentropy",
        "backward",
        "with reduction='mean' every example's gradient is divided by the batch size N, "
        "as its loss was.",
        wrong.xent_grad_mean_not_divided,
    ),
    Mistake(
        "xent-grad-ignores-upstream",
        "sparse_categorical_crossentropy",
        "backward",
        "the chain rule multiplies by the upstream gradient dloss (per example for "
        "reduction='none'); you returned the gradient as if dloss were 1.",
        wrong.xent_grad_ignores_upstream,
    ),
    Mistake(
        "xent-grad-only-at-label",
        "sparse_categorical_crossentropy",
        "backward",
        "the loss from probabilities is softmax cross-entropy on log(clip(p)), so its "
        "gradient is (q - onehot(t)) / clip(p) with q = clip(p) / sum(clip(p)): every "
        "class gets some, not just -1/p at the label.",
        wrong.xent_grad_only_label,
    ),
) + more_mistakes.MISTAKES


def for_op(op: str, stage: str):
    """The mistakes of one op's forward or backward pass."""
    return [m for m in MISTAKES if m.op == op and m.stage == stage]


def run(mistake: Mistake, case):
    """The mistake's result on ``case``: the output (forward) or a dict of gradients (backward);
    None when the case cannot show it (or the mistaken code itself fails on it)."""
    with np.errstate(all="ignore"):
        try:
            if mistake.stage == "forward":
                return mistake.fn(*copy_args(case.args))
            return mistake.fn(copy_args(case.args), case.upstream)
        except (ValueError, IndexError, ZeroDivisionError):
            return None
