"""Claiming due jobs fairly: lost leases first, then one tenant at a time in turn."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job this process claimed, and the status it had (to give it back unstarted)."""

    job: PublishJobRow
    was: str


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

    async def claim(self, session: AsyncSession, want: int = 1) -> list[Claimed]:
        """Up to ``want`` due jobs, one tenant after another in turn, claimed in one statement.

        The next claim starts with the tenant after the last one served here, so a batch
        hands out turns exactly as that many single claims would.
        """
        now = utcnow()
        repo = JobRepository(session)
        skip_locked = not self.gateway.uses_sqlite
        limit = max(CANDIDATES_PER_TENANT, want)
        pools: dict[str, deque[PublishJobRow]] = {}
        taken: list[Claimed] = []
        serial_taken: set[str] = set()  # accounts of one-at-a-time platforms, in this batch
        last_served = None
        turn = list(self._rotation)
        while turn and len(taken) < want:
            next_turn = []
            for tenant_id in turn:
                pool = pools.get(tenant_id)
                if pool is None:
                    pool = pools[tenant_id] = deque(
                        await repo.due_for_tenant(tenant_id, now, limit, skip_locked=skip_locked)
                    )
                    if not pool:
                        with contextlib.suppress(ValueError):  # another task pruned it first
                            self._rotation.remove(tenant_id)
                        continue
                while pool:
                    job = pool.popleft()
                    was = job.status
                    if await self._take(session, repo, job, now, serial_taken):
                        taken.append(Claimed(job, was))
                        last_served = tenant_id
                        break
                if pool:
                    next_turn.append(tenant_id)
                if len(taken) >= want:
                    break
            turn = next_turn
        self._turn_after(last_served)
        if taken:
            await self._mark(session, repo, [c.job for c in taken], now)
        return taken

    def _turn_after(self, tenant_id: str | None) -> None:
        """Rotate so that the tenant after ``tenant_id`` comes first."""
        if tenant_id is None or tenant_id not in self._rotation:
            if self._rotation:
                self._rotation.rotate(-1)
            return
        self._rotation.rotate(-(self._rotation.index(tenant_id) + 1))

    async def _mark(
        self, session: AsyncSession, repo: JobRepository, jobs: list[PublishJobRow], now
    ) -> None:
        until = now + timedelta(seconds=self.settings.lease_seconds)
        polled = [job.id for job in jobs if job.poll_handle is not None]
        await repo.mark_claimed([job.id for job in jobs], polled, self.owner, until)
        for job in jobs:
            # Detached, so that the copy the worker keeps is never flushed over the row.
            session.expunge(job)
            if job.poll_handle is None:
                job.status = "running"  # a polled job keeps showing `processing` or `scheduled`
            job.attempts += 1  # the fencing token of this claim
            job.lease_owner = self.owner
            job.lease_until = until
            job.updated_at = now

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
        self,
        session: AsyncSession,
        repo: JobRepository,
        job: PublishJobRow,
        now,
        serial_taken: set[str],
    ) -> bool:
        """Whether ``job`` can be claimed now (it is buried instead when it is too old)."""
        connector = self.gateway.connectors.get(job.platform)
        if connector is not None and connector.one_at_a_time_per_account:
            if job.account_id in serial_taken:
                return False  # this batch took its account's turn already
            if await repo.account_busy(job.account_id, job.id, now):
                return False  # its account is busy: it waits its turn, others go ahead
            serial_taken.add(job.account_id)
        polling = job.poll_handle is not None
        if not polling and job.created_at + timedelta(days=self.settings.max_age_days) < now:
            serial_taken.discard(job.account_id)
            await self._bury(
                session,
                job,
                "expired",
                dead_letter("expired", "the job waited more than the queue's maximum age"),
            )
            return False
        return True

    async def _bury(self, session: AsyncSession, job: PublishJobRow, reason: str, error: dict):
        job.status, job.dead_reason, job.dead_at, job.error_json = "dead", reason, utcnow(), error
        job.lease_owner = job.lease_until = None
        await session.flush()
        self.buried.append(await stage(session, job_event(job, "job.dead")))
