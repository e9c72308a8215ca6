"""``python -m npcnn train`` / ``python -m npcnn evaluate``."""

import sys

from .cli import main

sys.exit(main())
