"""Progress bars: ``tqdm`` with one policy for training and downloads.

Bars go to stderr. On a terminal they redraw in place up to ten times a second.
Elsewhere (CI logs, files, pipes) each update is one whole line, written at most
every ``LOG_INTERVAL_S`` seconds (and at the start and the end), so a log holds a
handful of readable lines instead of one per step or a run of carriage returns.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

LOG_INTERVAL_S = 30.0  # seconds between updates when stderr is not a terminal


class _Lines:
    """A stream for tqdm that turns its in-place redraws (``"\\r" + bar``) into lines."""

    def __init__(self, stream):
        self.stream = stream
        self.at_line_start = True

    def write(self, text):
        if text.startswith("\r"):
            text = text[1:].rstrip()
            if not text:
                return
            text += "\n"
        elif text == "\n" and self.at_line_start:
            return  # tqdm ends its last redraw with a newline: that line is already ended
        self.stream.write(text)
        self.at_line_start = text.endswith("\n")

    def flush(self):
        self.stream.flush()


def progress_bar(total=None, desc=None, *, initial=0, file=None, **options) -> tqdm:
    """A ``tqdm`` bar on stderr (or ``file``); ``options`` go to ``tqdm`` unchanged."""
    file = sys.stderr if file is None else file
    tty = hasattr(file, "isatty") and file.isatty()
    if not tty and file is not None:
        file = _Lines(file)
    options.setdefault("mininterval", 0.1 if tty else LOG_INTERVAL_S)
    options.setdefault("dynamic_ncols", tty)
    return tqdm(total=total, desc=desc, initial=initial, file=file, **options)
