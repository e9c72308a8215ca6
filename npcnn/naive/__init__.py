"""Loop versions of conv2d and max-pooling, written the way the tutorial explains them.

Slide the window over the image, multiply and sum (convolution) or take the
largest value (pooling). Slow, but every line is the textbook definition, so
they are the first thing to read and the oracle the fast ``npcnn.ops`` versions
are tested against. Same names and signatures as ``npcnn.ops``.
"""

from .conv2d import conv2d_backward, conv2d_forward
from .maxpool2d import maxpool2d_backward, maxpool2d_forward

__all__ = ["conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward"]
