"""``kill -9`` of a gateway process with 500 jobs in flight: after a restart each is published
exactly once (or dead with a reason), none lost, none stuck; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp

from ...conftest import auth
from ...support import (
    TcpProxy,
    free_port,
    gateway_env,
    read_log,
    spawn_gateway,
    stop_gracefully,
    wait_for,
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
# Gateways reach the sandbox through a relay that holds every answer back this long: each post
# is made at once and its 201 arrives late, so a kill finds posts made but not yet recorded.
ANSWER_DELAY = 0.3
LEASE_SECONDS = 2  # a dead process's jobs are taken over this soon


def process_env(live, tmp_path, installed_example, proxy: TcpProxy, **extra) -> dict[str, str]:
    return gateway_env(
        tmp_path / "process",
        installed_example,
        database_url=live.gateway.settings.database.url,
        jobs_poll_seconds="0.1",
        jobs_lease_seconds=str(LEASE_SECONDS),
        connections_background="false",
        webhooks_background="false",
        platforms_examplesocial_sandbox_url=f"http://127.0.0.1:{proxy.port}/sandbox/examplesocial",
        **extra,
    )


async def kill_mid_flight(live, proxy: TcpProxy, process, log_file, far_enough) -> set[str]:
    """SIGKILL ``process`` once ``far_enough(states)`` holds, at a moment when answers are on
    their way back; the ids of the jobs it left running."""
    for _ in range(3000):
        # No await between seeing held answers and the kill: they are still held when it lands.
        if far_enough(await job_states(live)) and proxy.held >= 3:
            break
        assert process.returncode is None, read_log(log_file)[-2000:]
        await asyncio.sleep(0.05)
    process.kill()  # no drain, no cleanup, leases left behind
    await process.wait()
    at_kill = await job_states(live)
    assert at_kill["running"] > 0, at_kill  # jobs were claimed and never finished
    assert at_kill["published"] < JOBS
    running = {job_id for job_id, row in (await job_rows(live)).items() if row.status == "running"}
    # Posts the platform made for jobs whose process died before it heard the answer: the case
    # where publishing again blindly would publish twice.
    orphans = [post for post in await posts(live) if post["clientReference"] in running]
    assert orphans, "the kill should leave posts made at the platform but not recorded"
    return running


async def restart_and_settle(live, env, tmp_path, job_ids: list[str], running: set[str]) -> None:
    """A new worker on the same database finishes everything, each job exactly once."""
    log_file = tmp_path / "after-restart.log"
    process = await spawn_gateway(
        "worker", "--concurrency", str(CONCURRENCY), env=env, log_file=log_file
    )
    try:
        states = await wait_until_settled(live, len(job_ids), processes=[process])
        assert sum(states[s] for s in TERMINAL) == len(job_ids), f"jobs stuck: {dict(states)}"
        assert states["cancelled"] == 0
        rows = await check_each_published_once(live, job_ids)
        # The jobs the dead process held were taken over, not left behind.
        assert all(rows[job_id].attempts >= 2 for job_id in running)
        assert await stop_gracefully(process) == 0, read_log(log_file)[-2000:]
        assert "Traceback" not in read_log(log_file)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_kill_9_of_a_worker_mid_flight_then_each_job_is_published_once(
    aiohttp_server, tmp_path, database_url, installed_example
):
    live = await start_live(aiohttp_server, tmp_path, database_url)  # API and sandbox, no workers
    proxy = TcpProxy("127.0.0.1", urlsplit(live.base).port, response_delay=ANSWER_DELAY)
    await proxy.start()
    env = process_env(live, tmp_path, installed_example, proxy)
    log_file = tmp_path / "worker.log"
    process = None
    try:
        accounts = await connect_users(live, JOBS // JOBS_PER_TOKEN, "crash")
        job_ids = await queue_many(live, accounts, JOBS)
        process = await spawn_gateway(
            "worker", "--concurrency", str(CONCURRENCY), env=env, log_file=log_file
        )
        await wait_for_output(log_file, "gateway worker:", process)
        running = await kill_mid_flight(
            live, proxy, process, log_file, lambda states: states["published"] >= 100
        )
        await restart_and_settle(live, env, tmp_path, job_ids, running)
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        await proxy.close()
        await live.http.close()


async def test_kill_9_of_serve_while_accepting_and_publishing_loses_no_accepted_job(
    aiohttp_server, tmp_path, database_url, installed_example
):
    """``gateway serve`` takes publish requests and runs workers; it dies in the middle of
    both. Every 202 it sent is a stored job that ends published once."""
    live = await start_live(aiohttp_server, tmp_path, database_url)  # the sandbox's home
    proxy = TcpProxy("127.0.0.1", urlsplit(live.base).port, response_delay=ANSWER_DELAY)
    await proxy.start()
    port = free_port()
    env = process_env(live, tmp_path, installed_example, proxy, jobs_concurrency=str(CONCURRENCY))
    log_file = tmp_path / "serve.log"
    process = None
    accepted: list[str] = []
    try:
        accounts = await connect_users(live, JOBS // JOBS_PER_TOKEN, "serve")
        process = await spawn_gateway("serve", "--port", str(port), env=env, log_file=log_file)
        await wait_for(f"http://127.0.0.1:{port}/readyz", process)

        async def client(worker: int, session: aiohttp.ClientSession) -> None:
            # Each client keeps publishing until the server is gone.
            for n in range(worker, JOBS, 20):
                connection_id, account_id = accounts[n % len(accounts)]
                body = {"connectionId": connection_id, "accountId": account_id, "body": f"#{n}"}
                try:
                    async with session.post(
                        f"http://127.0.0.1:{port}/api/publish", json=body, headers=auth(live.key)
                    ) as response:
                        answer = await response.json(content_type=None)
                except aiohttp.ClientError:
                    return  # the server died under this request: it was never accepted
                assert response.status == 202, answer
                accepted.append(answer["jobId"])

        async with aiohttp.ClientSession() as session:
            clients = [asyncio.create_task(client(i, session)) for i in range(20)]
            running = await kill_mid_flight(
                live, proxy, process, log_file, lambda _: len(accepted) >= JOBS // 3
            )
            await asyncio.gather(*clients)
        assert 0 < len(accepted) < JOBS  # the kill landed while requests were coming in

        stored = sorted(await job_rows(live))
        assert set(accepted) <= set(stored), "a job answered 202 was lost"
        # A request whose commit landed just before the kill has a job but no 202: it is
        # stored, so it must be published like the others.
        await restart_and_settle(live, env, tmp_path, stored, running)
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        await proxy.close()
        await live.http.close()
