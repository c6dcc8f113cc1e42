"""Retrying transient failures of outbound requests, honouring the platform's ``Retry-After``."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse, hdrs

from gateway import clock
from gateway.errors import OutcomeUnknown, Transient
from gateway.outbound.call import current_call
from gateway.redaction import redact_url

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

# Failures that happen before a byte of the request left: safe to retry whatever the method.
NOT_SENT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
)
# Failures after the request may have been sent (read timeouts, resets, our attempt deadline).
MAYBE_SENT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError)

_DELTA_SECONDS = re.compile(r"\d+(\.\d+)?")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), else None.

    A date in the past gives 0; an unparseable value gives None (the caller's back-off applies).
    """
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no claim about the local zone
        when = when.replace(tzinfo=UTC)
    now = now or clock.now()
    return max(0.0, (when - now).total_seconds())


def full_jitter(ceiling: float) -> float:
    """A uniformly random delay in ``[0, ceiling]``."""
    # Not a security use: jitter only spreads retries out.
    return random.uniform(0.0, ceiling)  # noqa: S311


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry; ``sleep`` and ``jitter`` are injectable for tests."""

    max_attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 10.0
    # A longer Retry-After is left to the job queue: the response is returned unretried.
    max_retry_after: float = 30.0
    statuses: frozenset[int] = RETRY_STATUSES
    idempotent_methods: frozenset[str] = IDEMPOTENT_METHODS
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    jitter: Callable[[float], float] = full_jitter

    def backoff(self, attempt: int) -> float:
        """The delay after failed attempt number ``attempt`` (1-based): exponential, full jitter."""
        return self.jitter(min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))


class RetryMiddleware:
    """Outermost middleware: replays idempotent requests after transient failures."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    async def __call__(self, req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        policy = self._policy
        call = current_call()
        idempotent = call.idempotent
        if idempotent is None:
            idempotent = req.method in policy.idempotent_methods
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= policy.max_attempts
            try:
                resp = await handler(req)
            except NOT_SENT_ERRORS as err:
                if last:
                    raise Transient(_describe(req, "connection failed", attempt)) from err
                delay = policy.backoff(attempt)
            except MAYBE_SENT_ERRORS as err:
                if not idempotent:
                    # The platform may have acted on it: the caller reconciles before any retry.
                    raise OutcomeUnknown(_describe(req, _failure(err), attempt)) from err
                if last:
                    raise Transient(_describe(req, _failure(err), attempt)) from err
                delay = policy.backoff(attempt)
            else:
                if last or not idempotent or resp.status not in policy.statuses:
                    return resp
                retry_after = parse_retry_after(resp.headers.get(hdrs.RETRY_AFTER))
                if retry_after is not None and retry_after > policy.max_retry_after:
                    return resp
                delay = policy.backoff(attempt) if retry_after is None else retry_after
                resp.release()
            await policy.sleep(delay)


def _failure(err: BaseException) -> str:
    return "timed out" if isinstance(err, TimeoutError) else f"failed ({type(err).__name__})"


def _describe(req: ClientRequest, what: str, attempts: int) -> str:
    return f"{req.method} {redact_url(str(req.url))} {what} after {attempts} attempt(s)"
