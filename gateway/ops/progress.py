"""Progress for long commands: one rewritten line on a terminal, nothing at all in a pipe."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    """``progress.step("examplesocial: publish")`` … ``progress.clear()``.

    Written to stderr, so stdout (tables, JSON) stays clean; silent unless stderr is a terminal.
    """

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._width = 0
        self.done = 0
        self.total = 0

    def step(self, text: str) -> None:
        if not self.enabled:
            return
        counter = f"[{self.done}/{self.total}] " if self.total else ""
        line = f"{counter}{text}"[:120]
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def advance(self, text: str = "") -> None:
        self.done += 1
        if text:
            self.step(text)

    def clear(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
