"""The functional core: every layer as a forward/backward pair -- the tutorial CNN's
and the ones real CNNs add (batch norm, dropout, average pooling, other activations).

Each ``*_forward(...)`` returns ``(output, cache)``; the matching
``*_backward(upstream_gradient, cache)`` returns the gradients of the inputs
(and of the parameters, for conv2d and dense). One file per op, plus
``adam_update``, the optimizer's step. This is the readable reference;
``npcnn.fast`` has the same functions with every speed trick.
"""

from .activations import (
    leaky_relu_backward,
    leaky_relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from .adam import adam_update
from .avgpool2d import (
    avgpool2d_backward,
    avgpool2d_forward,
    global_avgpool2d_backward,
    global_avgpool2d_forward,
)
from .batchnorm import batchnorm_backward, batchnorm_forward, batchnorm_inference
from .conv2d import conv2d_backward, conv2d_forward
from .crossentropy import (
    sparse_categorical_crossentropy_backward,
    sparse_categorical_crossentropy_forward,
)
from .dense import dense_backward, dense_forward
from .dropout import dropout_backward, dropout_forward
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
    "avgpool2d_forward",
    "avgpool2d_backward",
    "global_avgpool2d_forward",
    "global_avgpool2d_backward",
    "batchnorm_forward",
    "batchnorm_inference",
    "batchnorm_backward",
    "dropout_forward",
    "dropout_backward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "tanh_forward",
    "tanh_backward",
]
