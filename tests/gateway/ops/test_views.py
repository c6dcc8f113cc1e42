"""The eight health views compute the seeded figures, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from gateway import clock
from gateway.ops.health import (
    ALL_TENANTS,
    VIEW_NAMES,
    at_gateway_time,
    health_report,
    number,
    read_view,
    timestamp,
)
from gateway.timefmt import rfc3339

from .seed import KEYED, SOCIAL


def by(rows, *keys):
    return {tuple(row[k] for k in keys) if len(keys) > 1 else row[keys[0]]: row for row in rows}


def plain(row, *columns):
    return {c: number(row[c]) for c in columns}


async def test_connector_health_summary(seeded):
    gateway, data = seeded
    a = by(
        await read_view(gateway, "api_connector_health_summary", data.key_a.tenant_id),
        "platform_name",
    )
    counts = ("connections", "healthy", "warning", "critical", "unknown", "needs_reconnect")
    tokens = ("health_percentage", "tokens_expiring_soon", "tokens_expired")
    assert plain(a[SOCIAL], *counts, *tokens) == {
        "connections": 2,
        "healthy": 1,
        "warning": 1,
        "critical": 0,
        "unknown": 0,
        "needs_reconnect": 0,
        "health_percentage": 50.0,
        "tokens_expiring_soon": 1,
        "tokens_expired": 0,
    }
    assert a[SOCIAL]["overall_status"] == "warning"
    # The revoked connection is not counted; the one needing a reconnect is critical.
    assert plain(a[KEYED], "connections", "critical", "needs_reconnect", "tokens_expired") == {
        "connections": 1,
        "critical": 1,
        "needs_reconnect": 1,
        "tokens_expired": 1,
    }
    assert a[KEYED]["overall_status"] == "critical"
    b = by(
        await read_view(gateway, "api_connector_health_summary", data.key_b.tenant_id),
        "platform_name",
    )
    assert set(b) == {SOCIAL} and b[SOCIAL]["overall_status"] == "healthy"
    assert number(b[SOCIAL]["health_percentage"]) == 100.0
    everyone = by(
        await read_view(gateway, "api_connector_health_summary", ALL_TENANTS), "platform_name"
    )
    assert plain(everyone[SOCIAL], "connections", "healthy", "health_percentage") == {
        "connections": 3,
        "healthy": 2,
        "health_percentage": 66.7,
    }


async def test_token_health(seeded):
    gateway, data = seeded
    rows = await read_view(gateway, "api_token_health", data.key_a.tenant_id)
    assert len(rows) == 3  # not the revoked one
    states = sorted((r["display_name"], r["token_status"]) for r in rows)
    assert states == [("A keyed", "expired"), ("A one", "expiring"), ("Acme", "healthy")]
    [expiring] = [r for r in rows if r["token_status"] == "expiring"]
    assert number(expiring["hours_until_expiry"]) == 72.0
    assert timestamp(expiring["expires_at"]) == rfc3339(data.now + timedelta(hours=72))
    every = await read_view(gateway, "api_token_health", ALL_TENANTS)
    b = [r for r in every if r["tenant_id"] == data.key_b.tenant_id]
    assert [(r["token_status"], round(number(r["hours_until_expiry"]))) for r in b] == [
        ("healthy", 720)
    ]


async def test_publish_performance_and_p95(seeded):
    gateway, data = seeded
    [a] = await read_view(gateway, "api_publish_performance", data.key_a.tenant_id)
    assert a["platform_name"] == SOCIAL
    assert plain(
        a,
        "jobs_24h",
        "published_24h",
        "dead_24h",
        "success_rate_24h",
        "p95_latency_ms",
        "avg_latency_ms",
        "published_total",
        "in_flight",
    ) == {
        "jobs_24h": 23,  # 20 published, 2 dead, 1 queued; not the 2-day and 10-day-old ones
        "published_24h": 20,
        "dead_24h": 2,
        "success_rate_24h": 90.9,
        "p95_latency_ms": 1900.0,  # nearest rank: the 19th of 20 samples
        "avg_latency_ms": 1050.0,
        "published_total": 21,
        "in_flight": 1,
    }
    [everyone] = await read_view(gateway, "api_publish_performance", ALL_TENANTS)
    # 21 samples (tenant B's 5000 ms too): the ceil(0.95 * 21) = 20th is 2000 ms.
    assert number(everyone["p95_latency_ms"]) == 2000.0
    assert number(everyone["published_24h"]) == 21


async def test_dlq_status(seeded):
    gateway, data = seeded
    rows = by(await read_view(gateway, "api_dlq_status", data.key_a.tenant_id), "reason")
    assert set(rows) == {"max_attempts", "non_retryable"}
    assert plain(rows["max_attempts"], "dead_jobs", "max_hours_in_queue", "avg_hours_in_queue") == {
        "dead_jobs": 2,
        "max_hours_in_queue": 2.0,
        "avg_hours_in_queue": 2.0,
    }
    assert rows["max_attempts"]["last_error_message"] == "HTTP 503"
    assert number(rows["non_retryable"]["max_hours_in_queue"]) == 50.0
    assert await read_view(gateway, "api_dlq_status", data.key_b.tenant_id) == []


async def test_recent_errors(seeded):
    gateway, data = seeded
    rows = by(
        await read_view(gateway, "api_recent_errors", data.key_a.tenant_id), "source", "error_type"
    )
    assert set(rows) == {
        ("publish", "transient"),
        ("publish", "invalid_request"),
        ("health_check", "transient"),  # the 10-day-old "auth" failure is out of the window
    }
    transient = rows["publish", "transient"]
    assert plain(transient, "occurrences_7d", "occurrences_24h") == {
        "occurrences_7d": 2,
        "occurrences_24h": 2,
    }
    assert transient["last_message"] == "HTTP 503"
    assert plain(rows["publish", "invalid_request"], "occurrences_7d", "occurrences_24h") == {
        "occurrences_7d": 1,
        "occurrences_24h": 0,
    }
    assert rows["health_check", "transient"]["last_message"] == "timeout"


async def test_health_check_trends(seeded):
    gateway, data = seeded
    [a] = await read_view(gateway, "api_health_check_trends", data.key_a.tenant_id)
    assert a["day"] == data.check_day
    assert plain(
        a, "checks", "passed", "failed", "pass_rate", "avg_latency_ms", "max_latency_ms", "warnings"
    ) == {
        "checks": 3,
        "passed": 2,
        "failed": 1,
        "pass_rate": 66.7,
        "avg_latency_ms": 200.0,
        "max_latency_ms": 300.0,
        "warnings": 1,
    }
    [everyone] = await read_view(gateway, "api_health_check_trends", ALL_TENANTS)
    assert number(everyone["checks"]) == 4 and number(everyone["pass_rate"]) == 75.0


async def test_connector_readiness(seeded):
    gateway, data = seeded
    a = by(
        await read_view(gateway, "api_connector_readiness", data.key_a.tenant_id), "platform_name"
    )
    # A's social connections: one token expiring, one warning; not production ready.
    assert plain(a[SOCIAL], "connections", "active", "needs_attention", "production_ready") == {
        "connections": 2,
        "active": 2,
        "needs_attention": 2,
        "production_ready": 0,
    }
    assert timestamp(a[SOCIAL]["last_health_check_at"]) == rfc3339(data.now - timedelta(hours=1))
    [b] = await read_view(gateway, "api_connector_readiness", data.key_b.tenant_id)
    assert plain(b, "needs_attention", "never_checked", "production_ready") == {
        "needs_attention": 0,
        "never_checked": 0,
        "production_ready": 1,
    }


async def test_analytics_summary(seeded):
    gateway, data = seeded
    [a] = await read_view(gateway, "api_analytics_summary", data.key_a.tenant_id)
    assert plain(a, "posts_published", "posts_published_7d", "posts_with_analytics") == {
        "posts_published": 21,
        "posts_published_7d": 20,
        "posts_with_analytics": 2,
    }
    # The latest collection of each post counts; a metric no post reported stays null.
    assert plain(a, "likes", "comments", "impressions", "reach", "shares") == {
        "likes": 8,
        "comments": 2,
        "impressions": 150,
        "reach": None,
        "shares": None,
    }
    assert timestamp(a["last_published_at"]) == rfc3339(
        data.now - timedelta(minutes=10, seconds=-2)
    )


async def test_roll_up_of_the_ranked_views(seeded):
    gateway, _ = seeded
    dlq = by(await read_view(gateway, "api_dlq_status", ALL_TENANTS), "reason")
    assert {reason: number(row["dead_jobs"]) for reason, row in dlq.items()} == {
        "max_attempts": 2,
        "non_retryable": 1,
    }
    assert dlq["max_attempts"]["last_error_message"] == "HTTP 503"
    assert dlq["non_retryable"]["last_error_message"] == "bad caption"
    assert {r["tenant_id"] for r in dlq.values()} == {ALL_TENANTS}
    errors = by(await read_view(gateway, "api_recent_errors", ALL_TENANTS), "source", "error_type")
    assert set(errors) == {
        ("publish", "transient"),
        ("publish", "invalid_request"),
        ("health_check", "transient"),
    }
    assert errors["publish", "transient"]["last_message"] == "HTTP 503"
    assert number(errors["publish", "transient"]["occurrences_7d"]) == 2


AGGREGATE_VIEWS = [name for name in VIEW_NAMES if name != "api_token_health"]


async def test_a_scopes_rows_are_its_rows_of_the_whole_view(seeded):
    """The filter a report puts on a view reaches into it; the rows must not change for that."""
    gateway, data = seeded
    scopes = (data.key_a.tenant_id, data.key_b.tenant_id, ALL_TENANTS)

    def key(row):
        return sorted((k, repr(v)) for k, v in row.items())

    for view in AGGREGATE_VIEWS:
        async with gateway.session() as session:
            await at_gateway_time(session)
            whole = [dict(r._mapping) for r in await session.execute(text(f"SELECT * FROM {view}"))]
        assert {row["tenant_id"] for row in whole} <= set(scopes), view
        assert any(row["tenant_id"] == ALL_TENANTS for row in whole), view
        for scope in scopes:
            mine = sorted(key(r) for r in whole if r["tenant_id"] == scope)
            assert sorted(map(key, await read_view(gateway, view, scope))) == mine, (view, scope)


async def test_the_views_take_their_time_from_the_gateway_clock(seeded):
    """Four days on by the gateway's clock, and the database's own clock unmoved: the seeded
    last 24 hours are over, and the expiring token has expired."""
    gateway, data = seeded
    tenant = data.key_a.tenant_id
    later = clock.Clock(clock.current().offset + timedelta(days=4).total_seconds())
    with clock.use(later):
        report = await health_report(gateway, tenant)
        (performance,) = [
            r
            for r in await read_view(gateway, "api_publish_performance", tenant)
            if r["platform_name"] == SOCIAL
        ]
        tokens = await read_view(gateway, "api_token_health", tenant)
    assert number(performance["published_24h"]) == 0
    assert number(performance["jobs_24h"]) == 0
    assert {r["display_name"]: r["token_status"] for r in tokens}["A one"] == "expired"
    (social,) = [p for p in report["platforms"] if p["platform"] == SOCIAL]
    assert social["publishing"]["published24h"] == 0
