"""Progress lines appear on a terminal and never in a pipe."""

from __future__ import annotations

import io

from gateway.ops.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_rewritten_line_then_a_clean_one():
    stream = Terminal()
    progress = Progress(stream)
    progress.total = 2
    progress.step("connecting examplesocial")
    progress.advance("publishing")
    progress.clear()
    text = stream.getvalue()
    assert text.startswith("\r[0/2] connecting examplesocial")
    assert "\r[1/2] publishing" in text
    assert text.endswith("\r")  # the line is blanked, the table starts on a clean line


def test_a_pipe_gets_nothing():
    stream = io.StringIO()
    progress = Progress(stream)
    progress.step("connecting")
    progress.clear()
    assert stream.getvalue() == ""
