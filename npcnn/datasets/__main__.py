"""``python -m npcnn.datasets [mnist|fashion-mnist ...]``."""

from .mnist import main

main()
