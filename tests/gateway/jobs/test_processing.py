"""Asynchronous publishing: a video is `processing` and polled on a schedule, holding no worker."""

from __future__ import annotations

from datetime import timedelta

from gateway import clock
from gateway.db.base import utcnow
from gateway.db.jobs import JobRepository
from gateway.jobs.worker import Workers

from ...support import FrozenClock
from .test_pipeline import account_of, fault, job, make_due, posts, queue

VIDEO = "https://cdn.example.com/clip.mp4"


async def advance_sandbox(live, seconds: float) -> None:
    async with live.http.post(
        live.sandbox("/_control/clock"), json={"advanceSeconds": seconds}
    ) as response:
        assert response.status == 200, await response.text()


async def row(live, job_id):
    async with live.gateway.session() as session:
        return await JobRepository(session).get(job_id)


async def test_a_video_is_polled_until_the_platform_has_processed_it(live_db):
    live = live_db
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id, mediaUrls=[VIDEO])
    workers = Workers(live.gateway, 1)
    # Stopped: the first poll is due 0.2 s after the publish, which a loaded machine can pass
    # between two lines of this test.
    with clock.use(FrozenClock(clock.timestamp())):
        assert await workers.run_once()
        processing = await job(live, accepted["jobId"])
        assert processing["status"] == "processing" and processing["remotePostId"]
        stored = await row(live, accepted["jobId"])
        assert stored.lease_owner is None and stored.poll_handle  # no worker is held
        assert not await workers.run_once()  # the next poll is not due yet

    await make_due(live, accepted["jobId"])
    assert await workers.run_once()  # polled: still processing at the platform
    assert (await job(live, accepted["jobId"]))["status"] == "processing"
    assert (await row(live, accepted["jobId"])).polls == 1

    await advance_sandbox(live, 61)
    await make_due(live, accepted["jobId"])
    assert await workers.run_once()
    done = await job(live, accepted["jobId"])
    assert done["status"] == "published" and done["remoteUrl"].startswith("https://")
    assert done["remotePostId"] == processing["remotePostId"]
    assert len(await posts(live)) == 1  # polling never publishes again


async def test_the_platform_failing_to_process_the_video_kills_the_job(live):
    connection_id, account_id = await account_of(live)
    corrupt = "https://cdn.example.com/corrupt.mp4"
    _, accepted = await queue(live, connection_id, account_id, mediaUrls=[corrupt])
    workers = Workers(live.gateway, 1)
    await workers.run_once()
    await advance_sandbox(live, 61)
    await make_due(live, accepted["jobId"])
    await workers.run_once()
    dead = await job(live, accepted["jobId"])
    assert dead["status"] == "dead"
    assert dead["error"]["platformCode"] == "processing_failed"
    _, dlq = await live.api("GET", "/api/dlq")
    assert dlq["data"][0]["reasonCode"] == "non_retryable"


async def test_processing_that_never_ends_times_out(live):
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id, mediaUrls=[VIDEO])
    workers = Workers(live.gateway, 1)
    await workers.run_once()
    async with live.gateway.transaction() as session:  # past the connector's 6 s timeout
        stored = await JobRepository(session).get(accepted["jobId"])
        stored.processing_since = utcnow() - timedelta(seconds=7)
    await make_due(live, accepted["jobId"])
    await workers.run_once()
    dead = await job(live, accepted["jobId"])
    assert dead["status"] == "dead" and dead["error"]["code"] == "processing_timeout"


async def test_a_failed_poll_is_asked_again_not_published_again(live):
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id, mediaUrls=[VIDEO])
    workers = Workers(live.gateway, 1)
    await workers.run_once()
    # More 503s than the HTTP client retries in one call: the poll itself fails.
    await fault(live, method="GET", path="/api.examplesocial.test/v1/posts/*", status=503, count=8)
    await advance_sandbox(live, 61)
    await make_due(live, accepted["jobId"])
    await workers.run_once()
    after_fault = await job(live, accepted["jobId"])
    assert after_fault["status"] == "processing" and after_fault["error"]["code"] == "transient"
    async with live.http.delete(live.sandbox("/_control/faults")) as response:
        assert response.status in (200, 204)
    await make_due(live, accepted["jobId"])
    await workers.run_once()
    assert (await job(live, accepted["jobId"]))["status"] == "published"
    assert len(await posts(live)) == 1
