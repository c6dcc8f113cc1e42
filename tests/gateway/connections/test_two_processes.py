"""Two real gateway processes on one database: 50 calls with an expired token, one refresh."""

from __future__ import annotations

import asyncio
import os
import sys

import aiohttp
import pytest

from ...conftest import TEST_KEY, auth
from .conftest import PLATFORM, free_port, start_live
from .test_tokens import connected, expire_access_token, refresh_calls


async def serve_second_gateway(
    live, tmp_path, installed_example
) -> tuple[str, asyncio.subprocess.Process]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        PYTHONPATH=str(installed_example),
        GATEWAY_CORE_DATA_DIR=str(tmp_path / "second"),
        GATEWAY_DATABASE_URL=live.gateway.settings.database.url,
        GATEWAY_VAULT_KEYS=TEST_KEY,
        GATEWAY_CONNECTIONS_BACKGROUND="false",
        GATEWAY_LOGGING_LEVEL="warning",
        GATEWAY_PLATFORMS_EXAMPLESOCIAL_SANDBOX_URL=live.sandbox(""),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return base, process
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    process.kill()
    pytest.fail("the second gateway did not start")


async def test_fifty_calls_across_two_processes_cause_one_refresh(
    aiohttp_server, tmp_path, database_url, installed_example
):
    live = await start_live(aiohttp_server, tmp_path, database_url)
    second, process = await serve_second_gateway(live, tmp_path, installed_example)
    try:
        connection_id = await connected(live)
        await expire_access_token(live, connection_id)

        async def health_check(base: str) -> str:
            url = f"{base}/api/connections/{connection_id}/health-check"
            async with live.http.post(url, headers=auth(live.key)) as response:
                assert response.status == 200, await response.text()
                return (await response.json())["status"]

        statuses = await asyncio.gather(
            *(health_check(base) for _ in range(25) for base in (live.base, second))
        )
        assert statuses == ["healthy"] * 50
        calls = await refresh_calls(live)
        assert len(calls) == 1, calls
        assert calls[0]["status"] == 200
        _, connection = await live.api("GET", f"/api/connections/{connection_id}")
        assert connection["status"] == "active" and connection["platform"] == PLATFORM
    finally:
        process.terminate()
        await process.wait()
        await live.http.close()
