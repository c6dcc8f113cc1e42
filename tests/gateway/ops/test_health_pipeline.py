"""The health views over jobs the pipeline itself wrote, not only over seeded rows."""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.db.base import utcnow
from gateway.db.models import PublishJobRow
from gateway.jobs.worker import Workers
from gateway.ops.health import health_report, number, read_view, timestamp

from ..connections.conftest import start_live
from ..jobs.test_pipeline import POSTS, account_of, fault, job, make_due, queue


async def test_a_published_job_is_no_error_and_a_refused_one_is(
    aiohttp_server, tmp_path, database_url
):
    live = await start_live(aiohttp_server, tmp_path, database_url)
    try:
        connection_id, account_id = await account_of(live)
        tenant = live.key.tenant_id
        # Retried once, then published: the worker clears the job's error as it succeeds.
        await fault(live, method="POST", path=POSTS, status=503, count=1)
        _, retried = await queue(live, connection_id, account_id)
        workers = Workers(live.gateway, 1)
        await workers.run_once()
        await make_due(live, retried["jobId"])
        await workers.run_once()
        assert (await job(live, retried["jobId"]))["status"] == "published"
        _, published = await queue(live, connection_id, account_id)
        await workers.run_once()
        assert (await job(live, published["jobId"]))["status"] == "published"
        assert await read_view(live.gateway, "api_recent_errors", tenant) == []

        await fault(live, method="POST", path=POSTS, status=400, count=1)
        _, refused = await queue(live, connection_id, account_id)
        await workers.run_once()
        assert (await job(live, refused["jobId"]))["status"] == "dead"
        errors = await read_view(live.gateway, "api_recent_errors", tenant)
        assert [(e["source"], e["error_type"], e["occurrences_7d"]) for e in errors] == [
            ("publish", "invalid_request", 1)
        ]
        (performance,) = await read_view(live.gateway, "api_publish_performance", tenant)
        assert (performance["published_24h"], performance["dead_24h"]) == (2, 1)
    finally:
        await live.http.close()


async def test_a_replayed_job_is_measured_from_its_replay_and_its_error_from_when_it_happened(
    aiohttp_server, tmp_path, database_url
):
    """An hour in the DLQ is neither publish latency nor queue wait; discarding or replaying a
    job later does not move when its error was seen."""
    live = await start_live(aiohttp_server, tmp_path, database_url)
    try:
        connection_id, account_id = await account_of(live)
        tenant = live.key.tenant_id
        workers = Workers(live.gateway, 1)
        await fault(live, method="POST", path=POSTS, status=400, count=2)
        _, replayed = await queue(live, connection_id, account_id)
        _, discarded = await queue(live, connection_id, account_id)
        await workers.run_once()
        await workers.run_once()
        assert (await job(live, replayed["jobId"]))["status"] == "dead"
        assert (await job(live, discarded["jobId"]))["status"] == "dead"
        hour_ago = utcnow() - timedelta(hours=1)
        async with live.gateway.transaction() as session:
            for job_id in (replayed["jobId"], discarded["jobId"]):
                row = await session.get(PublishJobRow, job_id)
                row.created_at = row.dead_at = row.error_at = row.updated_at = hour_ago

        status, _ = await live.api("POST", f"/api/dlq/{replayed['jobId']}/replay")
        assert status == 200
        status, _ = await live.api("DELETE", f"/api/dlq/{discarded['jobId']}")
        assert status in (200, 204)
        await workers.run_once()
        assert (await job(live, replayed["jobId"]))["status"] == "published"

        (performance,) = await read_view(live.gateway, "api_publish_performance", tenant)
        assert performance["published_24h"] == 1
        # Measured from the replay: well under the hour the job sat dead.
        assert 0 <= number(performance["p95_latency_ms"]) < 60_000
        assert (
            0 <= number(performance["p95_queue_wait_ms"]) <= number(performance["p95_latency_ms"])
        )
        report = await health_report(live.gateway, tenant)
        [platform] = [
            p for p in report["platforms"] if p["platform"] == performance["platform_name"]
        ]
        publishing = platform["publishing"]
        assert publishing["p95QueueWaitMs"] == number(performance["p95_queue_wait_ms"])

        errors = await read_view(live.gateway, "api_recent_errors", tenant)
        [error] = [e for e in errors if e["error_type"] == "invalid_request"]
        # Both errors happened an hour ago; the discard just now is not when either was seen.
        last_seen = datetime.fromisoformat(timestamp(error["last_seen_at"]).replace("Z", "+00:00"))
        assert abs(last_seen - hour_ago) < timedelta(seconds=1)
    finally:
        await live.http.close()
