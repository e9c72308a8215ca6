"""``npcnn explore``: see the network think, forward and backward, in the browser.

``inspect.py`` computes what the page shows with npcnn's readable ops;
``server.py`` serves the page (``static/``) and a small JSON API on 127.0.0.1;
``command.py`` is the command line.
"""

from .server import Explorer, make_server

__all__ = ["Explorer", "make_server"]
