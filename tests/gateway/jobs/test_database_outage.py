"""The database goes away under a running `gateway worker` while posts are in flight
(PostgreSQL through a relay the test cuts; SQLite locked by another program): the worker lives
through it, and once the database is back every job ends published exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from ...conftest import POSTGRES_URL
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
    job_states,
    kill_workers,
    queue_many,
    start_workers,
    wait_until_settled,
)
from .test_pipeline import POSTS, fault

JOBS = 100
CONCURRENCY = 8
LEASE_SECONDS = 2
POST_LATENCY_MS = 200  # posts are in flight when the database goes
OUTAGE_SECONDS = 3  # longer than a lease: the worker cannot renew what it holds


async def publish_through_an_outage(
    live, tmp_path, installed_example, worker_database: str, outage, reason: str, **settings
) -> None:
    """A worker on ``worker_database`` publishes slow posts; once some are out, ``outage`` (an
    async context) takes the database from it for longer than a lease. The worker lives
    through it and every job ends published exactly once; each failed pass says ``reason``."""
    workers = []
    try:
        accounts = await connect_users(live, JOBS // JOBS_PER_TOKEN, "outage")
        await fault(live, method="POST", path=POSTS, delayMs=POST_LATENCY_MS, count=100_000)
        job_ids = await queue_many(live, accounts, JOBS)
        workers = await start_workers(
            live,
            tmp_path,
            installed_example,
            ("a",),
            database_url=worker_database,
            concurrency=CONCURRENCY,
            jobs_lease_seconds=str(LEASE_SECONDS),
            jobs_backoff_seconds="0.2,0.4,0.8",
            # A job whose lease ran out is looked for once its last request must be over.
            outbound_total_timeout_seconds="3",
            **settings,
        )
        [(process, log_file)] = workers

        for _ in range(600):  # a deadline, not a speed assertion
            if (await job_states(live))["published"] >= 20:
                break
            await asyncio.sleep(0.05)
        async with outage:
            before = await job_states(live)
            assert before["published"] < JOBS and before["running"] > 0, before
            await asyncio.sleep(OUTAGE_SECONDS)
            assert process.returncode is None, read_log(log_file)[-3000:]

        states = await wait_until_settled(live, JOBS, processes=[process])
        assert sum(states[s] for s in TERMINAL) == JOBS, f"jobs stuck: {dict(states)}"
        rows = await check_each_published_once(live, job_ids)
        assert {row.status for row in rows.values()} == {"published"}
        assert await stop_gracefully(process) == 0, read_log(log_file)[-3000:]
        # The outage is told as such, one line a pass, not as a bug with a traceback.
        log = read_log(log_file)
        assert "Traceback" not in log, log[-3000:]
        failed_passes = log_events(log_file, "worker.pass_failed")
        assert failed_passes and all(e["database"] == reason for e in failed_passes)
    finally:
        await kill_workers(workers)
        await live.http.close()


@pytest.mark.postgres
async def test_a_worker_lives_through_postgres_going_away_and_publishes_each_job_once(
    aiohttp_server,
    tmp_path,
    postgres_behind_proxy,
    installed_example,
):
    relayed, proxy = postgres_behind_proxy
    upstream = urlsplit(POSTGRES_URL)
    direct = make_url(relayed).set(host=upstream.hostname, port=upstream.port or 5432)
    # The API and the sandbox reach the database directly: only the worker loses it.
    live = await start_live(aiohttp_server, tmp_path, direct.render_as_string(False))

    @contextlib.asynccontextmanager
    async def unreachable():
        await proxy.cut()  # open connections reset, new ones refused
        yield
        await proxy.restore()

    await publish_through_an_outage(
        live, tmp_path, installed_example, relayed, unreachable(), "unreachable"
    )


async def test_a_worker_lives_through_sqlite_locked_by_another_program(
    aiohttp_server, tmp_path, installed_example
):
    live = await start_live(aiohttp_server, tmp_path)
    url = live.gateway.settings.database.url

    @contextlib.asynccontextmanager
    async def locked():
        # Another program (a backup, a stuck script) holds SQLite's write lock for longer than
        # the worker waits for it.
        holder = sqlite3.connect(
            make_url(url).database, timeout=10, isolation_level=None, check_same_thread=False
        )
        await asyncio.to_thread(holder.execute, "BEGIN IMMEDIATE")
        yield
        await asyncio.to_thread(holder.execute, "ROLLBACK")
        holder.close()

    await publish_through_an_outage(
        live, tmp_path, installed_example, url, locked(), "locked", database_busy_timeout_ms="300"
    )
