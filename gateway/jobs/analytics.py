"""Analytics collections: at +1 h, +6 h, +24 h, +72 h and +7 d after publishing, and on demand.

Every collection is kept (``publish_job_analytics`` is a time series). Figures are stored under
the unified names of ``METRICS``; a metric the platform does not give is ``None``, never 0.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from ..background import PeriodicPass
from ..db.base import utcnow
from ..db.jobs import AnalyticsRepository
from ..db.models import PublishJobAnalyticsRow, PublishJobRow
from ..errors import GatewayError
from ..types import METRICS
from .targets import load_target

if TYPE_CHECKING:
    from ..host import Gateway

log = structlog.get_logger("gateway.analytics")
STEPS = (
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=24),
    timedelta(hours=72),
    timedelta(days=7),
)
# A claimed collection is not claimed again for this long (its process may have died).
CLAIM_FOR = timedelta(minutes=10)


def first_collection(gateway: Gateway, platform: str, published_at):
    """When a just-published post is first measured, or None if its platform has no analytics."""
    connector = gateway.connector(platform)
    if connector is None or not connector.capabilities.analytics:
        return None
    return published_at + connector.analytics_delay + STEPS[0]


def unified(metrics: dict[str, Any]) -> dict[str, int | float | None]:
    """Every unified metric, ``None`` where the platform gave nothing (or something unusable)."""
    out: dict[str, int | float | None] = {}
    for name in METRICS:
        value = metrics.get(name)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        out[name] = value if ok else None
    return out


async def collect(gateway: Gateway, job: PublishJobRow, trigger: str) -> PublishJobAnalyticsRow:
    """Fetch the post's figures now and keep them; the connector's errors propagate."""
    target = await load_target(gateway, job, active_only=True)
    analytics = await target.connector.fetch_analytics(
        job.remote_post_id, target.account, target.credentials
    )
    row = PublishJobAnalyticsRow(
        job_id=job.id,
        tenant_id=job.tenant_id,
        platform=job.platform,
        collected_at=utcnow(),
        trigger=trigger,
        metrics=unified(analytics.metrics),
        raw=dict(analytics.raw),
    )
    async with gateway.transaction() as session:
        session.add(row)
    return row


class AnalyticsCollector(PeriodicPass):
    """Makes the scheduled collections that are due, in whichever process claims them first."""

    name = "analytics-collector"
    failed_event = "analytics.pass_failed"
    logger = "gateway.analytics"

    def __init__(self, gateway: Gateway, poll_seconds: float) -> None:
        super().__init__(poll_seconds)
        self.gateway = gateway

    async def run_pass(self) -> None:
        await self.collect_due()

    async def collect_due(self, limit: int = 20) -> int:
        now = utcnow()
        async with self.gateway.session() as session:
            due = await AnalyticsRepository(session).due(now, limit)
        made = 0
        for job in due:
            async with self.gateway.transaction() as session:
                claimed = await AnalyticsRepository(session).postpone(
                    job.id, job.analytics_next_at, now + CLAIM_FOR
                )
            if not claimed:
                continue  # another process has it
            try:
                await collect(self.gateway, job, "scheduled")
                made += 1
            except GatewayError as err:
                # A missed collection is logged; the schedule goes on with the next one.
                log.warning(
                    "analytics.collection_failed",
                    job_id=job.id,
                    platform=job.platform,
                    error=err.code,
                    step=job.analytics_step,
                )
            await self._advance(job)
        return made

    async def _advance(self, job: PublishJobRow) -> None:
        step = job.analytics_step + 1
        connector = self.gateway.connector(job.platform)
        delay = connector.analytics_delay if connector is not None else timedelta(0)
        following = None
        if step < len(STEPS) and job.deleted_at is None:
            following = job.published_at + delay + STEPS[step]
        async with self.gateway.transaction() as session:
            row = await session.get(PublishJobRow, job.id)
            if row is not None:
                row.analytics_step, row.analytics_next_at = step, following
