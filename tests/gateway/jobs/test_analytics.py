"""Analytics: scheduled collections after publishing, GET /api/analytics, the kept time series."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from gateway import admin
from gateway.db.base import utcnow
from gateway.db.jobs import JobRepository
from gateway.db.models import PublishJobAnalyticsRow
from gateway.jobs.analytics import AnalyticsCollector
from gateway.jobs.worker import Workers

from .test_pipeline import account_of, job, queue
from .test_processing import advance_sandbox


async def published_post(live) -> dict:
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    assert await Workers(live.gateway, 1).run_once()
    assert (await job(live, accepted["jobId"]))["status"] == "published"
    return accepted


async def series(live, job_id) -> list[PublishJobAnalyticsRow]:
    async with live.gateway.session() as session:
        rows = await session.execute(
            select(PublishJobAnalyticsRow)
            .where(PublishJobAnalyticsRow.job_id == job_id)
            .order_by(PublishJobAnalyticsRow.id)
        )
        return list(rows.scalars())


async def test_analytics_on_demand_and_the_latest_collection(live):
    accepted = await published_post(live)
    path = f"/api/analytics/{accepted['postId']}"
    status, first = await live.api("GET", path)  # nothing stored yet: fetched now
    assert status == 200, first
    assert first["postId"] == accepted["postId"] and first["platform"] == "examplesocial"
    assert first["metrics"]["views"] == 0 and first["metrics"]["likes"] == 0
    # Not given by the platform: null, never 0.
    for name in ("impressions", "reach", "comments", "shares", "saves", "clicks", "engagement"):
        assert first["metrics"][name] is None
    assert first["raw"] == {"views": 0, "likes": 0}

    await advance_sandbox(live, 30 * 60)
    assert (await live.api("GET", path))[1]["metrics"]["views"] == 0  # the stored one
    status, fresh = await live.api("GET", f"{path}?refresh=true")
    assert status == 200 and fresh["metrics"] == {**first["metrics"], "views": 300, "likes": 30}
    assert [r.trigger for r in await series(live, accepted["jobId"])] == ["refresh", "refresh"]


async def test_collections_follow_the_schedule_after_publishing(live):
    accepted = await published_post(live)
    async with live.gateway.session() as session:
        stored = await JobRepository(session).get(accepted["jobId"])
    # +1 h after publishing, shifted by the platform's 5 min reporting delay.
    first_at = stored.published_at + timedelta(minutes=5, hours=1)
    assert abs((stored.analytics_next_at - first_at).total_seconds()) < 1
    collector = AnalyticsCollector(live.gateway, poll_seconds=1)
    assert await collector.collect_due() == 0  # not due yet

    async with live.gateway.transaction() as session:
        row = await JobRepository(session).get(accepted["jobId"])
        row.analytics_next_at = utcnow() - timedelta(seconds=1)
    assert await collector.collect_due() == 1
    assert await collector.collect_due() == 0  # made once
    async with live.gateway.session() as session:
        after = await JobRepository(session).get(accepted["jobId"])
    assert after.analytics_step == 1
    second_at = stored.published_at + timedelta(minutes=5, hours=6)
    assert abs((after.analytics_next_at - second_at).total_seconds()) < 1
    [collection] = await series(live, accepted["jobId"])
    assert collection.trigger == "scheduled" and collection.metrics["views"] == 0

    for step in range(2, 6):  # +24 h, +72 h, +7 d, then nothing more
        async with live.gateway.transaction() as session:
            row = await JobRepository(session).get(accepted["jobId"])
            row.analytics_next_at = utcnow() - timedelta(seconds=1)
        assert await collector.collect_due() == 1
        async with live.gateway.session() as session:
            after = await JobRepository(session).get(accepted["jobId"])
        assert after.analytics_step == step
    assert after.analytics_next_at is None
    assert len(await series(live, accepted["jobId"])) == 5


async def test_analytics_answers_clearly_when_there_are_none(live):
    accepted = await published_post(live)
    connection_id, account_id = await account_of(live)
    _, queued = await queue(live, connection_id, account_id)
    assert (await live.api("GET", f"/api/analytics/{queued['postId']}"))[0] == 409
    assert (await live.api("GET", "/api/analytics/post_nope"))[0] == 404
    path = f"/api/analytics/{accepted['postId']}"
    assert (await live.api("GET", f"{path}?refresh=maybe"))[0] == 400
    other = await admin.create_tenant(live.gateway, "other")
    assert (await live.api("GET", path, key=other))[0] == 404
    assert (await live.api("DELETE", f"/api/posts/{accepted['postId']}"))[0] == 200
    assert (await live.api("GET", path))[0] == 409
    assert await series(live, accepted["jobId"]) == []
