"""The one clock the gateway, its workers and its sandboxes read: real time, optionally shifted."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

# Shifts every process started with it (the server, `gateway worker`, the sandboxes, the tests
# themselves) by the same amount, so that a suite can be run as if it were a year from now. The
# database's own `now()` is never asked: every decision and every view takes its time from here.
OFFSET_ENV = "GATEWAY_CLOCK_OFFSET"

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_OFFSET = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*([smhdw]?)\s*")


def parse_offset(text: str) -> float:
    """Seconds from ``365d``, ``-2h``, ``90m``, ``30s``, ``1w`` or a bare number of seconds."""
    match = _OFFSET.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{OFFSET_ENV}={text!r} is not an offset; use a number with s, m, h, d or w (e.g. 365d)"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


class Clock:
    """Wall-clock time plus a fixed ``offset`` in seconds."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def timestamp(self) -> float:
        """Seconds since the epoch."""
        return time.time() + self.offset

    def now(self) -> datetime:
        """An aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp(), UTC)


def _from_environment() -> Clock:
    text = os.environ.get(OFFSET_ENV, "").strip()
    return Clock(parse_offset(text) if text else 0.0)


_current = _from_environment()


def current() -> Clock:
    """The clock in force in this process."""
    return _current


def now() -> datetime:
    """The gateway's time as an aware UTC datetime: what every decision is taken on."""
    return _current.now()


def timestamp() -> float:
    """The gateway's time as seconds since the epoch."""
    return _current.timestamp()


@contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the process's clock for the ``with`` block (tests inject one this way)."""
    global _current
    previous, _current = _current, clock
    try:
        yield clock
    finally:
        _current = previous
