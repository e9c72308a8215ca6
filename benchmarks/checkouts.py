"""Another checkout's npcnn in this process, to time old and new code in the same rounds.

``git worktree add --detach /tmp/npcnn-old 3f98819`` then
``load_checkout("/tmp/npcnn-old")`` imports that checkout's ``npcnn`` package
under the name ``npcnn_old`` (npcnn imports itself only relatively, so both
versions live side by side). Timing both in one process, interleaved, is what
makes their ratio trustworthy on a shared, noisy machine.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path


def load_checkout(path, name="npcnn_old"):
    """The ``npcnn`` package of the checkout at ``path``, imported as ``name``."""
    init = Path(path).resolve() / "npcnn" / "__init__.py"
    if not init.is_file():
        raise FileNotFoundError(f"{path} is not an npcnn checkout: no {init}")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(init.parent)]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    try:
        spec.loader.exec_module(package)
    except BaseException:
        del sys.modules[name]
        raise
    return package


def submodule(package, name):
    """``package.name`` (e.g. ``train``) of a package loaded by :func:`load_checkout`."""
    return importlib.import_module(f"{package.__name__}.{name}")
