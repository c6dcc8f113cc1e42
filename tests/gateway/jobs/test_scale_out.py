"""Scale-out on PostgreSQL: two worker processes share one queue and publish each job once."""

from __future__ import annotations

import pytest

from ...support import (
    log_events,
    read_log,
    stop_gracefully,
)
from ..connections.conftest import start_live
from .faults import (
    JOBS_PER_TOKEN,
    TERMINAL,
    check_each_published_once,
    connect_users,
    kill_workers,
    queue_many,
    start_workers,
    wait_until_settled,
)
from .test_pipeline import POSTS, fault

JOBS = 300
CONCURRENCY = 4
LATENCY_MS = 50  # each post takes a moment at the platform, so both workers get a share


@pytest.mark.postgres
async def test_two_workers_share_the_queue_and_publish_each_job_once(
    aiohttp_server, tmp_path, postgres_url, installed_example
):
    live = await start_live(aiohttp_server, tmp_path, postgres_url)  # API and sandbox, no workers
    workers = []
    try:
        accounts = await connect_users(live, JOBS // JOBS_PER_TOKEN, "scale")
        await fault(live, method="POST", path=POSTS, delayMs=LATENCY_MS, count=100_000)
        workers = await start_workers(
            live,
            tmp_path,
            installed_example,
            ("a", "b"),
            database_url=postgres_url,
            concurrency=CONCURRENCY,
        )

        job_ids = await queue_many(live, accounts, JOBS)
        states = await wait_until_settled(live, JOBS, processes=[p for p, _ in workers])
        assert sum(states[s] for s in TERMINAL) == JOBS, f"jobs stuck: {dict(states)}"
        assert states["published"] == JOBS, dict(states)
        await check_each_published_once(live, job_ids)

        # Who did the work, from each process's own structured log: the shares add up to every
        # job, no job is claimed as published by both, and each process published some.
        shares = [
            # The worker's own line (job_id); the audit log's echo of the event has jobId.
            [e["job_id"] for e in log_events(log_file, "job.published") if "job_id" in e]
            for _, log_file in workers
        ]
        first, second = (set(share) for share in shares)
        assert len(first) == len(shares[0]) and len(second) == len(shares[1])
        assert not first & second
        assert first | second == set(job_ids)
        assert first and second, f"one process did everything: {len(first)} / {len(second)}"
        for process, log_file in workers:
            assert await stop_gracefully(process) == 0, read_log(log_file)[-2000:]
            assert "Traceback" not in read_log(log_file)
    finally:
        await kill_workers(workers)
        await live.http.close()
