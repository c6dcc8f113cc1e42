"""The sandbox toolkit's concurrency limit: requests in flight per credential, not per second."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import aiohttp
from aiohttp import web

from gateway.sandbox import Sandbox


class Limited(Sandbox):
    platform = "limited"
    hosts = ("api.limited.test",)
    max_concurrent_requests: ClassVar[int | None] = 2

    def setup_routes(self, routes):
        routes.add("api.limited.test", "GET", "/slow", self.slow)

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(0.2)
        return web.json_response({"ok": True})


async def test_the_third_request_in_flight_per_credential_is_refused(aiohttp_server):
    sandbox = Limited()
    server = await aiohttp_server(sandbox.build_app())
    url = f"http://{server.host}:{server.port}/api.limited.test/slow"

    async def get(session: aiohttp.ClientSession, credential: str) -> int:
        async with session.get(url, headers={"Authorization": f"Bearer {credential}"}) as r:
            return r.status

    async with aiohttp.ClientSession() as session:
        same = await asyncio.gather(*(get(session, "a") for _ in range(3)))
        assert sorted(same) == [200, 200, 429]
        # Others are not held back by it, and finished requests free their places.
        mixed = await asyncio.gather(get(session, "a"), get(session, "a"), get(session, "b"))
        assert mixed == [200, 200, 200]
        async with session.get(url) as anonymous:  # no credential: not counted
            assert anonymous.status == 200
    assert max(sandbox.concurrency.peak.values()) == 2
    sandbox.reset()
    assert not sandbox.concurrency.peak
