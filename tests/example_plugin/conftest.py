"""Fixtures: the Example Social sandbox served standalone on a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from gateway_example_plugin.social_sandbox import ExampleSocialSandbox

from .flows import Social


@pytest.fixture
def sandbox() -> ExampleSocialSandbox:
    return ExampleSocialSandbox()


@pytest.fixture
async def social(aiohttp_server: Any, sandbox: ExampleSocialSandbox) -> AsyncIterator[Social]:
    server = await aiohttp_server(sandbox.build_app())
    async with aiohttp.ClientSession() as session:
        yield Social(session, f"http://{server.host}:{server.port}")
