"""Native scheduling: the platform holds a scheduled post; where it cannot, the gateway does."""

from __future__ import annotations

from datetime import timedelta

from gateway.db.base import utcnow
from gateway.db.jobs import JobRepository
from gateway.jobs.worker import Workers

from .test_pipeline import account_of, job, make_due, posts, queue
from .test_processing import advance_sandbox


def at(delta: timedelta) -> str:
    return (utcnow() + delta).isoformat().replace("+00:00", "Z")


async def test_the_platform_holds_a_scheduled_post_until_its_time(live):
    connection_id, account_id = await account_of(live)
    status, accepted = await queue(
        live, connection_id, account_id, scheduledAt=at(timedelta(hours=2))
    )
    assert status == 202 and accepted["status"] == "scheduled"
    workers = Workers(live.gateway, 1)
    assert await workers.run_once()  # handed to the platform at once, not at the time
    held = await job(live, accepted["jobId"])
    assert held["status"] == "scheduled" and held["remotePostId"]
    [post] = await posts(live)
    assert post["id"] == held["remotePostId"]
    assert not await workers.run_once()  # nothing to do until the send time

    await advance_sandbox(live, 2 * 3600 + 60)
    await make_due(live, accepted["jobId"])
    assert await workers.run_once()
    done = await job(live, accepted["jobId"])
    assert done["status"] == "published" and done["remotePostId"] == held["remotePostId"]
    assert len(await posts(live)) == 1


async def test_cancelling_unschedules_it_at_the_platform(live):
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id, scheduledAt=at(timedelta(hours=2)))
    await Workers(live.gateway, 1).run_once()
    status, cancelled = await live.api("DELETE", f"/api/jobs/{accepted['jobId']}")
    assert status == 200 and cancelled["status"] == "cancelled"
    [post] = await posts(live)
    assert post["deleted"]
    assert not await Workers(live.gateway, 1).run_once()


async def test_too_soon_for_the_platform_the_gateway_schedules_it_and_says_so(live):
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id, scheduledAt=at(timedelta(minutes=5)))
    workers = Workers(live.gateway, 1)
    assert await workers.run_once()
    waiting = await job(live, accepted["jobId"])
    assert waiting["status"] == "scheduled" and waiting["remotePostId"] is None
    assert "10 minutes to 30 days" in waiting["notes"][0]
    assert waiting["nextAttemptAt"] == waiting["scheduledAt"]
    assert await posts(live) == []
    async with live.gateway.transaction() as session:  # its time comes
        row = await JobRepository(session).get(accepted["jobId"])
        row.scheduled_at = row.next_attempt_at = utcnow() - timedelta(seconds=1)
    assert await workers.run_once()
    done = await job(live, accepted["jobId"])
    assert done["status"] == "published" and done["notes"] == waiting["notes"]
    assert len(await posts(live)) == 1
