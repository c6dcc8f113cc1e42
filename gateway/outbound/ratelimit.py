"""A platform's declared rate limits: requests wait for a slot, and a 429 pauses the scope."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import ClientHandlerType, ClientRequest, ClientResponse, hdrs

from gateway.errors import RateLimited
from gateway.outbound.call import current_call
from gateway.outbound.retry import parse_retry_after
from gateway.types import RateLimit, RateLimitScope

_APP = ""  # the scope key of the app-wide budget; token keys are never empty
_SWEEP_EVERY = 1024


def token_fingerprint(authorization: str) -> str:
    """A stable key for a credential that does not reveal it (rate-limit scope, never logged)."""
    return "tok:" + hashlib.sha256(authorization.encode()).hexdigest()[:24]


class RateLimiter:
    """Sliding-window budgets, one per (declared limit, scope key).

    An APP limit is one budget for the client; a TOKEN limit is one budget per key (a
    ``rate_key`` or a token fingerprint), and does not apply to requests without one (token
    endpoints, API-key calls). ``acquire`` waits, never fails, for the budget; only a pause the
    platform asked for (429 + Retry-After) longer than ``max_pause`` makes it raise
    ``RateLimited``, so that the job queue waits instead of a worker.
    """

    def __init__(
        self,
        limits: Sequence[RateLimit] = (),
        *,
        max_pause: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        for limit in limits:
            if limit.requests < 1 or limit.per_seconds <= 0:
                raise ValueError(f"rate limit needs requests >= 1 and per_seconds > 0: {limit}")
        self.limits = tuple(limits)
        self.max_pause = max_pause
        self._clock = clock
        self._sleep = sleep
        self._has_token_limits = any(lim.scope is RateLimitScope.TOKEN for lim in self.limits)
        self._windows: dict[tuple[int, str], deque[float]] = {}
        self._paused_until: dict[str, float] = {}
        self._acquired = 0

    async def acquire(self, key: str | None = None) -> None:
        """Wait until every budget that applies to ``key`` has a free slot, then take it."""
        while True:
            now = self._clock()
            paused = self._pause_left(key, now)
            if paused > self.max_pause:
                raise RateLimited(
                    "the platform asked to pause this rate-limit scope", retry_after=paused
                )
            budgets = self._budgets(key)
            wait = max([paused, *(self._window_wait(w, lim, now) for w, lim in budgets)])
            if wait <= 0:
                # No await between the check and the take: no other task can slip in between.
                for window, _ in budgets:
                    window.append(now)
                self._after_acquire(now)
                return
            await self._sleep(wait)

    def pause(self, key: str | None, seconds: float) -> None:
        """Hold back the scope of ``key`` for ``seconds`` (the platform said so).

        Which budget the platform's 429 counted against is unknown: pause the token's scope when
        there are per-token limits (so other tokens carry on), else the whole client.
        """
        scope = key if key and self._has_token_limits else _APP
        until = self._clock() + seconds
        self._paused_until[scope] = max(until, self._paused_until.get(scope, until))

    def _pause_left(self, key: str | None, now: float) -> float:
        until = self._paused_until.get(_APP, now)
        if key:
            until = max(until, self._paused_until.get(key, now))
        return until - now

    def _budgets(self, key: str | None) -> list[tuple[deque[float], RateLimit]]:
        budgets = []
        for index, limit in enumerate(self.limits):
            if limit.scope is RateLimitScope.APP:
                scope = _APP
            elif key:
                scope = key
            else:
                continue
            budgets.append((self._windows.setdefault((index, scope), deque()), limit))
        return budgets

    @staticmethod
    def _window_wait(window: deque[float], limit: RateLimit, now: float) -> float:
        while window and window[0] <= now - limit.per_seconds:
            window.popleft()
        if len(window) < limit.requests:
            return 0.0
        return window[0] + limit.per_seconds - now

    def _after_acquire(self, now: float) -> None:
        # Per-token windows and pauses would pile up for every token ever seen: drop idle ones.
        self._acquired += 1
        if self._acquired % _SWEEP_EVERY:
            return
        for (index, scope), window in list(self._windows.items()):
            if not window or window[-1] <= now - self.limits[index].per_seconds:
                del self._windows[(index, scope)]
        for scope, until in list(self._paused_until.items()):
            if until <= now:
                del self._paused_until[scope]


class RateLimitMiddleware:
    """Takes a slot before each attempt; a 429 with Retry-After pauses the request's scope."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def __call__(self, req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        key = current_call().rate_key
        if key is None and (authorization := req.headers.get(hdrs.AUTHORIZATION)):
            key = token_fingerprint(authorization)
        await self._limiter.acquire(key)
        resp = await handler(req)
        if resp.status == 429:
            retry_after = parse_retry_after(resp.headers.get(hdrs.RETRY_AFTER))
            if retry_after:
                self._limiter.pause(key, retry_after)
        return resp
