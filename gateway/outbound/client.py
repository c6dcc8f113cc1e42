"""The HTTP client of every platform plugin: one aiohttp session per platform, with middlewares."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import ClientMiddlewareType, ClientResponse, hdrs
from opentelemetry import metrics, trace
from yarl import URL

from gateway.errors import OutcomeUnknown, Transient
from gateway.outbound.auth import AuthMiddleware, TokenSource
from gateway.outbound.call import Call, enter_call, leave_call
from gateway.outbound.ratelimit import RateLimiter, RateLimitMiddleware
from gateway.outbound.retry import RetryMiddleware, RetryPolicy
from gateway.outbound.routing import route_url
from gateway.outbound.telemetry import TelemetryMiddleware
from gateway.outbound.timeouts import AttemptDeadline, Timeouts
from gateway.redaction import redact_url
from gateway.types import RateLimit

# Failures while the caller reads the body, after the response was handed over.
_BODY_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)


class OutboundClient:
    """One platform's HTTP client: auth, retries, rate limits and telemetry around one session.

    ``url`` arguments are always the platform's real URLs; with ``sandbox_url`` set they are
    routed to the sandbox (see ``route_url``). HTTP error statuses are returned, not raised:
    the plugin maps its platform's error bodies to ``gateway.errors`` categories.
    """

    def __init__(
        self,
        platform: str,
        *,
        sandbox_url: str | None = None,
        rate_limits: Sequence[RateLimit] = (),
        timeouts: Timeouts = Timeouts(),
        retry: RetryPolicy = RetryPolicy(),
        extra_middlewares: Sequence[ClientMiddlewareType] = (),
        user_agent: str = "integration-gateway",
        rate_limiter: RateLimiter | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.platform = platform
        self.sandbox_url = sandbox_url
        self.timeouts = timeouts
        self.retry = retry
        # A long platform-imposed pause is left to the job queue, like a long Retry-After.
        self.rate_limiter = rate_limiter or RateLimiter(
            rate_limits, max_pause=retry.max_retry_after
        )
        self._user_agent = user_agent
        # aiohttp runs the first middleware outermost. The order, and why:
        # 1. retry: every attempt below runs again, so each retry takes a fresh rate-limit
        #    slot and a fresh token; it sees the exceptions of all the layers below.
        # 2. auth: sets the bearer before the limiter, which keys TOKEN budgets on it; its
        #    replay after a 401 is a new attempt that takes its own slot.
        # 3. rate limit: waits for a slot right before the request goes out.
        # 4. extra middlewares (plugin signing, e.g. appsecret_proof): see the final headers.
        # 5. telemetry: one span and log line per attempt on the wire.
        # 6. attempt deadline: bounds one attempt, so waits above it do not count.
        self._middlewares: tuple[ClientMiddlewareType, ...] = (
            RetryMiddleware(retry),
            AuthMiddleware(),
            RateLimitMiddleware(self.rate_limiter),
            *extra_middlewares,
            TelemetryMiddleware(
                platform, tracer_provider=tracer_provider, meter_provider=meter_provider
            ),
            AttemptDeadline(timeouts.total),
        )
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the session (inside the running event loop)."""
        if self._session is not None and not self._session.closed:
            return
        self._session = aiohttp.ClientSession(
            timeout=self.timeouts.client_timeout(),
            middlewares=self._middlewares,
            headers={hdrs.USER_AGENT: self._user_agent},
        )

    async def close(self) -> None:
        """Close the session and its connections; safe to call twice."""
        if self._session is not None:
            await self._session.close()

    @property
    def closed(self) -> bool:
        return self._session is None or self._session.closed

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        *,
        token: str | TokenSource | None = None,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        headers: Any = None,
        idempotent: bool | None = None,
        rate_key: str | None = None,
        # Per attempt, inside the middlewares: a caller's asyncio.timeout would also cut short
        # the rate-limit waits and retry back-offs, and hide whether the request was sent.
        timeout: float | Timeouts | None = None,  # noqa: ASYNC109
    ) -> AsyncIterator[ClientResponse]:
        """Send a request; yields the response, released on exit.

        ``idempotent`` overrides the method's default (GET, HEAD, OPTIONS, PUT, DELETE are);
        only idempotent requests are retried once they may have been sent. ``rate_key`` names
        the TOKEN rate-limit scope (default: a fingerprint of the bearer token). ``timeout`` is
        the per-attempt total in seconds, or a whole ``Timeouts``.

        Raises ``Transient`` when the platform could not be reached (or, for idempotent
        requests, kept failing), ``OutcomeUnknown`` when a non-idempotent request may have been
        received, ``RateLimited`` when the platform paused this scope for longer than the
        retry policy's ``max_retry_after``.
        """
        if self._session is None or self._session.closed:
            raise RuntimeError(f"OutboundClient({self.platform!r}) is not started")
        target = route_url(url, self.sandbox_url)
        method = method.upper()
        call = Call(
            token=token,
            idempotent=idempotent,
            rate_key=rate_key,
            total_timeout=timeout.total if isinstance(timeout, Timeouts) else timeout,
            origin=URL(target).origin(),
        )
        options: dict[str, Any] = {}
        if isinstance(timeout, Timeouts):
            options["timeout"] = timeout.client_timeout()
        context = enter_call(call)
        try:
            resp = await self._session.request(
                method, target, params=params, json=json, data=data, headers=headers, **options
            )
        finally:
            leave_call(context)
        try:
            yield resp
        except _BODY_ERRORS as err:
            if _is_idempotent(method, call, self.retry):
                raise Transient(f"{method} {redact_url(target)}: reading failed") from err
            raise OutcomeUnknown(f"{method} {redact_url(target)}: reading failed") from err
        finally:
            resp.release()

    def slow_down(self, rate_key: str | None, seconds: float) -> None:
        """Hold back the next requests of ``rate_key``'s scope (None: the whole client).

        For platforms that report usage before they throttle (Meta's usage headers): a wait
        up to the retry policy's ``max_retry_after`` delays the next request, a longer one
        makes it raise ``RateLimited`` so the job queue waits instead of a worker.
        """
        if seconds > 0:
            self.rate_limiter.pause(rate_key, seconds)

    def get(self, url: str, **kwargs: Any) -> AbstractAsyncContextManager[ClientResponse]:
        return self.request(hdrs.METH_GET, url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> AbstractAsyncContextManager[ClientResponse]:
        return self.request(hdrs.METH_POST, url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> AbstractAsyncContextManager[ClientResponse]:
        return self.request(hdrs.METH_PUT, url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> AbstractAsyncContextManager[ClientResponse]:
        return self.request(hdrs.METH_DELETE, url, **kwargs)


def _is_idempotent(method: str, call: Call, policy: RetryPolicy) -> bool:
    return call.idempotent if call.idempotent is not None else method in policy.idempotent_methods
