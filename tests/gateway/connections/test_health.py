"""Health checks: healthy, warning on trouble, stored, announced on change, spread out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from gateway.connections.scheduler import ConnectionScheduler
from gateway.connections.store import health_offset
from gateway.db.base import utcnow
from gateway.db.connections import ConnectionRepository
from gateway.db.models import HealthCheckRow


async def checks(live) -> list[HealthCheckRow]:
    async with live.gateway.session() as session:
        result = await session.execute(select(HealthCheckRow).order_by(HealthCheckRow.id))
        return list(result.scalars())


async def test_a_healthy_check_is_stored_and_announced(live, example_plugin):
    _, connected, _ = await live.connect()
    connection_id = connected["connectionId"]
    status, result = await live.api("POST", f"/api/connections/{connection_id}/health-check")
    assert status == 200
    assert result["status"] == "healthy" and result["ok"] and result["latencyMs"] >= 0
    [stored] = await checks(live)
    assert (stored.connection_id, stored.status, stored.platform) == (
        connection_id,
        "healthy",
        "examplesocial",
    )
    _, connection = await live.api("GET", f"/api/connections/{connection_id}")
    assert connection["health"] == "healthy" and connection["lastHealthCheckAt"]
    assert example_plugin.EVENTS.count("connection.health_changed") == 1
    # Same status again: stored, but no new event.
    await live.api("POST", f"/api/connections/{connection_id}/health-check")
    assert len(await checks(live)) == 2
    assert example_plugin.EVENTS.count("connection.health_changed") == 1


async def test_platform_trouble_is_a_warning_not_a_disconnect(live):
    _, connected, _ = await live.connect()
    connection_id = connected["connectionId"]
    fault = {"method": "GET", "path": "/api.examplesocial.test/v1/me", "status": 503, "count": 10}
    async with live.http.post(live.sandbox("/_control/faults"), json=fault) as response:
        assert response.status in (200, 201)
    _, result = await live.api("POST", f"/api/connections/{connection_id}/health-check")
    assert result["status"] == "warning" and not result["ok"]
    assert result["errorCode"] == "transient"
    _, connection = await live.api("GET", f"/api/connections/{connection_id}")
    assert connection["status"] == "active"


async def test_scheduled_checks_run_once_each_and_move_to_their_next_slot(live):
    _, connected, _ = await live.connect()
    connection_id = connected["connectionId"]
    async with live.gateway.session() as session, session.begin():
        await ConnectionRepository(session).set_fields(
            connection_id, next_health_check_at=utcnow() - timedelta(seconds=5)
        )
    first, second = ConnectionScheduler(live.gateway), ConnectionScheduler(live.gateway)
    import asyncio

    await asyncio.gather(first.tick(), second.tick())
    assert len(await checks(live)) == 1  # claimed by one of the two, not both
    async with live.gateway.session() as session:
        row = await ConnectionRepository(session).get(connection_id)
    interval = timedelta(seconds=live.gateway.settings.connections.health_interval_seconds)
    assert utcnow() < row.next_health_check_at <= utcnow() + interval


async def test_a_pass_checks_every_due_connection_once(live):
    ids = []
    for n in range(5):
        _, connected, _ = await live.connect(login_as=f"user-{n}")
        ids.append(connected["connectionId"])
    async with live.gateway.transaction() as session:
        for n, connection_id in enumerate(ids):
            await ConnectionRepository(session).set_fields(
                connection_id, next_health_check_at=utcnow() - timedelta(seconds=5 + n)
            )
    await ConnectionScheduler(live.gateway).tick()
    assert sorted(c.connection_id for c in await checks(live)) == sorted(ids)
    await ConnectionScheduler(live.gateway).tick()  # nothing is due any more
    assert len(await checks(live)) == len(ids)


def test_checks_spread_evenly_over_the_interval():
    interval = timedelta(hours=6)
    offsets = [health_offset(f"conn_{i}", interval) for i in range(10_000)]
    buckets = [0] * 6
    for offset in offsets:
        assert timedelta(0) <= offset < interval
        buckets[int(offset / timedelta(hours=1))] += 1
    # 10,000 connections never fire at once: each hour gets about a sixth of them.
    assert all(1400 < count < 1950 for count in buckets), buckets


async def test_a_token_that_cannot_renew_itself_warns_ahead_of_expiry(live, example_plugin):
    _, connection = await live.api(
        "POST", "/api/connections", json={"platform": "example", "apiKey": "ex-" + "d" * 32}
    )
    async with live.gateway.transaction() as session:
        await ConnectionRepository(session).set_fields(
            connection["id"], token_expires_at=utcnow() + timedelta(days=2)
        )
    _, result = await live.api("POST", f"/api/connections/{connection['id']}/health-check")
    assert result["status"] == "warning" and result["ok"]
    assert "reconnect before" in result["detail"]
    assert "connection.health_changed" in example_plugin.EVENTS


async def test_the_scheduler_refreshes_ahead_of_expiry(live):
    _, connected, _ = await live.connect()
    connection_id = connected["connectionId"]
    before = await live.gateway.tokens.credentials(connection_id)
    async with live.gateway.transaction() as session:
        await ConnectionRepository(session).set_fields(
            connection_id, next_refresh_at=utcnow() - timedelta(seconds=1)
        )
    await ConnectionScheduler(live.gateway).tick()
    after = await live.gateway.tokens.credentials(connection_id)
    assert after.access_token.reveal() != before.access_token.reveal()
    async with live.gateway.session() as session:
        row = await ConnectionRepository(session).get(connection_id)
    assert row.next_refresh_at > utcnow()  # rescheduled from the new token's life
