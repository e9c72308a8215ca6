"""A dependency-free progress bar for long loops (training, evaluation)."""

from __future__ import annotations

import sys
import time


class Progress:
    """Shows ``step/total``, a bar, the running loss, images/s and the time left.

    On a terminal the line is redrawn in place; elsewhere (CI logs, files) a
    line is printed every ``every`` percent so logs stay short.
    """

    def __init__(self, total, desc="train", stream=None, every=10, width=24, initial=0):
        self.total, self.desc, self.width, self.every = max(int(total), 1), desc, width, every
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.initial = initial  # steps already done before this process (a resumed run)
        self.last_draw = 0.0
        self.last_pct_printed = -1

    def update(self, done, images_done, loss=None, force=False):
        now = time.perf_counter()
        elapsed = max(now - self.start, 1e-9)
        rate = images_done / elapsed
        frac = min(done / self.total, 1.0)
        eta = elapsed / max(done - self.initial, 1) * (self.total - done)
        loss_txt = "" if loss is None else f" loss {loss:8.4f}"
        line = (
            f"{self.desc} {done:>{len(str(self.total))}}/{self.total} "
            f"[{'#' * int(frac * self.width):<{self.width}}]{loss_txt} "
            f"{rate:7.0f} img/s  {_clock(elapsed)}<{_clock(eta)}"
        )
        if self.tty:
            if force or now - self.last_draw > 0.1 or done == self.total:
                self.stream.write("\r" + line)
                self.stream.flush()
                self.last_draw = now
        else:
            pct = int(frac * 100) // self.every * self.every
            if pct != self.last_pct_printed or force:
                self.stream.write(line + "\n")
                self.stream.flush()
                self.last_pct_printed = pct

    def close(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 60:02d}:{seconds % 60:02d}"
        if seconds < 3600
        else (f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}")
    )
