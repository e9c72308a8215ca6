"""The fast tier's block: a ``Conv2D(activation="relu")`` and the ``MaxPool2D``
after it, run as one.

A model is a list of layers; on the fast tier it runs as a list of *blocks*,
chosen once when the model is built (``npcnn/model.py``, ``fast_blocks``):
each such pair becomes one :class:`ConvReluPool` (conv -> pool -> bias -> ReLU,
``fused.py``: the same numbers, with bias and ReLU on a quarter of the data),
and every other layer is its own block. A block has a layer's interface:
``forward(x)``, ``backward(dy, need_dx)``, and it fills its layers' ``grads``.
"""

from __future__ import annotations

from ..validation import check_bool
from .fused import conv2d_relu_maxpool2d_backward, conv2d_relu_maxpool2d_forward


class ConvReluPool:
    """``Conv2D(relu)`` then ``MaxPool2D`` as one block (``fused.py``).

    Holds the two layers (their parameters and arguments), its own cache, and
    a ``workspace``: the buffers the block reuses from step to step (im2col's
    matrix, dcols), so they do not come from fresh OS pages every step.
    """

    def __init__(self, conv, pool):
        self.conv, self.pool = conv, pool
        self.layers = (conv, pool)
        self.workspace = {}
        self.cache = None

    def forward(self, x):
        kernel, bias = self.conv.kernel_and_bias()
        conv, pool = self.conv, self.pool
        y, self.cache = conv2d_relu_maxpool2d_forward(
            x, kernel, bias, conv.strides, conv.padding, pool.pool_size, pool.strides,
            pool.padding, workspace=self.workspace,
        )  # fmt: skip
        return y

    def backward(self, dy, need_dx=True):
        need_dx = check_bool(need_dx, "need_dx")
        dx, dw, db = conv2d_relu_maxpool2d_backward(dy, self.cache, need_dx)
        self.conv.grads = [dw, db]
        return dx

    def __repr__(self):
        return f"ConvReluPool({self.conv.name!r}, {self.pool.name!r})"
