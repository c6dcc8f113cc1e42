"""Two real gateway processes on one database: 50 calls with an expired token, one refresh."""

from __future__ import annotations

import asyncio

from ...conftest import auth
from ...support import free_port, gateway_env, spawn_gateway, wait_for
from .conftest import PLATFORM, start_live
from .test_tokens import connected, expire_access_token, refresh_calls


async def serve_second_gateway(live, tmp_path, installed_example):
    port = free_port()
    env = gateway_env(
        tmp_path / "second",
        installed_example,
        database_url=live.gateway.settings.database.url,
        connections_background="false",
        logging_level="warning",
        platforms_examplesocial_sandbox_url=live.sandbox(""),
    )
    process = await spawn_gateway("serve", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    await wait_for(f"{base}/readyz", process)
    return base, process


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
