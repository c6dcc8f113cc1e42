"""Health report cost: how long the eight views take to answer GET /api/health as jobs pile up.

Run with `.venv/bin/python bench/health.py [--jobs N] [--skew PCT] [--database-url URL]`. It
fills a throw-away database (SQLite by default) with N publish jobs (published, dead, failed)
over the last 2 days, their health checks and analytics, then times the report for one tenant
and for an admin (all tenants). With ``--skew``, that percentage of the jobs goes to one big
tenant and the timed tenant holds few: a tenant's report should cost its own rows, not the big
tenant's. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway import admin  # noqa: E402
from gateway.db.base import utcnow  # noqa: E402
from gateway.db.models import (  # noqa: E402
    ConnectionRow,
    HealthCheckRow,
    PublishJobAnalyticsRow,
    PublishJobRow,
)
from gateway.host import Gateway  # noqa: E402
from gateway.ids import new_id  # noqa: E402
from gateway.ops.health import health_report  # noqa: E402
from gateway.settings import settings_from_mapping  # noqa: E402

PLATFORMS = ("meta", "linkedin", "tiktok", "gbp", "mailchimp")


async def fill(gateway: Gateway, jobs: int, tenants: list[str], skew: float) -> None:
    now = utcnow()
    rng = random.Random(7)
    connections = {}
    async with gateway.transaction() as session:
        for tenant in tenants:
            for platform in PLATFORMS:
                row = ConnectionRow(
                    id=new_id("conn"),
                    tenant_id=tenant,
                    platform=platform,
                    external_user_id=new_id("user"),
                    health=rng.choice(("healthy", "healthy", "warning")),
                    refresh_expires_at=now + timedelta(days=rng.randint(1, 60)),
                    last_health_check_at=now,
                )
                session.add(row)
                connections[tenant, platform] = row
    batch = 2000
    for start in range(0, jobs, batch):
        async with gateway.transaction() as session:
            for _ in range(min(batch, jobs - start)):
                big = skew and rng.random() * 100 < skew
                tenant = tenants[-1] if big else rng.choice(tenants)
                platform = rng.choice(PLATFORMS)
                created = now - timedelta(seconds=rng.randint(0, 2 * 86400))
                status = rng.choices(("published", "dead", "failed"), (90, 5, 5))[0]
                job = PublishJobRow(
                    id=new_id("job"),
                    post_id=new_id("post"),
                    tenant_id=tenant,
                    connection_id=connections[tenant, platform].id,
                    account_id="acct",
                    platform=platform,
                    status=status,
                    request_json={},
                    request_hash="0" * 64,
                    next_attempt_at=created,
                    created_at=created,
                    updated_at=created,
                    published_at=created + timedelta(milliseconds=rng.randint(200, 3000))
                    if status == "published"
                    else None,
                    dead_at=created if status == "dead" else None,
                    dead_reason="max_attempts" if status == "dead" else None,
                    error_json=None
                    if status == "published"
                    else {"code": "transient", "message": "HTTP 503"},
                )
                session.add(job)
                if status == "published" and rng.random() < 0.3:
                    await session.flush()
                    session.add(
                        PublishJobAnalyticsRow(
                            job_id=job.id,
                            tenant_id=tenant,
                            platform=platform,
                            trigger="scheduled",
                            metrics={"likes": rng.randint(0, 50), "reach": rng.randint(0, 500)},
                            raw={},
                        )
                    )
            for (tenant, platform), connection in list(connections.items())[:10]:
                session.add(
                    HealthCheckRow(
                        connection_id=connection.id,
                        tenant_id=tenant,
                        platform=platform,
                        status="healthy",
                        ok=True,
                        latency_ms=rng.uniform(50, 300),
                    )
                )


async def timed(gateway: Gateway, tenant: str | None, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await health_report(gateway, tenant)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--skew", type=float, default=0, help="percent of the jobs held by the last tenant"
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        settings = settings_from_mapping(
            {"core": {"data_dir": tmp}, "database": {"url": url}, "jobs": {"concurrency": 0}}
        )
        gateway = Gateway.from_settings(settings, entry_points=False)
        await gateway.open_storage()
        try:
            tenants = [
                (await admin.create_tenant(gateway, f"t{i}")).tenant_id for i in range(args.tenants)
            ]
            started = time.perf_counter()
            await fill(gateway, args.jobs, tenants, args.skew)
            print(
                f"filled {args.jobs} jobs in {time.perf_counter() - started:.1f} s "
                f"({url.split(':')[0]}, skew {args.skew:g} %)"
            )
            for label, tenant in (("one tenant", tenants[0]), ("admin (all)", None)):
                samples = await timed(gateway, tenant, args.rounds)
                print(
                    f"health report, {label}: median {statistics.median(samples):.0f} ms, "
                    f"max {max(samples):.0f} ms over {args.rounds} rounds"
                )
        finally:
            await gateway.close_storage()


if __name__ == "__main__":
    asyncio.run(main())
