"""`gateway sandbox` and `gateway serve` as an operator runs them: who reaches the control API,
where its webhooks go, and the warning when sandbox mode listens off the loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ..support import free_port, spawn_gateway, stop_gracefully, wait_for, without_gateway_settings

TOKEN = "ctl-s3cret"


async def answered(url: str, process: Any, headers: dict[str, str]) -> None:
    """Poll ``url`` until it answers (any status): the server is up."""
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(url, headers=headers):
                    return
            except aiohttp.ClientConnectionError:
                if process.returncode is not None:
                    break
                await asyncio.sleep(0.05)
    process.kill()
    pytest.fail(f"nothing answered at {url}")


async def test_a_standalone_sandbox_takes_a_control_token_and_one_webhook_target(
    tmp_path, aiohttp_server
) -> None:
    received: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(request.path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    receiver = await aiohttp_server(app)
    target = str(receiver.make_url("/hook"))
    port = free_port()
    env = {**without_gateway_settings(), "GATEWAY_CORE_DATA_DIR": str(tmp_path)}
    process = await spawn_gateway(
        "sandbox",
        "mailchimp",
        "--port",
        str(port),
        "--control-token",
        TOKEN,
        "--webhook-target",
        target,
        env=env,
    )
    control = f"http://127.0.0.1:{port}/_control"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    try:
        await answered(f"{control}/state", process, bearer)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{control}/state") as response:
                assert response.status == 401
            async with session.get(f"{control}/state", headers=bearer) as response:
                assert response.status == 200
            elsewhere = {"event": "subscribe", "target": str(receiver.make_url("/other"))}
            async with session.post(f"{control}/webhooks", json=elsewhere, headers=bearer) as r:
                assert r.status == 403
            assert received == []
            async with session.post(
                f"{control}/webhooks", json={"event": "subscribe"}, headers=bearer
            ) as response:
                assert response.status == 200
                assert (await response.json())["status"] == 200
            assert received == ["/hook"]
    finally:
        await stop_gracefully(process, grace=10)


async def test_serve_in_sandbox_mode_off_the_loopback_warns(tmp_path) -> None:
    port = free_port()
    env = {
        **without_gateway_settings(),
        "GATEWAY_CORE_DATA_DIR": str(tmp_path),
        "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/serve.db",
    }
    process = await spawn_gateway(
        "serve", "--host", "0.0.0.0", "--port", str(port), env=env, capture=True
    )
    try:
        await wait_for(f"http://127.0.0.1:{port}/readyz", process)
    finally:
        await stop_gracefully(process, grace=20)
    _, stderr = await process.communicate()
    assert "warning: sandbox mode on a non-loopback address (0.0.0.0)" in stderr.decode()
