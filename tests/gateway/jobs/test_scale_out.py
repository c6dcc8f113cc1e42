"""Scale-out on PostgreSQL: two worker processes share one queue and publish each job once."""

from __future__ import annotations

import pytest

from ...conftest import _drop_postgres_database, _postgres_database
from ...support import (
    gateway_env,
    log_events,
    read_log,
    spawn_gateway,
    stop_gracefully,
    wait_for_output,
)
from ..connections.conftest import start_live
from .faults import (
    JOBS_PER_TOKEN,
    TERMINAL,
    check_each_published_once,
    connect_users,
    queue_many,
    wait_until_settled,
)
from .test_pipeline import POSTS, fault

JOBS = 300
CONCURRENCY = 4
LATENCY_MS = 50  # each post takes a moment at the platform, so both workers get a share


@pytest.fixture
async def postgres_url():
    """A throw-away PostgreSQL database; skipped with the reason when there is no server."""
    url = await _postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


@pytest.mark.postgres
async def test_two_workers_share_the_queue_and_publish_each_job_once(
    aiohttp_server, tmp_path, postgres_url, installed_example
):
    live = await start_live(aiohttp_server, tmp_path, postgres_url)  # API and sandbox, no workers
    workers = []
    try:
        accounts = await connect_users(live, JOBS // JOBS_PER_TOKEN, "scale")
        await fault(live, method="POST", path=POSTS, delayMs=LATENCY_MS, count=100_000)
        for name in ("a", "b"):
            env = gateway_env(
                tmp_path / f"worker-{name}",
                installed_example,
                database_url=postgres_url,
                jobs_poll_seconds="0.1",
                connections_background="false",
                webhooks_background="false",
                platforms_examplesocial_sandbox_url=live.sandbox(""),
            )
            log_file = tmp_path / f"worker-{name}.log"
            process = await spawn_gateway(
                "worker", "--concurrency", str(CONCURRENCY), env=env, log_file=log_file
            )
            workers.append((process, log_file))
        for process, log_file in workers:
            await wait_for_output(log_file, "gateway worker:", process)

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
        for process, _ in workers:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await live.http.close()
