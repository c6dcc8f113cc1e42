"""Faults mixed, on PostgreSQL with two worker processes: rate limits, server errors, answers
that come too late and refusals, interleaved; every job still ends published exactly once or
dead with its reason, and none is lost."""

from __future__ import annotations

from collections import Counter

import pytest
from aiohttp import web

from ...support import read_log, stop_gracefully
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

JOBS = 200
CONCURRENCY = 4
ROUNDS = 6
# Longer than a worker waits for the platform's answer (2 s): the post is made, its answer
# lost, and the post appears only after the attempt has failed. The next attempt looks for it
# once the request must be over (a timeout and 1 s after the failure: 5 s after the send); had
# it looked at once, it would have found nothing and posted again.
ANSWER_TIMEOUT_SECONDS = "2"
LATE_MS = 3500


async def arm_mixed_faults(live) -> int:
    """Rounds of faults, consumed in order by the next posts: 429 with Retry-After, 500s, an
    answer that arrives too late (the post is made), a 400. The number of refusals."""
    for _ in range(ROUNDS):
        await fault(live, method="POST", path=POSTS, status=429, headers={"Retry-After": "1"})
        await fault(live, method="POST", path=POSTS, status=500, count=2)
        await fault(live, method="POST", path=POSTS, delayMs=LATE_MS)
        await fault(live, method="POST", path=POSTS, status=503, count=2)
        await fault(live, method="POST", path=POSTS, status=400)
    return ROUNDS


@pytest.fixture
async def serve_as_gateway_serve_does():
    """Serves an app as `gateway serve` does: a client that gives up does not cancel the
    handler (aiohttp's test server would), so the platform still makes a post whose caller
    stopped waiting for the answer."""
    runners = []

    async def serve(app: web.Application, *, port: int) -> None:
        runner = web.AppRunner(app, handler_cancellation=False, access_log=None)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", port).start()

    yield serve
    for runner in runners:
        await runner.cleanup()


@pytest.mark.postgres
async def test_mixed_faults_across_two_workers_end_each_job_once(
    serve_as_gateway_serve_does,
    tmp_path,
    postgres_url,
    installed_example,
):
    # The API and the sandbox, no workers.
    live = await start_live(serve_as_gateway_serve_does, tmp_path, postgres_url)
    workers = []
    try:
        accounts = await connect_users(live, JOBS // JOBS_PER_TOKEN, "chaos")
        refused = await arm_mixed_faults(live)
        workers = await start_workers(
            live,
            tmp_path,
            installed_example,
            ("a", "b"),
            database_url=postgres_url,
            concurrency=CONCURRENCY,
            jobs_backoff_seconds="0.2,0.4,0.8",
            outbound_total_timeout_seconds=ANSWER_TIMEOUT_SECONDS,
        )

        job_ids = await queue_many(live, accounts, JOBS)
        states = await wait_until_settled(live, JOBS, processes=[p for p, _ in workers])
        assert sum(states[s] for s in TERMINAL) == JOBS, f"jobs stuck: {dict(states)}"
        rows = await check_each_published_once(live, job_ids)
        dead = {job_id: row for job_id, row in rows.items() if row.status == "dead"}
        # Only the refused posts are dead, at once; every other fault was waited out.
        assert {row.dead_reason for row in dead.values()} == {"non_retryable"}, dead
        assert len(dead) == refused, {job_id: row.error_json for job_id, row in dead.items()}
        assert states["published"] == JOBS - refused
        # Every fault was met: the journal holds each status as often as it was armed.
        answered = Counter(entry["status"] for entry in await live.journal(POSTS))
        assert {status: answered[status] for status in (429, 500, 503, 400)} == {
            429: ROUNDS,
            500: 2 * ROUNDS,
            503: 2 * ROUNDS,
            400: ROUNDS,
        }
        # The posts whose answers came too late were made; the next attempts found them.
        assert answered[201] == JOBS - refused
        looked = [entry for entry in await live.journal(POSTS) if entry["method"] == "GET"]
        assert len(looked) == ROUNDS
        for process, log_file in workers:
            assert await stop_gracefully(process) == 0, read_log(log_file)[-2000:]
            assert "Traceback" not in read_log(log_file)
    finally:
        await kill_workers(workers)
        await live.http.close()
