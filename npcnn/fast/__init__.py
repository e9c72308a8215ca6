"""The fast tier: the same ops as ``npcnn.ops`` -- same names and signatures,
the same numbers up to the order of the sums -- with every speed trick:
row-wise convolution (``rowwise.py``, its products added in place by BLAS:
``cblas.py``; im2col in slabs into a reused buffer for thin kernels), buffers
kept from step to step (``workspace.py``), in-place ReLU and bias, chunked
in-place Adam, conv -> pool -> bias -> ReLU (``fused.py``), big dense layers in
column blocks (``dense.py``), and the whole network run on parts of the batch on
every core (``parallel.py``, ``threads.py``).

Read ``npcnn/ops`` to learn the math; this package is what the layers run by
default (``kernels="fast"``). Tests prove the two agree within the rounding
bound of each sum (bit for bit wherever the fast code sums in the same order).
Ops that have no faster version here are the readable ones, re-exported.
"""

from ..ops.activations import (
    leaky_relu_backward,
    leaky_relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from ..ops.avgpool2d import (
    avgpool2d_backward,
    avgpool2d_forward,
    global_avgpool2d_backward,
    global_avgpool2d_forward,
)
from ..ops.batchnorm import batchnorm_backward, batchnorm_forward, batchnorm_inference
from ..ops.crossentropy import (
    sparse_categorical_crossentropy_backward,
    sparse_categorical_crossentropy_forward,
)
from ..ops.dropout import dropout_backward, dropout_forward
from ..ops.flatten import flatten_backward, flatten_forward
from ..ops.relu import relu_backward, relu_forward
from ..ops.softmax import softmax_backward, softmax_forward
from .adam import adam_update
from .conv2d import conv2d_backward, conv2d_forward
from .dense import dense_backward, dense_forward
from .fused import conv2d_relu_maxpool2d_backward, conv2d_relu_maxpool2d_forward
from .maxpool2d import maxpool2d_backward, maxpool2d_forward

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
    "conv2d_relu_maxpool2d_forward",
    "conv2d_relu_maxpool2d_backward",
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
