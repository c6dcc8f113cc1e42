"""Known data for the health views: two tenants, connections, checks, jobs and analytics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway import admin
from gateway.db.base import utcnow
from gateway.db.models import (
    AccountRow,
    ConnectionRow,
    HealthCheckRow,
    PublishJobAnalyticsRow,
    PublishJobRow,
)
from gateway.host import Gateway
from gateway.ids import new_id

SOCIAL = "examplesocial"
KEYED = "example"


@dataclass
class Seeded:
    now: datetime
    key_a: admin.IssuedKey
    key_b: admin.IssuedKey
    dead_ids: list[str] = field(default_factory=list)
    check_day: str = ""


def _connection(tenant_id: str, platform: str, **values) -> ConnectionRow:
    return ConnectionRow(
        id=new_id("conn"),
        tenant_id=tenant_id,
        platform=platform,
        external_user_id=new_id("user"),
        display_name=values.pop("display_name", "Acme"),
        **values,
    )


def _job(connection: ConnectionRow, account: AccountRow, **values) -> PublishJobRow:
    return PublishJobRow(
        id=new_id("job"),
        post_id=new_id("post"),
        tenant_id=connection.tenant_id,
        connection_id=connection.id,
        account_id=account.id,
        platform=connection.platform,
        request_json={"body": "Hello"},
        request_hash="0" * 64,
        next_attempt_at=values.get("created_at", utcnow()),
        **values,
    )


def _account(connection: ConnectionRow) -> AccountRow:
    return AccountRow(
        id=new_id("acct"),
        connection_id=connection.id,
        tenant_id=connection.tenant_id,
        platform=connection.platform,
        kind="example_page",
        external_id=new_id("page"),
        name="Page",
    )


async def seed(gateway: Gateway) -> Seeded:
    """Tenant A: three live connections, 20 fast posts, 3 dead jobs; tenant B: one of each."""
    key_a = await admin.create_tenant(gateway, "tenant-a")
    key_b = await admin.create_tenant(gateway, "tenant-b")
    a, b = key_a.tenant_id, key_b.tenant_id
    now = utcnow()
    seeded = Seeded(now, key_a, key_b)
    async with gateway.transaction() as session:
        a1 = _connection(
            a,
            SOCIAL,
            display_name="A one",
            health="healthy",
            refresh_expires_at=now + timedelta(hours=72),
            last_health_check_at=now - timedelta(hours=1),
        )
        a2 = _connection(a, SOCIAL, health="warning", last_health_check_at=now - timedelta(hours=2))
        a3 = _connection(
            a,
            KEYED,
            display_name="A keyed",
            status="needs_reconnect",
            health="critical",
            last_health_check_at=now - timedelta(hours=3),
        )
        a4 = _connection(a, KEYED, status="revoked", health="critical")
        b1 = _connection(
            b,
            SOCIAL,
            health="healthy",
            reconnect_by=now + timedelta(days=30),
            last_health_check_at=now - timedelta(minutes=30),
        )
        session.add_all([a1, a2, a3, a4, b1])
        await session.flush()
        acc_a1, acc_b1 = _account(a1), _account(b1)
        session.add_all([acc_a1, acc_b1])
        checked = now - timedelta(minutes=5)
        seeded.check_day = checked.strftime("%Y-%m-%d")
        for ok, latency, code, detail in (
            (True, 100.0, None, ""),
            (True, 200.0, None, ""),
            (False, 300.0, "transient", "timeout"),
        ):
            session.add(
                HealthCheckRow(
                    connection_id=a1.id,
                    tenant_id=a,
                    platform=SOCIAL,
                    checked_at=checked,
                    status="healthy" if ok else "warning",
                    ok=ok,
                    latency_ms=latency,
                    error_code=code,
                    detail=detail,
                )
            )
        session.add(
            HealthCheckRow(  # older than the trends' 7 days
                connection_id=a1.id,
                tenant_id=a,
                platform=SOCIAL,
                checked_at=now - timedelta(days=10),
                status="critical",
                ok=False,
                latency_ms=900.0,
                error_code="auth",
                detail="old",
            )
        )
        session.add(
            HealthCheckRow(
                connection_id=b1.id,
                tenant_id=b,
                platform=SOCIAL,
                checked_at=checked,
                status="healthy",
                ok=True,
                latency_ms=50.0,
            )
        )
        created = now - timedelta(minutes=10)
        published = []
        for i in range(1, 21):  # latencies 100, 200 ... 2000 ms
            job = _job(
                a1,
                acc_a1,
                status="published",
                created_at=created,
                published_at=created + timedelta(milliseconds=100 * i),
                remote_post_id=f"remote-{i}",
            )
            published.append(job)
        old = now - timedelta(days=10)
        published.append(
            _job(
                a1,
                acc_a1,
                status="published",
                created_at=old,
                published_at=old + timedelta(seconds=99),
            )
        )
        session.add_all(published)
        for message, ago in (("HTTP 503", 30), ("HTTP 502", 40)):
            dead = _job(
                a1,
                acc_a1,
                status="dead",
                dead_reason="max_attempts",
                created_at=now - timedelta(hours=2),
                dead_at=now - timedelta(minutes=ago),
                updated_at=now - timedelta(minutes=ago),
                error_json={"code": "transient", "message": message, "retryable": True},
            )
            session.add(dead)
            seeded.dead_ids.append(dead.id)
        refused = _job(
            a1,
            acc_a1,
            status="dead",
            dead_reason="non_retryable",
            created_at=now - timedelta(hours=50),
            dead_at=now - timedelta(hours=49),
            updated_at=now - timedelta(hours=49),
            error_json={"code": "invalid_request", "message": "bad caption", "retryable": False},
        )
        session.add(refused)
        seeded.dead_ids.append(refused.id)
        session.add(_job(a1, acc_a1, status="queued", created_at=now - timedelta(minutes=1)))
        session.add(
            _job(
                b1,
                acc_b1,
                status="published",
                created_at=created,
                published_at=created + timedelta(milliseconds=5000),
            )
        )
        await session.flush()
        for job, metrics, ago in (
            (published[0], {"likes": 1, "comments": 0}, 50),
            (published[0], {"likes": 5, "comments": 2, "impressions": 100}, 5),
            (published[1], {"likes": 3, "impressions": 50}, 5),
        ):
            session.add(
                PublishJobAnalyticsRow(
                    job_id=job.id,
                    tenant_id=a,
                    platform=SOCIAL,
                    collected_at=now - timedelta(minutes=ago),
                    trigger="scheduled",
                    metrics=metrics,
                    raw={},
                )
            )
    return seeded
