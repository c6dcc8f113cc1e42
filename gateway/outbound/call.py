"""The per-request options that the client middlewares read while one request is in flight."""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from yarl import URL

    from gateway.outbound.auth import TokenSource


@dataclass(slots=True)
class Call:
    """What ``OutboundClient.request`` was asked for, plus bookkeeping shared by the middlewares.

    aiohttp hands a middleware only the ``ClientRequest``, which has no slot for our options, so
    they travel in a context variable that ``request()`` sets around the session call. A nested
    request (a token refresh made from inside the auth middleware) sets its own and restores ours.
    """

    token: str | TokenSource | None = None
    idempotent: bool | None = None
    rate_key: str | None = None
    # Per-attempt deadline; None means the client's default.
    total_timeout: float | None = None
    # The origin the caller addressed: credentials are never sent elsewhere (e.g. on a redirect).
    origin: URL | None = None
    # Wire attempts so far (the telemetry middleware counts them, retries and auth replays alike).
    attempt: int = 0
    # At most one refresh-and-replay per request, however many retries happen around it.
    refreshed: bool = False


_current: ContextVar[Call] = ContextVar("gateway_outbound_call")


def current_call() -> Call:
    """The options of the request in flight; defaults when the session is used directly."""
    try:
        return _current.get()
    except LookupError:
        return Call()


def enter_call(call: Call) -> Token[Call]:
    """Make ``call`` current; pass the returned token to ``leave_call``."""
    return _current.set(call)


def leave_call(token: Token[Call]) -> None:
    """Restore the options that were current before ``enter_call``."""
    _current.reset(token)
