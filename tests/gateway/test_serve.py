"""`gateway serve` as an operator runs it: a real process, and SIGTERM drains in-flight requests."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from ..support import free_port, gateway_env, spawn_gateway, wait_for


@pytest.fixture
async def served(tmp_path, installed_example):
    """A `gateway serve` process with the example plugin installed; yields its base URL."""
    port = free_port()
    env = gateway_env(
        tmp_path / "var",
        installed_example,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/serve.db",
        server_shutdown_timeout_seconds="10",
    )
    process = await spawn_gateway("serve", "--port", str(port), env=env, capture=True)
    base = f"http://127.0.0.1:{port}"
    await wait_for(f"{base}/readyz", process)
    yield base, process
    if process.returncode is None:
        process.kill()
        await process.wait()


async def test_serve_answers_and_loads_installed_plugins(served):
    base, _ = served
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as response:
            assert await response.json() == {"status": "ok"}
        async with session.get(f"{base}/openapi.json") as response:
            assert "/api/plugins/example/whoami" in (await response.json())["paths"]


async def test_sigterm_finishes_in_flight_requests_then_exits_cleanly(served):
    base, process = served
    async with aiohttp.ClientSession() as session:
        in_flight = asyncio.create_task(session.get(f"{base}/plugins/example/slow?ms=1500"))
        await asyncio.sleep(0.4)  # the request is now being handled
        process.send_signal(signal.SIGTERM)
        response = await in_flight
        assert response.status == 200
        assert await response.json() == {"slept": True}
        response.release()
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
    assert b"uvloop)" in stderr  # server.event_loop = "auto", and uvloop is installed
    # What starting made is out of the collector's way (a full pass walked it all).
    assert b"process.startup_frozen" in stdout + stderr
    # Once drained the port is closed: no new work is accepted.
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session:
            await session.get(f"{base}/healthz")
