"""The outbound HTTP client that platform plugins use: auth, retry, rate limits, telemetry."""

from __future__ import annotations

from gateway.outbound.auth import TokenSource
from gateway.outbound.client import OutboundClient
from gateway.outbound.ratelimit import RateLimiter
from gateway.outbound.retry import RetryPolicy, parse_retry_after
from gateway.outbound.routing import route_url
from gateway.outbound.timeouts import Timeouts

__all__ = [
    "OutboundClient",
    "RateLimiter",
    "RetryPolicy",
    "Timeouts",
    "TokenSource",
    "parse_retry_after",
    "route_url",
]
