"""The sandbox clock: the gateway's clock plus an offset that tests move forward."""

from __future__ import annotations

from datetime import UTC, datetime

from .. import clock


def rfc3339(timestamp: float) -> str:
    """``timestamp`` as an RFC 3339 UTC string, the format every control answer uses."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SandboxClock:
    """The gateway's clock shifted by ``offset`` seconds.

    Token expiry, authorization codes, rate-limit windows and media processing all read this
    clock, so ``POST /_control/clock`` can make an hour pass in a test without waiting for it.
    Injected delays (faults) deliberately do not: they are about real time on the wire.
    """

    def __init__(self) -> None:
        self._offset = 0.0

    @property
    def offset(self) -> float:
        """How far ahead of real time the sandbox is, in seconds."""
        return self._offset

    def timestamp(self) -> float:
        """Sandbox time as seconds since the epoch."""
        return clock.timestamp() + self._offset

    def now(self) -> datetime:
        """Sandbox time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` forward (never back) and answer the new sandbox time."""
        if seconds < 0:
            # Going back would un-expire tokens and reorder the journal: nothing emulated does that.
            raise ValueError("the sandbox clock only moves forward")
        self._offset += seconds
        return self.timestamp()

    def reset(self) -> None:
        """Back to real time."""
        self._offset = 0.0
