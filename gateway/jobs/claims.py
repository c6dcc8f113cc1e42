"""Claiming due jobs fairly: lost leases first, then one tenant at a time in turn."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from ..db.base import utcnow
from ..db.jobs import JobRepository
from ..db.models import PublishJobRow
from .events import job_event, stage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ..host import Gateway

log = structlog.get_logger("gateway.jobs")
# How often the list of tenants with due work is read again while it is not empty: a tenant
# whose first job arrives behind another tenant's backlog waits at most this long for a turn.
ROTATION_REFRESH_SECONDS = 1.0
CANDIDATES_PER_TENANT = 10


def dead_letter(code: str, message: str) -> dict:
    return {
        "code": code,
        "message": message,
        "retryable": False,
        "platformCode": None,
        "httpStatus": None,
    }


class Claimer:
    """Takes the next job for a worker of this process.

    Tenants take turns (round robin over the tenants that have due work), so one tenant's
    backlog of thousands of jobs delays another tenant's job by one turn, not by the backlog.
    The rotation is shared by the worker tasks of this process (their claims may interleave on
    PostgreSQL, so it is only ever rotated, replaced or pruned, never walked in place); on
    PostgreSQL every process has its own and ``SKIP LOCKED`` keeps them apart.
    """

    def __init__(self, gateway: Gateway, owner: str) -> None:
        self.gateway = gateway
        self.settings = gateway.settings.jobs
        self.owner = owner
        self._rotation: deque[str] = deque()
        self._rotation_read = 0.0
        # Events of jobs buried while claiming, told to observers once the claim commits.
        self.buried: list = []

    def sweep_due(self) -> bool:
        """Whether this claim should also look for lapsed leases and re-read the tenants.

        Both are scans of their own; once a second per process is enough, and it keeps the
        common claim to two short statements.
        """
        return (
            not self._rotation or time.monotonic() - self._rotation_read > ROTATION_REFRESH_SECONDS
        )

    async def refresh_rotation(self, session: AsyncSession) -> None:
        """Re-read the tenants with due work (a read: outside the claim's write transaction)."""
        self._rotation = deque(await JobRepository(session).tenants_with_due_work(utcnow()))
        self._rotation_read = time.monotonic()

    async def sweep_lost_leases(self, session: AsyncSession) -> None:
        repo = JobRepository(session)
        now = utcnow()
        for job in await repo.lost_leases(now, 20, skip_locked=not self.gateway.uses_sqlite):
            await self._take_over(session, job, now)

    async def claim(self, session: AsyncSession) -> PublishJobRow | None:
        now = utcnow()
        repo = JobRepository(session)
        skip_locked = not self.gateway.uses_sqlite
        order = list(self._rotation)
        if order:
            self._rotation.rotate(-1)  # the next claim starts with the next tenant
        for tenant_id in order:
            candidates = await repo.due_for_tenant(
                tenant_id, now, CANDIDATES_PER_TENANT, skip_locked=skip_locked
            )
            if not candidates:
                with contextlib.suppress(ValueError):  # another task pruned it first
                    self._rotation.remove(tenant_id)
                continue
            for job in candidates:
                if await self._take(session, repo, job, now):
                    return job
        return None

    async def _take_over(self, session: AsyncSession, job: PublishJobRow, now) -> None:
        """A lease ran out mid-attempt: fence the old worker out and reconcile later.

        Its worker may be dead or only slow, and its request may still be on its way to the
        platform; so the job is not run now but after the longest a request can take, and
        then as an unknown outcome (the connector looks for the post before publishing).
        """
        failures = job.failures + 1
        job.attempts += 1  # any write of the old worker now fails its fence
        job.failures = failures
        job.lease_owner = job.lease_until = None
        job.updated_at = now
        if failures >= job.max_attempts:
            await self._bury(
                session,
                job,
                "max_attempts",
                dead_letter("worker_lost", "the job's worker stopped mid-attempt too often"),
            )
            return
        job.status = "failed"
        job.error_json = {
            "code": "outcome_unknown",
            "message": "the worker stopped answering mid-attempt; the post is looked for "
            "before any new attempt",
            "retryable": True,
            "platformCode": None,
            "httpStatus": None,
        }
        wait = self.gateway.settings.outbound.total_timeout_seconds + 1
        job.next_attempt_at = now + timedelta(seconds=wait)
        await session.flush()
        log.warning("job.lease_lost", job_id=job.id, attempt=job.attempts - 1)

    async def _take(
        self, session: AsyncSession, repo: JobRepository, job: PublishJobRow, now
    ) -> bool:
        connector = self.gateway.connectors.get(job.platform)
        serial = connector is not None and connector.one_at_a_time_per_account
        if serial and await repo.account_busy(job.account_id, job.id, now):
            return False  # its account is busy: it waits its turn, others go ahead
        polling = job.poll_handle is not None
        if not polling and job.created_at + timedelta(days=self.settings.max_age_days) < now:
            await self._bury(
                session,
                job,
                "expired",
                dead_letter("expired", "the job waited more than the queue's maximum age"),
            )
            return False
        if not polling:
            job.status = "running"  # a polled job keeps showing `processing` or `scheduled`
        job.attempts += 1  # the fencing token of this claim
        job.lease_owner = self.owner
        job.lease_until = now + timedelta(seconds=self.settings.lease_seconds)
        job.updated_at = now
        await session.flush()
        return True

    async def _bury(self, session: AsyncSession, job: PublishJobRow, reason: str, error: dict):
        job.status, job.dead_reason, job.dead_at, job.error_json = "dead", reason, utcnow(), error
        job.lease_owner = job.lease_until = None
        await session.flush()
        self.buried.append(await stage(session, job_event(job, "job.dead")))
