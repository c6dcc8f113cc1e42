"""Concurrent-request limits as platforms enforce them: requests in flight per credential."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from .paths import is_control, relative_path


class ConcurrencyLimit:
    """At most ``limit`` requests in flight per key; one more is answered by ``refuse``.

    Sits outside the fault middleware, so a request that an injected ``delayMs`` holds up keeps
    its place meanwhile, as a slow platform answer would (Mailchimp's 10 connections per key).
    """

    def __init__(
        self,
        limit: int,
        key: Callable[[web.Request], str | None],
        refuse: Callable[[web.Request, int], web.StreamResponse],
    ) -> None:
        if limit < 1:
            raise ValueError("a concurrency limit needs limit >= 1")
        self.limit = limit
        self._key = key
        self._refuse = refuse
        self._in_flight: Counter[str] = Counter()
        # The most seen at once per key since the last reset: what tests assert on.
        self.peak: Counter[str] = Counter()

    def in_flight(self, key: str) -> int:
        return self._in_flight[key]

    def reset_peaks(self) -> None:
        self.peak.clear()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = None if is_control(relative_path(request)) else self._key(request)
        if key is None:
            return await handler(request)
        if self._in_flight[key] >= self.limit:
            return self._refuse(request, self.limit)
        self._in_flight[key] += 1
        self.peak[key] = max(self.peak[key], self._in_flight[key])
        try:
            return await handler(request)
        finally:
            self._in_flight[key] -= 1
            if not self._in_flight[key]:
                del self._in_flight[key]
