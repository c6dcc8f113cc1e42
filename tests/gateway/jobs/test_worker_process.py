"""`gateway worker` as an operator runs it: a separate process that drains the shared queue."""

from __future__ import annotations

import asyncio
import signal

from ...support import gateway_env, spawn_gateway
from ..connections.conftest import start_live
from .test_pipeline import account_of, job, posts, queue


async def test_a_worker_process_publishes_and_stops_cleanly(
    aiohttp_server, tmp_path, database_url, installed_example
):
    live = await start_live(aiohttp_server, tmp_path, database_url)  # the API process: no workers
    env = gateway_env(
        tmp_path / "worker",
        installed_example,
        database_url=live.gateway.settings.database.url,
        jobs_poll_seconds="0.1",
        connections_background="false",
        platforms_examplesocial_sandbox_url=live.sandbox(""),
    )
    process = await spawn_gateway("worker", "--concurrency", "2", env=env, capture=True)
    try:
        connection_id, account_id = await account_of(live)
        accepted = [(await queue(live, connection_id, account_id))[1] for _ in range(5)]
        for _ in range(200):
            states = [(await job(live, a["jobId"]))["status"] for a in accepted]
            if states == ["published"] * 5:
                break
            await asyncio.sleep(0.05)
        assert states == ["published"] * 5
        assert len(await posts(live)) == 5  # each exactly once
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, stderr.decode()
        assert b"Traceback" not in stderr
        # What starting made is out of the collector's way (a full pass walked it all).
        assert b"process.startup_frozen" in stdout + stderr
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await live.http.close()
