"""The eight health dashboard views, and the dashboard's sign-in sessions

Revision ID: 0008_health_views
Revises: 0007_platform_webhooks
Create Date: 2026-11-26

Every aggregate view has one row per tenant and platform plus a roll-up row per platform whose
``tenant_id`` is ``'*'`` (all tenants), so that an admin's p95 is a true p95 over all samples
rather than an average of per-tenant ones. Times are compared as epoch milliseconds, the one
arithmetic SQLite and PostgreSQL share; p95 is the nearest-rank sample (the ``ceil(0.95 n)``-th
smallest, with ``ceil`` done in integer arithmetic), so both databases pick the same sample.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.db.base import UTCDateTime

revision = "0008_health_views"
down_revision = "0007_platform_webhooks"
branch_labels = None
depends_on = None

DAY_MS = 86_400_000
VIEWS = (
    "api_token_health",
    "api_connector_health_summary",
    "api_recent_errors",
    "api_publish_performance",
    "api_dlq_status",
    "api_health_check_trends",
    "api_connector_readiness",
    "api_analytics_summary",
)
# Each row twice: once for its tenant, once for the all-tenants roll-up.
SCOPES = "(SELECT 0 AS rollup UNION ALL SELECT 1 AS rollup) scopes"
SCOPE_TENANT = "CASE WHEN scopes.rollup = 1 THEN '*' ELSE {table}.tenant_id END"


class Dialect:
    """The few expressions SQLite and PostgreSQL spell differently."""

    def __init__(self, name: str) -> None:
        self.sqlite = name == "sqlite"

    def ms(self, column: str) -> str:
        if self.sqlite:
            return f"((julianday({column}) - 2440587.5) * 86400000.0)"
        return f"(CAST(EXTRACT(EPOCH FROM {column}) AS DOUBLE PRECISION) * 1000.0)"

    @property
    def now(self) -> str:
        return self.ms("'now'") if self.sqlite else self.ms("now()")

    def json_text(self, column: str, key: str) -> str:
        if self.sqlite:
            return f"json_extract({column}, '$.{key}')"
        return f"({column} ->> '{key}')"

    def json_number(self, column: str, key: str) -> str:
        if self.sqlite:
            return f"json_extract({column}, '$.{key}')"
        return f"CAST(({column} ->> '{key}') AS DOUBLE PRECISION)"

    def day(self, column: str) -> str:
        if self.sqlite:
            return f"strftime('%Y-%m-%d', {column})"
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def round1(expr: str) -> str:
    return f"ROUND(CAST({expr} AS NUMERIC), 1)"


def views(d: Dialect) -> dict[str, str]:
    now = d.now
    expiry = "COALESCE(c.reconnect_by, c.refresh_expires_at)"
    token_health = f"""
SELECT c.id AS connection_id, c.tenant_id, c.platform AS platform_name, c.display_name,
       c.status, c.health, c.token_expires_at AS access_token_expires_at,
       {expiry} AS expires_at,
       CASE WHEN {expiry} IS NULL THEN NULL
            ELSE {round1(f"({d.ms(expiry)} - {now}) / 3600000.0")} END AS hours_until_expiry,
       CASE WHEN c.status = 'needs_reconnect' THEN 'expired'
            WHEN {expiry} IS NULL THEN 'healthy'
            WHEN {d.ms(expiry)} <= {now} THEN 'expired'
            WHEN {d.ms(expiry)} <= {now} + {7 * DAY_MS} THEN 'expiring'
            ELSE 'healthy' END AS token_status
FROM connections c
WHERE c.status <> 'revoked'
"""
    health_summary = f"""
SELECT x.tenant_id, x.platform_name,
       COUNT(*) AS connections,
       SUM(CASE WHEN x.health = 'healthy' THEN 1 ELSE 0 END) AS healthy,
       SUM(CASE WHEN x.health = 'warning' THEN 1 ELSE 0 END) AS warning,
       SUM(CASE WHEN x.health = 'critical' THEN 1 ELSE 0 END) AS critical,
       SUM(CASE WHEN x.health NOT IN ('healthy', 'warning', 'critical') THEN 1 ELSE 0 END)
           AS unknown,
       SUM(CASE WHEN x.status = 'needs_reconnect' THEN 1 ELSE 0 END) AS needs_reconnect,
       {round1("100.0 * SUM(CASE WHEN x.health = 'healthy' THEN 1 ELSE 0 END) / COUNT(*)")}
           AS health_percentage,
       SUM(CASE WHEN x.token_status = 'expiring' THEN 1 ELSE 0 END) AS tokens_expiring_soon,
       SUM(CASE WHEN x.token_status = 'expired' THEN 1 ELSE 0 END) AS tokens_expired,
       CASE WHEN SUM(CASE WHEN x.health = 'critical' OR x.status = 'needs_reconnect'
                          THEN 1 ELSE 0 END) > 0 THEN 'critical'
            WHEN SUM(CASE WHEN x.health = 'warning' OR x.token_status <> 'healthy'
                          THEN 1 ELSE 0 END) > 0 THEN 'warning'
            WHEN SUM(CASE WHEN x.health = 'healthy' THEN 1 ELSE 0 END) = COUNT(*)
                 THEN 'healthy'
            ELSE 'unknown' END AS overall_status
FROM (SELECT {SCOPE_TENANT.format(table="t")} AS tenant_id, t.platform_name, t.health,
             t.status, t.token_status
      FROM api_token_health t CROSS JOIN {SCOPES}) x
GROUP BY x.tenant_id, x.platform_name
"""
    recent_errors = f"""
WITH errs AS (
    SELECT j.tenant_id, j.platform AS platform_name, 'publish' AS source,
           COALESCE({d.json_text('j.error_json', 'code')}, 'unknown') AS error_type,
           {d.json_text('j.error_json', 'message')} AS message, j.updated_at AS seen_at,
           j.id AS ref
    FROM publish_jobs j
    WHERE j.error_json IS NOT NULL AND {d.ms('j.updated_at')} >= {now} - {7 * DAY_MS}
    UNION ALL
    SELECT h.tenant_id, h.platform, 'health_check', COALESCE(h.error_code, 'unknown'),
           h.detail, h.checked_at, CAST(h.id AS VARCHAR(40))
    FROM connection_health_checks h
    WHERE NOT h.ok AND {d.ms('h.checked_at')} >= {now} - {7 * DAY_MS}
), scoped AS (
    SELECT {SCOPE_TENANT.format(table="errs")} AS scope_tenant, errs.*
    FROM errs CROSS JOIN {SCOPES}
), ranked AS (
    SELECT scoped.*, ROW_NUMBER() OVER (
        PARTITION BY scope_tenant, platform_name, source, error_type
        ORDER BY seen_at DESC, ref DESC) AS rn
    FROM scoped
)
SELECT scope_tenant AS tenant_id, platform_name, source, error_type,
       COUNT(*) AS occurrences_7d,
       SUM(CASE WHEN {d.ms('seen_at')} >= {now} - {DAY_MS} THEN 1 ELSE 0 END) AS occurrences_24h,
       MIN(seen_at) AS first_seen_at, MAX(seen_at) AS last_seen_at,
       MAX(CASE WHEN rn = 1 THEN message END) AS last_message
FROM ranked
GROUP BY scope_tenant, platform_name, source, error_type
"""
    started = "COALESCE(j.scheduled_at, j.created_at)"
    publish_performance = f"""
WITH base AS (
    SELECT {SCOPE_TENANT.format(table="j")} AS tenant_id, j.platform AS platform_name, j.status,
           CASE WHEN {d.ms('j.created_at')} >= {now} - {DAY_MS} THEN 1 ELSE 0 END AS created_24h,
           CASE WHEN j.published_at IS NOT NULL
                 AND {d.ms('j.published_at')} >= {now} - {DAY_MS} THEN 1 ELSE 0 END
               AS published_24h,
           CASE WHEN j.status = 'dead' AND j.dead_at IS NOT NULL
                 AND {d.ms('j.dead_at')} >= {now} - {DAY_MS} THEN 1 ELSE 0 END AS dead_24h,
           CASE WHEN j.published_at IS NOT NULL
                THEN ROUND({d.ms('j.published_at')} - {d.ms(started)}) END AS latency_ms
    FROM publish_jobs j CROSS JOIN {SCOPES}
), ranked AS (
    SELECT tenant_id, platform_name, latency_ms,
           ROW_NUMBER() OVER (PARTITION BY tenant_id, platform_name ORDER BY latency_ms) AS rn,
           COUNT(*) OVER (PARTITION BY tenant_id, platform_name) AS n
    FROM base WHERE published_24h = 1
), p95 AS (
    SELECT tenant_id, platform_name,
           MAX(CASE WHEN rn = (95 * n + 99) / 100 THEN latency_ms END) AS p95_latency_ms,
           {round1("AVG(latency_ms)")} AS avg_latency_ms,
           COUNT(*) AS samples
    FROM ranked GROUP BY tenant_id, platform_name
)
SELECT b.tenant_id, b.platform_name,
       SUM(b.created_24h) AS jobs_24h,
       SUM(b.published_24h) AS published_24h,
       SUM(b.dead_24h) AS dead_24h,
       CASE WHEN SUM(b.published_24h) + SUM(b.dead_24h) = 0 THEN NULL
            ELSE {round1("100.0 * SUM(b.published_24h) / (SUM(b.published_24h) + SUM(b.dead_24h))")}
       END AS success_rate_24h,
       MAX(p.p95_latency_ms) AS p95_latency_ms,
       MAX(p.avg_latency_ms) AS avg_latency_ms,
       SUM(CASE WHEN b.status = 'published' THEN 1 ELSE 0 END) AS published_total,
       SUM(CASE WHEN b.status IN ('scheduled', 'queued', 'running', 'processing', 'failed')
                THEN 1 ELSE 0 END) AS in_flight
FROM base b
LEFT JOIN p95 p ON p.tenant_id = b.tenant_id AND p.platform_name = b.platform_name
GROUP BY b.tenant_id, b.platform_name
"""
    dlq_status = f"""
WITH dead AS (
    SELECT {SCOPE_TENANT.format(table="j")} AS tenant_id, j.platform AS platform_name,
           COALESCE(j.dead_reason, 'unknown') AS reason, j.created_at, j.dead_at, j.id,
           {d.json_text('j.error_json', 'message')} AS message
    FROM publish_jobs j CROSS JOIN {SCOPES}
    WHERE j.status = 'dead'
), ranked AS (
    SELECT dead.*, ROW_NUMBER() OVER (
        PARTITION BY tenant_id, platform_name, reason ORDER BY dead_at DESC, id DESC) AS rn
    FROM dead
)
SELECT tenant_id, platform_name, reason,
       COUNT(*) AS dead_jobs,
       MIN(dead_at) AS oldest_dead_at,
       MAX(dead_at) AS last_dead_at,
       {round1(f"({now} - MIN({d.ms('created_at')})) / 3600000.0")} AS max_hours_in_queue,
       {round1(f"AVG({now} - {d.ms('created_at')}) / 3600000.0")} AS avg_hours_in_queue,
       MAX(CASE WHEN rn = 1 THEN message END) AS last_error_message
FROM ranked
GROUP BY tenant_id, platform_name, reason
"""
    check_day = d.day('h.checked_at')
    check_trends = f"""
SELECT {SCOPE_TENANT.format(table="h")} AS tenant_id, h.platform AS platform_name,
       {check_day} AS day,
       COUNT(*) AS checks,
       SUM(CASE WHEN h.ok THEN 1 ELSE 0 END) AS passed,
       SUM(CASE WHEN h.ok THEN 0 ELSE 1 END) AS failed,
       {round1("100.0 * SUM(CASE WHEN h.ok THEN 1 ELSE 0 END) / COUNT(*)")} AS pass_rate,
       {round1("AVG(h.latency_ms)")} AS avg_latency_ms,
       {round1("MAX(h.latency_ms)")} AS max_latency_ms,
       SUM(CASE WHEN h.status = 'warning' THEN 1 ELSE 0 END) AS warnings,
       SUM(CASE WHEN h.status = 'critical' THEN 1 ELSE 0 END) AS criticals
FROM connection_health_checks h CROSS JOIN {SCOPES}
WHERE {d.ms('h.checked_at')} >= {now} - {7 * DAY_MS}
GROUP BY {SCOPE_TENANT.format(table="h")}, h.platform, {check_day}
"""
    attention = (
        "t.status <> 'active' OR t.health IN ('warning', 'critical') "
        "OR t.token_status <> 'healthy'"
    )
    readiness = f"""
SELECT x.tenant_id, x.platform_name,
       COUNT(*) AS connections,
       SUM(CASE WHEN x.status = 'active' THEN 1 ELSE 0 END) AS active,
       SUM(x.attention) AS needs_attention,
       SUM(CASE WHEN x.last_health_check_at IS NULL THEN 1 ELSE 0 END) AS never_checked,
       MAX(x.last_health_check_at) AS last_health_check_at,
       CASE WHEN SUM(x.attention) = 0
             AND SUM(CASE WHEN x.last_health_check_at IS NULL THEN 1 ELSE 0 END) = 0
            THEN 1 ELSE 0 END AS production_ready
FROM (SELECT {SCOPE_TENANT.format(table="t")} AS tenant_id, t.platform_name, t.status,
             c.last_health_check_at,
             CASE WHEN {attention} THEN 1 ELSE 0 END AS attention
      FROM api_token_health t
      JOIN connections c ON c.id = t.connection_id
      CROSS JOIN {SCOPES}) x
GROUP BY x.tenant_id, x.platform_name
"""
    metrics = ("impressions", "reach", "views", "likes", "comments", "shares", "saves", "clicks")
    metrics = (*metrics, "engagement")
    latest_columns = ",\n           ".join(
        f"{d.json_number('a.metrics', m)} AS {m}" for m in metrics
    )
    sums = ",\n       ".join(f"SUM(l.{m}) AS {m}" for m in metrics)
    analytics = f"""
WITH latest AS (
    SELECT a.job_id, {latest_columns},
           ROW_NUMBER() OVER (PARTITION BY a.job_id ORDER BY a.collected_at DESC, a.id DESC)
               AS rn
    FROM publish_job_analytics a
), posts AS (
    SELECT {SCOPE_TENANT.format(table="j")} AS tenant_id, j.platform AS platform_name, j.id,
           j.published_at
    FROM publish_jobs j CROSS JOIN {SCOPES}
    WHERE j.published_at IS NOT NULL
)
SELECT p.tenant_id, p.platform_name,
       COUNT(*) AS posts_published,
       SUM(CASE WHEN {d.ms('p.published_at')} >= {now} - {7 * DAY_MS} THEN 1 ELSE 0 END)
           AS posts_published_7d,
       MAX(p.published_at) AS last_published_at,
       COUNT(l.job_id) AS posts_with_analytics,
       {sums}
FROM posts p
LEFT JOIN latest l ON l.job_id = p.id AND l.rn = 1
GROUP BY p.tenant_id, p.platform_name
"""
    return {
        "api_token_health": token_health,
        "api_connector_health_summary": health_summary,
        "api_recent_errors": recent_errors,
        "api_publish_performance": publish_performance,
        "api_dlq_status": dlq_status,
        "api_health_check_trends": check_trends,
        "api_connector_readiness": readiness,
        "api_analytics_summary": analytics,
    }


def upgrade() -> None:
    dialect = Dialect(op.get_bind().dialect.name)
    for name, body in views(dialect).items():
        op.execute(f"CREATE VIEW {name} AS {body}")
    op.create_table(
        "dashboard_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dashboard_sessions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_dashboard_sessions")),
    )


def downgrade() -> None:
    op.drop_table("dashboard_sessions")
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
