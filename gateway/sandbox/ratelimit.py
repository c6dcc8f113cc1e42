"""Rate limits as platforms enforce them: calls per key in a sliding window on the sandbox clock."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from .clock import SandboxClock


class RateDecision(NamedTuple):
    """Whether a call may go ahead and, if not, how long until it may (for ``Retry-After``)."""

    allowed: bool
    retry_after: float


class RateLimitWindow:
    """At most ``limit`` calls per ``per_seconds`` for each key (a token, a user, an app).

    A refused call does not count against the window: the platforms emulated here charge for
    work done, so a client that backs off as told is let through once the window has room.
    """

    def __init__(self, limit: int, per_seconds: float, clock: SandboxClock) -> None:
        if limit < 1 or per_seconds <= 0:
            raise ValueError("a rate limit needs limit >= 1 and per_seconds > 0")
        self.limit = limit
        self.per_seconds = per_seconds
        self._clock = clock
        self._calls: dict[str, deque[float]] = {}

    def hit(self, key: str) -> RateDecision:
        """Count one call for ``key`` if the window has room."""
        now = self._clock.timestamp()
        calls = self._calls.setdefault(key, deque())
        while calls and calls[0] <= now - self.per_seconds:
            calls.popleft()
        if len(calls) >= self.limit:
            return RateDecision(False, calls[0] + self.per_seconds - now)
        calls.append(now)
        return RateDecision(True, 0.0)

    def used(self, key: str) -> int:
        """Calls counted for ``key`` in the current window (for usage headers such as Meta's)."""
        now = self._clock.timestamp()
        return sum(1 for t in self._calls.get(key, ()) if t > now - self.per_seconds)

    def reset(self) -> None:
        self._calls.clear()
