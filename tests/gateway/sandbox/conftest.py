"""Fixtures: the example sandbox served on a real socket, standalone and mounted in a main app."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.sandbox import WebhookTargets

from .example import ExampleSandbox
from .flows import Served, serve


@pytest.fixture
def sandbox() -> ExampleSandbox:
    # Webhooks may go to the loopback's port 9, where nothing listens (tests give another).
    return ExampleSandbox(webhook_targets=WebhookTargets.below("http://127.0.0.1:9"))


@pytest.fixture(params=["standalone", "mounted"])
async def served(request: pytest.FixtureRequest, aiohttp_client: Any, sandbox: ExampleSandbox):
    """The sandbox under both roots: every test using it runs twice."""
    return await serve(aiohttp_client, sandbox, request.param)


@pytest.fixture
async def standalone(aiohttp_client: Any, sandbox: ExampleSandbox) -> Served:
    return await serve(aiohttp_client, sandbox, "standalone")


@pytest.fixture
async def mounted(aiohttp_client: Any, sandbox: ExampleSandbox) -> Served:
    return await serve(aiohttp_client, sandbox, "mounted")
