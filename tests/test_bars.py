"""npcnn.bars: one progress-bar policy, whole lines off a terminal, redraws on one."""

from __future__ import annotations

import io


def test_progress_bar_off_a_terminal_writes_few_whole_lines():
    from npcnn.bars import progress_bar

    log = io.StringIO()
    bar = progress_bar(1000, "npcnn train", file=log, unit="step")
    for _ in range(1000):
        bar.set_postfix_str("loss 0.1234, 500 img/s", refresh=False)
        bar.update()
    bar.close()
    lines = log.getvalue().split("\n")
    assert "\r" not in log.getvalue() and lines[-1] == ""
    assert 2 <= len(lines) - 1 <= 3  # the start, the end (and maybe the final redraw)
    assert "0/1000" in lines[0] and "1000/1000" in lines[-2] and "loss 0.1234" in lines[-2]


def test_progress_bar_on_a_terminal_redraws_in_place():
    from npcnn.bars import progress_bar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    with progress_bar(3, "x", file=term, mininterval=0) as bar:
        bar.update(3)
    assert term.getvalue().count("\r") >= 2 and "3/3" in term.getvalue()
