"""A job whose worker died mid-call is taken over without publishing twice."""

from __future__ import annotations

from datetime import timedelta

from gateway.db.base import utcnow
from gateway.db.jobs import JobRepository
from gateway.jobs.worker import Workers

from .test_pipeline import account_of, job, posts, queue


async def lose_lease(live, job_id) -> None:
    async with live.gateway.transaction() as session:
        stored = await JobRepository(session).get(job_id)
        stored.lease_until = utcnow() - timedelta(seconds=1)


async def test_the_takeover_finds_the_post_the_dead_worker_made(live):
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    claimed, lost = await Workers(live.gateway, 1).claim()
    assert claimed.id == accepted["jobId"] and not lost
    # The dead worker's request reached the platform, then the worker died before recording it.
    target_page = (await live.api("GET", f"/api/connections/{connection_id}/accounts"))[1]
    page = target_page["data"][0]["externalId"]
    credentials = await live.gateway.tokens.credentials(connection_id)
    async with live.http.post(
        live.sandbox(f"/api.examplesocial.test/v1/pages/{page}/posts"),
        json={"message": "Hello", "client_reference": accepted["jobId"]},
        headers={"Authorization": f"Bearer {credentials.access_token.reveal()}"},
    ) as response:
        assert response.status == 201, await response.text()
        made = await response.json()
    await lose_lease(live, accepted["jobId"])
    taken, lost = await Workers(live.gateway, 1).claim()
    assert taken.id == accepted["jobId"] and lost
    await Workers(live.gateway, 1).execute(taken, lost=lost)
    done = await job(live, accepted["jobId"])
    assert done["status"] == "published" and done["remotePostId"] == made["id"]
    assert len(await posts(live)) == 1


async def test_the_takeover_publishes_when_the_dead_worker_had_not(live):
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    await Workers(live.gateway, 1).claim()
    await lose_lease(live, accepted["jobId"])
    assert await Workers(live.gateway, 1).run_once()
    done = await job(live, accepted["jobId"])
    assert done["status"] == "published" and done["attempts"] == 2
    assert len(await posts(live)) == 1
