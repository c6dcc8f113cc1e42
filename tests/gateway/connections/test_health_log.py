"""Health-check results written together: each stored, each change announced once, in the outbox."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from gateway.connections.health import CheckResult
from gateway.connections.health_log import health_log
from gateway.db.base import utcnow
from gateway.db.connections import ConnectionRepository
from gateway.db.models import HealthCheckRow, WebhookDeliveryRow


async def subscribe_to_health(live) -> None:
    body = {"url": "https://hooks.example.com/in", "events": ["connection.health_changed"]}
    status, endpoint = await live.api("POST", "/api/webhook-endpoints", json=body)
    assert status == 201, endpoint


async def stored(live, model) -> list:
    async with live.gateway.session() as session:
        return list((await session.execute(select(model))).scalars())


async def test_concurrent_checks_are_each_stored_and_each_change_is_outboxed(live, example_plugin):
    await subscribe_to_health(live)
    ids = []
    for n in range(6):
        _, connected, _ = await live.connect(login_as=f"user-{n}")
        ids.append(connected["connectionId"])

    async def check_all() -> list[dict]:
        return await asyncio.gather(
            *(live.api("POST", f"/api/connections/{cid}/health-check") for cid in ids)
        )

    first = await check_all()
    assert [body["status"] for _, body in first] == ["healthy"] * len(ids)
    second = await check_all()
    assert [body["status"] for _, body in second] == ["healthy"] * len(ids)

    checks = await stored(live, HealthCheckRow)
    assert sorted(c.connection_id for c in checks) == sorted(ids * 2)
    # One change per connection (unknown → healthy), none for the second round.
    deliveries = await stored(live, WebhookDeliveryRow)
    assert sorted(d.payload["data"]["connectionId"] for d in deliveries) == sorted(ids)
    assert {(d.payload["data"]["from"], d.payload["data"]["to"]) for d in deliveries} == {
        ("unknown", "healthy")
    }
    assert example_plugin.EVENTS.count("connection.health_changed") == len(ids)
    for cid in ids:
        _, connection = await live.api("GET", f"/api/connections/{cid}")
        assert connection["health"] == "healthy"


async def test_two_results_for_one_connection_in_a_batch_change_it_in_order(live):
    _, connected, _ = await live.connect()
    async with live.gateway.session() as session:
        row = await ConnectionRepository(session).get(connected["connectionId"])

    def result(status: str) -> CheckResult:
        return CheckResult(row.id, status, status != "critical", 5.0, utcnow(), None, "")

    changes = await asyncio.gather(
        health_log(live.gateway).record(row, result("warning")),
        health_log(live.gateway).record(row, result("warning")),
        health_log(live.gateway).record(row, result("healthy")),
    )
    assert [c and (c.data["from"], c.data["to"]) for c in changes] == [
        ("unknown", "warning"),
        None,
        ("warning", "healthy"),
    ]
    async with live.gateway.session() as session:
        assert (await ConnectionRepository(session).get(row.id)).health == "healthy"


async def test_a_result_for_a_deleted_connection_is_dropped(live):
    _, connected, _ = await live.connect()
    async with live.gateway.session() as session:
        row = await ConnectionRepository(session).get(connected["connectionId"])
    async with live.gateway.transaction() as session:
        await session.delete(await session.get(type(row), row.id))
    checked = CheckResult(row.id, "healthy", True, 5.0, utcnow(), None, "")
    assert await health_log(live.gateway).record(row, checked) is None
    assert await stored(live, HealthCheckRow) == []
