"""The last look before a post goes out: held only by the attempt whose lease has not run out."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from gateway.db.base import utcnow
from gateway.db.jobs import JobRepository
from gateway.jobs.leases import LeaseChecks
from gateway.jobs.worker import Workers

from .test_pipeline import account_of, queue


async def claimed_jobs(live, count: int):
    connection_id, account_id = await account_of(live)
    for n in range(count):
        status, body = await queue(live, connection_id, account_id, body=f"Lease {n}")
        assert status == 202, body
    workers = Workers(live.gateway, 1)  # not started: the test claims by hand
    claimed = [await workers.claim() for _ in range(count)]
    assert all(job is not None for job in claimed)
    return claimed


async def test_many_checks_at_once_each_get_their_own_answer(live_db):
    live = live_db
    fresh, expired, taken_over, *others = await claimed_jobs(live, 6)
    async with live.gateway.transaction() as session:
        jobs = JobRepository(session)
        (await jobs.get(expired.id)).lease_until = utcnow() - timedelta(seconds=1)
        (await jobs.get(taken_over.id)).attempts = taken_over.attempts + 1
    checks = LeaseChecks(live.gateway)
    asked = [
        (fresh.id, fresh.attempts),
        (expired.id, expired.attempts),
        (taken_over.id, taken_over.attempts),  # the attempt that was replaced
        (taken_over.id, taken_over.attempts + 1),  # the one that replaced it
        ("job_nobody_made", 1),
        *((job.id, job.attempts) for job in others),
        *((job.id, job.attempts + 1) for job in others),  # a fence it never had
    ]
    # Asked together: one read answers them all, each with its own job and fence.
    answers = await asyncio.gather(*(checks.held(job_id, fence) for job_id, fence in asked))
    assert answers == [True, False, False, True, False] + [True] * 3 + [False] * 3
    # Asked again later, with fewer jobs: the same statement takes any number of them.
    assert await checks.held(fresh.id, fresh.attempts) is True
    assert await checks.held(expired.id, expired.attempts) is False
