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

    from ..connector import Connector
    from ..host import Gateway

log = structlog.get_logger("gateway.jobs")
# How often the list of tenants with due work is read again while it is not empty: a tenant
# whose first job arrives behind another tenant's backlog waits at most this long for a turn.
ROTATION_REFRESH_SECONDS = 1.0
CANDIDATES_PER_TENANT = 10
# A claim reads each tenant's due jobs at most this many times (more when one has a backlog
# and the others have too little to fill the batch).
READS_PER_CLAIM = 3
# Tenants whose candidates one read asks for, next in turn first: with a thousand tenants
# waiting, a claim must not read them all (one statement each on PostgreSQL; on SQLite one
# compound statement, which may have at most 500 parts).
TENANTS_PER_READ = 10
MAX_TENANTS_PER_READ = 400
# Tenants with due work read into the rotation at a time: the next ones in turn. Reading them
# all would cost one index probe per tenant, in the claim's transaction, however many there are.
ROTATION_PAGE = 100


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job this process claimed, and the status it had (to give it back unstarted)."""

    job: PublishJobRow
    was: str


# Error codes of an attempt that may have published: the next attempt looks for the post
# first (a job buried as ``worker_lost`` is run again only when replayed from the DLQ;
# ``internal_error`` is an attempt that crashed, perhaps after its request left).
OUTCOME_IN_DOUBT = frozenset({"outcome_unknown", "worker_lost", "internal_error"})


def _width(want: int) -> int:
    """The tenants a claim of ``want`` jobs reads at first."""
    return min(max(want, TENANTS_PER_READ), MAX_TENANTS_PER_READ)


def outcome_in_doubt(job: PublishJobRow) -> bool:
    """Whether ``job``'s last attempt may have published without its outcome being recorded."""
    return (job.error_json or {}).get("code") in OUTCOME_IN_DOUBT


REPLAYED_UNCHECKED = (
    "replayed from the DLQ after an unknown outcome; the platform cannot be asked whether the "
    "earlier attempt posted, so this one was sent without looking"
)


def replays_without_looking(job: PublishJobRow, connector: Connector | None) -> bool:
    """Whether replaying the dead ``job`` publishes without looking for an earlier post: its
    last attempt may have posted and the platform cannot be asked (where it can, after a lost
    worker say, the replayed attempt looks first)."""
    if not outcome_in_doubt(job):
        return False
    if connector is None or not connector.reconciles:
        return True
    # Buried at once on an unknown outcome: the connector's look could not tell for this post.
    return job.dead_reason == "non_retryable"


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

    Tenants take turns (round robin over the tenants that have due work, in id order), so one
    tenant's backlog of thousands of jobs delays another tenant's job by one turn, not by the
    backlog. The rotation holds the next tenants in turn, a page at a time (all of them when
    they fit): a tenant served leaves the page, and the next page starts after the last tenant
    served, wrapping round to the first, so every tenant gets a turn before any gets a second
    however many there are. The rotation is shared by the worker tasks of this process (their
    claims may interleave on PostgreSQL, so it is only ever rotated, replaced or pruned, never
    walked in place); on PostgreSQL every process has its own and ``SKIP LOCKED`` keeps them
    apart.
    """

    def __init__(self, gateway: Gateway, owner: str) -> None:
        self.gateway = gateway
        self.settings = gateway.settings.jobs
        self.owner = owner
        self._rotation: deque[str] = deque()
        self._rotation_read = 0.0
        # Whether the rotation holds every tenant with due work (else the next page of them).
        self._whole = False
        # The last tenant served: the rotation goes on after it, across re-reads.
        self._served: str | None = None
        # When set, only these tenants' jobs are claimed (`gateway validate` on a production
        # database works its own tenant's jobs, not the cluster's).
        self.only_tenants: frozenset[str] | None = None
        self._swept = float("-inf")
        # Events of jobs buried while claiming, told to observers once the claim commits.
        self.buried: list = []

    def sweep_due(self) -> bool:
        """Whether this claim should also look for lapsed leases: a scan of its own, once a
        second per process is enough."""
        return time.monotonic() - self._swept > ROTATION_REFRESH_SECONDS

    def rotation_due(self, want: int = 1) -> bool:
        """Whether this claim should re-read the tenants with due work: when it knows of none
        (a new job may have come), the list is a second old, or a page has fewer left than
        the claim would read."""
        if not self._rotation or time.monotonic() - self._rotation_read > ROTATION_REFRESH_SECONDS:
            return True
        return not self._whole and len(self._rotation) < _width(want)

    async def refresh_rotation(self, session: AsyncSession, want: int = 1) -> None:
        """Re-read the tenants with due work, the next in turn first: those after the last
        tenant served, then from the first tenant round to it."""
        repo = JobRepository(session)
        now, page, served = utcnow(), max(ROTATION_PAGE, _width(want)), self._served
        among = self.only_tenants
        due = await repo.tenants_with_due_work(now, after=served, limit=page, among=among)
        whole = len(due) < page
        if whole and served is not None:  # the end of the list: round to the first
            rest = page - len(due)
            wrapped = await repo.tenants_with_due_work(now, through=served, limit=rest, among=among)
            due += wrapped
            whole = len(wrapped) < rest
        self._rotation = deque(due)
        self._whole = whole
        self._rotation_read = time.monotonic()

    async def sweep_lost_leases(self, session: AsyncSession) -> None:
        self._swept = time.monotonic()
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
        order = list(self._rotation)
        pools: dict[str, deque] = {}
        seen: set[str] = set()
        taken = []
        serial_taken: set[str] = set()  # accounts of one-at-a-time platforms, in this batch
        last_served = None
        unread = deque(order)
        width = _width(want)
        # The tenants to read: the next in turn, then those that may have more than was read.
        more = [unread.popleft() for _ in range(min(width, len(unread)))]
        for _ in range(READS_PER_CLAIM):
            if not more or len(taken) >= want:
                break
            # An even share of what is still wanted, and a few more to skip past busy ones.
            limit = CANDIDATES_PER_TENANT + -(-(want - len(taken)) // len(more))
            found = await repo.due_candidates(
                more, now, limit, skip_locked=not self.gateway.uses_sqlite, exclude=seen
            )
            full = set()
            for tenant_id, candidates in found.items():
                if not candidates and tenant_id not in pools:
                    with contextlib.suppress(ValueError):  # another task pruned it first
                        self._rotation.remove(tenant_id)
                pools.setdefault(tenant_id, deque()).extend(candidates)
                seen.update(candidate.id for candidate in candidates)
                if len(candidates) == limit:
                    full.add(tenant_id)
            turn = [tenant_id for tenant_id in order if pools.get(tenant_id)]
            while turn and len(taken) < want:
                next_turn = []
                for tenant_id in turn:
                    pool = pools[tenant_id]
                    while pool:
                        candidate = pool.popleft()
                        if await self._take(session, repo, candidate, now, serial_taken):
                            taken.append(candidate)
                            last_served = tenant_id
                            break
                    if pool:
                        next_turn.append(tenant_id)
                    if len(taken) >= want:
                        break
                turn = next_turn
            more = [tenant_id for tenant_id in order if tenant_id in full and not pools[tenant_id]]
            if len(taken) < want:  # the tenants read had too little: the next ones in turn
                room = max(width - len(more), 0)
                more += [unread.popleft() for _ in range(min(room, len(unread)))]
        self._turn_after(last_served)
        if not taken:
            return []
        until = now + timedelta(seconds=self.settings.lease_seconds)
        polled = [c.id for c in taken if c.poll_handle is not None]
        jobs = await repo.mark_claimed([c.id for c in taken], polled, self.owner, until)
        return [Claimed(job, candidate.status) for job, candidate in zip(jobs, taken, strict=True)]

    def _turn_after(self, tenant_id: str | None) -> None:
        """Move on so that the tenant after ``tenant_id`` comes first: the tenants up to it
        go to the back of the rotation when it holds them all, else they leave the page (the
        next page starts after ``tenant_id``, and comes back to them)."""
        if tenant_id is None:
            if not self._rotation:
                return
            tenant_id = self._rotation[0]  # it had nothing to take: the next one's turn
        elif tenant_id not in self._rotation:
            return  # another claim of this process has moved on past it (or read a new page)
        self._served = tenant_id
        turns = self._rotation.index(tenant_id) + 1
        if self._whole:
            self._rotation.rotate(-turns)
        else:
            for _ in range(turns):
                self._rotation.popleft()

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
        job.error_at = now
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
        self, session: AsyncSession, repo: JobRepository, candidate, now, serial_taken: set[str]
    ) -> bool:
        """Whether the due job ``candidate`` can be claimed now (one too old is buried)."""
        connector = self.gateway.connectors.get(candidate.platform)
        if connector is not None and connector.one_at_a_time_per_account:
            if candidate.account_id in serial_taken:
                return False  # this batch took its account's turn already
            if await repo.account_busy(candidate.account_id, candidate.id, now):
                return False  # its account is busy: it waits its turn, others go ahead
            serial_taken.add(candidate.account_id)
        polling = candidate.poll_handle is not None
        if not polling and candidate.created_at + timedelta(days=self.settings.max_age_days) < now:
            serial_taken.discard(candidate.account_id)
            await self._bury(
                session,
                await repo.get(candidate.id),
                "expired",
                dead_letter("expired", "the job waited more than the queue's maximum age"),
            )
            return False
        return True

    async def _bury(self, session: AsyncSession, job: PublishJobRow, reason: str, error: dict):
        job.status, job.dead_reason, job.error_json = "dead", reason, error
        job.dead_at = job.error_at = utcnow()
        job.lease_owner = job.lease_until = None
        await session.flush()
        self.buried.append(await stage(session, job_event(job, "job.dead")))
