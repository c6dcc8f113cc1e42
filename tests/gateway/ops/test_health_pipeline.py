"""The health views over jobs the pipeline itself wrote, not only over seeded rows."""

from __future__ import annotations

from gateway.jobs.worker import Workers
from gateway.ops.health import read_view

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
