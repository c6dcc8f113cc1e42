"""Timeouts of outbound requests, and the middleware that bounds each attempt."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import ClientHandlerType, ClientRequest, ClientResponse, ClientTimeout

from gateway.outbound.call import current_call


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds: ``total`` per attempt (up to the response headers), ``connect`` to get a
    connection, ``sock_read`` between two reads of the response (body reads included)."""

    total: float | None = 30.0
    connect: float | None = 10.0
    sock_read: float | None = 30.0

    def client_timeout(self) -> ClientTimeout:
        # aiohttp's own ``total`` spans the whole middleware chain, rate-limit waits and retry
        # back-offs included, and ends as a cancellation that no middleware can classify; so
        # ``total`` is enforced per attempt by ``AttemptDeadline`` instead.
        return ClientTimeout(total=None, connect=self.connect, sock_read=self.sock_read)


class AttemptDeadline:
    """Innermost middleware: one attempt gets at most ``total`` seconds to get its answer."""

    def __init__(self, default_total: float | None) -> None:
        self._default_total = default_total

    async def __call__(self, req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        total = current_call().total_timeout
        if total is None:
            total = self._default_total
        if total is None:
            return await handler(req)
        async with asyncio.timeout(total):
            return await handler(req)
