"""`gateway serve` as an operator runs it: a real process, and SIGTERM drains in-flight requests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import aiohttp
import pytest

from ..conftest import TEST_KEY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def served(tmp_path, installed_example):
    """A `gateway serve` process with the example plugin installed; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        PYTHONPATH=str(installed_example),
        GATEWAY_CORE_DATA_DIR=str(tmp_path / "var"),
        GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/serve.db",
        GATEWAY_VAULT_KEYS=TEST_KEY,
        GATEWAY_SERVER_SHUTDOWN_TIMEOUT_SECONDS="10",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                pass
            if process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        else:
            process.kill()
            pytest.fail("gateway serve did not become ready")
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
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
    # Once drained the port is closed: no new work is accepted.
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session:
            await session.get(f"{base}/healthz")
