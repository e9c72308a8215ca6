"""Sparse categorical cross-entropy, exactly as Keras computes it.

For integer labels ``t`` and a row of class scores, the loss of one example is
``-log q[t]`` where ``q`` is a probability vector:

- ``from_logits=True``: ``y_pred`` holds logits z and q = softmax(z).
- ``from_logits=False`` (the Keras default, and what the tutorial uses on its
  softmax output): ``y_pred`` holds probabilities p. Keras clips them to
  [eps, 1 - eps] with eps = 1e-7, takes the log, and applies softmax
  cross-entropy to that, i.e. q = clip(p) / sum(clip(p)) -- it renormalises.
  So the loss is ``-log clip(p)[t] + log sum_k clip(p)[k]``, and its gradient
  is zero wherever the clip is active (p < eps or p > 1 - eps).

Reduction over the batch: 'sum' (the tutorial's ``reduce_sum``), 'mean'
(Keras's default; 0 for an empty batch) or 'none' (one loss per example).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..backend import get_array_module
from ..validation import check_bool, check_float, check_rank
from .softmax import log_softmax

EPSILON = 1e-7  # Keras's backend.epsilon()
REDUCTIONS = ("sum", "mean", "none")


class CrossEntropyCache(NamedTuple):
    """What the backward pass needs from the forward pass."""

    q: object  # softmax of the logits (N, K)
    labels: object  # (N,) class ids
    clipped: object  # clip(y_pred, eps, 1 - eps) for probabilities; None for logits
    y_pred: object  # the input (N, K)
    reduction: str  # 'sum', 'mean' or 'none'


def _check_labels(labels, y_pred):
    check_rank(labels, 1, "labels", "N")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
    if labels.shape[0] != y_pred.shape[0]:
        raise ValueError(
            f"labels has {labels.shape[0]} entries but y_pred has {y_pred.shape[0]} rows "
            f"(shapes {tuple(labels.shape)} and {tuple(y_pred.shape)})"
        )
    num_classes = y_pred.shape[1]
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}) for y_pred of shape {tuple(y_pred.shape)}, "
            f"got values from {int(labels.min())} to {int(labels.max())}"
        )


def sparse_categorical_crossentropy_forward(y_pred, labels, from_logits=False, reduction="sum"):
    """Cross-entropy between integer labels and predicted class scores.

    Args:
        y_pred: (N, K) probabilities (``from_logits=False``) or logits.
        labels: (N,) integer class ids in [0, K).
        from_logits: whether ``y_pred`` holds logits.
        reduction: 'sum', 'mean' or 'none'.
    Returns:
        loss (a 0-d array, or (N,) for 'none') and the cache.
    """
    check_rank(y_pred, 2, "y_pred", "N, num_classes")
    check_float(y_pred, "y_pred")
    from_logits = check_bool(from_logits, "from_logits")
    _check_labels(labels, y_pred)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    xp = get_array_module(y_pred)
    dtype = y_pred.dtype.type
    n = y_pred.shape[0]

    if from_logits:
        logits, clipped = y_pred, None
    else:
        lo, hi = dtype(EPSILON), dtype(1.0 - EPSILON)
        clipped = xp.clip(y_pred, lo, hi)  # keep log() away from 0
        logits = xp.log(clipped)  # Keras then treats log(p) as logits

    rows = xp.arange(n)
    log_q = log_softmax(logits)  # log q, q = softmax(logits)
    per_example = -log_q[rows, labels]  # -log q[t]
    if reduction == "none":
        loss = per_example
    elif reduction == "sum":
        loss = per_example.sum()
    else:
        loss = per_example.sum() / dtype(max(n, 1))
    return loss, CrossEntropyCache(xp.exp(log_q), labels, clipped, y_pred, reduction)


def sparse_categorical_crossentropy_backward(dloss, cache):
    """Gradient of the loss with respect to ``y_pred``.

    Args:
        dloss: upstream gradient: a scalar for 'sum'/'mean', shape (N,) for 'none'.
    Returns:
        dy_pred (N, K).

    With q = softmax(logits): dL_n/dlogits = q - onehot(t). For probabilities,
    logits = log(clip(p)), so dL/dp = dL/dlogits / clip(p) where the clip is
    inactive, and 0 where it is active.
    """
    q, labels, reduction = cache.q, cache.labels, cache.reduction
    xp = get_array_module(q)
    n = q.shape[0]
    dloss = xp.asarray(dloss, dtype=q.dtype)  # a float64 scalar must not upcast float32 work
    if reduction == "none":
        if dloss.shape != (n,):
            raise ValueError(
                f"dloss must have shape ({n},) for reduction='none', got {dloss.shape}"
            )
        per_example = dloss
    else:
        if dloss.ndim != 0:
            raise ValueError(
                f"dloss must be a scalar for reduction={reduction!r}, got {dloss.shape}"
            )
        per_example = dloss / q.dtype.type(max(n, 1)) if reduction == "mean" else dloss
        per_example = xp.broadcast_to(per_example, (n,))

    dlogits = q.copy()
    dlogits[xp.arange(n), labels] -= 1  # q - onehot(t)
    dlogits *= per_example[:, None]  # times the upstream gradient of each example
    if cache.clipped is None:  # from logits
        return dlogits
    lo, hi = q.dtype.type(EPSILON), q.dtype.type(1.0 - EPSILON)
    inside = (cache.y_pred >= lo) & (cache.y_pred <= hi)  # clip passes the gradient only inside
    return xp.where(inside, dlogits / cache.clipped, 0)  # d log(c)/dc = 1/c
