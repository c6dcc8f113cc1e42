"""The Gateway host: sandbox mode wiring plugins' clients to their mounted emulators."""

from __future__ import annotations

import pytest

from gateway import NeedsReauth
from gateway.host import Gateway
from gateway.web.app import create_app

from ..conftest import settings_for
from ..support import free_port, gateway_env, get_json, spawn_gateway


async def test_sandbox_mode_routes_a_plugin_to_its_mounted_sandbox(
    aiohttp_server, tmp_path, example_plugin
):
    port = free_port()
    settings = settings_for(tmp_path, server={"port": port})
    gateway = Gateway.from_settings(
        settings, extra_plugins=[("example", example_plugin)], entry_points=False
    )
    server = await aiohttp_server(create_app(gateway), port=port)
    connector = gateway.connector("example")
    assert gateway.sandbox_url("example") == f"http://127.0.0.1:{port}/sandbox/example"

    authorization = await connector.verify_api_key("ex-" + "a" * 32)
    assert (authorization.external_user_id, authorization.display_name) == (
        "ex-account-aaaaaa",
        "Example Account",
    )
    with pytest.raises(NeedsReauth, match="invalid API key"):
        await connector.verify_api_key("wrong")

    journal = (await get_json(str(server.make_url("/sandbox/example/_control/journal"))))[
        "requests"
    ]
    assert [(r["method"], r["path"], r["status"]) for r in journal] == [
        ("GET", "/api.example.test/v1/ping", 200),
        ("GET", "/api.example.test/v1/ping", 401),
    ]
    # The plugin's extra client middleware ran on every request.
    assert {r["headers"]["x-example-proof"] for r in journal} == {"signed-by-plugin"}


async def test_production_mode_mounts_no_sandbox_and_uses_real_hosts(
    aiohttp_client, tmp_path, example_plugin
):
    settings = settings_for(
        tmp_path,
        core={"mode": "production"},
        platforms={
            "example": {"region": "eu"},
            "examplesocial": {"client_id": "app-1", "client_secret": "s3cret"},
        },
    )
    gateway = Gateway.from_settings(
        settings, extra_plugins=[("example", example_plugin)], entry_points=False
    )
    client = await aiohttp_client(create_app(gateway))
    assert (await client.get("/sandbox/example/_control/state")).status == 404
    assert gateway.sandbox_url("example") is None


async def test_explicit_sandbox_url_points_at_a_standalone_sandbox(tmp_path, installed_example):
    """`gateway sandbox example --port P` serves it; `sandbox_url` points a gateway there."""
    port = free_port()
    env = gateway_env(tmp_path, installed_example)
    process = await spawn_gateway("sandbox", "example", "--port", str(port), env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        state = await get_json(f"{base}/_control/state")
        assert set(state) >= {"posts", "tokens", "accounts"}

        import gateway_example_plugin

        settings = settings_for(tmp_path, platforms={"example": {"sandbox_url": base}})
        gateway = Gateway.from_settings(
            settings, extra_plugins=[("example", gateway_example_plugin)], entry_points=False
        )
        await gateway.start()
        try:
            result = await gateway.connector("example").verify_api_key("ex-" + "b" * 32)
        finally:
            await gateway.stop()
        assert result.display_name == "Example Account"
    finally:
        process.terminate()
        await process.communicate()
