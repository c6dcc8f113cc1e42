"""Background work: refresh ahead of expiry, health checks when due, the daily DLQ audit."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from ..background import PeriodicPass
from ..db.base import utcnow
from ..db.connections import ConnectionRepository
from ..db.periodic import claim_run
from ..errors import GatewayError, ResourceNotFound
from ..jobs.audit import audit_dead_letters
from .health import check_connection

if TYPE_CHECKING:
    from ..host import Gateway

log = structlog.get_logger("gateway.scheduler")
BATCH = 200


class ConnectionScheduler(PeriodicPass):
    """One task per process that wakes every ``poll_seconds``; several processes share the work.

    Health checks are claimed by moving their next slot forward with a compare-and-set, so each
    due check runs in exactly one process; refreshes are guarded by the token manager's lease.
    """

    name = "connection-scheduler"
    failed_event = "scheduler.tick_failed"
    logger = "gateway.scheduler"

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway.settings.connections.poll_seconds)
        self.gateway = gateway
        self.settings = gateway.settings.connections
        self._limit = asyncio.Semaphore(self.settings.max_concurrent_checks)

    async def run_pass(self) -> None:
        await self.tick()

    async def tick(self) -> None:
        """One pass: refresh what is due, run the due health checks, the daily DLQ audit."""
        await asyncio.gather(self._refresh_due(), self._check_due(), self._daily_audit())

    async def _daily_audit(self) -> None:
        now = utcnow()
        async with self.gateway.transaction() as session:
            due = await claim_run(session, "dlq_audit", now, now + timedelta(days=1))
        if due:
            await audit_dead_letters(self.gateway)

    async def _refresh_due(self) -> None:
        async with self.gateway.session() as session:
            due = await ConnectionRepository(session).due_for_refresh(utcnow(), BATCH)
        await asyncio.gather(*(self._guarded(self._refresh(cid)) for cid in due))

    async def _refresh(self, connection_id: str) -> None:
        try:
            await self.gateway.tokens.refresh(connection_id)
        except GatewayError as err:
            log.info("scheduler.refresh_failed", connection_id=connection_id, error=err.code)

    async def _check_due(self) -> None:
        now = utcnow()
        interval = timedelta(seconds=self.settings.health_interval_seconds)
        async with self.gateway.session() as session:
            due = await ConnectionRepository(session).due_for_health_check(now, BATCH)
        if not due:
            return
        claimed = []
        # One transaction for the whole pass, not one per check. Rows are claimed in id order,
        # so that two processes claiming overlapping passes (PostgreSQL) never deadlock.
        async with self.gateway.transaction() as session:
            repo = ConnectionRepository(session)
            for connection_id, seen_next in sorted(due):
                # The next slot keeps the connection's place in the interval (the spread).
                if await repo.claim_health_check(
                    connection_id,
                    seen_next,
                    seen_next + interval * _slots_behind(seen_next, now, interval),
                ):
                    claimed.append(connection_id)
        await asyncio.gather(*(self._guarded(self._check(cid)) for cid in claimed))

    async def _check(self, connection_id: str) -> None:
        try:
            row = await self.gateway.tokens.reader.row(connection_id)
        except ResourceNotFound:
            return  # deleted since it was claimed
        await check_connection(self.gateway, row)

    async def _guarded(self, work) -> None:
        async with self._limit:
            await work


def _slots_behind(seen_next, now, interval: timedelta) -> int:
    """How many whole intervals to move forward so that the next slot is in the future."""
    behind = (now - seen_next) // interval
    return int(behind) + 1
