"""Fixtures: the Mailchimp sandbox on a real port, and Mailchimp's own client pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import mailchimp_marketing
import pytest

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
