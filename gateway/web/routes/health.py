"""GET /api/health: the dashboard views as JSON, for the caller's tenant (admins: everyone)."""

from __future__ import annotations

from aiohttp import web

from ...ops.health import METRICS, health_report
from ..keys import gateway_of, principal_of
from ..spec import ApiSpec, json_response, record

NUMBER = {"type": ["number", "null"]}
COUNT = {"type": "integer", "minimum": 0}
TIME = {"type": ["string", "null"], "format": "date-time"}


def _described(schema: dict, description: str) -> dict:
    return {**schema, "description": description}


PLATFORM = record(
    "PlatformHealth",
    {
        "platform": {"type": "string"},
        "displayName": {"type": "string"},
        "installed": {"type": "boolean"},
        "status": {"enum": ["healthy", "warning", "critical", "unknown"]},
        "connections": record(
            None,
            {
                "total": COUNT,
                "healthy": COUNT,
                "warning": COUNT,
                "critical": COUNT,
                "unknown": COUNT,
                "needsReconnect": COUNT,
                "healthPercentage": NUMBER,
            },
        ),
        "tokens": record(None, {"expiringSoon": COUNT, "expired": COUNT}),
        "publishing": record(
            None,
            {
                "jobs24h": COUNT,
                "published24h": COUNT,
                "dead24h": COUNT,
                "successRate24h": NUMBER,
                "p95LatencyMs": _described(
                    NUMBER, "publish latency: from when the job was due (or replayed) to published"
                ),
                "avgLatencyMs": NUMBER,
                "p95QueueWaitMs": _described(
                    NUMBER, "how long due jobs waited for a worker (part of the latency, apart)"
                ),
                "avgQueueWaitMs": NUMBER,
                "publishedTotal": COUNT,
                "inFlight": COUNT,
            },
        ),
        "dlq": record(
            None, {"size": COUNT, "byReason": {"type": "object", "additionalProperties": COUNT}}
        ),
        "readiness": record(
            None,
            {
                "productionReady": {"type": "boolean"},
                "needsAttention": COUNT,
                "neverChecked": COUNT,
                "lastHealthCheckAt": TIME,
            },
        ),
        "analytics": record(
            None,
            {
                "postsPublished": COUNT,
                "postsPublished7d": COUNT,
                "lastPublishedAt": TIME,
                "postsWithAnalytics": COUNT,
                "metrics": record(None, {m: NUMBER for m in METRICS}),
            },
        ),
    },
)
TOKEN = record(
    "ExpiringToken",
    {
        "connectionId": {"type": "string"},
        "tenantId": {"type": "string"},
        "platform": {"type": "string"},
        "displayName": {"type": "string"},
        "status": {"enum": ["expiring", "expired"]},
        "expiresAt": TIME,
        "hoursUntilExpiry": NUMBER,
    },
)
DLQ_ROW = record(
    "DeadJobGroup",
    {
        "platform": {"type": "string"},
        "reason": {"type": "string"},
        "deadJobs": COUNT,
        "oldestDeadAt": TIME,
        "lastDeadAt": TIME,
        "maxHoursInQueue": NUMBER,
        "avgHoursInQueue": NUMBER,
        "lastErrorMessage": {"type": ["string", "null"]},
    },
)
ERROR = record(
    "RecentError",
    {
        "platform": {"type": "string"},
        "source": {"enum": ["publish", "health_check"]},
        "errorType": {"type": "string"},
        "occurrences24h": COUNT,
        "occurrences7d": COUNT,
        "firstSeenAt": TIME,
        "lastSeenAt": TIME,
        "lastMessage": {"type": ["string", "null"]},
    },
)
TREND = record(
    "HealthCheckTrend",
    {
        "platform": {"type": "string"},
        "day": {"type": "string"},
        "checks": COUNT,
        "passed": COUNT,
        "failed": COUNT,
        "passRate": NUMBER,
        "avgLatencyMs": NUMBER,
        "maxLatencyMs": NUMBER,
        "warnings": COUNT,
        "criticals": COUNT,
    },
)
HEALTH_SCHEMA = record(
    "HealthReport",
    {
        "generatedAt": {"type": "string", "format": "date-time"},
        "scope": {"enum": ["tenant", "all"]},
        "platforms": {"type": "array", "items": PLATFORM},
        "tokens": {"type": "array", "items": TOKEN},
        "dlq": record(
            None, {"total": COUNT, "byPlatformAndReason": {"type": "array", "items": DLQ_ROW}}
        ),
        "recentErrors": {"type": "array", "items": ERROR},
        "healthCheckTrends": {"type": "array", "items": TREND},
    },
)


def install(spec: ApiSpec) -> None:
    """Declare GET /api/health on ``spec``."""
    spec.route(
        "GET",
        "/api/health",
        summary=(
            "Per platform: connections by health, tokens expiring within 7 days, publish success "
            "rate and p95 latency over 24 h, the DLQ, recent errors (an admin key: all tenants)"
        ),
        tags=("health",),
        responses={200: json_response(HEALTH_SCHEMA)},
    )(health)


async def health(request: web.Request) -> web.Response:
    principal = principal_of(request)
    tenant_id = None if principal.is_admin else principal.tenant_id
    report = await health_report(gateway_of(request), tenant_id)
    return web.json_response(report, headers={"Cache-Control": "no-store"})
