"""The health report: the eight dashboard views read back as one JSON document per scope."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from .. import clock
from ..db.base import utcnow
from ..timefmt import rfc3339
from ..types import METRICS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ..host import Gateway

ALL_TENANTS = "*"  # the views' roll-up rows
VIEW_NAMES = (
    "api_connector_health_summary",
    "api_recent_errors",
    "api_token_health",
    "api_publish_performance",
    "api_dlq_status",
    "api_health_check_trends",
    "api_connector_readiness",
    "api_analytics_summary",
)


def number(value: Any) -> int | float | None:
    """Views answer Decimal (PostgreSQL NUMERIC) or float; JSON wants plain numbers."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and value.as_tuple().exponent >= 0
            else float(value)
        )
    return value


def timestamp(value: Any) -> str | None:
    """A view's time as RFC 3339: PostgreSQL gives datetimes, SQLite its stored UTC text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return rfc3339(value)


async def read_view(gateway: Gateway, view: str, tenant_id: str) -> list[dict[str, Any]]:
    """The rows of one view for one scope (a tenant id, or ``*`` for every tenant)."""
    async with gateway.session() as session:
        await at_gateway_time(session)
        return await _rows(session, view, tenant_id)


async def at_gateway_time(session: AsyncSession) -> None:
    """Give the views the gateway's time for this transaction (migration 0012).

    SQLite's ``gateway_now_ms()`` asks the gateway's clock itself; PostgreSQL's reads the
    transaction's ``gateway.now_ms`` setting, so that no view decides on the server's ``now()``.
    """
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            text("SELECT set_config('gateway.now_ms', :ms, true)"),
            {"ms": repr(clock.timestamp() * 1000.0)},
        )


async def _rows(session: AsyncSession, view: str, tenant_id: str) -> list[dict[str, Any]]:
    if view not in VIEW_NAMES:
        raise ValueError(f"unknown view {view!r}")
    if view == "api_token_health" and tenant_id == ALL_TENANTS:
        query, params = f"SELECT * FROM {view}", {}  # noqa: S608 - a fixed name from VIEW_NAMES
    else:
        query, params = f"SELECT * FROM {view} WHERE tenant_id = :t", {"t": tenant_id}  # noqa: S608
    result = await session.execute(text(query), params)
    return [dict(row._mapping) for row in result]


async def health_report(gateway: Gateway, tenant_id: str | None) -> dict[str, Any]:
    """Everything the dashboard shows, for one tenant or (``None``) for all of them."""
    scope = tenant_id or ALL_TENANTS
    # One transaction, one reference time: the eight views agree on what "the last 24 h" is.
    async with gateway.session() as session:
        await at_gateway_time(session)
        views = {name: await _rows(session, name, scope) for name in VIEW_NAMES}
    platforms = _platform_names(gateway, views)
    by_platform = {name: _empty_platform(gateway, name) for name in platforms}
    for row in views["api_connector_health_summary"]:
        entry = by_platform[row["platform_name"]]
        entry["status"] = row["overall_status"]
        entry["connections"] = {
            "total": number(row["connections"]),
            "healthy": number(row["healthy"]),
            "warning": number(row["warning"]),
            "critical": number(row["critical"]),
            "unknown": number(row["unknown"]),
            "needsReconnect": number(row["needs_reconnect"]),
            "healthPercentage": number(row["health_percentage"]),
        }
        entry["tokens"] = {
            "expiringSoon": number(row["tokens_expiring_soon"]),
            "expired": number(row["tokens_expired"]),
        }
    for row in views["api_publish_performance"]:
        by_platform[row["platform_name"]]["publishing"] = {
            "jobs24h": number(row["jobs_24h"]),
            "published24h": number(row["published_24h"]),
            "dead24h": number(row["dead_24h"]),
            "successRate24h": number(row["success_rate_24h"]),
            "p95LatencyMs": number(row["p95_latency_ms"]),
            "avgLatencyMs": number(row["avg_latency_ms"]),
            "p95QueueWaitMs": number(row["p95_queue_wait_ms"]),
            "avgQueueWaitMs": number(row["avg_queue_wait_ms"]),
            "publishedTotal": number(row["published_total"]),
            "inFlight": number(row["in_flight"]),
        }
    dlq_rows = []
    for row in views["api_dlq_status"]:
        dlq = by_platform[row["platform_name"]]["dlq"]
        dlq["size"] += number(row["dead_jobs"])
        dlq["byReason"][row["reason"]] = number(row["dead_jobs"])
        dlq_rows.append(
            {
                "platform": row["platform_name"],
                "reason": row["reason"],
                "deadJobs": number(row["dead_jobs"]),
                "oldestDeadAt": timestamp(row["oldest_dead_at"]),
                "lastDeadAt": timestamp(row["last_dead_at"]),
                "maxHoursInQueue": number(row["max_hours_in_queue"]),
                "avgHoursInQueue": number(row["avg_hours_in_queue"]),
                "lastErrorMessage": row["last_error_message"],
            }
        )
    for row in views["api_connector_readiness"]:
        by_platform[row["platform_name"]]["readiness"] = {
            "productionReady": bool(row["production_ready"]),
            "needsAttention": number(row["needs_attention"]),
            "neverChecked": number(row["never_checked"]),
            "lastHealthCheckAt": timestamp(row["last_health_check_at"]),
        }
    for row in views["api_analytics_summary"]:
        by_platform[row["platform_name"]]["analytics"] = {
            "postsPublished": number(row["posts_published"]),
            "postsPublished7d": number(row["posts_published_7d"]),
            "lastPublishedAt": timestamp(row["last_published_at"]),
            "postsWithAnalytics": number(row["posts_with_analytics"]),
            "metrics": {m: number(row[m]) for m in METRICS},
        }
    return {
        "generatedAt": rfc3339(utcnow()),
        "scope": "tenant" if tenant_id else "all",
        "platforms": [by_platform[name] for name in platforms],
        "tokens": sorted(
            (_token(row) for row in views["api_token_health"] if row["token_status"] != "healthy"),
            key=lambda t: (t["hoursUntilExpiry"] is not None, t["hoursUntilExpiry"] or 0),
        ),
        "dlq": {
            "total": sum(p["dlq"]["size"] for p in by_platform.values()),
            "byPlatformAndReason": dlq_rows,
        },
        "recentErrors": sorted(
            (_error(row) for row in views["api_recent_errors"]),
            key=lambda e: e["lastSeenAt"] or "",
            reverse=True,
        ),
        "healthCheckTrends": sorted(
            (_trend(row) for row in views["api_health_check_trends"]),
            key=lambda t: (t["platform"], t["day"]),
        ),
    }


def _platform_names(gateway: Gateway, views: dict[str, list[dict[str, Any]]]) -> list[str]:
    # Every enabled platform, even without data; and any platform the data still mentions.
    installed = [n for n in gateway.connectors if gateway.settings.platform(n).enabled]
    seen = {row["platform_name"] for rows in views.values() for row in rows}
    return installed + sorted(seen - set(installed))


def _empty_platform(gateway: Gateway, name: str) -> dict[str, Any]:
    connector = gateway.connectors.get(name)
    return {
        "platform": name,
        "displayName": connector.display_name if connector else name,
        "installed": connector is not None,
        "status": "unknown",
        "connections": {
            "total": 0,
            "healthy": 0,
            "warning": 0,
            "critical": 0,
            "unknown": 0,
            "needsReconnect": 0,
            "healthPercentage": None,
        },
        "tokens": {"expiringSoon": 0, "expired": 0},
        "publishing": {
            "jobs24h": 0,
            "published24h": 0,
            "dead24h": 0,
            "successRate24h": None,
            "p95LatencyMs": None,
            "avgLatencyMs": None,
            "p95QueueWaitMs": None,
            "avgQueueWaitMs": None,
            "publishedTotal": 0,
            "inFlight": 0,
        },
        "dlq": {"size": 0, "byReason": {}},
        "readiness": {
            "productionReady": False,
            "needsAttention": 0,
            "neverChecked": 0,
            "lastHealthCheckAt": None,
        },
        "analytics": {
            "postsPublished": 0,
            "postsPublished7d": 0,
            "lastPublishedAt": None,
            "postsWithAnalytics": 0,
            "metrics": dict.fromkeys(METRICS),
        },
    }


def _token(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "connectionId": row["connection_id"],
        "tenantId": row["tenant_id"],
        "platform": row["platform_name"],
        "displayName": row["display_name"],
        "status": row["token_status"],
        "expiresAt": timestamp(row["expires_at"]),
        "hoursUntilExpiry": number(row["hours_until_expiry"]),
    }


def _error(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "platform": row["platform_name"],
        "source": row["source"],
        "errorType": row["error_type"],
        "occurrences24h": number(row["occurrences_24h"]),
        "occurrences7d": number(row["occurrences_7d"]),
        "firstSeenAt": timestamp(row["first_seen_at"]),
        "lastSeenAt": timestamp(row["last_seen_at"]),
        "lastMessage": row["last_message"],
    }


def _trend(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "platform": row["platform_name"],
        "day": row["day"],
        "checks": number(row["checks"]),
        "passed": number(row["passed"]),
        "failed": number(row["failed"]),
        "passRate": number(row["pass_rate"]),
        "avgLatencyMs": number(row["avg_latency_ms"]),
        "maxLatencyMs": number(row["max_latency_ms"]),
        "warnings": number(row["warnings"]),
        "criticals": number(row["criticals"]),
    }
