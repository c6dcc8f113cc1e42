"""Fixtures: the Mailchimp sandbox on a real port, and Mailchimp's own client pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import mailchimp_marketing
import pytest

from gateway.ops.browser import browser
from plugins.mailchimp.sandbox import MailchimpSandbox
from plugins.mailchimp.sandbox_state import ACCOUNTS

ACME, FREEBIE, DISABLED = ACCOUNTS


class Standalone:
    """The sandbox served on its own, with its control API and an SDK factory."""

    def __init__(self, sandbox: MailchimpSandbox, root: str, http: aiohttp.ClientSession):
        self.sandbox = sandbox
        self.root = root
        self.http = http

    def sdk(self, **config: Any) -> mailchimp_marketing.Client:
        """Mailchimp's client with only its host changed to the sandbox's."""
        client = mailchimp_marketing.Client()
        client.set_config(config)
        client.api_client.host = f"{self.root}/server.api.mailchimp.com/3.0"
        return client

    async def control(self, method: str, name: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.root}/_control/{name}", json=body) as r:
            return r.status, await r.json(content_type=None)

    async def advance(self, seconds: float) -> None:
        status, _ = await self.control("POST", "clock", {"advanceSeconds": seconds})
        assert status == 200


async def call(function: Callable, *args: Any, **kwargs: Any) -> Any:
    """The SDK is synchronous (requests): run it off the event loop that serves the sandbox."""
    return await asyncio.to_thread(function, *args, **kwargs)


@pytest.fixture
async def standalone(aiohttp_server) -> Standalone:
    sandbox = MailchimpSandbox(auto_approve=True)
    server = await aiohttp_server(sandbox.build_app())
    async with aiohttp.ClientSession() as http:
        yield Standalone(sandbox, f"http://{server.host}:{server.port}", http)


# -- a real gateway (sandbox mode, only this plugin) on a real port --------------------------

PLATFORM = "mailchimp"


class Running:
    """A gateway with the Mailchimp sandbox mounted, its connector, a tenant and a session."""

    def __init__(self, gateway, key, http: aiohttp.ClientSession, base: str) -> None:
        self.gateway = gateway
        self.key = key
        self.http = http
        self.base = base
        self.root = f"{base}/sandbox/{PLATFORM}"

    @property
    def connector(self):
        return self.gateway.connector(PLATFORM)

    async def control(self, method: str, name: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.root}/_control/{name}", json=body) as r:
            return r.status, await r.json(content_type=None)

    async def advance(self, seconds: float) -> None:
        status, _ = await self.control("POST", "clock", {"advanceSeconds": seconds})
        assert status == 200

    async def state(self) -> dict:
        return (await self.control("GET", "state"))[1]

    async def journal(self, glob: str = "*") -> list[dict]:
        async with self.http.get(f"{self.root}/_control/journal", params={"path": glob}) as r:
            return (await r.json())["requests"]

    async def api(self, method: str, path: str, *, key=None, **kwargs) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {(key or self.key).api_key}"}
        async with self.http.request(method, f"{self.base}{path}", headers=headers, **kwargs) as r:
            body = await r.json(content_type=None) if r.content_length != 0 else None
            return r.status, body


async def start_running(
    tmp_path, database_url=None, *, extra_plugins=(), **sections
) -> tuple[Running, Any]:
    from aiohttp import web

    import plugins.mailchimp
    from gateway import admin
    from gateway.host import Gateway
    from gateway.web.app import create_app

    from ...conftest import settings_for
    from ...support import free_port

    port = free_port()
    defaults: dict[str, dict] = {
        "server": {"port": port},
        "sandbox": {"auto_approve": True},
        "oauth": {"allowed_return_urls": ["https://app.example.com/"]},
        "connections": {"background": False},
        "outbound": {"max_attempts": 1},
    }
    for name, values in sections.items():
        defaults.setdefault(name, {}).update(values)
    gateway = Gateway.from_settings(
        settings_for(tmp_path, database_url, **defaults),
        extra_plugins=[(PLATFORM, plugins.mailchimp), *extra_plugins],
        entry_points=False,
    )
    # As `gateway serve` runs it: a client that gives up does not cancel the handler.
    runner = web.AppRunner(create_app(gateway), handler_cancellation=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    key = await admin.create_tenant(gateway, "acme")
    http = browser()
    return Running(gateway, key, http, f"http://127.0.0.1:{port}"), runner


@pytest.fixture
async def running(tmp_path):
    live, runner = await start_running(tmp_path)
    yield live
    await live.http.close()
    await runner.cleanup()
