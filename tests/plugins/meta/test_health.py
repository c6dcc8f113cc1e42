"""The health check: a cheap call with the user token, and the 60-day login's end ahead."""

from __future__ import annotations

from datetime import timedelta

import pytest
import structlog

from gateway import ConnectorContext, Credentials, NeedsReauth, OutboundClient, Secret, clock
from gateway.settings import PlatformSettings
from plugins.meta.connector import MetaConnector

from .conftest import start_graph


@pytest.fixture
async def connector_and_token(aiohttp_server):
    graph = await start_graph(aiohttp_server)
    http = OutboundClient("meta", sandbox_url=graph.root)
    await http.start()
    context = ConnectorContext("meta", http, PlatformSettings(), True, structlog.get_logger("test"))
    user, _ = await graph.page_tokens()
    yield MetaConnector(context), user, graph
    await http.close()
    await graph.http.close()


def credentials(token: str, days_left: float) -> Credentials:
    return Credentials(
        connection_id="conn_1",
        platform="meta",
        access_token=Secret(token),
        expires_at=clock.now() + timedelta(days=days_left),
    )


async def test_a_login_ending_within_ten_days_is_a_warning(connector_and_token):
    connector, token, _ = connector_and_token
    fine = await connector.health_check(credentials(token, 30))
    assert fine.ok and "User 1" in fine.detail
    ending = await connector.health_check(credentials(token, 5))
    assert not ending.ok and ending.error_code == "token_expiring"
    assert "reconnect" in ending.detail


async def test_a_revoked_login_needs_reconnecting(connector_and_token):
    connector, token, graph = connector_and_token
    await graph.ok("DELETE", "/me/permissions", token)  # the user removed the app
    with pytest.raises(NeedsReauth) as refused:
        await connector.health_check(credentials(token, 30))
    assert refused.value.platform_code == "190/458"
