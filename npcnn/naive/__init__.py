"""Loop versions of conv2d, max-pooling and average pooling, as the tutorial explains them.

Slide the window over the image, multiply and sum (convolution) or take the
largest value (pooling). Slow, but every line is the textbook definition, so
they are the first thing to read and the oracle the fast ``npcnn.ops`` versions
are tested against. Same names and signatures as ``npcnn.ops``.
"""

from .avgpool2d import avgpool2d_backward, avgpool2d_forward
from .conv2d import conv2d_backward, conv2d_forward
from .maxpool2d import maxpool2d_backward, maxpool2d_forward

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "avgpool2d_forward",
    "avgpool2d_backward",
]
