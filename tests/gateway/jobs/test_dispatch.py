"""Workers' turns shared by one transaction: fenced writes, staged events and batch claims."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from gateway.db.base import utcnow
from gateway.db.jobs import JobRepository
from gateway.db.models import PublishJobRow, WebhookDeliveryRow
from gateway.jobs.dispatch import Outcome
from gateway.jobs.worker import Workers

from .test_pipeline import account_of, another_tenant_publishes, job, queue, tenants_with_backlogs


def published(remote_id: str) -> dict:
    return {
        "status": "published",
        "remote_post_id": remote_id,
        "published_at": utcnow(),
        "notes": None,
        "lease_owner": None,
        "lease_until": None,
        "error_json": None,
    }


async def claim_together(workers: Workers, count: int):
    """``count`` workers ask for a job at once: one claim serves them all."""
    turns = await asyncio.gather(
        *(workers.dispatcher.turn(None, wants_job=True) for _ in range(count))
    )
    return [turn.handout.job for turn in turns if turn.handout is not None]


async def test_outcomes_share_a_commit_and_a_lost_fence_is_told_apart(live_db):
    live = live_db
    connection_id, account_id = await account_of(live)
    status, _ = await live.api(
        "POST",
        "/api/webhook-endpoints",
        json={"url": "https://hooks.example.com/in", "events": ["job.published"]},
    )
    assert status == 201
    accepted = [(await queue(live, connection_id, account_id))[1]["jobId"] for _ in range(3)]
    workers = Workers(live.gateway, 3)
    claimed = await claim_together(workers, 3)
    assert sorted(j.id for j in claimed) == sorted(accepted)
    assert all(j.attempts == 1 and j.status == "running" for j in claimed)
    first, stale, third = claimed
    async with live.gateway.transaction() as session:  # another worker took one over
        row = await JobRepository(session).get(stale.id)
        row.attempts += 1

    turns = await asyncio.gather(
        *(
            workers.dispatcher.turn(
                Outcome(j, j.attempts, published(f"remote-{n}"), "job.published"), wants_job=False
            )
            for n, j in enumerate(claimed)
        )
    )
    assert [t.written for t in turns] == [True, False, True]
    assert [t.event is not None for t in turns] == [True, False, True]
    states = {j.id: (await job(live, j.id))["status"] for j in claimed}
    assert states == {first.id: "published", stale.id: "running", third.id: "published"}
    async with live.gateway.session() as session:
        delivered = [
            row.payload["data"]["jobId"]
            for row in (await session.execute(select(WebhookDeliveryRow))).scalars()
        ]
    assert sorted(delivered) == sorted([first.id, third.id])


async def test_claimed_jobs_are_exactly_the_rows_as_stored(live_db):
    """A claim reads its jobs back as it wrote them (on SQLite, outside the ORM)."""
    live = live_db
    connection_id, account_id = await account_of(live)
    for _ in range(2):
        await queue(live, connection_id, account_id, title="T", mediaUrls=["https://x.test/a.png"])
    claimed = await claim_together(Workers(live.gateway, 2), 2)
    assert len(claimed) == 2
    columns = [c.key for c in PublishJobRow.__mapper__.column_attrs]
    async with live.gateway.session() as session:
        for got in claimed:
            stored = await JobRepository(session).get(got.id)
            assert {c: getattr(got, c) for c in columns} == {c: getattr(stored, c) for c in columns}
            assert got.lease_until.tzinfo is not None and got.request_json["title"] == "T"


async def test_a_batch_claim_takes_turns_between_tenants(live_db):
    live = live_db
    connection_id, account_id = await account_of(live)
    noisy = [(await queue(live, connection_id, account_id))[1]["jobId"] for _ in range(6)]
    _, quiet = await another_tenant_publishes(live, "quiet", "Quiet")
    claimed = [j.id for j in await claim_together(Workers(live.gateway, 3), 3)]
    assert len(claimed) == 3 and quiet["jobId"] in claimed  # not three of the noisy backlog
    assert sum(job_id in noisy for job_id in claimed) == 2


async def test_a_batch_claim_takes_one_job_per_one_at_a_time_account(live_db, monkeypatch):
    from gateway_example_plugin.social_connector import ExampleSocialConnector

    monkeypatch.setattr(ExampleSocialConnector, "one_at_a_time_per_account", True)
    live = live_db
    connection_id, account_id = await account_of(live)
    for _ in range(3):
        await queue(live, connection_id, account_id)
    claimed = await claim_together(Workers(live.gateway, 3), 3)
    assert len(claimed) == 1  # the others wait for the account's turn


async def test_jobs_claimed_for_idle_workers_go_back_on_stop(live_db):
    live = live_db
    connection_id, account_id = await account_of(live)
    accepted = [(await queue(live, connection_id, account_id))[1]["jobId"] for _ in range(3)]
    workers = Workers(live.gateway, 3)
    workers._idle.extend(asyncio.get_running_loop().create_future() for _ in range(2))
    handout = (await workers.dispatcher.turn(None, wants_job=True)).handout
    assert handout is not None and len(workers.dispatcher.ready) == 2  # for the idle two
    workers._idle.clear()
    await workers.stop()
    left = [j for j in accepted if j != handout.job.id]
    assert [(await job(live, j))["status"] for j in left] == ["queued", "queued"]
    assert await Workers(live.gateway, 1).claim() is not None  # claimable again at once


async def test_a_cancel_as_read_refuses_a_job_a_worker_took_since(live_db):
    """A worker may hand a job to the platform's scheduler between a cancel's read and its
    write; the write then must not cancel it here while the platform still holds it."""
    live = live_db
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    read = await job(live, accepted["jobId"])
    claimed = await Workers(live.gateway, 1).claim()
    async with live.gateway.transaction() as session:  # handed to the platform's scheduler
        repo = JobRepository(session)
        assert await repo.fenced_update(claimed.id, claimed.attempts, status="scheduled")
    async with live.gateway.transaction() as session:
        repo = JobRepository(session)
        assert not await repo.cancel_waiting(
            claimed.id, status=read["status"], attempts=read["attempts"]
        )
    assert (await job(live, accepted["jobId"]))["status"] == "scheduled"


async def test_a_claim_with_six_hundred_tenants_waiting_reads_a_few_of_them(live_db):
    """SQLite allows 500 parts in a compound SELECT, and PostgreSQL would run one statement
    per tenant: a claim reads the next tenants in turn, not every tenant with due work."""
    live = live_db
    await tenants_with_backlogs(live, 600, 1)
    workers = Workers(live.gateway, 1)
    claimed = [await workers.claim() for _ in range(3)]
    assert all(job is not None for job in claimed)
    assert len({job.tenant_id for job in claimed}) == 3  # tenants still take turns


async def test_a_wake_while_every_worker_is_busy_is_not_lost(live_db):
    """A job queued while every worker is busy (say, finishing a claim that read the queue just
    before the job committed): the next worker to rest looks once more before it sleeps, rather
    than leave the job to the ticker."""
    workers = Workers(live_db.gateway, 1)  # not started: no worker is resting
    workers.wake()
    await asyncio.wait_for(workers._rest(), 5)  # returns at once: the worker looks again
    resting = asyncio.ensure_future(workers._rest())  # the wake is used up: now it sleeps
    await asyncio.sleep(0.05)
    assert not resting.done()
    workers.wake()
    await asyncio.wait_for(resting, 5)
