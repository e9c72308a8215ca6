"""The functional core: every layer of the tutorial CNN as a forward/backward pair.

Each ``*_forward(...)`` returns ``(output, cache)``; the matching
``*_backward(upstream_gradient, cache)`` returns the gradients of the inputs
(and of the parameters, for conv2d and dense). One file per op.
"""

from .adam import adam_update
from .conv2d import conv2d_backward, conv2d_forward
from .crossentropy import (
    sparse_categorical_crossentropy_backward,
    sparse_categorical_crossentropy_forward,
)
from .dense import dense_backward, dense_forward
from .flatten import flatten_backward, flatten_forward
from .maxpool2d import maxpool2d_backward, maxpool2d_forward
from .relu import relu_backward, relu_forward
from .softmax import softmax_backward, softmax_forward

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "dense_forward",
    "dense_backward",
    "relu_forward",
    "relu_backward",
    "flatten_forward",
    "flatten_backward",
    "softmax_forward",
    "softmax_backward",
    "sparse_categorical_crossentropy_forward",
    "sparse_categorical_crossentropy_backward",
    "adam_update",
]
