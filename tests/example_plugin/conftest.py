"""Fixtures: the Example Social sandbox standalone, or mounted in a real gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from gateway_example_plugin.social_connector import ExampleSocialConnector
from gateway_example_plugin.social_sandbox import ExampleSocialSandbox

from gateway.host import Gateway
from gateway.web.app import create_app

from ..conftest import settings_for
from ..support import free_port
from .flows import Social
from .running import PLATFORM, Running


@pytest.fixture
def sandbox() -> ExampleSocialSandbox:
    return ExampleSocialSandbox()


@pytest.fixture
async def social(aiohttp_server: Any, sandbox: ExampleSocialSandbox) -> AsyncIterator[Social]:
    server = await aiohttp_server(sandbox.build_app())
    async with aiohttp.ClientSession() as session:
        yield Social(session, f"http://{server.host}:{server.port}")


StartGateway = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_gateway(tmp_path, example_plugin) -> AsyncIterator[StartGateway]:
    """Start the gateway (once per test) with these ``outbound`` settings.

    By default one attempt per call, so each fault is mapped as the platform answered it. No
    background passes: these tests call the connector directly and hold no stored connections.
    Served as ``gateway serve`` serves it: a client that gives up does not cancel the handler
    (aiohttp's test server would), so a platform still finishes a request the caller timed out.
    """
    async with AsyncExitStack() as stack:

        async def start(**outbound: Any) -> Running:
            port = free_port()
            settings = settings_for(
                tmp_path,
                server={"port": port},
                outbound={"max_attempts": 1, **outbound},
                connections={"background": False},
            )
            gateway = Gateway.from_settings(
                settings, extra_plugins=[("example", example_plugin)], entry_points=False
            )
            runner = web.AppRunner(create_app(gateway), handler_cancellation=False, access_log=None)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, "127.0.0.1", port).start()
            connector = gateway.connector(PLATFORM)
            assert isinstance(connector, ExampleSocialConnector)
            session = await stack.enter_async_context(aiohttp.ClientSession())
            return Running(gateway, connector, Social(session, gateway.sandbox_url(PLATFORM)))

        yield start


@pytest.fixture
async def running(start_gateway: StartGateway) -> Running:
    return await start_gateway()
