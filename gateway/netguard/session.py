"""The HTTP client for client-given URLs: guarded connections, redirects re-checked or refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from .policy import Policy, TargetRefused
from .resolver import GuardedConnector, GuardedResolver

REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Headers that belong to the first origin: not carried to another one by a redirect.
_ORIGIN_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")


@dataclass(frozen=True, slots=True)
class Guard:
    """A policy, and where its sessions resolve names (the system resolver unless a test, or
    a deployment with its own DNS, supplies a factory of resolvers)."""

    policy: Policy = field(default_factory=Policy)
    resolver: Callable[[], AbstractResolver] | None = None

    def session(
        self,
        *,
        max_redirects: int = 0,
        total_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> GuardedSession:
        """A session whose every connection goes through the guard. ``max_redirects=0``
        (webhook deliveries): a 3xx is handed back as it is, never followed."""
        return GuardedSession(
            self,
            max_redirects=max_redirects,
            timeout=aiohttp.ClientTimeout(total=total_timeout, connect=connect_timeout),
            headers=headers,
        )


class GuardedSession:
    """Open inside the running event loop; close it (or use ``async with``) when done."""

    def __init__(
        self,
        guard: Guard,
        *,
        max_redirects: int,
        timeout: aiohttp.ClientTimeout,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.policy = guard.policy
        self.max_redirects = max_redirects
        inner = guard.resolver() if guard.resolver else None
        connector = GuardedConnector(self.policy, GuardedResolver(self.policy, inner))
        # trust_env off: a proxy from the environment would resolve the name itself, after
        # the guard, and connect wherever that answer says.
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=headers, trust_env=False
        )

    async def __aenter__(self) -> GuardedSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    @property
    def closed(self) -> bool:
        return self._session.closed

    @asynccontextmanager
    async def request(
        self, method: str, url: str, **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send ``method`` to ``url``; yields the response, released on exit.

        Each URL (the first and every redirect's ``Location``) is checked before it is called,
        and each connection on the addresses it resolved to. Redirects are followed, up to
        ``max_redirects``, for GET and HEAD only: a request with a body is never re-sent
        elsewhere. Past the limit, :class:`TargetRefused` (``kind="redirect"``).

        :raises TargetRefused: the URL, a redirect's, or an address is off limits.
        """
        kwargs["allow_redirects"] = False
        current = URL(url)
        follow = self.max_redirects if method.upper() in ("GET", "HEAD") else 0
        hops = 0
        while True:
            self.policy.check_url(str(current))
            response = await self._session.request(method, current, **kwargs)
            location = response.headers.get("Location")
            if response.status not in REDIRECTS or not follow or not location:
                break
            response.release()
            if hops >= follow:
                raise TargetRefused(f"more than {follow} redirects", kind="redirect")
            hops += 1
            target = current.join(URL(location))
            self.policy.check_url(str(target))  # before anything reads it as an http URL
            if target.origin() != current.origin():
                headers = dict(kwargs.get("headers") or {})
                for name in _ORIGIN_HEADERS:
                    headers.pop(name, None)
                kwargs["headers"] = headers
            current = target
        try:
            yield response
        finally:
            response.release()
