"""Native scheduling: Meta holds scheduled Page posts; what it cannot hold, the gateway does."""

from __future__ import annotations

from datetime import timedelta

from gateway.db.base import utcnow

from .test_publish import make_due


def at(delta: timedelta) -> str:
    return (utcnow() + delta).isoformat().replace("+00:00", "Z")


async def test_meta_holds_a_scheduled_page_post_until_its_time(meta):
    connection_id, accounts = await meta.accounts()
    accepted = await meta.queued(
        connection_id, accounts["facebook_page"], body="Later", scheduledAt=at(timedelta(hours=2))
    )
    assert accepted["status"] == "scheduled"
    assert await meta.run_jobs()  # handed to Meta at once
    held = await meta.job(accepted["jobId"])
    assert held["status"] == "scheduled" and held["remotePostId"]
    [post] = (await meta.state())["posts"]
    assert post["published"] is False and post["scheduledFor"]
    await meta.advance(2 * 3600 + 60)
    await make_due(meta, accepted["jobId"])
    assert await meta.run_jobs()
    done = await meta.job(accepted["jobId"])
    assert done["status"] == "published" and done["remotePostId"] == held["remotePostId"]
    [post] = (await meta.state())["posts"]
    assert post["published"] is True
    feeds = await meta.control("GET", "journal", params={"path": "*/feed", "method": "POST"})
    assert len(feeds["requests"]) == 1


async def test_cancelling_deletes_the_scheduled_post_at_meta(meta):
    connection_id, accounts = await meta.accounts()
    accepted = await meta.queued(
        connection_id, accounts["facebook_page"], body="Later", scheduledAt=at(timedelta(hours=2))
    )
    assert await meta.run_jobs()
    status, cancelled = await meta.api("DELETE", f"/api/jobs/{accepted['jobId']}")
    assert status == 200 and cancelled["status"] == "cancelled"
    [post] = (await meta.state())["posts"]
    assert post["deleted"] is True


async def test_instagram_posts_are_scheduled_by_the_gateway(meta):
    connection_id, accounts = await meta.accounts()
    accepted = await meta.queued(
        connection_id,
        accounts["instagram_business"],
        mediaUrls=["https://cdn.example.com/a.jpg"],
        scheduledAt=at(timedelta(hours=2)),
    )
    assert await meta.run_jobs()
    waiting = await meta.job(accepted["jobId"])
    assert waiting["status"] == "scheduled" and waiting["remotePostId"] is None
    assert "Instagram" in waiting["notes"][0]
    assert (await meta.state())["posts"] == []
