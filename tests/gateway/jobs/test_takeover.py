"""A job whose worker stopped mid-call is taken over without publishing twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from gateway.db.base import utcnow
from gateway.db.jobs import JobRepository
from gateway.jobs.worker import Workers

from ..connections.conftest import start_live
from .test_pipeline import POSTS, account_of, fault, job, make_due, posts, queue


async def lose_lease(live, job_id) -> None:
    async with live.gateway.transaction() as session:
        stored = await JobRepository(session).get(job_id)
        stored.lease_until = utcnow() - timedelta(seconds=1)


async def post_as_the_platform_got_it(live, connection_id, job_id) -> dict:
    """The old worker's request reached the platform; the worker never heard back."""
    _, accounts = await live.api("GET", f"/api/connections/{connection_id}/accounts")
    page = accounts["data"][0]["externalId"]
    credentials = await live.gateway.tokens.credentials(connection_id)
    async with live.http.post(
        live.sandbox(f"/api.examplesocial.test/v1/pages/{page}/posts"),
        json={"message": "Hello", "client_reference": job_id},
        headers={"Authorization": f"Bearer {credentials.access_token.reveal()}"},
    ) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def test_a_lapsed_lease_is_reconciled_after_the_longest_call_not_at_once(live):
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    old = await Workers(live.gateway, 1).claim()
    made = await post_as_the_platform_got_it(live, connection_id, accepted["jobId"])
    await lose_lease(live, accepted["jobId"])

    replacement = Workers(live.gateway, 1)
    assert await replacement.claim() is None  # fenced off, but not run yet
    waiting = await job(live, accepted["jobId"])
    assert waiting["status"] == "failed" and waiting["error"]["code"] == "outcome_unknown"
    wait = (
        __import__("datetime").datetime.fromisoformat(
            waiting["nextAttemptAt"].replace("Z", "+00:00")
        )
        - utcnow()
    ).total_seconds()
    timeout = live.gateway.settings.outbound.total_timeout_seconds
    assert timeout < wait <= timeout + 1  # a request still on its way has finished by then

    await make_due(live, accepted["jobId"])
    assert await replacement.run_once()
    done = await job(live, accepted["jobId"])
    assert done["status"] == "published" and done["remotePostId"] == made["id"]
    assert len(await posts(live)) == 1

    await Workers(live.gateway, 1).execute(old)  # the old worker wakes up: it must not post
    assert len(await posts(live)) == 1
    assert (await job(live, accepted["jobId"]))["status"] == "published"


async def test_the_takeover_publishes_when_the_old_worker_had_not(live):
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    await Workers(live.gateway, 1).claim()
    await lose_lease(live, accepted["jobId"])
    workers = Workers(live.gateway, 1)
    assert await workers.claim() is None
    await make_due(live, accepted["jobId"])
    assert await workers.run_once()
    done = await job(live, accepted["jobId"])
    assert done["status"] == "published"
    assert len(await posts(live)) == 1


async def test_a_job_that_keeps_losing_its_worker_goes_to_the_dlq(live):
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    for _ in range(4):  # a new process each time, as after a crash
        await make_due(live, accepted["jobId"])
        assert await Workers(live.gateway, 1).claim() is not None
        await lose_lease(live, accepted["jobId"])
        assert await Workers(live.gateway, 1).claim() is None
    dead = await job(live, accepted["jobId"])
    assert dead["status"] == "dead" and dead["error"]["code"] == "worker_lost"
    _, dlq = await live.api("GET", "/api/dlq")
    assert dlq["data"][0]["reasonCode"] == "max_attempts"


async def test_a_failed_look_leaves_the_next_attempt_looking_first(live):
    """The look for the old worker's post fails (the platform answers 503): the next attempt
    must look again, not publish blindly, or the post would go out twice."""
    from .test_pipeline import fault

    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    await Workers(live.gateway, 1).claim()
    made = await post_as_the_platform_got_it(live, connection_id, accepted["jobId"])
    await lose_lease(live, accepted["jobId"])
    workers = Workers(live.gateway, 1)
    assert await workers.claim() is None  # fenced off, to be looked for later
    await fault(live, method="GET", path="*/posts", status=503, count=100)
    await make_due(live, accepted["jobId"])
    assert await workers.run_once()
    waiting = await job(live, accepted["jobId"])
    assert waiting["status"] == "failed" and waiting["error"]["code"] == "outcome_unknown"
    async with live.http.delete(live.sandbox("/_control/faults")) as response:
        assert response.status in (200, 204)
    await make_due(live, accepted["jobId"])
    assert await workers.run_once()
    done = await job(live, accepted["jobId"])
    assert done["status"] == "published" and done["remotePostId"] == made["id"]
    assert len(await posts(live)) == 1


async def test_a_replayed_lost_job_looks_for_its_post_first(live):
    """Buried after its workers kept dying mid-call, then replayed: the last of those calls
    reached the platform, so the replay adopts that post instead of making a second one."""
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    for _ in range(4):
        await make_due(live, accepted["jobId"])
        assert await Workers(live.gateway, 1).claim() is not None
        await lose_lease(live, accepted["jobId"])
        assert await Workers(live.gateway, 1).claim() is None
    made = await post_as_the_platform_got_it(live, connection_id, accepted["jobId"])
    status, replayed = await live.api("POST", f"/api/dlq/{accepted['jobId']}/replay")
    assert status == 200 and replayed["status"] == "queued"
    assert await Workers(live.gateway, 1).run_once()
    done = await job(live, accepted["jobId"])
    assert done["status"] == "published" and done["remotePostId"] == made["id"]
    assert len(await posts(live)) == 1


async def test_a_call_longer_than_the_lease_keeps_it(aiohttp_server, tmp_path):
    """The platform takes 2 s to answer and the lease is 0.9 s: the worker renews it every
    third, so no other worker takes the job over meanwhile, and it is published once."""
    live = await start_live(aiohttp_server, tmp_path, jobs={"lease_seconds": 0.9})
    try:
        connection_id, account_id = await account_of(live)
        _, accepted = await queue(live, connection_id, account_id)
        await fault(live, method="POST", path=POSTS, delayMs=2000, count=1)
        slow = asyncio.create_task(Workers(live.gateway, 1).run_once())
        leases = []
        while not slow.done():
            await asyncio.sleep(0.2)
            async with live.gateway.session() as session:
                row = await JobRepository(session).get(accepted["jobId"])
            leases.append(row.lease_until)
            # Another process looking for due work (lost leases included) finds nothing.
            assert await Workers(live.gateway, 1).claim() is None
        assert await slow
        renewed = {lease for lease in leases if lease is not None}
        assert len(renewed) >= 3  # the first lease and at least two renewals
        done = await job(live, accepted["jobId"])
        assert done["status"] == "published" and done["attempts"] == 1
        assert len(await posts(live)) == 1
    finally:
        await live.http.close()
