"""GET /api/health: the views' figures as JSON, scoped to the caller's tenant; admins see all."""

from __future__ import annotations

import pytest

from gateway import admin
from gateway.host import Gateway
from gateway.ops.health import ALL_TENANTS, number, read_view
from gateway.web.app import create_app

from ...conftest import auth, settings_for
from .seed import KEYED, SOCIAL, seed


@pytest.fixture
async def served(aiohttp_client, tmp_path, database_url, example_plugin):
    gateway = Gateway.from_settings(
        settings_for(tmp_path, database_url, connections={"background": False}),
        extra_plugins=[("example", example_plugin)],
        entry_points=False,
    )
    client = await aiohttp_client(create_app(gateway))
    return client, gateway, await seed(gateway)


async def health(client, key) -> dict:
    response = await client.get("/api/health", headers=auth(key))
    assert response.status == 200, await response.text()
    return await response.json()


def platforms(report: dict) -> dict[str, dict]:
    return {p["platform"]: p for p in report["platforms"]}


async def test_a_tenant_sees_only_its_own_figures(served):
    client, _, data = served
    report = await health(client, data.key_a)
    assert report["scope"] == "tenant"
    social, keyed = platforms(report)[SOCIAL], platforms(report)[KEYED]
    assert social["connections"]["total"] == 2 and social["connections"]["healthPercentage"] == 50
    assert social["tokens"] == {"expiringSoon": 1, "expired": 0}
    assert social["publishing"]["p95LatencyMs"] == 1900
    assert social["publishing"]["successRate24h"] == 90.9
    assert social["dlq"] == {"size": 3, "byReason": {"max_attempts": 2, "non_retryable": 1}}
    assert social["analytics"]["metrics"]["likes"] == 8
    assert social["analytics"]["metrics"]["reach"] is None
    assert keyed["status"] == "critical" and keyed["connections"]["needsReconnect"] == 1
    assert report["dlq"]["total"] == 3
    assert {t["tenantId"] for t in report["tokens"]} == {data.key_a.tenant_id}
    assert sorted(t["status"] for t in report["tokens"]) == ["expired", "expiring"]
    assert {(e["source"], e["errorType"]) for e in report["recentErrors"]} == {
        ("publish", "transient"),
        ("publish", "invalid_request"),
        ("health_check", "transient"),
    }


async def test_another_tenant_sees_none_of_them(served):
    client, _, data = served
    report = await health(client, data.key_b)
    social = platforms(report)[SOCIAL]
    assert social["connections"]["total"] == 1 and social["status"] == "healthy"
    assert social["publishing"]["p95LatencyMs"] == 5000
    assert social["dlq"]["size"] == 0 and report["dlq"]["total"] == 0
    assert report["recentErrors"] == [] and report["tokens"] == []
    # Platforms it has no data for are still listed, empty.
    assert platforms(report)[KEYED]["connections"]["total"] == 0
    assert platforms(report)[KEYED]["publishing"]["p95LatencyMs"] is None


async def test_an_admin_key_sees_every_tenant(served):
    client, gateway, data = served
    key = await admin.create_tenant(gateway, "operators", admin=True)
    report = await health(client, key)
    assert report["scope"] == "all"
    social = platforms(report)[SOCIAL]
    assert social["connections"]["total"] == 3
    assert social["publishing"]["published24h"] == 21
    assert {t["tenantId"] for t in report["tokens"]} == {data.key_a.tenant_id}
    # The API's p95 is the view's (the same nearest-rank sample on both databases).
    [view] = await read_view(gateway, "api_publish_performance", ALL_TENANTS)
    assert social["publishing"]["p95LatencyMs"] == number(view["p95_latency_ms"]) == 2000


async def test_a_fresh_tenant_gets_an_empty_report_and_no_key_gets_401(served):
    client, gateway, _ = served
    key = await admin.create_tenant(gateway, "newcomer")
    report = await health(client, key)
    assert {p["platform"] for p in report["platforms"]} == {KEYED, SOCIAL}
    assert all(p["connections"]["total"] == 0 for p in report["platforms"])
    response = await client.get("/api/health")
    assert response.status == 401
    assert response.content_type == "application/problem+json"
