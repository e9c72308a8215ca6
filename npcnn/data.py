"""Where ``from npcnn.data import load_mnist`` and ``python -m npcnn.data`` keep working.

The datasets live in ``npcnn/datasets/`` (``load_mnist`` and its sources in
``npcnn/datasets/mnist.py``).
"""

from .datasets import *  # noqa: F403
from .datasets import __all__, main  # noqa: F401

if __name__ == "__main__":
    main()
