"""``kill -9`` of a worker with 500 jobs in flight: after a restart each is published once."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from ...support import (
    TcpProxy,
    gateway_env,
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
    job_rows,
    job_states,
    queue_many,
    wait_until_settled,
)
from .test_pipeline import posts

JOBS = 500
CONCURRENCY = 25
# The worker reaches the sandbox through a relay that holds every answer back this long: each
# post is made at once, its 201 arrives late, so the kill finds posts made but not recorded.
ANSWER_DELAY = 0.3
LEASE_SECONDS = 2  # a dead worker's jobs are taken over this soon


def worker_env(live, tmp_path, installed_example, sandbox_url: str) -> dict[str, str]:
    return gateway_env(
        tmp_path / "worker",
        installed_example,
        database_url=live.gateway.settings.database.url,
        jobs_poll_seconds="0.1",
        jobs_lease_seconds=str(LEASE_SECONDS),
        connections_background="false",
        webhooks_background="false",
        platforms_examplesocial_sandbox_url=sandbox_url,
    )


async def test_kill_9_mid_flight_then_a_new_worker_publishes_each_job_once(
    aiohttp_server, tmp_path, database_url, installed_example
):
    live = await start_live(aiohttp_server, tmp_path, database_url)  # API and sandbox, no workers
    proxy = await TcpProxy(
        "127.0.0.1", urlsplit(live.base).port, response_delay=ANSWER_DELAY
    ).start()
    processes = []
    try:
        accounts = await connect_users(live, JOBS // JOBS_PER_TOKEN, "crash")
        job_ids = await queue_many(live, accounts, JOBS)
        sandbox_url = f"http://127.0.0.1:{proxy.port}/sandbox/examplesocial"
        env = worker_env(live, tmp_path, installed_example, sandbox_url)

        first_log = tmp_path / "first-worker.log"
        first = await spawn_gateway(
            "worker", "--concurrency", str(CONCURRENCY), env=env, log_file=first_log
        )
        processes.append(first)
        await wait_for_output(first_log, "gateway worker:", first)
        for _ in range(3000):
            # Kill once a fifth is done, at a moment when answers are on their way back.
            if (await job_states(live))["published"] >= 100 and proxy.held >= 3:
                break
            assert first.returncode is None, read_log(first_log)[-2000:]
            await asyncio.sleep(0.05)
        first.kill()  # SIGKILL: no drain, no cleanup, leases left behind
        await first.wait()

        at_kill = await job_states(live)
        assert at_kill["running"] > 0, at_kill  # jobs were claimed and never finished
        assert at_kill["published"] < JOBS
        # Posts the platform made for jobs whose worker died before it heard the answer: the
        # case where publishing again blindly would publish twice.
        running = {
            job_id for job_id, row in (await job_rows(live)).items() if row.status == "running"
        }
        orphans = [p for p in await posts(live) if p["clientReference"] in running]
        assert orphans, "the kill should leave posts made at the platform but not recorded"

        second_log = tmp_path / "second-worker.log"
        second = await spawn_gateway(
            "worker", "--concurrency", str(CONCURRENCY), env=env, log_file=second_log
        )
        processes.append(second)
        states = await wait_until_settled(live, JOBS, processes=[second])
        assert sum(states[s] for s in TERMINAL) == JOBS, f"jobs stuck: {dict(states)}"
        assert states["cancelled"] == 0

        rows = await check_each_published_once(live, job_ids)
        # The jobs the first worker held were taken over by the second, not left behind.
        assert all(rows[job_id].attempts >= 2 for job_id in running)
        assert await stop_gracefully(second) == 0, read_log(second_log)[-2000:]
        assert "Traceback" not in read_log(second_log)
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await proxy.close()
        await live.http.close()
