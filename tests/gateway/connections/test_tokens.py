"""The token lifecycle across processes: one refresh for many callers, rotation, revocation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from gateway import NeedsReauth, RateLimited, Transient
from gateway.db.connections import ConnectionRepository
from gateway.host import Gateway

from ...conftest import settings_for
from .conftest import PLATFORM, start_live


async def connected(live) -> str:
    status, body, _ = await live.connect()
    assert status == 200, body
    return body["connectionId"]


async def expire_access_token(live, connection_id: str) -> None:
    """An hour passes: at the sandbox the token dies, and the gateway sees it as expired."""
    async with live.http.post(live.sandbox("/_control/clock"), json={"advanceSeconds": 3700}) as r:
        assert r.status == 200
    past = datetime(2000, 1, 1, tzinfo=UTC)
    async with live.gateway.session() as session, session.begin():
        await ConnectionRepository(session).set_fields(
            connection_id, token_expires_at=past, next_refresh_at=past
        )


async def refresh_calls(live) -> list[dict]:
    calls = await live.journal("/api.examplesocial.test/oauth/token")
    return [c for c in calls if (c.get("body") or {}).get("grant_type") == "refresh_token"]


async def second_gateway(live, tmp_path, database_url=None) -> Gateway:
    """Another gateway process's worth of state sharing the database: no memory in common."""
    import gateway_example_plugin

    settings = settings_for(
        tmp_path,
        database_url or live.gateway.settings.database.url,
        platforms={PLATFORM: {"sandbox_url": live.sandbox("")}},
        connections={"background": False},
    )
    other = Gateway.from_settings(
        settings, extra_plugins=[("example", gateway_example_plugin)], entry_points=False
    )
    await other.start()
    return other


async def call_platform(gateway: Gateway, connection_id: str) -> int:
    connector = gateway.connector(PLATFORM)
    credentials = await gateway.tokens.credentials(connection_id)
    return len(await connector.list_accounts(credentials))


async def test_fifty_concurrent_calls_in_two_gateways_refresh_exactly_once(
    aiohttp_server, tmp_path, database_url
):
    live = await start_live(aiohttp_server, tmp_path, database_url)
    other = await second_gateway(live, tmp_path, database_url)
    try:
        connection_id = await connected(live)
        await expire_access_token(live, connection_id)
        results = await asyncio.gather(
            *(call_platform(live.gateway, connection_id) for _ in range(25)),
            *(call_platform(other, connection_id) for _ in range(25)),
        )
        assert results == [2] * 50
        assert len(await refresh_calls(live)) == 1
        async with live.gateway.engine.connect() as conn:
            version = (
                await conn.execute(
                    text("SELECT credential_version FROM connections WHERE id = :id"),
                    {"id": connection_id},
                )
            ).scalar_one()
        assert version == 2  # one write after the original
    finally:
        await other.stop()
        await live.http.close()


async def test_a_rotated_refresh_token_survives_a_crash(aiohttp_server, tmp_path):
    live = await start_live(aiohttp_server, tmp_path)
    try:
        connection_id = await connected(live)
        crashed = await second_gateway(live, tmp_path)
        await crashed.tokens.refresh(connection_id, force=True)
        # The process dies right after the platform's answer was handled: no stop, no cleanup.
        crashed.instances.clear()
        # The next call, from another process, uses what was persisted...
        assert await call_platform(live.gateway, connection_id) == 2
        # ...and the persisted refresh token is the live one: the sandbox rotates on every use
        # and refuses a stale one, so this refresh succeeds only if nothing was lost.
        await live.gateway.tokens.refresh(connection_id, force=True)
        assert len(await refresh_calls(live)) == 2
        assert all(c["status"] == 200 for c in await refresh_calls(live))
        await crashed.close_storage()
        for client in crashed.clients.values():
            await client.close()
    finally:
        await live.http.close()


async def test_new_tokens_are_sealed_and_the_old_refresh_token_is_not_reused(live):
    connection_id = await connected(live)
    before = (await live.gateway.tokens.credentials(connection_id)).refresh_token.reveal()
    await live.gateway.tokens.refresh(connection_id, force=True)
    after = (await live.gateway.tokens.credentials(connection_id)).refresh_token.reveal()
    assert before != after
    db_bytes = b"".join(
        p.read_bytes() for p in live.gateway.settings.data_path.parent.glob("gateway.db*")
    )
    assert after.encode() not in db_bytes and before.encode() not in db_bytes


async def test_invalid_grant_after_revocation_marks_the_connection(live, example_plugin):
    connection_id = await connected(live)
    await live.revoke_grant(connection_id)
    status, check = await live.api("POST", f"/api/connections/{connection_id}/health-check")
    assert status == 200 and check["status"] == "critical"
    status, connection = await live.api("GET", f"/api/connections/{connection_id}")
    assert connection["status"] == "needs_reconnect" and connection["health"] == "critical"
    assert example_plugin.EVENTS.count("connection.needs_reconnect") == 1
    # The dead grant is not hammered: the next call refuses without asking the platform.
    refreshes = len(await refresh_calls(live))
    with pytest.raises(NeedsReauth):
        await live.gateway.tokens.credentials(connection_id)
    assert len(await refresh_calls(live)) == refreshes


async def test_a_failed_refresh_cools_down(live):
    connection_id = await connected(live)
    fault = {
        "method": "POST",
        "path": "/api.examplesocial.test/oauth/token",
        "status": 503,
        "count": 5,
    }
    async with live.http.post(live.sandbox("/_control/faults"), json=fault) as response:
        assert response.status in (200, 201)
    with pytest.raises(Transient):
        await live.gateway.tokens.refresh(connection_id, force=True)
    calls = len(await live.journal("/api.examplesocial.test/oauth/token"))
    await expire_access_token(live, connection_id)
    with pytest.raises(RateLimited) as cooling:
        await live.gateway.tokens.credentials(connection_id)
    assert 0 < cooling.value.retry_after <= 30
    assert len(await live.journal("/api.examplesocial.test/oauth/token")) == calls


async def test_a_401_triggers_one_refresh_and_replay(live):
    connection_id = await connected(live)
    # The platform forgets the access token early (it happens): one 401, then the retry works.
    async with live.http.post(live.sandbox("/_control/clock"), json={"advanceSeconds": 3700}) as r:
        assert r.status == 200
    assert await call_platform(live.gateway, connection_id) == 2
    assert len(await refresh_calls(live)) == 1
